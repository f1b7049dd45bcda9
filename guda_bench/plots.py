"""Leaderboard figures (matplotlib, PNG next to the CSV): quality vs compute, and a query grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from guda_bench import progress


def _save(fig, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


def pareto_front(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Indices (by increasing cost) of the methods no cheaper method matches or beats in quality."""
    order = np.lexsort((-quality, cost))
    best, keep = -np.inf, []
    for i in order:
        if quality[i] > best:
            keep.append(i)
            best = quality[i]
    return np.asarray(keep, dtype=int)


def pareto_plot(board: pd.DataFrame, path: Path) -> Path:
    """Top-1 and NDCG@3 (with 95% CIs) against compute seconds (log scale); the ceiling as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = board[(board["status"] == "ok") & (board["kind"] == "method") & (board["cost_s"] > 0)]
    ceiling = board[board["kind"] == "ceiling"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, m in zip(axes, ("top1", "ndcg@3"), strict=True):
        yerr = np.vstack([ok[m] - ok[f"{m}_ci_low"], ok[f"{m}_ci_high"] - ok[m]])
        ax.errorbar(ok["cost_s"], ok[m], yerr=yerr, fmt="o", capsize=3)
        frontier = pareto_front(ok["cost_s"].to_numpy(), ok[m].to_numpy())
        ax.step(ok["cost_s"].to_numpy()[frontier], ok[m].to_numpy()[frontier], where="post", color="C3", lw=1,
                label="Pareto front")
        for _, r in ok.iterrows():
            ax.annotate(r["method"], (r["cost_s"], r[m]), fontsize=7, xytext=(4, 3), textcoords="offset points")
        if len(ceiling):
            c = ceiling.iloc[0]
            ax.axhspan(c[f"{m}_ci_low"], c[f"{m}_ci_high"], color="grey", alpha=0.2, label="noise ceiling (95% CI)")
            ax.axhline(c[m], color="grey", lw=1)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_xscale("log")
        ax.set_xlabel("compute seconds (prepare + score, cached work at its recorded cost)")
        ax.set_ylabel({"top1": "Top-1", "ndcg@3": "NDCG@3"}[m] + " vs LOGO (test split)")
        ax.set_ylim(0, 1.02)
    first = board.iloc[0]
    fig.suptitle(f"{first['dataset']} ({first['grouping']}, preset {first['preset']}): quality vs compute")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def _image(x: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """A [C, H, W] image in [-1, 1] as imshow takes it: grey for one channel, colour for three."""
    x = np.asarray(x, dtype=np.float32)
    if x.shape[0] == 3:
        return ((x.transpose(1, 2, 0) + 1) / 2).clip(0, 1), {}
    return x[0], {"cmap": "gray", "vmin": -1, "vmax": 1}


def query_grid(run_dir: Path, results: dict[str, Any], path: Path, leaders: list[str],
               n_queries: int = 6) -> Path | None:
    """Rows: test queries. Columns: the query, then for LOGO and each of the board's best methods (`leaders`)
    the top-3 groups, each shown by the group's training image nearest to the query (titled with the group's
    name). A run that did not score every leader (e.g. one method added to a board) keeps the board's existing
    grid rather than redrawing it with only the leaders it holds."""
    names = [n for n in leaders if (run_dir / "scores" / f"{n}.npy").exists()]
    if path.exists() and len(names) < len(leaders):
        progress.log(f"query grid kept: this run lacks the board's leaders ({', '.join(leaders)})")
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from guda_bench.runner import benchmark_of

    queries_path = run_dir / "queries.npy"
    if not queries_path.exists():
        progress.log(f"query grid skipped: {queries_path} is missing")
        return None
    try:
        bench = benchmark_of(results["run"])
    except Exception as exc:  # the adapter may not be installed where the board is published
        progress.log(f"query grid skipped: cannot rebuild the training images ({exc})")
        return None
    queries = np.load(queries_path)
    gold = np.load(run_dir / "scores" / "_truth_logoa.npy")
    panels = [("LOGO", gold)] + [(n, np.load(run_dir / "scores" / f"{n}.npy")) for n in names]
    test = np.asarray(results["splits"]["test"])[:n_queries]
    train = bench.images.flatten(1).numpy()
    cols = 1 + 3 * len(panels)
    fig, axes = plt.subplots(len(test), cols, figsize=(0.9 * cols, 1.05 * len(test) + 0.6), squeeze=False)
    for i, q in enumerate(test):
        picture, style = _image(queries[q])
        axes[i, 0].imshow(picture, **style)
        axes[i, 0].set_title(f"query {q}", fontsize=6)
        for p, (name, scores) in enumerate(panels):
            for j, g in enumerate(np.argsort(-scores[q], kind="stable")[:3]):
                members = bench.members(int(g))
                nearest = members[np.argmin(((train[members] - queries[q].reshape(1, -1)) ** 2).sum(1))]
                ax = axes[i, 1 + 3 * p + j]
                picture, style = _image(bench.images[nearest].numpy())
                ax.imshow(picture, **style)
                ax.set_title(f"{name}#{j + 1}: {bench.group_names[g]}" if i == 0 else bench.group_names[g], fontsize=5)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("top-3 groups per query (each shown by its training image nearest to the query)", fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path
