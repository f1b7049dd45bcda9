"""How a small machine's cores are best spent on LOGO trainings: threads inside one job, or jobs side by side.

A board's cold cost is mostly its per-group trainings (style-canvas: 17 models of 1,500 steps). This script
times the preset's own training step (`train.train_model`, same model, recipe and data) three ways on this
machine: one job with every core, one job with one thread, and one one-thread job per core at once (the
shape `--executor ray --task-threads 1` runs). `throughput_vs_one_job` is steps done per second of wall
against the first way, so above 1 the side-by-side jobs build a board's models faster.

    python benchmarks/train_threads.py --dataset style-canvas --steps 40 --out benchmarks/train_threads.json

Times differ 2x or more between machines: the JSON names the one it ran on; read the ratios.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from guda_bench import progress
from guda_bench.context import Context
from guda_bench.provenance import cpu_model
from guda_bench.runner import benchmark_of
from guda_bench.store import Store, atomic_write_text
from guda_bench.train import train_model


def ms_per_step(dataset: str, preset: str, cache: str, steps: int, threads: int) -> float:
    """Wall milliseconds per training step of the preset's recipe (after a 3-step warm-up), at `threads`."""
    torch.set_num_threads(threads)
    progress.set_enabled(False)
    bench = benchmark_of({"dataset": dataset, "preset": preset})
    ctx = Context(bench, Store(Path(cache)), seed=0)
    keep = np.arange(len(bench.images))
    kwargs = dict(text=ctx.preset.text, cond=ctx.image_cond, null_cond=ctx.null_cond, scheduler=ctx.scheduler)
    recipe = ctx.preset.recipe
    train_model(ctx.train_data, keep, ctx.preset.model, replace(recipe, steps=3), 0, **kwargs)
    start = time.perf_counter()
    train_model(ctx.train_data, keep, ctx.preset.model, replace(recipe, steps=steps), 0, **kwargs)
    return 1000 * (time.perf_counter() - start) / steps


def _job(args: tuple) -> float:
    return ms_per_step(*args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="style-canvas")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/train_threads.json"))
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as cache:  # text states and conditions only: nothing is trained into it
        base = (a.dataset, a.preset, cache, a.steps)
        all_cores = ms_per_step(*base, cores)
        one_thread = ms_per_step(*base, 1)
        with mp.get_context("spawn").Pool(cores) as pool:
            side_by_side = pool.map(_job, [(*base, 1)] * cores)
    per_step_wall = max(side_by_side) / cores  # `cores` steps finish every max(...) ms
    result = {
        "command": f"python benchmarks/train_threads.py --dataset {a.dataset} --preset {a.preset} --steps {a.steps}",
        "machine": cpu_model(), "cores": cores, "steps": a.steps,
        "ms_per_step": {"one_job_all_cores": round(all_cores, 1), "one_job_one_thread": round(one_thread, 1),
                        "one_thread_jobs_side_by_side": [round(x, 1) for x in side_by_side]},
        "throughput_vs_one_job": {"one_thread": round(all_cores / one_thread, 2),
                                  "side_by_side": round(all_cores / per_step_wall, 2)},
    }
    atomic_write_text(a.out, json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
