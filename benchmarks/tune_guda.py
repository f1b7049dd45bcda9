"""Choose GUDA's default unlearning settings by measurement on the TUNING split of queries.

Usage: python benchmarks/tune_guda.py --preset default --cache .guda-cache --out benchmarks/tune_guda.json
Reuses the cached ground truth (run `guda-bench run` first); writes every configuration's tune-split
Top-1 / NDCG@3 and its unlearning + scoring cost, so the choice in datasets/digits.py can be checked.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

from guda_bench import metrics, progress
from guda_bench.config import to_jsonable
from guda_bench.context import Context
from guda_bench.registry import DATASETS
from guda_bench.store import Store, atomic_write_text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--cache", type=Path, default=Path(".guda-cache"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/tune_guda.json"))
    ap.add_argument("--targets", default="retrack,retrack-clipped,reference,none,ascent")
    ap.add_argument("--steps", default="10,20,40")
    ap.add_argument("--lr", default="1e-3,3e-4")
    ap.add_argument("--lambda-forget", default="1.0")
    ap.add_argument("--pair-batch", default="32")
    args = ap.parse_args()
    progress.set_enabled(False)
    adapter = DATASETS.create(args.dataset)
    bench = adapter.load(adapter.preset(args.preset))
    ctx = Context(bench, Store(args.cache))
    with ctx.stage() as truth_stage:
        gold = ctx.logoa(0)
    tune = ctx.splits["tune"]
    rows = []
    grid = itertools.product(args.targets.split(","), [int(s) for s in args.steps.split(",")],
                             [float(x) for x in args.lr.split(",")],
                             [float(x) for x in args.lambda_forget.split(",")],
                             [int(x) for x in args.pair_batch.split(",")])
    for target, steps, lr, lam, pb in grid:
        cfg = replace(ctx.preset.unlearn, forget_target=target, steps=steps, lr=lr, lambda_forget=lam,
                      pair_batch=pb)
        t0 = time.perf_counter()
        with ctx.stage() as st:
            scores = ctx.elbo_difference([ctx.unlearned_terms(k, cfg) for k in range(bench.n_groups)])
        m = metrics.per_query_metrics(scores[tune], gold[tune])
        row = {"config": to_jsonable(cfg), "tune_top1": float(m["top1"].mean()),
               "tune_ndcg@3": float(m["ndcg@3"].mean()), "cost_s": st["cost_s"],
               "speedup": truth_stage["cost_s"] / st["cost_s"], "wall_s": time.perf_counter() - t0}
        rows.append(row)
        print(f"{target:16s} steps={steps:3d} lr={lr:.0e} lambda={lam:g} pb={pb}: tune top1 "
              f"{row['tune_top1']:.3f} ndcg@3 {row['tune_ndcg@3']:.3f} cost {row['cost_s']:.1f}s "
              f"speedup {row['speedup']:.1f}x", flush=True)
        atomic_write_text(args.out, json.dumps({"preset": args.preset, "n_tune": len(tune),
                                                "truth_cost_s": truth_stage["cost_s"], "rows": rows}, indent=1))
    best = max(rows, key=lambda r: (r["tune_top1"], r["tune_ndcg@3"]))
    print("best on the tuning split:", json.dumps(best["config"]), f"top1 {best['tune_top1']:.3f}")


if __name__ == "__main__":
    main()
