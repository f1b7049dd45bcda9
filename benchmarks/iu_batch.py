"""How many image-timesteps instance unlearning's after-pass should put in one forward on a CPU.

Instance unlearning's cost is one pass per query over its scored training images x its timestep grid
(`instance_unlearn.per_image_losses`: 1,600 forwards a query on style-canvas, 4,000 on digits). A batch of
2,048 keeps every activation far out of the caches; smaller batches are faster and give the same losses.
This script times that pass for each preset's own model shape and scored set (a freshly initialised model:
the time does not depend on the weights) at several batch sizes, on one thread and as one one-thread job
per core side by side (the shape `--executor ray --task-threads 1` runs), and records whether every batch
size returns the same losses as the largest, bit for bit.

    python benchmarks/iu_batch.py --out benchmarks/iu_batch.json

Times differ 2x or more between machines: the JSON names the one it ran on; read the ratios.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from guda_bench import instance_unlearn as iu
from guda_bench import progress
from guda_bench.context import Context
from guda_bench.models import build_unet, set_prediction
from guda_bench.provenance import cpu_model
from guda_bench.runner import benchmark_of, make_adapter
from guda_bench.store import Store, atomic_write_text

BOARDS = (("digits", "default"), ("mnist5k", "default"), ("style-canvas", "pretrained"))
BATCHES = (2048, 1024, 512, 256, 128)
SHIPPED = iu.InstanceConfig().batch_size  # the default the side-by-side jobs compare with the largest batch
LARGEST = max(BATCHES)


def speedup(seconds: dict) -> float:
    """The shipped batch against the largest, from one timing dict keyed by batch size."""
    return round(seconds[str(LARGEST)] / seconds[str(SHIPPED)], 2)


def after_pass(dataset: str, preset: str, cache: str, batches: tuple[int, ...], threads: int,
               repeats: int = 2) -> dict:
    """Seconds of one after-pass (the shipped scored set and grid) per batch size, and its losses' spread."""
    torch.set_num_threads(threads)
    progress.set_enabled(False)
    targets = make_adapter(dataset).preset(preset).targets  # a board with targets scores only theirs
    bench = benchmark_of({"dataset": dataset, "preset": preset, "targets": list(targets or ())})
    ctx = Context(bench, Store(Path(cache)), seed=0)
    cfg = iu.InstanceConfig()
    torch.manual_seed(0)
    cond = ctx.image_cond
    unet = build_unet(ctx.preset.model, text=ctx.preset.text if cond is not None else None,
                      cross_attention_dim=None if cond is None else cond.shape[-1])
    unet = set_prediction(unet.eval(), ctx.preset.recipe, ctx.scheduler)
    abar = ctx.scheduler.alphas_cumprod.float()
    steps = iu.grid_timesteps(cfg.n_timesteps, ctx.scheduler.config.num_train_timesteps)
    keep = iu.subsample_per_group(bench.group_of, bench.n_groups, cfg.max_train_per_group, cfg.seed)
    x = ctx.train_data[keep]
    noise = iu.fixed_noise(keep.tolist(), steps, cfg.seed, tuple(x.shape[1:]), iu.NOISE_TAG_TRAIN)
    c = None if cond is None else cond[keep]
    seconds, losses = {}, {}
    for bs in batches:
        iu.per_image_losses(unet, x, noise, steps, abar, bs, cond=c)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            losses[bs] = iu.per_image_losses(unet, x, noise, steps, abar, bs, cond=c)
        seconds[bs] = (time.perf_counter() - start) / repeats
    largest = losses[max(batches)]
    return {"forwards": len(keep) * len(steps), "seconds": {str(b): round(s, 3) for b, s in seconds.items()},
            "max_abs_diff_vs_largest": {str(b): float(np.abs(losses[b] - largest).max()) for b in batches}}


def _job(args: tuple) -> dict:
    return after_pass(*args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/iu_batch.json"))
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    boards = {}
    with tempfile.TemporaryDirectory() as cache:  # text states and conditions only: nothing is trained into it
        for dataset, preset in BOARDS:
            one = after_pass(dataset, preset, cache, BATCHES, 1)
            with mp.get_context("spawn").Pool(cores) as pool:
                side = pool.map(_job, [(dataset, preset, cache, (LARGEST, SHIPPED), 1)] * cores)
            slowest = {str(b): max(s["seconds"][str(b)] for s in side) for b in (LARGEST, SHIPPED)}
            boards[f"{dataset}/{preset}"] = {
                **one, "side_by_side_seconds": slowest,
                f"speedup_{SHIPPED}_vs_{LARGEST}": {"one_thread": speedup(one["seconds"]),
                                                    "side_by_side": speedup(slowest)}}
            print(dataset, preset, json.dumps(boards[f"{dataset}/{preset}"]))
    result = {"command": "python benchmarks/iu_batch.py", "machine": cpu_model(), "cores": cores,
              "batch_sizes": list(BATCHES), "boards": boards}
    atomic_write_text(a.out, json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
