"""Speed benchmarks as ratios measured in one process (`guda-bench bench`): writes benchmarks/results.json.

- ELBO scoring throughput (image-timesteps/s) vs the raw batched UNet forward on the same inputs;
- training throughput (images/s) of guda_bench.train vs a bare diffusers training loop (same model, batch);
- TRAK featurisation in ms per training image (traker projector, the preset's projection size);
- optionally GUDA's speedup vs LOGO and a warm run's wall seconds, read from a run folder (--run DIR);
- for any dataset (--dataset), a projection from these measured rates: the seconds the ground truth's
  trainings (the full model and one LOGO model per group) and the train-set TRAK features take at this
  machine's measured throughput. A projection, labelled as one: a cold run measures the real total.

Usage: guda-bench bench [--dataset digits] [--preset default] [--run runs/digits --run runs/digits-warm]
       [--out FILE]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from guda_bench import progress
from guda_bench.benchmark import Benchmark
from guda_bench.config import ElboConfig, to_jsonable
from guda_bench.elbo import ElboScorer
from guda_bench.errors import BenchError
from guda_bench.leaderboard import load_run
from guda_bench.models import build_scheduler, build_unet
from guda_bench.precision import autocast
from guda_bench.provenance import environment
from guda_bench.registry import DATASETS
from guda_bench.store import atomic_write_text, check_output_file
from guda_bench.train import train_model


def best_of(fn, repeats: int = 3, device: str = "cpu") -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_elbo(preset, n_queries: int = 200, device: str = "cpu", precision: str = "fp32") -> dict:
    """ELBO scoring vs the raw batched forward of the same model on the same number of image-timesteps
    (both under the given precision's autocast)."""
    torch.manual_seed(0)
    unet = build_unet(preset.model).eval().to(device)
    sched = build_scheduler(preset.recipe)
    queries = torch.rand((n_queries, preset.model.in_channels, preset.model.sample_size, preset.model.sample_size))
    cfg = ElboConfig(t_start=10, t_stop=1000, t_stride=100, batch_size=preset.elbo.batch_size)
    scorer = ElboScorer(sched, cfg, queries * 2 - 1, [str(i) for i in range(n_queries)], device=device)
    scorer.noise()  # drawn once per scorer and reused for every model: not part of per-model throughput
    n = n_queries * len(cfg.timesteps())
    xt = torch.randn((n, *queries.shape[1:]))
    t = torch.randint(0, 1000, (n,))

    def raw() -> None:  # inputs start on the CPU, as the scorer's do
        with torch.no_grad(), autocast(device, precision):
            for s in range(0, n, cfg.batch_size):
                unet(xt[s:s + cfg.batch_size].to(device), t[s:s + cfg.batch_size].to(device)).sample.float().cpu()

    def elbo() -> None:
        with autocast(device, precision):
            scorer.terms(unet)

    raw_s = best_of(raw, device=device)
    elbo_s = best_of(elbo, device=device)
    return {"image_timesteps": n, "raw_forward_per_s": n / raw_s, "elbo_per_s": n / elbo_s,
            "ratio": raw_s / elbo_s, "target_ratio": 0.8}


def bench_train(preset, steps: int = 60, device: str = "cpu", precision: str = "fp32",
                images: torch.Tensor | None = None) -> dict:
    """guda_bench.train vs a bare diffusers loop (same model and batch); digits images unless given."""
    if images is None:
        images = DATASETS.create("digits").load(preset).images
    recipe = preset.recipe.__class__(**{**to_jsonable(preset.recipe), "steps": steps})
    keep = np.arange(len(images))

    def ours() -> None:
        with autocast(device, precision):
            train_model(images, keep, preset.model, recipe, seed=0, device=device)

    def bare() -> None:
        torch.manual_seed(0)
        unet = build_unet(preset.model).train().to(device)
        sched = build_scheduler(recipe)
        opt = torch.optim.AdamW(unet.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        data = images.to(device)
        for _ in range(steps):
            idx = torch.randint(0, len(data), (recipe.batch_size,), device=device)
            x0 = data[idx]
            noise = torch.randn_like(x0)
            t = torch.randint(0, recipe.num_train_timesteps, (recipe.batch_size,), device=device)
            with autocast(device, precision):
                loss = F.mse_loss(unet(sched.add_noise(x0, noise, t), t).sample.float(), noise)
            opt.zero_grad()
            loss.backward()
            opt.step()

    bare_s, ours_s = best_of(bare, 2, device), best_of(ours, 2, device)
    n = steps * recipe.batch_size
    return {"images": n, "bare_diffusers_per_s": n / bare_s, "guda_bench_per_s": n / ours_s,
            "ratio": bare_s / ours_s, "target_ratio": 0.9}


def bench_trak(preset, n: int = 1797) -> dict:
    """TRAK featurisation (per-sample gradients over 10 timesteps + traker projection), ms per training image,
    over n images (digits scale: 1,797), cold: the projection matrix is generated inside the timed call."""
    from guda_bench.gradients import _projector, gradient_features

    _projector.cache_clear()
    torch.manual_seed(0)
    unet = build_unet(preset.model)
    images = torch.rand((n, preset.model.in_channels, preset.model.sample_size, preset.model.sample_size)) * 2 - 1
    options = preset.method_options.get("trak", {})
    proj_dim = int(options.get("proj_dim", 2048))
    batch = int(options.get("batch_size", 128))  # images per vmapped per-sample-gradient call
    t0 = time.perf_counter()
    gradient_features(unet, build_scheduler(preset.recipe), images, [str(i) for i in range(n)], "loss",
                      proj_dim=proj_dim, batch_size=batch)
    seconds = time.perf_counter() - t0
    return {"images": n, "proj_dim": proj_dim, "ms_per_image": 1000 * seconds / n, "target_ms": 20.0}


def from_run(run: Path) -> dict:
    results = load_run(run)
    rows = {r["method"]: r for r in results["rows"]}
    r = results["run"]
    out = {"run": str(run), "dataset": r["dataset"], "preset": r["preset"], "grouping": r["grouping"],
           "n_queries": r.get("n_queries"), "n_test": r.get("n_test"), "ceiling_seeds": r.get("ceiling_seeds"),
           "methods_ok": sum(row["status"] == "ok" for row in results["rows"] if row["kind"] == "method"),
           "wall_s": r.get("wall_s"), "truth_cost_s": results["truth"]["cost_s"],
           "method_cost_s": {row["method"]: row.get("cost_s") for row in results["rows"] if row.get("cost_s")}}
    if "guda" in rows and rows["guda"].get("speedup"):
        out["guda_speedup_vs_logo"] = rows["guda"]["speedup"]
        out["guda_top1"] = rows["guda"]["metrics"]["top1"]["mean"]
    return out


def projection(bench: Benchmark, train: dict, trak: dict) -> dict:
    """Seconds the truth's trainings and the train-set TRAK features take at the measured rates."""
    recipe = bench.preset.recipe
    models = bench.n_groups + 1
    train_s = models * recipe.steps * recipe.batch_size / train["guda_bench_per_s"]
    return {"what": "projection from the measured rates (not a measured total)",
            "trainings": models, "images_per_training": recipe.steps * recipe.batch_size,
            "truth_training_s": train_s, "n_train": len(bench.images),
            "trak_train_features_s": trak["ms_per_image"] * len(bench.images) / 1000}


def run_benchmarks(preset_name: str, runs: list[Path], out: Path, dataset: str = "digits") -> dict:
    """Measure, write `out` atomically, return the figures."""
    progress.set_enabled(False)
    check_output_file(out, "--out")
    run_figures = [from_run(r) for r in runs]  # a bad run folder fails here, before minutes of timing
    adapter = DATASETS.create(dataset)
    preset = adapter.preset(preset_name)
    bench = adapter.load(preset)
    if bench.text is not None:
        raise BenchError(f"guda-bench bench times unconditional models; {dataset!r} is text-to-image")
    train = bench_train(preset, images=bench.images)
    trak = bench_trak(preset, n=min(len(bench.images), 1797 if dataset == "digits" else 256))
    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "dataset": dataset, "preset": preset_name,
              "environment": environment(), "elbo": bench_elbo(preset), "train": train, "trak": trak,
              "projection": projection(bench, train, trak), "runs": run_figures}
    atomic_write_text(out, json.dumps(result, indent=1))
    return result
