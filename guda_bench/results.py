"""Run-folder files: results.json (schema'd, with provenance), summary.csv, per-group CSV, score matrices.

Every file is written atomically and rewritten after each method, so an interrupted run keeps every
row it finished.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from guda_bench.config import to_jsonable
from guda_bench.store import atomic_write_bytes, atomic_write_text

SCHEMA_VERSION = 1
HEADLINE = ("top1", "ndcg@3", "mrr", "top3", "rbo", "spearman", "lds")  # lds: with --truth lds only
TIMING = ("prepare_s", "score_s", "cost_s", "speedup")
TUNED_SUFFIX = "@tuned"  # a method scored at its tuned setting is the row NAME@tuned, beside its shipped row NAME


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """One CSV row: metric means and CIs as columns, timings, status."""
    out: dict[str, Any] = {"method": row["method"], "kind": row["kind"], "status": row["status"]}
    for m in HEADLINE:
        stats = row.get("metrics", {}).get(m)
        out[m] = stats["mean"] if stats else None
        out[f"{m}_ci_low"] = stats["ci_low"] if stats else None
        out[f"{m}_ci_high"] = stats["ci_high"] if stats else None
    for t in TIMING:
        out[t] = row.get(t)
    out["reason"] = row.get("reason", "")
    return out


def write_run(out: Path, results: dict[str, Any]) -> None:
    atomic_write_text(out / "results.json", json.dumps(to_jsonable(results), indent=1, default=_clean))
    frame = pd.DataFrame([flat_row(r) for r in results["rows"]])
    atomic_write_text(out / "summary.csv", frame.to_csv(index=False, float_format="%.17g"))
    groups = [dict(method=r["method"], **g) for r in results["rows"] for g in r.get("per_group", [])]
    if groups:
        atomic_write_text(out / "per_group.csv", pd.DataFrame(groups).to_csv(index=False, float_format="%.17g"))


def save_scores(out: Path, name: str, scores: np.ndarray) -> None:
    """Full-precision [n_queries, n_groups] matrix (all queries; the split is in results.json)."""
    atomic_write_bytes(out / "scores" / f"{name}.npy", lambda p: np.save(open(p, "wb"), scores))


def truth_label(run: dict[str, Any]) -> str:
    """What the truth is, in the noise ceiling's words: one LOGO study's seed, or the studies it averages."""
    n = int(run.get("truth_seeds") or 1)
    return f"LOGO seed {run['seed']}" if n == 1 else f"mean of LOGO studies 1..{n}"


def short_reason(reason: Any, width: int) -> str:
    """A row's reason cut to `width` characters at a word boundary, "..." marking the cut (tables show it whole
    in results.json and the board CSV)."""
    text = "" if _clean(reason) is None else str(reason)  # a board CSV's missing reason reads back as NaN
    if len(text) <= width:
        return text
    cut = text[:width - 3].rstrip()
    space = cut.rfind(" ")
    return (cut[:space] if space > width // 2 else cut).rstrip(" ,;:") + "..."


def print_table(results: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=max(Console().width, 150))
    run = results["run"]
    table = Table(title=f"guda-bench: {run['dataset']} ({run['grouping']}, preset {run['preset']}), "
                        f"test split n={run['n_test']}, truth = {truth_label(run)}")
    table.add_column("method", style="bold")
    table.add_column("status")
    for m in ("Top-1 [95% CI]", "NDCG@3 [95% CI]", "MRR", "Spearman"):
        table.add_column(m, justify="right", no_wrap=True)
    table.add_column("cost s", justify="right")
    table.add_column("speedup", justify="right")
    rows = sorted(results["rows"], key=lambda r: (r["kind"] != "ceiling", r["status"] != "ok",
                                                  -(r.get("metrics", {}).get("top1", {}).get("mean") or 0)))
    for r in rows:
        cells = []
        for m in ("top1", "ndcg@3"):
            s = r.get("metrics", {}).get(m)
            cells.append(f"{s['mean']:.3f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]" if s else "-")
        for m in ("mrr", "spearman"):
            s = r.get("metrics", {}).get(m)
            cells.append(f"{s['mean']:.3f}" if s else "-")
        status = r["status"] if r["status"] == "ok" else escape(f"{r['status']}: {short_reason(r.get('reason'), 60)}")
        cost = f"{r['cost_s']:.1f}" if r.get("cost_s") is not None else "-"
        speed = f"{r['speedup']:,.1f}x" if r.get("speedup") else "-"
        table.add_row(r["method"], status, *cells, cost, speed, end_section=r["kind"] == "ceiling")
    console.print(table)
    truth = results.get("truth", {})
    for kind in ("class", "style"):
        if truth.get(f"{kind}_sanity") is not None:
            console.print(f"{kind}-sanity (top LOGOA group = a {kind} classifier's): {truth[f'{kind}_sanity']:.3f}; "
                          f"LOGO cost {truth['cost_s']:.1f} s")
    if results.get("run", {}).get("ndcg_gain") == "linear":
        console.print("NDCG@3 with linear gain (relevance K..1, the UnlearnCanvas reference's)")
