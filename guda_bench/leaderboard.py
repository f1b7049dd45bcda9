"""Published leaderboards: one CSV per dataset and grouping, built from run folders, never by hand.

A row carries every metric with its 95% CI and standard error, timings and speedup, status, and the
provenance that says exactly how the number was produced. A board holds rows of ONE ground truth
(truth hash); publishing a run with another truth is refused, so numbers that were scored against
different LOGO models never share a table (`replace_board` starts a board afresh from one run, e.g. when its
truth is rebuilt from more LOGO studies). The noise-ceiling row is kept first and marked.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from guda_bench import lds, metrics, power
from guda_bench.errors import BenchError
from guda_bench.results import HEADLINE, SCHEMA_VERSION, TIMING, TUNED_SUFFIX, short_reason
from guda_bench.store import atomic_write_text, check_output_dir

BOARD_SCHEMA = 1
# hex strings that pandas would read as numbers when they happen to be all digits (or "1e5"-like)
TEXT_COLUMNS = {"git_commit": str, "truth_hash": str, "config_hash": str, "data_hash": str}
PROVENANCE = ("dataset", "preset", "grouping", "seed", "ceiling_seeds", "n_test", "guda_bench", "git_commit",
              "git_dirty", "device", "machine", "logo_machine", "torch", "diffusers", "python", "config_hash",
              "truth_hash", "data_hash", "created", "command")


def load_run(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "results.json"
    if not path.exists():
        raise BenchError(f"{run_dir} is not a run folder (no results.json)")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not (isinstance(results, dict) and isinstance(results.get("run"), dict)
            and isinstance(results.get("rows"), list) and "truth_hash" in results["run"]):
        raise BenchError(f"{path} is not a guda-bench run's results (a `run` block with its truth hash and "
                         "`rows` are missing)")
    version = results.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise BenchError(f"{path} has results schema {version!r}; this guda-bench reads schema {SCHEMA_VERSION} "
                         "and older (upgrade guda-bench)")
    return results


def board_name(results: dict[str, Any]) -> str:
    """<dataset>[-<preset's board_suffix>][-<grouping>][-<K>targets][-<query mode>]: a run with --targets is a
    different benchmark (its command column names the targets; a board holds one truth hash), and so is a
    preset that trains another truth (style-canvas's `pretrained`). A preset's own default targets add nothing."""
    run = results["run"]
    preset = run.get("preset_config") or {}
    return board_label(run["dataset"], run["grouping"], run.get("targets"), preset.get("targets"),
                       (preset.get("queries") or {}).get("mode", "prompted"), preset.get("board_suffix", ""))


def board_label(dataset: str, grouping: str, targets: list[str] | tuple[str, ...] | None,
                default_targets: list[str] | tuple[str, ...] | None = None, query_mode: str = "prompted",
                preset_suffix: str = "") -> str:
    """The one naming rule of boards (publish) and tuning records (tune, run --tuned)."""
    name = dataset + (f"-{preset_suffix}" if preset_suffix else "") + ("" if grouping == "class" else f"-{grouping}")
    if targets and default_targets and list(targets) == list(default_targets):
        targets = None  # the preset's own split (style-canvas's 4 target styles) is the board itself
    name += f"-{len(targets)}targets" if targets else ""
    return name + ("" if query_mode == "prompted" else f"-{query_mode}")


PATH_FLAGS = ("--out", "--cache", "--data-root", "--base-model", "--tuning-dir")


def clean_command(command: str | None) -> str | None:
    """The command as a reader would retype it: `guda-bench ...` for an executable's path, machine-specific
    absolute paths of path flags replaced by a placeholder and any other absolute path by its last part (boards
    never carry temp venvs or home folders)."""
    import shlex

    if not command:
        return command
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if words and Path(words[0]).name == "guda-bench":
        words[0] = "guda-bench"
    for i, w in enumerate(words[:-1]):
        if w in PATH_FLAGS and Path(words[i + 1]).is_absolute():
            words[i + 1] = f"{w.lstrip('-').upper().replace('-', '_')}"
    # any other absolute path (a positional run folder, --truth-bundle FILE, runs of one draw joined by +):
    # its last part only
    words = ["+".join(Path(p).name if Path(p).is_absolute() else p for p in w.split("+")) for w in words]
    return " ".join(shlex.quote(w) for w in words)


def home_relative(text: str | None) -> str | None:
    """`text` with the home folder written as ~ (a reason may name a cache path under it)."""
    home = str(Path.home())
    return text.replace(home + "/", "~/") if text and home not in ("", "/") else text


def board_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat leaderboard rows of a run: metrics (mean, CI, stderr), timings, status, provenance."""
    run, prov = results["run"], results["provenance"]
    common = {k: run.get(k) for k in ("dataset", "preset", "grouping", "seed", "ceiling_seeds", "n_test",
                                      "config_hash", "truth_hash", "data_hash", "created", "command")}
    common["command"] = clean_command(common.get("command"))
    if (run.get("truth_seeds") or 1) > 1:  # a truth averaged over several LOGO studies (--truth-seeds)
        common["truth_seeds"] = run["truth_seeds"]
    if run.get("ndcg_gain"):  # which NDCG@3 the ndcg@3 columns show (exp: CIFAR-10's, linear: UnlearnCanvas's)
        common["ndcg_gain"] = run["ndcg_gain"]
    common.update({k: prov.get(k) for k in ("guda_bench", "git_commit", "git_dirty", "device", "machine", "torch",
                                            "diffusers", "python")})
    if "logo_machine" in results.get("truth", {}):  # the speedups' denominator: LOGO's cost, measured there
        common["logo_machine"] = results["truth"]["logo_machine"]
    if design := lds_design(run.get("lds")):  # which subsets the row's LDS is over (boards differ: 15, 16, 32)
        common["lds_design"] = design
    rows = []
    for r in results["rows"]:
        row: dict[str, Any] = {"method": r["method"], "kind": r["kind"], "status": r["status"],
                               "family": r.get("family") or _family(r["method"], r["kind"])}
        for m in HEADLINE:
            stats = r.get("metrics", {}).get(m) or {}
            for part in ("mean", "ci_low", "ci_high", "stderr"):
                row[m if part == "mean" else f"{m}_{part}"] = stats.get(part)
        for t in TIMING:
            row[t] = r.get(t)
        row["cost_machine"], row["cost_machine_share"] = main_machine(r.get("cost_machines"))
        row["reason"] = home_relative(r.get("reason", ""))
        row["settings"] = json.dumps(r.get("settings", {}), sort_keys=True) if r.get("settings") else ""
        tuning = r.get("tuning") or {}
        row["tuned"] = bool(tuning)  # a NAME@tuned row: the setting `guda-bench tune` chose on the tuning split
        row["tuning_budget"] = tuning.get("budget")
        row["tuning_cost_s"] = tuning.get("tuning_cost_s")
        row["tuning_at_edge"] = ",".join(tuning.get("at_edge", [])) if tuning else ""
        # how far the choice beat the shipped setting on the tuning queries (None: shipped kept, or an older record)
        gain = tuning.get("chosen_vs_shipped") or {}
        row["tuning_split_gain"], row["tuning_split_p"] = gain.get("top1_diff"), gain.get("p_value")
        # the same test paying for the choice among every setting that ran (records since 2026-12-06)
        row["tuning_split_p_best_of"] = gain.get("p_best_of")
        n_alt = gain.get("n_alternatives")
        row["tuning_split_settings"] = n_alt + 1 if isinstance(n_alt, int) else None
        row.update(common)
        rows.append(row)
    return rows


def _family(method: str, kind: str) -> str:
    """A row's Method.family (older runs did not record it): "ceiling" for the noise ceiling, "" if unknown."""
    if kind == "ceiling":
        return "ceiling"
    from guda_bench.registry import METHODS

    try:
        return METHODS.entry(method).cls.family
    except Exception:  # a plugin that is not installed here
        return ""


def _merged(path: Path, new: pd.DataFrame) -> pd.DataFrame:
    """The CSV at `path` with the rows of `new`'s methods replaced by `new` (all of `new` if no file): in place,
    so a republished method keeps its position and the file does not churn; methods new to it go last."""
    if not path.exists():
        return new
    old = pd.read_csv(path, dtype=TEXT_COLUMNS)
    if new.empty:  # e.g. a run whose only row is unavailable: nothing to replace (and no object-typed columns)
        return old
    replaced = set(new["method"])
    parts = [new[new["method"] == method] if method in replaced else rows
             for method, rows in old.groupby("method", sort=False)]
    merged = pd.concat([*parts, new[~new["method"].isin(set(old["method"]))]], ignore_index=True)
    return merged[[*old.columns, *(c for c in merged.columns if c not in old.columns)]]  # the file's column order


def _write_csv(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Write `frame` atomically as the boards' CSV (6 significant digits) and return what the file holds, so that
    the figures derived from it (pairs, power) are the same whether its rows were published now or read back:
    republishing, or adding one row, does not move the other rows' derived figures in their last digits."""
    def round_trip(f: pd.DataFrame) -> tuple[str, pd.DataFrame]:
        text = f.to_csv(index=False, float_format="%.6g")
        return text, pd.read_csv(io.StringIO(text), dtype=TEXT_COLUMNS)

    # twice: the second pass writes the dtypes a reader infers (a column of ints and a missing value reads as
    # floats), so the bytes are a fixed point and the next publish of the same rows rewrites them unchanged
    text, frame = round_trip(round_trip(frame)[1])
    atomic_write_text(path, text)
    return frame


def _order(frame: pd.DataFrame) -> pd.DataFrame:
    """Ceiling first, then ok rows by Top-1, then the rest by name."""
    key = frame.assign(_c=frame["kind"] != "ceiling", _s=frame["status"] != "ok", _t=-frame["top1"].fillna(-1))
    return key.sort_values(["_c", "_s", "_t", "method"]).drop(columns=["_c", "_s", "_t"]).reset_index(drop=True)


def _board_truths(path: Path) -> set[str]:
    """The truth hashes a board's rows were scored against (empty for a missing board)."""
    if not path.exists():
        return set()
    return set(pd.read_csv(path, usecols=["truth_hash"], dtype=TEXT_COLUMNS)["truth_hash"].dropna())


def publish(run_dir: Path, board_dir: Path, plots: bool = True) -> Path:
    """Write or update `board_dir/<dataset>[-<grouping>].csv` from a run, atomically; return its path."""
    results = load_run(run_dir)
    new = pd.DataFrame(board_rows(results))
    check_output_dir(board_dir, "leaderboard folder")
    path = board_dir / f"{board_name(results)}.csv"
    if path.exists():
        truths = _board_truths(path)
        if truths and truths != {results["run"]["truth_hash"]}:
            # a truth rebuilt on another CPU ranks the same but is other bytes: the board's bundle is the way in
            bundle = path.with_name(path.stem + ".truth.tar.gz")
            way_in = (f"score it against the board's truth with --truth-bundle {bundle}, or publish to another --dir"
                      if bundle.exists() else "publish to another --dir")
            raise BenchError(f"refusing to publish {run_dir} into {path}: its ground truth "
                             f"{results['run']['truth_hash'][:12]} differs from the board's "
                             f"{', '.join(t[:12] for t in sorted(truths))} ({way_in})")
    board = _write_csv(path, _order(_merged(path, new)))
    _publish_per_group(results, path.with_name(path.stem + "-per-group.csv"))
    _publish_power(Path(run_dir), results, path, board, plots)
    if plots:
        from guda_bench.plots import pareto_plot, query_grid

        pareto_plot(board, path.with_name(path.stem + "-pareto.png"))
        query_grid(Path(run_dir), results, path.with_name(path.stem + "-queries.png"), board_leaders(board))
    return path


# every file `publish` writes for a board, as suffixes of its name (digits.csv, digits-pairs.csv, ...)
PUBLISHED = (".csv", "-per-group.csv", "-per-query.csv", "-pairs.csv", "-pairs.png", "-pairs-lds.png", "-power.json",
             "-pareto.png", "-queries.png")
# files written beside a board by `leaderboard draws --write`: they describe the board as it was (its rows, its
# truth), so a replaced board drops them
DRAWS = ("-draws.json", "-draws.csv", "-draws-pairs.csv", "-draws-per-query.csv.gz")


def replace_board(run_dir: Path, board_dir: Path, plots: bool = True) -> tuple[Path, Path | None]:
    """Start a board afresh from one run: its files are published into a scratch folder beside the board and
    then moved over the old ones, so a failure leaves the old board whole. The old rows go (git keeps them);
    a truth bundle of another truth no longer matches the board and is removed. Returns the board's path and
    the removed bundle (or None)."""
    results = load_run(run_dir)
    board_dir.mkdir(parents=True, exist_ok=True)
    name = board_name(results)
    old = board_dir / f"{name}.csv"
    old_truths = _board_truths(old)
    with tempfile.TemporaryDirectory(dir=board_dir, prefix=".publish-") as scratch:
        publish(run_dir, Path(scratch), plots)
        for suffix in PUBLISHED:
            new, dst = Path(scratch) / f"{name}{suffix}", board_dir / f"{name}{suffix}"
            if new.exists():
                os.replace(new, dst)
            elif dst.exists():  # e.g. the old board had plots or per-group rows and this run writes none
                dst.unlink()
        for suffix in DRAWS:
            (board_dir / f"{name}{suffix}").unlink(missing_ok=True)
    bundle = board_dir / f"{name}.truth.tar.gz"
    if bundle.exists() and old_truths and old_truths != {results["run"]["truth_hash"]}:
        bundle.unlink()
        return old, bundle
    return old, None


def board_leaders(board: pd.DataFrame, n: int = 4) -> list[str]:
    """The board's n best methods as shipped (power.ranked_methods): the query grid's columns."""
    return power.ranked_methods(board)["method"].head(n).tolist()


def _publish_per_group(results: dict[str, Any], path: Path) -> None:
    """Group-level rows (method x group: queries whose true top group it is, the method's Top-1 on them,
    how often the method names the group first), merged like the board: a method's rows are replaced."""
    rows = [{"method": r["method"], **g, "truth_hash": results["run"]["truth_hash"]}
            for r in results["rows"] for g in r.get("per_group", [])]
    if not rows:
        return
    _write_csv(path, _merged(path, pd.DataFrame(rows)))


def sibling(board_path: Path, suffix: str) -> Path:
    """A board's companion file: digits.csv -> digits-<suffix>."""
    return board_path.with_name(f"{board_path.stem}-{suffix}")


def scored_rows(run_dir: Path, results: dict[str, Any]) -> dict[str, np.ndarray]:
    """The saved score matrix of every ok row of a run (the noise ceiling's is its LOGO studies' mean)."""
    scored = {}
    for r in results["rows"]:
        file = "_ceiling_logoa" if r["kind"] == "ceiling" else r["method"]
        if r["status"] == "ok" and (Path(run_dir) / "scores" / f"{file}.npy").exists():
            scored[r["method"]] = np.load(Path(run_dir) / "scores" / f"{file}.npy")
    return scored


def _publish_power(run_dir: Path, results: dict[str, Any], path: Path, board: pd.DataFrame, plots: bool) -> None:
    """Per-query Top-1/NDCG@3 of every ok row (merged like the board), every pair's paired-bootstrap test with
    Holm-adjusted p (<board>-pairs.csv, -pairs.png) and the board's power summary (<board>-power.json)."""
    gold, test = _truth_and_test(run_dir, results)
    scored = scored_rows(run_dir, results)
    per_query_path = sibling(path, "per-query.csv")
    per_query = _merged(per_query_path, power.per_query_frame(scored, gold, test,
                                                              results["run"].get("ndcg_gain", "exp"),
                                                              _per_query_lds(run_dir, results, scored)))
    ok = set(board.loc[board["status"] == "ok", "method"])
    per_query = per_query[per_query["method"].isin(ok)]  # a row that turned failed/unavailable loses its pairs
    per_query = _write_csv(per_query_path, per_query)
    order = [m for m in board["method"] if m in ok]
    pair_rows = power.pairs(per_query, order, seed=int(results["run"]["seed"]))
    atomic_write_text(sibling(path, "pairs.csv"), pair_rows.to_csv(index=False, float_format="%.6g"))
    summary = power.power_summary(board, pair_rows)
    beyond = power.beyond_similarity(board, per_query, seed=int(results["run"]["seed"]))
    tuning = power.tuning_line(board, pair_rows, untuned_methods(board))
    atomic_write_text(sibling(path, "power.json"), json.dumps({**summary, "line": power.power_line(summary),
                                                               "lds_line": power.lds_power_line(summary),
                                                               "tuning": tuning,
                                                               "beyond_similarity": beyond,
                                                               "beyond_line": power.beyond_line(beyond)},
                                                              indent=1))
    if plots:
        power.pairs_plot(pair_rows, order, sibling(path, "pairs.png"))
        power.pairs_plot(pair_rows, order, sibling(path, "pairs-lds.png"), metric=power.LDS)  # none without LDS


def _per_query_lds(run_dir: Path, results: dict[str, Any], scored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each scored row's group LDS on every query, from the LDS truth the run saved (empty for a run without
    --truth lds, or one made before runs saved it): the same function the runner averaged, so the per-query
    values' mean is the board's `lds`."""
    truth = lds.load_truth(run_dir) if results["run"].get("lds") else None
    if truth is None:
        return {}
    kept, losses, second = truth
    out = {}
    for r in results["rows"]:
        name = r["method"]
        if name not in scored or "lds" not in r.get("metrics", {}):
            continue
        if r["kind"] == "ceiling":
            if second is not None:
                out[name] = lds.ceiling_lds(losses, second)
        else:
            out[name] = lds.per_query_lds(scored[name], kept, losses)
    return out


def untuned_methods(board: pd.DataFrame) -> list[str]:
    """The board's ranked methods (as shipped, best first) that have a search space but no NAME@tuned row
    (methods this installation does not know are left out: their space is unknown)."""
    from guda_bench.registry import METHODS

    names = set(board["method"].astype(str))
    out = []
    for name in power.ranked_methods(board)["method"].astype(str):
        if f"{name}{TUNED_SUFFIX}" in names:
            continue
        try:
            if METHODS.entry(name).space():
                out.append(name)
        except BenchError:
            continue
    return out


def board_power(board_path: Path, board: pd.DataFrame) -> str:
    """The board's power line (pairs from <board>-pairs.csv when published)."""
    pairs_path = sibling(board_path, "pairs.csv")
    pair_rows = pd.read_csv(pairs_path) if pairs_path.exists() else None
    if "family" not in board:
        board = board.assign(family=[_family(m, k) for m, k in zip(board["method"], board["kind"], strict=True)])
    summary = power.power_summary(board, pair_rows)
    line = power.power_line(summary)
    if tuning := power.tuning_line(board, pair_rows, untuned_methods(board)):
        line += f"\n{tuning}"
    power_path = sibling(board_path, "power.json")  # publish computed it (bootstrap seeded by the run)
    if power_path.exists() and (beyond := json.loads(power_path.read_text()).get("beyond_line")):
        line += f"\n{beyond}"
    agree = ranking_agreement(board)
    if agree:
        line += (f"\nLOGO Top-1 vs group LDS ranking: Kendall tau {agree['kendall_tau']:.2f} over "
                 f"{agree['n_methods']} methods ({len(agree['disagreements'])} pairs ordered differently)")
    if lds_line := power.lds_power_line(summary):
        line += f"\n{lds_line}"
    if above := lds_above_ceiling(board):
        ceiling, names = above
        designs = board.loc[board["kind"] == "ceiling", "lds_design"].dropna() if "lds_design" in board else []
        design = f" over {designs.iloc[0]}" if len(designs) else ""
        line += (f"\ngroup LDS noise ceiling {ceiling:.3f}{design}; rows whose LDS CI lies above the ceiling's: "
                 f"{', '.join(names) or 'none'}")
    if costs := cost_machines(board):
        line += f"\n{costs}"
    from guda_bench.draws import board_draws_line

    if drawn := board_draws_line(board_path, board):
        line += f"\n{drawn}"
    return line


def lds_design(recorded: dict[str, Any] | None) -> str | None:
    """The LDS truth's design in words, from a run's `run.lds` (None for a run without --truth lds)."""
    if not recorded:
        return None
    if recorded.get("subsets") == "all":
        return f"every non-empty subset of the groups ({recorded.get('n_subsets')} subset models)"
    return (f"{recorded.get('subsets')} random subsets (alpha {recorded.get('alpha')}, seed {recorded.get('seed')}; "
            f"repeats possible)")


def main_machine(seconds: dict[str, float] | None) -> tuple[str | None, float | None]:
    """(the machine that measured the largest share of a row's cost, that share); (None, None) for a row from a
    run that did not record it, whose costs were all measured where the run ran (its `machine`)."""
    if not seconds or sum(seconds.values()) <= 0:
        return None, None
    machine = max(seconds, key=lambda m: seconds[m])
    return machine, seconds[machine] / sum(seconds.values())


def cost_machines(board: pd.DataFrame) -> str | None:
    """One line: which machines measured the board's costs, and LOGO's (what every speedup divides). Costs
    differ 2x or more between machines, so a speedup is only a ratio of like with like where both agree."""
    rows = board[(board["status"] == "ok") & board["cost_s"].notna()]
    if not len(rows):
        return None
    def named(column: str) -> pd.Series:
        values = rows[column] if column in rows else pd.Series(None, index=rows.index, dtype=object)
        return values.astype(object).where(values.notna(), "").astype(str).replace("", "unrecorded")

    # a row's cost was measured where its cached work was built (cost_machine), which a run from a bundle or
    # an older cache need not be the machine it ran on (machine); rows from before cost_machine: machine. A
    # cost_machine of "unrecorded" (cached work whose manifest names no machine) stays unrecorded.
    run_machine, machines, logo = named("machine"), named("cost_machine"), named("logo_machine")
    recorded = rows["cost_machine"].notna() if "cost_machine" in rows else pd.Series(False, index=rows.index)
    machines = machines.where(recorded, run_machine)
    counts = ", ".join(f"{m} ({n} rows)" for m, n in machines.value_counts().items())
    line = f"costs measured on: {counts}; LOGO's cost, which speedups divide: {', '.join(sorted(set(logo)))}"
    if "cost_machine_share" in rows:
        mixed = int((pd.to_numeric(rows["cost_machine_share"], errors="coerce") < 0.95).sum())
        if mixed:
            line += f"; {mixed} rows' costs were measured on more than one machine (counted under the larger share)"
    if len((set(machines) | set(logo)) - {"unrecorded"}) > 1:
        line += " (more than one machine: compare speedups only between rows measured on the same one)"
    return line


def is_board(path: Path) -> bool:
    """Board CSVs carry a truth_hash and a method column (per-group, pairs and study files do not)."""
    try:
        cols = set(pd.read_csv(path, nrows=0).columns)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError):
        return False
    needed = {"method", "kind", "status", "truth_hash", "top1_ci_low", "dataset", "preset"}
    return needed <= cols and not path.stem.endswith(("-per-group", "-per-query", "-pairs"))


def read_board(name_or_path: str, board_dir: Path) -> tuple[Path, pd.DataFrame]:
    """The board named (a stem in `board_dir`, or a path); a missing or non-board file is one clear error."""
    path = Path(name_or_path)
    if not path.suffix:
        path = board_dir / f"{name_or_path}.csv"
    if not path.exists():
        from guda_bench.registry import did_you_mean

        boards = [p.stem for p in sorted(board_dir.glob("*.csv")) if is_board(p)]  # only the error reads them
        hint = did_you_mean(path.stem, boards)
        raise BenchError(f"no leaderboard {path}{hint} (published: {', '.join(boards) or 'none'})")
    if not is_board(path):
        raise BenchError(f"{path} is not a leaderboard (a board CSV has method, status, truth_hash and metric "
                         f"columns; its -pairs, -per-group and -per-query files and study tables do not)")
    frame = pd.read_csv(path, dtype=TEXT_COLUMNS)
    if frame.empty:
        raise BenchError(f"{path} is a leaderboard with no rows")
    return path, frame


def _cell(row: pd.Series, m: str) -> str:
    if pd.isna(row.get(m)):
        return "-"
    return f"{row[m]:.3f} [{row[f'{m}_ci_low']:.2f}, {row[f'{m}_ci_high']:.2f}]"


def has_lds(board: pd.DataFrame) -> bool:
    """Whether the board was scored against the group LDS truth too (--truth lds)."""
    return "lds" in board and bool(board["lds"].notna().any())


def show_rows(board: pd.DataFrame) -> list[list[str]]:
    out = []
    for _, r in board.iterrows():
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {short_reason(r['reason'], 50)}"
        cost = "-" if pd.isna(r.get("cost_s")) else f"{r['cost_s']:.1f}"
        speed = "-" if pd.isna(r.get("speedup")) else f"{r['speedup']:.1f}x"
        cells = [r["method"], status, _cell(r, "top1"), _cell(r, "ndcg@3"),
                 "-" if pd.isna(r.get("mrr")) else f"{r['mrr']:.3f}"]
        out.append(cells + ([_cell(r, "lds")] if has_lds(board) else []) + [cost, speed])
    return out


HEADERS = ["method", "status", "Top-1 [95% CI]", "NDCG@3 [95% CI]", "MRR", "cost s", "speedup vs LOGO"]


def headers(board: pd.DataFrame) -> list[str]:
    return HEADERS[:5] + ["group LDS [95% CI]"] + HEADERS[5:] if has_lds(board) else HEADERS


def to_markdown(board: pd.DataFrame) -> str:
    cols = headers(board)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for i, cells in enumerate(show_rows(board)):
        lines.append("| " + " | ".join(cells) + " |")
        if board.iloc[i]["kind"] == "ceiling":
            lines.append("| " + " | ".join(["*methods*"] + [""] * (len(cols) - 1)) + " |")
    return "\n".join(lines)


def lds_above_ceiling(board: pd.DataFrame) -> tuple[float, list[str]] | None:
    """The LDS noise ceiling and the ok rows whose LDS CI lies wholly above the ceiling's CI: a row beating a
    second seed's subset models says the LDS truth is noise-limited there, not that the row is that good."""
    if not has_lds(board):
        return None
    ceil = board[(board["kind"] == "ceiling") & board["lds"].notna()]
    if ceil.empty:
        return None
    c = ceil.iloc[0]
    rows = board[(board["status"] == "ok") & (board["kind"] != "ceiling") & board["lds"].notna()]
    above = rows[rows["lds_ci_low"] > c["lds_ci_high"]].sort_values("lds", ascending=False)
    return float(c["lds"]), above["method"].astype(str).tolist()


def ranking_agreement(board: pd.DataFrame) -> dict[str, Any] | None:
    """Kendall tau between the methods' ranking by LOGO Top-1 and by group LDS (ok method rows with both),
    and the pairs of methods the two truths order differently (SPEC §10)."""
    if not has_lds(board):
        return None
    from scipy.stats import kendalltau

    fam = board["family"] if "family" in board else pd.Series([""] * len(board), index=board.index)
    rows = board[(board["status"] == "ok") & (board["kind"] != "ceiling") & (fam != "truth")
                 & ~power.tuned_rows(board) & board["top1"].notna() & board["lds"].notna()]
    if len(rows) < 3:
        return None
    tau, p = kendalltau(rows["top1"], rows["lds"])
    m, t, s = rows["method"].tolist(), rows["top1"].tolist(), rows["lds"].tolist()
    flips = [(m[i], m[j]) for i in range(len(m)) for j in range(i + 1, len(m)) if (t[i] - t[j]) * (s[i] - s[j]) < 0]
    return {"kendall_tau": float(tau), "p": float(p), "n_methods": len(rows), "disagreements": flips}


# ---- paired comparison ------------------------------------------------------------------------------
def _truth_and_test(run_dir: Path, results: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    path = Path(run_dir) / "scores" / "_truth_logoa.npy"
    if not path.exists():
        raise BenchError(f"{run_dir} has no ground-truth scores ({path.name} is missing): rerun it, or copy the "
                         f"whole run folder")
    gold = np.load(path)
    return gold, np.asarray(results["splits"]["test"])


def _scores(run_dir: Path, method: str) -> np.ndarray:
    path = Path(run_dir) / "scores" / f"{method}.npy"
    if not path.exists():
        have = ", ".join(sorted(p.stem for p in (Path(run_dir) / "scores").glob("*.npy") if not p.stem.startswith("_")))
        raise BenchError(f"{run_dir} has no scores for {method!r} (scored: {have or 'none'})")
    return np.load(path)


def paired_bootstrap(a: dict[str, np.ndarray], b: dict[str, np.ndarray], n_boot: int = 10_000,
                     seed: int = 0) -> list[dict[str, Any]]:
    """Per metric: mean of A, of B, difference A-B, its 95% CI, and a two-sided bootstrap p-value.

    Both methods are resampled with the SAME query indices (they were scored on the same queries), so
    the test uses their per-query correlation. p = 2 * min(P*(mean d <= 0), P*(mean d >= 0)) over the
    resampled mean differences (the percentile-bootstrap test of H0: mean difference = 0).
    """
    out = []
    n = len(next(iter(a.values())))
    idx = power.boot_indices(n, n_boot, seed)
    for m in a:
        d = a[m] - b[m]
        boots = d[idx].mean(1)
        p = power.two_sided_p(boots)
        out.append({"metric": m, "mean_a": float(a[m].mean()), "mean_b": float(b[m].mean()),
                    "diff": float(d.mean()), "ci_low": float(np.percentile(boots, 2.5)),
                    "ci_high": float(np.percentile(boots, 97.5)), "p_value": float(p), "n_queries": n})
    return out


def compare(run_a: Path, run_b: Path | None, method_a: str, method_b: str, n_boot: int = 10_000) -> dict[str, Any]:
    """Method A of run A against method B of run B (or of run A): paired over the same test queries."""
    ra = load_run(run_a)
    rb = load_run(run_b) if run_b else ra
    if ra["run"]["truth_hash"] != rb["run"]["truth_hash"]:
        raise BenchError("the two runs have different ground truths (truth_hash): a paired comparison "
                         "needs the same queries and LOGO scores")
    gold, test = _truth_and_test(run_a, ra)
    sa = _scores(run_a, method_a)[test]
    sb = _scores(run_b or run_a, method_b)[test]
    gain = ra["run"].get("ndcg_gain", "exp")
    pa = metrics.per_query_metrics(sa, gold[test], ndcg_gain=gain)
    pb = metrics.per_query_metrics(sb, gold[test], ndcg_gain=gain)
    truth = lds.load_truth(run_a) if ra["run"].get("lds") else None
    same_lds = (ra["truth"].get("artefacts", {}).get("lds", [None])[:1]
                == rb["truth"].get("artefacts", {}).get("lds", [None])[:1])
    if truth is not None and same_lds:  # both scored against the same LDS truth: pair it too
        kept, losses, _ = truth
        pa["lds"], pb["lds"] = (lds.per_query_lds(s, kept, losses[test]) for s in (sa, sb))
    return {"a": f"{method_a} ({run_a})", "b": f"{method_b} ({run_b or run_a})",
            "rows": paired_bootstrap(pa, pb, n_boot=n_boot, seed=ra["run"]["seed"])}
