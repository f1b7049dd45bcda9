"""Every method tuned the same way, on the tuning split only (SPEC §9).

`guda-bench tune` tries up to `budget` settings per method (the same budget for every method): the shipped
setting first, then the whole grid of the method's search space when it fits, else seeded draws from it
without replacement. Each setting is scored on the TUNING queries only: methods run on a view of the
context that holds just the tuning split (Context.on_queries: test queries are never scored while tuning,
and per-query work costs a quarter of a run's), and the tuner slices the ground truth to the tuning split
before any metric is computed, so test-split gold cannot steer a choice. The best
tuning Top-1 wins (NDCG@3 breaks ties, then the earlier setting, so the shipped one wins a tie), and the record
says by how much it beat the shipped setting on the same tuning queries (`chosen_vs_shipped`: paired bootstrap
CI and p), so a reader can tell a real choice from a coin toss. Each
setting's scores are a cache entry (a killed tuning resumes), and the per-method record is rewritten
atomically after every setting to `tuning/<board>/<method>.json`; `guda-bench run --tuned` reads it.

A method's tuning cost counts shared work once: each setting records the artefacts it used (e.g. TRAK's
training-gradient features, the same for every regularisation strength), and `tuning_cost_s` is every
setting's own work plus each artefact used, once. A setting's `cost_s` is what it would cost alone.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from guda_bench import metrics, progress
from guda_bench.config import canonical_hash, to_jsonable
from guda_bench.errors import BenchError, Unavailable
from guda_bench.leaderboard import board_label, home_relative
from guda_bench.options import shipped_value
from guda_bench.registry import Entry
from guda_bench.store import atomic_write_text, check_output_dir

SCHEMA = 2  # 2: tuning_cost_s counts artefacts shared by settings once (1 counted them per setting)


def board_of(bench: Any, targets: tuple[str, ...] | None) -> str:
    """The leaderboard name of a benchmark, as `leaderboard publish` names its board."""
    return board_label(bench.dataset, bench.grouping, targets, bench.preset.targets, bench.preset.queries.mode,
                       bench.preset.board_suffix)


def tuning_hash(preset: Any) -> str:
    """What a tuning record is valid for: the preset, less the fields that only shape the noise ceiling and
    the CIs (a board scored with --ceiling-seeds 2 uses the settings tuned without it)."""
    return canonical_hash(replace(preset, ceiling_seeds=1, n_boot=0))


def shipped_setting(entry: Entry, preset: Any) -> dict[str, Any]:
    """The values of the search-space keys the method runs with untuned on this preset."""
    fixed = {**entry.options, **preset.method_options.get(entry.name, {})}
    declared = entry.declared_options or {}
    return {k: shipped_value(k, declared[k], fixed, preset) for k in entry.space()}


def candidates(entry: Entry, preset: Any, budget: int, seed: int) -> list[dict[str, Any]]:
    """Up to `budget` settings over the space's keys: the shipped one, then the grid or seeded draws from it."""
    if budget < 1:
        raise BenchError(f"--budget must be >= 1, not {budget}")
    space = entry.space()
    if not space:
        return []
    shipped = shipped_setting(entry, preset)
    grid = [dict(zip(space, combo, strict=True)) for combo in itertools.product(*space.values())]
    rest = [s for s in grid if s != shipped]
    if len(rest) > budget - 1:
        order = np.random.default_rng(seed).permutation(len(rest))[: budget - 1]
        rest = [rest[i] for i in sorted(order)]
    return [shipped, *rest]


def at_edge(space: dict[str, Any], chosen: dict[str, Any] | None,
            options: Mapping[str, Any] | None = None) -> list[str]:
    """Keys whose chosen value is the smallest or largest of 3+ numeric candidates: the best setting may
    lie beyond the space, so the tuned row is a lower bound on what the method can do there. A value the
    declared option (`options`) names as a mode is off the scale: neither an edge nor counted."""
    keys = []
    for key, values in space.items():
        modes = getattr((options or {}).get(key), "modes", ())
        scale = [v for v in values if v not in modes]
        numeric = [v for v in scale if isinstance(v, int | float) and not isinstance(v, bool)]
        if chosen is None or key not in chosen or chosen[key] in modes or len(numeric) < 3 \
                or len(numeric) != len(scale):
            continue
        if chosen[key] in (min(numeric), max(numeric)):
            keys.append(key)
    return keys


def tuning_path(tuning_dir: Path, board: str, method: str) -> Path:
    return Path(tuning_dir) / board / f"{method}.json"


def choose(settings: list[dict[str, Any]]) -> int | None:
    """Index of the best ok setting by tuning Top-1, then NDCG@3, then the earlier one."""
    ok = [(i, s) for i, s in enumerate(settings) if s["status"] == "ok"]
    if not ok:
        return None
    return min(ok, key=lambda p: (-p[1]["tune"]["top1"], -p[1]["tune"]["ndcg@3"], p[0]))[0]


def score_setting(ctx: Any, entry: Entry, options: dict[str, Any], preset: Any,
                  gold_tune: np.ndarray) -> dict[str, Any]:
    """One setting scored on `ctx`, the tuning view: its scores (a cache entry), their metrics, and the cost."""
    merged = {**preset.method_options.get(entry.name, {}), **options}
    spec = {"method": entry.name, "options": to_jsonable(merged), "full": ctx.full.key,
            "queries": ctx.queries_artefact.key, "data": ctx.data_hash}

    def build(folder: Path) -> dict:
        method = entry.create(merged)
        with ctx.stage() as st:
            method.prepare(ctx)
            scores = np.asarray(method.score(ctx), dtype=np.float64)
        if scores.shape != (len(ctx.queries), ctx.bench.n_groups) or not np.isfinite(scores).all():
            raise ValueError(f"scores of shape {scores.shape} (finite: {bool(np.isfinite(scores).all())})")
        np.save(folder / "scores.npy", scores)
        return {"cost_s": st["cost_s"], "used": st["used"]}

    art = ctx.fetch("tuning-scores", spec, build, charge=False)
    scores = np.load(art.path / "scores.npy")
    # the board's own NDCG@3 (linear gain on UnlearnCanvas-shaped presets): it breaks Top-1 ties and is recorded
    per_q = metrics.per_query_metrics(scores, gold_tune, ndcg_gain=preset.ndcg_gain)
    return {"tune": {m: float(v.mean()) for m, v in per_q.items()}, "cost_s": float(art.cost_s),
            "used": art.manifest.get("used", {}), "hits": per_q["top1"]}


def vs_shipped(hits: Mapping[int, np.ndarray], best: int | None, n_boot: int = 10_000,
               seed: int = 0) -> dict[str, Any] | None:
    """The chosen setting's tuning-split Top-1 minus the shipped setting's on the same queries, with a paired
    bootstrap CI and p-value: a choice inside the split's noise may not carry over to the test queries
    (style-canvas' instance unlearning won its tuning split by 2 queries of 350 and lost 0.045 on test).
    None when the shipped setting is chosen or did not run."""
    from guda_bench import power

    if best is None or best == 0 or 0 not in hits or best not in hits:
        return None
    shipped = np.asarray(hits[0], dtype=float)
    others = sorted(i for i in hits if i != 0)
    diffs = np.stack([np.asarray(hits[i], dtype=float) - shipped for i in others])  # (settings, queries)
    idx = power.boot_indices(diffs.shape[1], n_boot, seed)
    boots = np.stack([d[idx].mean(1) for d in diffs])  # (settings, n_boot), the same resamples for each
    chosen = others.index(best)
    observed = float(diffs[chosen].mean())
    return {"top1_diff": observed, **power.boot_test(boots[chosen]), "n_tune": int(diffs.shape[1]),
            **best_of_test(boots, diffs.mean(1), observed)}


def best_of_test(boots: np.ndarray, means: np.ndarray, observed: float) -> dict[str, Any]:
    """How often the best of the budget's settings beats the shipped one by `observed` or more when no
    setting is better: each setting's resampled gain is centred on its own mean and the largest is kept
    (a max-statistic bootstrap), so the p pays for having chosen the winner among several. The plain
    p-value asks about the winner alone, as if it had been named in advance. Doubled (capped at 1) to be
    two-sided like that p-value: with one alternative the two agree up to resampling."""
    null_max = (boots - means[:, None]).max(0)
    return {"p_best_of": float(min(1.0, 2 * np.mean(null_max >= observed))), "n_alternatives": int(len(means))}


def tuning_cost(settings: list[dict[str, Any]]) -> float:
    """Compute seconds of a tuning: each setting's own work, plus every artefact the settings used, once."""
    shared: dict[str, float] = {}
    own = 0.0
    for s in settings:
        used = s.get("used", {})
        own += max(s.get("cost_s", 0.0) - sum(used.values()), 0.0)
        shared.update(used)
    return own + sum(shared.values())


def tune_method(ctx: Any, entry: Entry, preset: Any, gold_tune: np.ndarray, budget: int, seed: int, out: Path,
                header: dict[str, Any]) -> dict[str, Any]:
    """Try the candidates of one method on the tuning view `ctx`; write its record after every setting."""
    record: dict[str, Any] = {**header, "method": entry.name, "budget": budget,
                              "space": to_jsonable(entry.space()), "settings": [], "status": "ok"}
    todo = candidates(entry, preset, budget, seed)
    hits: dict[int, np.ndarray] = {}  # per-query tuning Top-1 of each setting that ran (kept out of the record)
    with progress.bar(f"tune {entry.name}", len(todo)) as advance:
        for i, options in enumerate(todo):
            row: dict[str, Any] = {"options": to_jsonable(options), "shipped": i == 0}
            try:
                scored = score_setting(ctx, entry, options, preset, gold_tune)
                hits[i] = scored.pop("hits")
                row.update(status="ok", **scored)
            except Unavailable as exc:
                record.update(status="unavailable", reason=home_relative(str(exc)))  # no machine paths
                break
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a setting the method rejects is recorded, the others still run
                row.update(status="failed", reason=home_relative(f"{type(exc).__name__}: {exc}"))
            record["settings"].append(row)
            best = choose(record["settings"])
            chosen = record["settings"][best]["options"] if best is not None else None
            record.update(chosen_index=best, chosen=chosen,
                          at_edge=at_edge(record["space"], chosen, entry.declared_options),
                          chosen_vs_shipped=vs_shipped(hits, best),
                          tuning_cost_s=tuning_cost(record["settings"]))
            atomic_write_text(out, json.dumps(record, indent=1))
            advance(1)
    if record["status"] == "ok" and record.get("chosen") is None:
        record.update(status="failed", reason="no setting ran")
    atomic_write_text(out, json.dumps(record, indent=1))
    return record


def tune(spec: Any, budget: int = 8, tuning_dir: Path = Path("tuning"),
         candidate_seed: int | None = None) -> list[dict[str, Any]]:
    """`guda-bench tune`: tune every requested method with a search space on one board; return the records.
    `candidate_seed` picks the settings drawn from a grid larger than the budget (default: the run's seed);
    draws of one board (other --seed) given the same one try the same settings."""
    from guda_bench.executor import make_executor
    from guda_bench.registry import METHODS
    from guda_bench.runner import open_benchmark

    if budget < 1:
        raise BenchError(f"--budget must be >= 1, not {budget}")
    opened = open_benchmark(spec)
    entries = [METHODS.entry(n) for n in spec.methods]
    for e in entries:
        e.space()  # a bad space fails here, in one line, before anything is trained
    tunable = [e for e in entries if e.space()]
    if not tunable:
        verb = "declares" if len(spec.methods) == 1 else "declare"
        raise BenchError(f"nothing to tune: {', '.join(spec.methods)} {verb} no search space")
    check_output_dir(Path(tuning_dir), "--tuning-dir")  # its records are written as settings finish
    board = board_of(opened.bench, spec.targets)
    executor = make_executor(spec.executor, spec.ray_address, spec.task_threads)
    records = []
    try:
        ctx = opened.context(spec, executor)
        gold = ctx.gold()
        tune_idx = ctx.splits["tune"]
        gold_tune = gold[tune_idx].copy()  # the only gold the tuner sees
        del gold
        tune_ctx = ctx.on_queries(tune_idx, "tune")  # the methods see the tuning queries only
        drawn_with = spec.seed if candidate_seed is None else candidate_seed
        header = {"schema": SCHEMA, "board": board, "dataset": spec.dataset, "preset": opened.preset.name,
                  "grouping": opened.bench.grouping, "targets": list(spec.targets) if spec.targets else None,
                  "seed": spec.seed, "candidate_seed": drawn_with, "config_hash": tuning_hash(opened.preset),
                  "n_tune": int(len(tune_idx)),
                  "selection": "best tuning-split Top-1, then NDCG@3, then the earlier setting (shipped first)",
                  "ndcg_gain": opened.preset.ndcg_gain,
                  "truth_seeds": opened.preset.truth_seeds,  # LOGO studies averaged into the gold it was tuned on
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        for e in tunable:
            records.append(tune_method(tune_ctx, e, opened.preset, gold_tune, budget, drawn_with,
                                       tuning_path(tuning_dir, board, e.name), header))
    finally:
        executor.shutdown()
    return records


def tuned_options(entry: Entry, board: str, tuning_dir: Path, config_hash: str, seed: int) -> dict[str, Any] | None:
    """The chosen setting of `entry` on `board` (for `run --tuned`), checked; one-line errors otherwise.
    None for a method that was unavailable when tuned: its shipped row says why, and it gets no tuned row."""
    path = tuning_path(tuning_dir, board, entry.name)
    if not path.exists():
        raise BenchError(f"--tuned: {entry.name} was not tuned for {board} ({path} is missing; run guda-bench tune "
                         f"... --method {entry.name})")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BenchError(f"--tuned: {path} is not valid JSON ({exc.msg})") from None
    if record.get("config_hash") != config_hash or record.get("seed") != seed:
        raise BenchError(f"--tuned: {path} was tuned for another preset configuration or seed (retune)")
    if record.get("status") == "unavailable":
        return None
    if record.get("status") != "ok" or record.get("chosen") is None:
        raise BenchError(f"--tuned: {path} has no chosen setting ({record.get('reason', record.get('status'))})")
    options = entry.check_options(record["chosen"], f"tuning file {path}:")
    return {"options": options, "budget": record["budget"], "tuning_cost_s": record["tuning_cost_s"],
            "chosen_index": record["chosen_index"], "n_settings": len(record["settings"]),
            "chosen_vs_shipped": record.get("chosen_vs_shipped"),  # older records lack it
            "tune_top1": record["settings"][record["chosen_index"]]["tune"]["top1"], "file": str(path),
            # derived, not read from the record: older records lack it, and the declared modes may have changed
            "at_edge": at_edge(record.get("space", {}), record["chosen"], entry.declared_options)}


def summary_table(records: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    from guda_bench.power import p_text

    table = Table(title="tuning (scored on the tuning split only)")
    for col in ("method", "settings", "shipped tune Top-1", "best tune Top-1", "gain (paired p, best-of-N p)", "chosen",
                "at grid edge", "cost s", "status"):
        table.add_column(col)
    for r in records:
        sets = r["settings"]
        shipped = sets[0]["tune"]["top1"] if sets and sets[0]["status"] == "ok" else None
        best = sets[r["chosen_index"]]["tune"]["top1"] if r.get("chosen_index") is not None else None
        gain = r.get("chosen_vs_shipped")
        table.add_row(r["method"], str(len(sets)), "-" if shipped is None else f"{shipped:.3f}",
                      "-" if best is None else f"{best:.3f}",
                      "-" if not gain else f"{gain['top1_diff']:+.3f} (p "
                      + ", ".join(p_text(gain[k]) for k in ("p_value", "p_best_of") if k in gain) + ")",
                      "shipped" if r.get("chosen_index") == 0 else json.dumps(r.get("chosen")),
                      ", ".join(r.get("at_edge", [])) or "-",
                      f"{r.get('tuning_cost_s', 0):.1f}", r["status"] + (f": {r['reason']}" if r.get("reason") else ""))
    return table
