"""Can a board tell its methods apart? Paired significance of every pair of rows, and one power line.

Two methods are compared on the SAME test queries: the per-query difference of a metric is resampled
with shared query indices (paired bootstrap), giving its 95% CI and a two-sided p-value; the family of
all pairs on a board is corrected with Holm's step-down (SPEC §6, Power). A board that separates few
pairs, or whose best look-alike baseline sits near its noise ceiling, cannot rank methods: the power
line says so in numbers.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from guda_bench import metrics
from guda_bench.results import TUNED_SUFFIX

PAIR_METRICS = ("top1", "ndcg@3")
LDS = "lds"  # the second truth's per-query metric: paired too, among the rows that have it (SPEC §10)
ALPHA = 0.05
TOP = 5  # "the five best methods": where a reader's question is
SIMILARITY = "similarity"  # Method.family of look-alike baselines (pixel-*, clip)
TRUTH = "truth"  # Method.family of the ground truth scored against itself (its Top-1 is 1 by construction)


def per_query_frame(rows: dict[str, np.ndarray], gold: np.ndarray, test: np.ndarray,
                    ndcg_gain: str = "exp", lds: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Long table (method, query, top1, ndcg@3 with the board's gain) over the test queries of every scored row,
    plus an `lds` column (each row's group LDS on each query, over all queries in `lds`) on a run scored
    against the LDS truth too."""
    frames = []
    for name, scores in rows.items():
        pq = metrics.per_query_metrics(scores[test], gold[test], ndcg_gain=ndcg_gain)
        extra = {LDS: lds[name][test]} if lds and name in lds else {}
        frames.append(pd.DataFrame({"method": name, "query": test, **{m: pq[m] for m in PAIR_METRICS}, **extra}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["method", "query",
                                                                                      *PAIR_METRICS])


def boot_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def two_sided_p(boots: np.ndarray) -> float:
    """Percentile-bootstrap test of H0: mean difference = 0 (identical inputs give p = 1)."""
    return float(min(1.0, 2 * min(np.mean(boots <= 0), np.mean(boots >= 0))))


def boot_test(boots: np.ndarray) -> dict[str, float]:
    """95% percentile CI and two-sided p of a resampled mean difference: the one paired test every comparison
    (board pairs, a tuned choice against its shipped setting) uses."""
    return {"ci_low": float(np.percentile(boots, 2.5)), "ci_high": float(np.percentile(boots, 97.5)),
            "p_value": two_sided_p(boots)}


def p_text(p: float) -> str:
    return "< 0.01" if p < 0.005 else f"{p:.2f}"


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control, monotone, capped at 1)."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def pairs(per_query: pd.DataFrame, order: list[str], n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Every pair (a better-placed than b in `order`) per metric: paired-bootstrap diff a - b, 95% CI, p, Holm p.

    Each method's resampled means are computed once with shared indices; the difference of two resampled
    means is the resampled mean of the per-query difference, so every pair is exactly paired.
    """
    names = [m for m in order if m in set(per_query["method"])]
    with_lds = LDS in per_query and bool(per_query[LDS].notna().any())
    wide = {m: per_query[per_query["method"] == m].set_index("query").sort_index() for m in names}
    queries = wide[names[0]].index.to_numpy() if names else np.array([])
    for m in names:
        if not np.array_equal(wide[m].index.to_numpy(), queries):
            raise ValueError(f"{m} was not scored on the same test queries as {names[0]}")
    idx = boot_indices(len(queries), n_boot, seed)
    out = []
    for metric in (*PAIR_METRICS, LDS) if with_lds else PAIR_METRICS:
        values = {m: wide[m][metric].to_numpy(dtype=float) for m in names}
        values = {m: v for m, v in values.items() if np.isfinite(v).all()}  # LDS: the rows scored against it
        boots = {m: v[idx].mean(1) for m, v in values.items()}
        block = []
        for a, b in combinations(list(values), 2):
            d = boots[a] - boots[b]
            block.append({"metric": metric, "a": a, "b": b, "mean_a": values[a].mean(), "mean_b": values[b].mean(),
                          "diff": float((values[a] - values[b]).mean()), **boot_test(d), "n_test": len(queries)})
        if block:
            adjusted = holm(np.array([r["p_value"] for r in block]))
            for r, p in zip(block, adjusted, strict=True):
                r["p_holm"] = float(p)
                r["separated"] = bool(p < ALPHA)
        out.extend(block)
    return pd.DataFrame(out, columns=["metric", "a", "b", "mean_a", "mean_b", "diff", "ci_low", "ci_high",
                                      "p_value", "p_holm", "separated", "n_test"])


def _separated_share(pair_rows: pd.DataFrame, members: list[str], metric: str = "top1") -> tuple[int, int]:
    sel = pair_rows[(pair_rows["metric"] == metric) & pair_rows["a"].isin(members) & pair_rows["b"].isin(members)]
    return int(sel["separated"].sum()), len(sel)


def ranked_methods(board: pd.DataFrame) -> pd.DataFrame:
    """The board's ok method rows as shipped, best Top-1 first: not the ceiling, not the truth scored
    against itself, not @tuned rows."""
    ok = board[board["status"] == "ok"]
    family = ok["family"] if "family" in ok else pd.Series("", index=ok.index)
    return ok[(ok["kind"] == "method") & (family != TRUTH) & ~tuned_rows(ok)].sort_values("top1", ascending=False)


def power_summary(board: pd.DataFrame, pair_rows: pd.DataFrame | None) -> dict[str, Any]:
    """n_test, median Top-1 CI half-width, share of method pairs separated (all; the five best), and the gap
    between the noise ceiling and the best similarity baseline. Methods = ok rows that are not the ceiling
    nor the truth scored against itself."""
    ok = board[board["status"] == "ok"]
    methods = ranked_methods(board)
    ceiling = ok[ok["kind"] == "ceiling"]
    similarity = methods[methods["family"] == SIMILARITY] if "family" in methods else methods.iloc[:0]
    half = ((methods["top1_ci_high"] - methods["top1_ci_low"]) / 2).to_numpy(dtype=float)
    out: dict[str, Any] = {
        "n_test": int(board["n_test"].dropna().iloc[0]) if board["n_test"].notna().any() else None,
        "median_top1_ci_halfwidth": float(np.median(half)) if len(half) else None,
        "max_top1_ci_halfwidth": float(np.max(half)) if len(half) else None,
        "ceiling_top1": float(ceiling["top1"].iloc[0]) if len(ceiling) else None,
        "best_similarity": similarity["method"].iloc[0] if len(similarity) else None,
        "best_similarity_top1": float(similarity["top1"].iloc[0]) if len(similarity) else None,
        "top_methods": methods["method"].head(TOP).tolist(),
    }
    out["ceiling_minus_similarity"] = (out["ceiling_top1"] - out["best_similarity_top1"]
                                       if out["ceiling_top1"] is not None and out["best_similarity_top1"] is not None
                                       else None)
    if pair_rows is not None and len(pair_rows):
        out["pairs_separated"], out["pairs"] = _separated_share(pair_rows, methods["method"].tolist())
        out["top_pairs_separated"], out["top_pairs"] = _separated_share(pair_rows, out["top_methods"])
        lds_pairs = pair_rows[pair_rows["metric"] == LDS]
        if len(lds_pairs) and LDS in methods:
            paired = set(lds_pairs["a"]) | set(lds_pairs["b"])
            by_lds = methods[methods["method"].isin(paired)].sort_values(LDS, ascending=False, kind="stable")
            out["lds_top_methods"] = by_lds["method"].head(TOP).tolist()
            out["lds_pairs_separated"], out["lds_pairs"] = _separated_share(pair_rows, by_lds["method"].tolist(), LDS)
            out["lds_top_pairs_separated"], out["lds_top_pairs"] = _separated_share(pair_rows, out["lds_top_methods"],
                                                                                    LDS)
    return out


def lds_power_line(summary: dict[str, Any]) -> str | None:
    """The power line of the second truth: method pairs told apart by group LDS (all; the five best by LDS)."""
    if not summary.get("lds_pairs"):
        return None
    return (f"group LDS power: method pairs separated {summary['lds_pairs_separated']}/{summary['lds_pairs']} "
            f"({summary['lds_pairs_separated'] / summary['lds_pairs']:.0%}); among the top {TOP} by LDS "
            f"({', '.join(summary['lds_top_methods'])}): {summary['lds_top_pairs_separated']}/"
            f"{summary['lds_top_pairs']} (Holm-adjusted p < 0.05, paired bootstrap over the same test queries)")


def beyond_similarity(board: pd.DataFrame, per_query: pd.DataFrame | None, n_boot: int = 2000,
                      seed: int = 0) -> dict[str, Any] | None:
    """Top-1 of every ok row on the test queries that the board's strongest look-alike row (family similarity,
    @tuned rows included) gets wrong: what a method knows beyond looking alike. Those queries are also where
    the truth is least firm, so the noise ceiling's Top-1 on them is the reference to read a method against.
    CIs: percentile bootstrap over those queries, one resample shared by every row (paired)."""
    if per_query is None or not len(per_query):
        return None
    ok = board[board["status"] == "ok"]
    family = ok["family"] if "family" in ok else pd.Series("", index=ok.index)
    # a tie in Top-1 (a tuned row that chose a setting as good as the shipped one) goes to the shipped row,
    # then by name: the reference, and so the missed queries, must not depend on the board's row order
    similarity = ok[family == SIMILARITY]
    similarity = similarity.assign(_tuned=tuned_rows(similarity)).sort_values(
        ["top1", "_tuned", "method"], ascending=[False, True, True], kind="stable")
    wide = per_query.pivot_table(index="query", columns="method", values="top1")
    if not len(similarity) or similarity["method"].iloc[0] not in wide:
        return None
    reference = similarity["method"].iloc[0]
    missed = wide[wide[reference] == 0]
    out: dict[str, Any] = {"reference": reference, "n_missed": int(len(missed)), "n_test": int(len(wide)), "rows": []}
    if not len(missed):
        return out
    names = [m for m in ok.loc[family != TRUTH, "method"] if m != reference and m in wide]
    idx = boot_indices(len(missed), n_boot, seed)
    rows = []
    for name in names:
        values = missed[name].to_numpy(dtype=float)
        if np.isnan(values).any():
            continue
        boots = values[idx].mean(1)
        rows.append({"method": name, "top1": float(values.mean()), "ci_low": float(np.quantile(boots, 0.025)),
                     "ci_high": float(np.quantile(boots, 0.975))})
    out["rows"] = sorted(rows, key=lambda r: -r["top1"])
    return out


def beyond_line(beyond: dict[str, Any] | None, ceiling: str = "noise-ceiling", chance: str = "random") -> str | None:
    """One line: on the queries the strongest look-alike row misses, the ceiling, the five best rows as shipped
    (each method once, as the power line counts them; the JSON keeps the @tuned rows) and chance."""
    if not beyond or not beyond["rows"]:
        return None
    ranked = [r for r in beyond["rows"] if r["method"] != ceiling and not r["method"].endswith(TUNED_SUFFIX)]
    shown = [r for r in beyond["rows"] if r["method"] == ceiling] + ranked[:TOP]
    shown += [r for r in ranked[TOP:] if r["method"] == chance]
    text = "; ".join(f"{r['method']} {r['top1']:.3f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]" for r in shown)
    return (f"beyond similarity (Top-1 on the {beyond['n_missed']} of {beyond['n_test']} test queries "
            f"{beyond['reference']} misses): {text}")


def tuned_rows(board: pd.DataFrame) -> pd.Series:
    """True for NAME@tuned rows: the power line and rank agreement leave them out and count each method once,
    as shipped (the tuning line compares each tuned row with its shipped twin)."""
    if "tuned" not in board:
        return pd.Series(False, index=board.index)
    return board["tuned"].astype(str).str.lower().eq("true")


def tuning_line(board: pd.DataFrame, pair_rows: pd.DataFrame | None, untuned: list[str] | None = None) -> str | None:
    """One line: how far tuning (on the tuning split) moved each method's test Top-1, paired and Holm-adjusted,
    beside how far the choice beat the shipped setting on the tuning split itself (where the record says), and
    which tunable methods on the board have no tuned row (`untuned`): a fairness gap a reader must see."""
    ok, is_tuned = board["status"] == "ok", tuned_rows(board)
    tuned = board[is_tuned & ok]
    shipped = board[~is_tuned & ok].set_index("method")
    top1 = pair_rows[pair_rows["metric"] == "top1"] if pair_rows is not None else None
    parts, budgets = [], sorted({int(b) for b in tuned.get("tuning_budget", pd.Series(dtype=float)).dropna()})
    for row in tuned.itertuples():
        name = str(row.method).removesuffix(TUNED_SUFFIX)
        if name not in shipped.index:
            continue
        before, after = float(shipped.loc[name, "top1"]), float(row.top1)
        mark = ""
        if top1 is not None:
            pair = top1[top1["a"].isin([name, row.method]) & top1["b"].isin([name, row.method])]
            mark = "" if not len(pair) else (" *" if float(pair["p_holm"].iloc[0]) < 0.05 else " ns")
        edge = getattr(row, "tuning_at_edge", "")
        edge = f", {edge.replace(',', '/')} at grid edge" if isinstance(edge, str) and edge else ""
        gain, p = getattr(row, "tuning_split_gain", None), getattr(row, "tuning_split_p", None)
        p_best, n_settings = getattr(row, "tuning_split_p_best_of", None), getattr(row, "tuning_split_settings", None)
        best_of = (f", best-of-{int(n_settings)} p {p_text(p_best)}"
                   if _finite(p_best) and _finite(n_settings) else "")
        split = (f", tuning split {gain:+.3f} p {p_text(p)}{best_of}"
                 if _finite(gain) and _finite(p) else "")
        parts.append(f"{name} {before:.3f}->{after:.3f} ({after - before:+.3f}{mark}{split}{edge})")
    missing = f"not tuned: {', '.join(untuned)}" if untuned else ""
    if not parts:
        return f"tuning: no tuned rows; {missing}" if missing else None
    budget = "/".join(map(str, budgets)) or "?"
    return (f"tuning (budget {budget} per method, tuning split only; test Top-1 shipped->tuned; "
            f"* Holm p < 0.05, ns not separated): " + "; ".join(parts) + (f"; {missing}" if missing else ""))


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and bool(np.isfinite(v))


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def power_line(summary: dict[str, Any]) -> str:
    """One line a reader can act on: how many test queries, how wide, how many pairs told apart."""
    parts = [f"n_test {summary.get('n_test')}",
             f"median Top-1 CI +-{_num(summary.get('median_top1_ci_halfwidth'), '.3f')}"]
    if summary.get("pairs"):
        parts.append(f"method pairs separated {summary['pairs_separated']}/{summary['pairs']} "
                     f"({summary['pairs_separated'] / summary['pairs']:.0%})")
        parts.append(f"among the top {TOP}: {summary['top_pairs_separated']}/{summary['top_pairs']}")
    else:
        parts.append("pairs: not published (republish the board)")
    if summary.get("ceiling_minus_similarity") is not None:
        parts.append(f"ceiling {summary['ceiling_top1']:.3f} - best similarity ({summary['best_similarity']}) "
                     f"{summary['best_similarity_top1']:.3f} = {summary['ceiling_minus_similarity']:+.3f}")
    return "power: " + "; ".join(parts) + " (Holm-adjusted p < 0.05, paired bootstrap, Top-1)"


def pairs_plot(pair_rows: pd.DataFrame, order: list[str], path: Path, metric: str = "top1") -> None:
    """Matrix of who beats whom: cell (row, col) = row - col, coloured only where Holm p < 0.05."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = pair_rows[pair_rows["metric"] == metric]
    names = [m for m in order if m in set(sel["a"]) | set(sel["b"])]
    n = len(names)
    if n < 3:  # two rows are one pair, which pairs.csv holds: no matrix to read (a board whose older rows lack
        return  # per-query LDS, with one re-run row and the ceiling)
    pos = {m: i for i, m in enumerate(names)}
    diff = np.full((n, n), np.nan)
    sig = np.zeros((n, n), dtype=bool)
    for r in sel.itertuples():
        i, j = pos[r.a], pos[r.b]
        diff[i, j], diff[j, i] = r.diff, -r.diff
        sig[i, j] = sig[j, i] = bool(r.separated)
    shown = np.where(sig, diff, 0.0)
    lim = max(float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 1.0, 1e-9)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    im = ax.imshow(shown, cmap="RdBu", vmin=-lim, vmax=lim)
    for i in range(n):
        for j in range(n):
            if i == j or not np.isfinite(diff[i, j]):
                continue
            ax.text(j, i, f"{diff[i, j]:+.2f}" + ("" if sig[i, j] else "\n(ns)"), ha="center", va="center",
                    fontsize=6, color="black" if not sig[i, j] or abs(diff[i, j]) < 0.6 * lim else "white")
    ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    label = {"top1": "Top-1", "ndcg@3": "NDCG@3", LDS: "group LDS"}.get(metric, metric)
    ax.set_title(f"{label}: row minus column (blue: row better; white/ns: not separated at Holm p < 0.05)",
                 fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=130)
    plt.close(fig)
    tmp.replace(path)
