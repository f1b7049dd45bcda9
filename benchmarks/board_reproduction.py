"""Does a published board reproduce? A run of the board's own command, set beside the board row by row.

A board's confidence intervals resample its queries; they do not cover the models the queries and the truth
came from. Rerun on another machine, the same command trains models whose bytes differ (float reductions run
in another order) from the same seeds, so the queries and the LOGO truth are new draws. This script says how
far every row moved and whether the order of the methods held:

    python benchmarks/board_reproduction.py runs/style-canvas-again leaderboards/style-canvas.csv \
        --out benchmarks/board_reproduction-style-canvas.json

Rows compared: the run's ok rows that the board also has ok (`@tuned` rows only if the run has them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from scipy.stats import kendalltau

from guda_bench.leaderboard import clean_command
from guda_bench.store import atomic_write_text

METRICS = ("top1", "ndcg@3")


def compare(run_dir: Path, board_csv: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    run = pd.read_csv(run_dir / "summary.csv").set_index("method")
    board = pd.read_csv(board_csv, dtype={"truth_hash": str}).set_index("method")
    both = [m for m in run.index if run.loc[m, "status"] == "ok" and m in board.index
            and board.loc[m, "status"] == "ok" and pd.notna(board.loc[m, "top1"])]
    rows = {}
    for m in both:
        row = {}
        for metric in METRICS:
            now, then = float(run.loc[m, metric]), float(board.loc[m, metric])
            low, high = float(board.loc[m, f"{metric}_ci_low"]), float(board.loc[m, f"{metric}_ci_high"])
            row[metric] = {"run": round(now, 4), "board": round(then, 4), "moved": round(now - then, 4),
                           "inside_board_ci": bool(low <= now <= high)}
        rows[m] = row
    ranked = [m for m in both if run.loc[m, "kind"] != "ceiling" and m != "logo"]
    tau = kendalltau([run.loc[m, "top1"] for m in ranked], [board.loc[m, "top1"] for m in ranked]).statistic
    moved = [rows[m]["top1"]["moved"] for m in both]
    return {
        "run": str(run_dir.name), "board": board_csv.name,
        "command": clean_command(results["run"].get("command", "")),  # as a board writes it: no machine paths
        "run_git_commit": results["provenance"].get("git_commit", ""), "run_machine": results["provenance"].get(
            "machine", ""), "same_truth": results["run"].get("truth_hash") in set(board["truth_hash"].dropna()),
        "rows": rows, "top1_moved": {"min": min(moved), "max": max(moved), "mean": round(sum(moved) / len(moved), 4)},
        "top1_inside_board_ci": sum(rows[m]["top1"]["inside_board_ci"] for m in both), "n_rows": len(both),
        "kendall_tau_top1_order": round(float(tau), 3), "n_ranked": len(ranked),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("board", type=Path)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    result = compare(a.run, a.board)
    text = json.dumps(result, indent=1)
    if a.out:
        atomic_write_text(a.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
