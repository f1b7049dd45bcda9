"""How firm a run's ground truth is, and how many LOGO studies a noise ceiling of 0.75 would need.

    python benchmarks/truth_studies.py runs/digits-specialists-2seed [--cache DIR] [--max-k 8] [--out F.json]

Reads a finished run folder whose noise ceiling used S >= 2 LOGO studies (`--ceiling-seeds S`): its
results.json lists every study's LOGOA cache entry, read (checksums verified) from the cache the run used,
or from a board's truth bundle imported into it (`guda-bench bundle import`). Prints, over the run's test
queries, the Top-1 agreement between the means of two disjoint sets of k studies for every k <= S/2
(measured, over every split) and for k up to --max-k (modelled: guda_bench.studies, calibrated on k=1), with
the model's error at the other measured k, and the smallest k whose modelled agreement reaches the target: a board with
`--truth-seeds k --ceiling-seeds 2k` costs 2k LOGO trainings per group. Also how often two studies' differing top
groups share a class, against chance (guda_bench.studies.disagreements).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from guda_bench.cli import cache_dir
from guda_bench.errors import BenchError
from guda_bench.leaderboard import load_run
from guda_bench.runner import benchmark_of
from guda_bench.store import Store
from guda_bench.studies import disagreements, firmness


def load_studies(run_dir: Path, cache: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    try:
        results = load_run(run_dir)
    except BenchError as exc:
        raise SystemExit(str(exc)) from None
    keys = results["truth"]["artefacts"]["logoa"]
    store = Store(cache)
    studies = []
    for i, key in enumerate(keys):
        folder = store.folder("logoa", key)
        if store.verify(folder) is None:
            raise SystemExit(f"{run_dir}: LOGO study {i} ({key[:12]}) is not in {cache}: pass the run's --cache, "
                             f"or import the board's truth bundle into it")
        studies.append(np.load(folder / "logoa.npy"))
    if len(studies) < 2:
        raise SystemExit(f"{run_dir}: one LOGO study; rerun with --ceiling-seeds 2 (or more) to measure agreement")
    return results, np.stack(studies), np.asarray(results["splits"]["test"])


def group_classes(run: dict) -> list[set]:
    """Each candidate group's classes, from the run's rebuilt training data."""
    bench = benchmark_of(run)
    return [set(bench.labels[bench.group_of == k].tolist()) for k in range(bench.n_groups)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--cache", type=Path, default=None, help="default: $GUDA_BENCH_CACHE or .guda-cache")
    parser.add_argument("--max-k", type=int, default=8)
    parser.add_argument("--target", type=float, default=0.75)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results, studies, test = load_studies(args.run_dir, cache_dir(args.cache))
    run = results["run"]
    out = {"run": args.run_dir.name, "dataset": run["dataset"], "grouping": run.get("grouping"),
           "query_mode": run.get("query_mode"), "truth_hash": run["truth_hash"],
           **firmness(studies, test, args.max_k, args.target),
           "top1_disagreements": disagreements(studies, test, group_classes(run))}
    for k, m in out["measured"].items():
        role = "calibrated to it" if k == 1 else "its check"
        print(f"k={k}: measured {m['mean']:.3f} [{m['min']:.3f}, {m['max']:.3f}] over {m['splits']} splits, "
              f"modelled {out['modelled'][k]:.3f} ({role})")
    print(f"noise scale c = {out['noise_scale']:.3f}")
    print("modelled:", ", ".join(f"k={k} {v:.3f}" for k, v in out["modelled"].items()))
    d = out["top1_disagreements"]
    if d["count"]:
        print(f"top-group disagreements, one study against one: {d['count']}; between groups sharing a class "
              f"{d['sharing_a_class']:.3f} (by chance {d['by_chance']:.3f})")
    print(f"studies per side for {args.target}: {out['studies_per_side_for_target'] or f'more than {args.max_k}'}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
