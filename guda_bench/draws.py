"""Does a board's verdict survive a new draw of its models? Several draws of one board, side by side.

A board's confidence intervals and pair tests resample its test queries; the full model, the queries it
generated and the LOGO truth stay fixed. Train the full model from another seed (`--seed`), or on another CPU
(other float orders, other bytes), and queries and truth are new draws: levels move, and a pair the board
separates may not be separated again. Here every draw is tested on its own, exactly as a board is (paired
bootstrap over its test queries, Holm over its pairs), and the verdicts are set side by side: a pair is
*replicated* when every draw separates it in the same direction, *reversed* when two draws separate it in
opposite directions. A reader who wants a ranking that does not depend on one draw reads the replicated pairs,
and each row says whether another draw's Top-1 lies inside the first draw's (the board's) 95% CI, and how far
its Top-1 differs between draws beyond what each draw's own test queries explain: Cochran's Q of the draws'
Top-1 (each weighted by its query variance; Holm over the rows) and the between-draw SD it implies
(DerSimonian-Laird tau), the spread a reader adds to a board's query CI to compare levels across models.

Draws are compared over the rows every draw has ok (the noise ceiling included; `@tuned` rows only where every
draw has them); a row the board shares with only some draws is listed with its levels, no pairs. A published
board is a draw (its per-query file); a run folder is another, and so are runs on one draw's models joined by `+`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2, kendalltau

from guda_bench import power
from guda_bench.errors import BenchError

REPLICATED, ONE_DRAW, REVERSED, NEVER = "replicated", "some draws", "reversed", "none"
META = ("seed", "truth_hash", "n_test", "git_commit", "machine", "command")
# what a stored draw keeps of its board frame (<board>-draws.json) and of its per-query metrics
# (<board>-draws-per-query.csv.gz): enough to compare it again once its run folders are gone
STORED_COLUMNS = ("method", "kind", "status", "family", "tuned", "top1", "ndcg@3", "top1_ci_low", "top1_ci_high")


@dataclass
class Draw:
    """One draw of a board: its rows (a board frame: method, kind, status, family, top1, ...), the per-query
    metrics of its ok rows on its own test queries, and where it came from."""

    label: str
    board: str
    rows: pd.DataFrame
    per_query: pd.DataFrame
    meta: dict[str, Any]
    path: Path | None = None  # the board's CSV, for a published board

    @cached_property
    def by_method(self) -> pd.DataFrame:
        """The rows indexed by method (looked up per row, metric and draw)."""
        return self.rows.set_index("method")

    def hits(self, method: str) -> np.ndarray:
        """A row's per-query Top-1 on this draw's test queries."""
        return self.per_query.loc[self.per_query["method"] == method, "top1"].to_numpy(dtype=float)

    @cached_property
    def ok_rows(self) -> set[str]:
        """Rows ok with per-query metrics: the ones a draw can compare (asked per row and draw)."""
        return set(self.rows.loc[self.rows["status"] == "ok", "method"]) & set(self.per_query["method"])


def from_run(run_dir: Path) -> Draw:
    """A run folder as a draw: its rows and the per-query metrics of every ok row with saved scores."""
    from guda_bench import leaderboard as lb

    results = lb.load_run(run_dir)
    rows = pd.DataFrame(lb.board_rows(results))
    gold, test = lb._truth_and_test(run_dir, results)
    per_query = power.per_query_frame(lb.scored_rows(run_dir, results), gold, test,
                                      results["run"].get("ndcg_gain", "exp"))
    first = rows.iloc[0]
    return Draw(Path(run_dir).name, lb.board_name(results), rows, per_query,
                {k: _plain(first.get(k)) for k in META})


def from_board(name_or_path: str, board_dir: Path) -> Draw:
    """A published board as a draw: its CSV and its per-query file (written by `leaderboard publish`)."""
    from guda_bench import leaderboard as lb

    path, rows = lb.read_board(name_or_path, board_dir)
    per_query_path = lb.sibling(path, "per-query.csv")
    if not per_query_path.exists():
        raise BenchError(f"{path.stem} has no per-query file ({per_query_path.name}): republish it")
    per_query = pd.read_csv(per_query_path)
    if rows["truth_hash"].nunique() != 1:
        raise BenchError(f"{path.stem} holds rows of {rows['truth_hash'].nunique()} truths: not one draw")
    return Draw(path.stem, path.stem, rows, per_query, {k: _one_or_all(rows, k) for k in META}, path)


def from_runs(run_dirs: list[Path]) -> Draw:
    """Several runs of one draw (a run and its `--tuned` rerun on the same models), merged as `leaderboard
    publish` merges a board's runs: published into a scratch folder, then read as a board. Labelled by the
    first run's folder."""
    import tempfile

    from guda_bench import leaderboard as lb

    truths = [lb.load_run(d)["run"]["truth_hash"] for d in run_dirs]
    for run_dir, truth in zip(run_dirs, truths, strict=True):
        if truth != truths[0]:
            raise BenchError(f"{'+'.join(d.name for d in run_dirs)}: the runs of one draw share one truth "
                             f"({run_dir.name}'s differs from {run_dirs[0].name}'s)")
    with tempfile.TemporaryDirectory(prefix="guda-draw-") as scratch:
        for run_dir in run_dirs:
            path = lb.publish(run_dir, Path(scratch), plots=False)
        draw = from_board(str(path), Path(scratch))
    draw.label, draw.path = Path(run_dirs[0]).name, None
    return draw


def stored_draws(board_path: Path) -> list[Draw]:
    """The draws an earlier `draws --write` stored beside a board, other than the board itself: their rows and
    per-query metrics, so a new draw can join them without their runs (which may be gone)."""
    from guda_bench.leaderboard import read_board, sibling

    path, per_query_path = sibling(board_path, "draws.json"), sibling(board_path, "draws-per-query.csv.gz")
    if not path.exists():
        raise BenchError(f"{board_path.stem} has no draws file ({path.name}): there are no stored draws to add")
    saved = json.loads(path.read_text())
    _, board = read_board(str(board_path), board_path.parent)
    if str(saved["draws"][0].get("truth_hash")) not in {str(t) for t in board["truth_hash"].dropna()}:
        raise BenchError(f"{path.name} is of an older truth of {board_path.stem}: its draws are not this board's")
    others = saved["draws"][1:]
    if not per_query_path.exists() or any("rows" not in d for d in others):
        raise BenchError(f"{path.name} stores no per-query metrics of its draws (written before draws were "
                         f"stored): rerun its draws' runs and name them")
    per_query = pd.read_csv(per_query_path)
    out = []
    for d in others:
        label = d["label"]
        pq = per_query[per_query["draw"] == label].drop(columns="draw").reset_index(drop=True)
        out.append(Draw(label, saved["board"], pd.DataFrame(d["rows"]), pq, {k: d.get(k) for k in META}))
    return out


def stored_labels(board_path: Path) -> list[str]:
    """Labels of the draws stored beside a board (none without a draws file, or one that stores nothing)."""
    from guda_bench.leaderboard import sibling

    path = sibling(board_path, "draws.json")
    if not path.exists():
        return []
    return [d["label"] for d in json.loads(path.read_text()).get("draws", [])[1:] if "rows" in d]


def load_draw(source: str, board_dir: Path) -> Draw:
    """A run folder (it has results.json), runs of one draw joined by `+` (RUN+RUN_TUNED), or a published
    board's name or CSV path."""
    parts = [Path(p) for p in source.split("+")]
    if len(parts) > 1:
        missing = [str(p) for p in parts if not (p / "results.json").exists()]
        if missing:
            raise BenchError(f"{source}: runs of one draw are joined by +, and {', '.join(missing)} is no run "
                             f"folder (no results.json)")
        return from_runs(parts)
    if (Path(source) / "results.json").exists():
        return from_run(Path(source))
    if Path(source).is_dir() or ("/" in source and Path(source).suffix != ".csv"):  # meant as a run folder
        raise BenchError(f"{source} is no run folder (no results.json there) and no published board's name")
    return from_board(source, board_dir)


def _one_or_all(rows: pd.DataFrame, column: str) -> Any:
    """A board column's value, or the sorted list of its values where its rows came from several runs."""
    values = sorted({str(_plain(v)) for v in rows[column] if _plain(v) is not None}) if column in rows else []
    if len(values) != 1:
        return values or None
    return _plain(rows[column].dropna().iloc[0])


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else v


def check_draws(draws: list[Draw]) -> None:
    """Two or more draws of one board, each a different draw (another truth), with distinct labels."""
    if len(draws) < 2:
        raise BenchError("draws compares two or more draws of one board (a board name and run folders)")
    labels = [d.label for d in draws]
    if len(set(labels)) < len(labels):
        raise BenchError(f"two draws share a label ({', '.join(labels)}): name run folders apart")
    boards = sorted({d.board for d in draws})
    if len(boards) > 1:
        raise BenchError(f"not draws of one board: {', '.join(f'{d.label} is {d.board}' for d in draws)}")
    for a, b in combinations(draws, 2):
        if a.meta["truth_hash"] == b.meta["truth_hash"]:
            raise BenchError(f"{a.label} and {b.label} are the same draw (truth {str(a.meta['truth_hash'])[:12]}): "
                             f"a second draw trains its full model anew (another --seed, or another machine)")


def shared_rows(draws: list[Draw]) -> list[str]:
    """Rows ok in every draw with per-query metrics, in the first draw's order."""
    common = set.intersection(*(d.ok_rows for d in draws))
    return [m for m in draws[0].rows["method"] if m in common]


def partial_rows(draws: list[Draw]) -> list[str]:
    """Rows ok in the first draw and in some but not every other (e.g. `@tuned` rows tuned on one more draw
    only): listed with their levels, left out of the pairs and the counts."""
    first, others = draws[0].ok_rows, [d.ok_rows for d in draws[1:]]
    some = {m for m in first if any(m in o for o in others) and not all(m in o for o in others)}
    return [m for m in draws[0].rows["method"] if m in some]


def draw_pairs(draws: list[Draw], names: list[str], n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Every pair of `names`, tested within each draw (power.pairs: paired bootstrap, Holm over the draw's
    pairs), and each pair's verdict across draws (REPLICATED, REVERSED, ONE_DRAW, NEVER) per metric."""
    per_draw = []
    for d in draws:
        pq = d.per_query.loc[d.per_query["method"].isin(names), ["method", "query", *power.PAIR_METRICS]]  # no LDS:
        # a run made without --truth lds has none, and a verdict needs the metric in every draw
        per_draw.append(power.pairs(pq, names, n_boot=n_boot, seed=seed).set_index(["metric", "a", "b"]))
    out = []
    for key in per_draw[0].index:
        row: dict[str, Any] = dict(zip(("metric", "a", "b"), key, strict=True))
        signs = []
        for d, p in zip(draws, per_draw, strict=True):
            r = p.loc[key]
            row[f"diff[{d.label}]"], row[f"p_holm[{d.label}]"] = float(r["diff"]), float(r["p_holm"])
            if r["separated"]:
                signs.append(np.sign(r["diff"]))
        row["verdict"] = (REVERSED if len(set(signs)) > 1 else REPLICATED if len(signs) == len(draws)
                          else ONE_DRAW if signs else NEVER)
        out.append(row)
    return pd.DataFrame(out)


def compare(draws: list[Draw], n_boot: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Rows (Top-1 and NDCG@3 per draw, mean, range), pairs (per draw, verdict) and a summary over draws."""
    check_draws(draws)
    names = shared_rows(draws)
    if len(names) < 2:
        raise BenchError("the draws share fewer than two ok rows: nothing to compare")
    every = set(names)
    table = pd.DataFrame([_row(draws, m, m in every) for m in [*names, *partial_rows(draws)]])
    tested = table["in_every_draw"] & table["top1_level_p"].notna()  # Holm over the rows every draw has
    table["top1_level_p_holm"] = np.nan
    table.loc[tested, "top1_level_p_holm"] = power.holm(table.loc[tested, "top1_level_p"].to_numpy())
    pair_rows = draw_pairs(draws, names, n_boot=n_boot, seed=seed)
    return {"board": draws[0].board, "draws": [{"label": d.label, **d.meta} for d in draws], "n_boot": n_boot,
            "rows": table, "pairs": pair_rows,
            "summary": summarize(draws, table[table["in_every_draw"]].reset_index(drop=True), pair_rows)}


def _row(draws: list[Draw], m: str, in_every_draw: bool) -> dict[str, Any]:
    """A row's Top-1 and NDCG@3 in each draw that has it (NaN elsewhere), their mean and range, each draw's
    Top-1 CI, and whether another draw's Top-1 lies inside the first draw's CI."""
    have = {d.label for d in draws if in_every_draw or m in d.ok_rows}
    row: dict[str, Any] = {"method": m, "kind": str(draws[0].by_method.loc[m, "kind"]), "in_every_draw": in_every_draw}
    for metric in power.PAIR_METRICS:
        values = {d.label: float(d.by_method.loc[m, metric]) for d in draws if d.label in have}
        for d in draws:
            row[f"{metric}[{d.label}]"] = values.get(d.label, np.nan)
        row[f"{metric}_mean"] = float(np.mean(list(values.values())))
        row[f"{metric}_range"] = float(np.ptp(list(values.values())))
    for d in draws:  # the draw's own query CI of Top-1, for "did it move outside it"
        r = d.by_method.loc[m] if d.label in have else None
        row[f"top1_ci[{d.label}]"] = "" if r is None else \
            f"[{float(r['top1_ci_low']):.3f}, {float(r['top1_ci_high']):.3f}]"
    row["top1_between_draw_sd"], row["top1_level_p"] = level_spread([d.hits(m) for d in draws if d.label in have])
    first = draws[0].by_method.loc[m]
    low, high = float(first["top1_ci_low"]), float(first["top1_ci_high"])
    for d in draws[1:]:
        row[f"top1_inside_first_ci[{d.label}]"] = bool(low <= row[f"top1[{d.label}]"] <= high) if d.label in have \
            else None
    return row


def level_spread(hits: list[np.ndarray]) -> tuple[float, float]:
    """(between-draw SD, p) of one row's Top-1 over draws, each draw's Top-1 a mean over its own test queries.

    Cochran's Q tests whether every draw measures one level, each weighted by its query variance; the
    DerSimonian-Laird tau is the SD of the level between draws beyond that query noise (0 when Q <= its degrees
    of freedom). NaN with fewer than two draws, or where a draw's per-query Top-1 has no variance (all 0 or all
    1): its query noise cannot weigh it.
    """
    means = np.array([h.mean() for h in hits])
    var = np.array([h.var(ddof=1) / len(h) if len(h) > 1 else 0.0 for h in hits])
    if len(hits) < 2 or not (var > 0).all():
        return np.nan, np.nan
    w = 1 / var
    q = float((w * (means - (w * means).sum() / w.sum()) ** 2).sum())
    dof = len(hits) - 1
    tau2 = max(0.0, (q - dof) / (w.sum() - (w ** 2).sum() / w.sum()))
    return float(np.sqrt(tau2)), float(chi2.sf(q, dof))


def _ranked(draws: list[Draw], names: list[str], table: pd.DataFrame) -> list[str]:
    """Method rows (not the ceiling, not the truth scored against itself, not @tuned), best mean Top-1 first."""
    ranked = set.intersection(*(set(power.ranked_methods(d.rows)["method"]) for d in draws))
    sel = table[table["method"].isin(ranked & set(names))].sort_values("top1_mean", ascending=False, kind="stable")
    return sel["method"].tolist()


def summarize(draws: list[Draw], table: pd.DataFrame, pair_rows: pd.DataFrame) -> dict[str, Any]:
    labels = [d.label for d in draws]
    names = table["method"].tolist()
    ranked = _ranked(draws, names, table)
    top = ranked[:power.TOP]
    by = table.set_index("method")
    taus = [float(kendalltau([by.loc[m, f"top1[{a}]"] for m in ranked], [by.loc[m, f"top1[{b}]"] for m in ranked]
                             ).statistic) for a, b in combinations(labels, 2)] if len(ranked) > 1 else []
    top1 = pair_rows[(pair_rows["metric"] == "top1") & pair_rows["a"].isin(ranked) & pair_rows["b"].isin(ranked)]
    top_pairs = top1[top1["a"].isin(top) & top1["b"].isin(top)]

    def count(frame: pd.DataFrame, verdict: str) -> int:
        return int((frame["verdict"] == verdict).sum())

    separated_each = {lab: int((top1[f"p_holm[{lab}]"] < power.ALPHA).sum()) for lab in labels}
    ranges = table.loc[table["method"].isin(ranked), "top1_range"]
    half = [float((d.by_method.loc[ranked, "top1_ci_high"] - d.by_method.loc[ranked, "top1_ci_low"]).median() / 2)
            for d in draws]
    ceiling = table[table["kind"] == "ceiling"]
    tested = table[table["top1_level_p_holm"].notna()]
    widest = tested.loc[tested["top1_between_draw_sd"].idxmax()] if len(tested) else None
    # figures kept to 6 decimals: the line prints 3 (tau 2), and rounding twice moves a last digit
    # (388/1050 = 0.369524 -> 0.3695 -> "0.369")
    out: dict[str, Any] = {
        "n_draws": len(draws), "labels": labels, "n_rows": len(names), "n_methods": len(ranked),
        "top_methods": top, "kendall_tau_top1": [round(t, 6) for t in taus],
        "pairs": len(top1), "separated_in_each_draw": separated_each,
        "replicated": count(top1, REPLICATED), "some_draws": count(top1, ONE_DRAW),
        "reversed": count(top1, REVERSED), "top_pairs": len(top_pairs),
        "top_replicated": count(top_pairs, REPLICATED), "top_reversed": count(top_pairs, REVERSED),
        "max_top1_range": float(ranges.max()) if len(ranges) else None,
        "median_top1_range": float(ranges.median()) if len(ranges) else None,
        "median_top1_ci_halfwidth": [round(h, 6) for h in half],
        "top1_outside_first_ci": {lab: int((~table[f"top1_inside_first_ci[{lab}]"].astype(bool)).sum())
                                  for lab in labels[1:]},  # over all shared rows, ceiling included
        "levels_tested": len(tested),  # rows with query noise in every draw (not a row at 0 or 1 throughout)
        "levels_differ": int((tested["top1_level_p_holm"] < power.ALPHA).sum()),
        "max_between_draw_sd": None if widest is None else
        {"method": str(widest["method"]), "sd": round(float(widest["top1_between_draw_sd"]), 6)},
        "ceiling_top1": ([round(float(ceiling.iloc[0][f"top1[{lab}]"]), 6) for lab in labels]
                         if len(ceiling) else None),
    }
    out["line"] = draws_line(out)
    return out


def draws_line(s: dict[str, Any]) -> str:
    """One line: does the board's verdict survive another draw of its models?"""
    tau = ", ".join(f"{t:.2f}" for t in s["kendall_tau_top1"]) or "-"
    parts = [f"{s['n_draws']} draws of the models ({', '.join(s['labels'])})",
             f"Top-1 order Kendall tau {tau}",
             f"method pairs separated in every draw {s['replicated']}/{s['pairs']} "
             f"(per draw {'/'.join(str(v) for v in s['separated_in_each_draw'].values())})",
             f"among the top {power.TOP}: {s['top_replicated']}/{s['top_pairs']}",
             f"reversed {s['reversed']}"]
    if s.get("max_top1_range") is not None:
        parts.append(f"Top-1 moved up to {s['max_top1_range']:.3f} between draws (median {s['median_top1_range']:.3f}; "
                     f"a draw's median CI +-{max(s['median_top1_ci_halfwidth']):.3f})")
    if s.get("top1_outside_first_ci"):
        outside = ", ".join(str(v) for v in s["top1_outside_first_ci"].values())
        parts.append(f"rows outside the first draw's Top-1 CI {outside} of {s['n_rows']}")
    if s.get("levels_tested"):
        widest = s["max_between_draw_sd"]
        parts.append(f"Top-1 levels differ beyond query noise in {s['levels_differ']} of {s['levels_tested']} rows "
                     f"(Cochran's Q, Holm p < {power.ALPHA}; between-draw SD up to {widest['sd']:.3f}, "
                     f"{widest['method']})")
    if s.get("ceiling_top1"):
        parts.append("noise ceiling " + " / ".join(f"{c:.3f}" for c in s["ceiling_top1"]))
    return "draws: " + "; ".join(parts)


def top1_table(result: dict[str, Any]) -> str:
    """Top-1 of every row in every draw ('-' where a draw lacks the row) and its range, as `draws` prints it."""
    labels = [d["label"] for d in result["draws"]]
    w = max(len(lab) for lab in labels)
    lines = [f"Top-1 per draw (draw SD: between-draw SD beyond query noise; * its Cochran's Q Holm p < {power.ALPHA})",
             f"{'method':28s} " + " ".join(f"{lab:>{w}s}" for lab in labels) + f" {'range':>7s} {'draw SD':>8s}"]
    for r in result["rows"].to_dict("records"):
        cells = [f"{'-':>{w}s}" if pd.isna(r[f"top1[{lab}]"]) else f"{r[f'top1[{lab}]']:{w}.3f}" for lab in labels]
        sd = "-" if pd.isna(r["top1_between_draw_sd"]) else \
            f"{r['top1_between_draw_sd']:.3f}{'*' if r['top1_level_p_holm'] < power.ALPHA else ' '}"
        lines.append(f"{r['method']:28s} " + " ".join(cells) + f" {r['top1_range']:7.3f} {sd:>8s}"
                     + ("" if r["in_every_draw"] else "  (not in every draw: no pairs)"))
    return "\n".join(lines)


def write(result: dict[str, Any], draws: list[Draw], board_path: Path, command: str | None = None) -> list[Path]:
    """<board>-draws.json (draws, summary, and what wrote it: command, commit), -draws.csv (rows per draw),
    -draws-pairs.csv (pairs per draw), and -draws-per-query.csv.gz: every draw but the board stored (its rows
    in the JSON, its per-query metrics there), so a later draw joins them with `draws --stored`."""
    from guda_bench import __version__
    from guda_bench.leaderboard import clean_command, sibling
    from guda_bench.provenance import git_state
    from guda_bench.store import atomic_write_bytes, atomic_write_text

    written_by = {"command": clean_command(command), "guda_bench": __version__, **git_state(),
                  "n_boot": result["n_boot"]}  # the tree's state before these files change it
    paths = [sibling(board_path, suffix) for suffix in ("draws.json", "draws.csv", "draws-pairs.csv",
                                                        "draws-per-query.csv.gz")]
    entries, per_query = [], []
    for entry, d in zip(result["draws"], draws, strict=True):
        if d.path is not None and d.path.resolve() == board_path.resolve():
            entries.append(entry)  # the board: its own files hold its rows and per-query metrics
            continue
        cols = [c for c in STORED_COLUMNS if c in d.rows]
        entries.append({**entry, "rows": [{k: _plain(v) for k, v in r.items()}
                                          for r in d.rows[cols].to_dict("records")]})
        pq = d.per_query[["method", "query", *power.PAIR_METRICS]]
        per_query.append(pq.assign(draw=d.label)[["draw", "method", "query", *power.PAIR_METRICS]])
    frame = pd.concat(per_query, ignore_index=True) if per_query else \
        pd.DataFrame(columns=["draw", "method", "query", *power.PAIR_METRICS])
    atomic_write_text(paths[1], result["rows"].to_csv(index=False, float_format="%.6g"))
    atomic_write_text(paths[2], result["pairs"].to_csv(index=False, float_format="%.6g"))
    atomic_write_bytes(paths[3], lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g",
                                                          compression={"method": "gzip", "mtime": 0}))
    atomic_write_text(paths[0], json.dumps({"board": result["board"], "draws": entries,
                                            **result["summary"], "written_by": written_by}, indent=1) + "\n")
    return paths


def board_draws_line(board_path: Path, board: pd.DataFrame) -> str | None:
    """The draws line of a published board, if its draws file was written against the board's current truth."""
    from guda_bench.leaderboard import sibling

    path = sibling(board_path, "draws.json")
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    truths = {str(t) for t in board["truth_hash"].dropna()}
    if not truths & {str(d.get("truth_hash")) for d in saved.get("draws", [])}:
        return f"draws: {path.name} is of an older truth of this board (rerun `guda-bench leaderboard draws`)"
    return saved.get("line")
