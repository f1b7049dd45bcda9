"""Would torch.compile make the expensive parts of a board cheaper on a CPU? A probe, not a feature.

A cold style-canvas-pretrained board is training-bound in its truth (16 LOGO fine-tunes of 600 steps, ELBO
passes ~10% of each) and forward-bound in instance unlearning (1,600 eval forwards a query). This script
times both shapes on the board's model, eager against `torch.compile` (inductor), on one thread (the shape
`--executor ray --task-threads 1` runs): one training step (batch 64, AdamW, the v-loss) and instance
unlearning's after-pass (`instance_unlearn.per_image_losses`, the shipped batch of 256), and records the
first call's seconds (the compile, shorter when inductor's on-disk cache already holds the graphs) and how far
the compiled losses move from the eager ones. Medians over alternating eager/compiled repeats.

    python benchmarks/compile_probe.py --out benchmarks/compile_probe.json

Times differ 2x or more between machines: the JSON names the one it ran on; read the ratios.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from guda_bench import instance_unlearn as iu
from guda_bench import progress
from guda_bench.context import Context
from guda_bench.models import build_unet, predict, set_prediction
from guda_bench.provenance import cpu_model
from guda_bench.runner import benchmark_of, make_adapter
from guda_bench.store import Store, atomic_write_text

DATASET, PRESET = "style-canvas", "pretrained"
TRAIN_BATCH = 64


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _medians(eager, compiled, repeats: int) -> tuple[float, float]:
    """Median seconds of each, the two calls alternating so that a slow spell of the machine hits both."""
    pairs = [(_seconds(eager), _seconds(compiled)) for _ in range(repeats)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def probe(cache: str, train_steps: int, eval_repeats: int) -> dict:
    torch.set_num_threads(1)
    progress.set_enabled(False)
    targets = make_adapter(DATASET).preset(PRESET).targets  # a board with targets scores only theirs
    bench = benchmark_of({"dataset": DATASET, "preset": PRESET, "targets": list(targets or ())})
    ctx = Context(bench, Store(Path(cache)), seed=0)
    cond = ctx.image_cond
    torch.manual_seed(0)
    unet = set_prediction(build_unet(ctx.preset.model, text=ctx.preset.text, cross_attention_dim=cond.shape[-1]),
                          ctx.preset.recipe, ctx.scheduler)
    abar = ctx.scheduler.alphas_cumprod.float()
    cfg = iu.InstanceConfig()
    steps = iu.grid_timesteps(cfg.n_timesteps, ctx.scheduler.config.num_train_timesteps)
    keep = iu.subsample_per_group(bench.group_of, bench.n_groups, cfg.max_train_per_group, cfg.seed)
    x, c = ctx.train_data[keep], cond[keep]
    noise = iu.fixed_noise(keep.tolist(), steps, cfg.seed, tuple(x.shape[1:]), iu.NOISE_TAG_TRAIN)
    result: dict = {"eval_forwards": len(keep) * len(steps)}

    def after_pass(model: torch.nn.Module) -> np.ndarray:
        return iu.per_image_losses(model.eval(), x, noise, steps, abar, cfg.batch_size, cond=c)

    eager = after_pass(unet)
    compiled = torch.compile(unet)
    start = time.perf_counter()
    first = after_pass(compiled)  # compiles (the full batches, then the tail batch)
    compile_s = time.perf_counter() - start
    e, k = _medians(lambda: after_pass(unet), lambda: after_pass(compiled), eval_repeats)
    result["after_pass"] = {"eager_s": round(e, 3), "compiled_s": round(k, 3), "speedup": round(e / k, 2),
                            "first_call_s": round(compile_s, 1),
                            "max_abs_loss_diff": float(np.abs(first - eager).max()),
                            "max_abs_loss": float(np.abs(eager).max())}

    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, len(ctx.train_data), (TRAIN_BATCH,), generator=g)
    x0, cb = ctx.train_data[idx], cond[idx]
    t = torch.randint(0, len(abar), (TRAIN_BATCH,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    a, s = abar[t].sqrt()[:, None, None, None], (1 - abar[t]).sqrt()[:, None, None, None]

    def trainer(model: torch.nn.Module):
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step() -> None:
            loss = F.mse_loss(predict(model, a * x0 + s * eps, t, cb), a * eps - s * x0)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    eager_step, compiled_step = trainer(unet), trainer(torch.compile(copy.deepcopy(unet)))
    eager_step()
    compile_s = _seconds(compiled_step)
    e, k = _medians(eager_step, compiled_step, train_steps)
    result["train_step"] = {"batch": TRAIN_BATCH, "eager_ms": round(e * 1e3, 1), "compiled_ms": round(k * 1e3, 1),
                            "speedup": round(e / k, 2), "first_call_s": round(compile_s, 1)}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/compile_probe.json"))
    ap.add_argument("--train-steps", type=int, default=40)
    ap.add_argument("--eval-repeats", type=int, default=6)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:  # text states only: nothing is trained into it
        res = probe(cache, a.train_steps, a.eval_repeats)
    result = {"command": "python benchmarks/compile_probe.py", "machine": cpu_model(), "threads": 1,
              "torch": torch.__version__, "board": f"{DATASET}/{PRESET}", **res}
    atomic_write_text(a.out, json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
