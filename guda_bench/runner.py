"""Runs the ground truth and every requested method; turns failures into status rows.

The runner names no concrete method: it knows the ground truth (LOGOA, from the core) and the
registry. A method that raises `Unavailable` gets status "unavailable"; one that raises anything
else or returns a wrong shape / non-finite values gets status "failed"; the run goes on.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from guda_bench import metrics, progress
from guda_bench.base_model import ENV_BASE_MODEL, BaseModel
from guda_bench.benchmark import Benchmark
from guda_bench.config import canonical_hash
from guda_bench.context import Context, add_seconds, gold_of
from guda_bench.errors import BenchError, Unavailable
from guda_bench.executor import make_executor
from guda_bench.groupings import apply_grouping, parse_grouping, recorded_grouping
from guda_bench.lds import LdsConfig, LdsTruth, ceiling_lds, draw_subsets, lds_truth, save_truth, size_share
from guda_bench.method import KNOWN_REQUIREMENTS
from guda_bench.precision import check_precision
from guda_bench.provenance import environment
from guda_bench.registry import DATASETS, METHODS
from guda_bench.results import SCHEMA_VERSION, TUNED_SUFFIX, print_table, save_scores, write_run
from guda_bench.store import Store, atomic_write_bytes, check_output_dir
from guda_bench.targets import with_targets
from guda_bench.text import QUERY_MODES


@dataclass
class RunSpec:
    methods: list[str]
    dataset: str = "digits"
    preset: str = "default"
    grouping: str = "class"
    targets: tuple[str, ...] | None = None  # candidate groups (--targets); the others are background
    out: Path = Path("runs/latest")
    cache: Path = Path(".guda-cache")
    seed: int = 0
    ceiling_seeds: int | None = None
    truth_seeds: int | None = None  # LOGO studies averaged into the truth (--truth-seeds; None: the preset's)
    device: str = "cpu"
    quiet: bool = False
    method_timeout: float | None = None  # seconds per method (prepare + score); None: no limit
    method_options: dict[str, dict[str, str]] = field(default_factory=dict)  # --option NAME.KEY=VALUE
    data_root: Path | None = None  # for adapters that read local files (--data-root)
    executor: str = "local"  # "local" or "ray" (per-group jobs fanned out over a Ray cluster)
    ray_address: str | None = None
    task_threads: int | None = None  # torch threads per Ray task (None: the driver's)
    precision: str = "fp32"  # "bf16": CUDA bf16 autocast (its own cache keys)
    base_model: Path | None = None  # a local diffusers pipeline folder, for presets that fine-tune one
    tuned: bool = False  # also score each tunable method at its tuned setting (row NAME@tuned; --tuned)
    tuning_dir: Path = Path("tuning")
    tuned_settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # filled from the tuning files
    command: str | None = None  # the command as the user typed it (default: from sys.argv)
    truth: str = "logo"  # "lds": LOGO plus the group LDS truth (every row gains LDS columns; SPEC §10)
    lds: LdsConfig = field(default_factory=LdsConfig)
    lds_ceiling: bool = False  # a second, independently seeded set of subset models: the LDS noise ceiling
    query_mode: str | None = None  # text-to-image: "prompted" or "two-style" (--query-mode; None: the preset's)
    # the CLI's: when no requested method can run on this machine, one error line before the truth, not rows of
    # reasons after it (the API and `guda-bench check` keep the rows)
    refuse_if_nothing_runs: bool = False


def resolve_base_model(spec: RunSpec, preset: Any) -> BaseModel | None:
    """The pretrained pipeline folder a fine-tune preset needs (--base-model, else $GUDA_BENCH_BASE_MODEL)."""
    folder = spec.base_model or (Path(os.environ[ENV_BASE_MODEL]) if os.environ.get(ENV_BASE_MODEL) else None)
    if preset.base_model is None:
        if spec.base_model is not None:
            raise BenchError(f"preset {preset.name!r} trains from scratch: drop --base-model")
        return None
    if folder is None:
        raise BenchError(f"preset {preset.name!r} fine-tunes a local pipeline ({preset.base_model.description}): "
                         f"pass --base-model PATH or set ${ENV_BASE_MODEL}")
    return BaseModel(folder, preset.base_model.encode_batch)  # checks the folder now, before anything is built


def make_adapter(name: str, data_root: str | Path | None = None) -> Any:
    """The registered dataset adapter, given its local data root when there is one."""
    entry = DATASETS.entry(name)
    if data_root is None:
        return entry.create()
    try:
        adapter = entry.cls(root=data_root)  # type: ignore[call-arg]
    except TypeError:
        raise BenchError(f"dataset {name!r} reads no local files: drop --data-root") from None
    adapter.name = entry.name
    return adapter


def check_query_mode(mode: str) -> None:
    if mode not in QUERY_MODES:
        raise BenchError(f"--query-mode must be one of {', '.join(QUERY_MODES)}, not {mode!r}")


class MethodTimeout(Exception):
    """Raised inside a method that ran past --method-timeout."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the main thread after `seconds` (SIGALRM; a no-op without a limit or off the main thread)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise MethodTimeout(f"timed out after {seconds:g} s (--method-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def benchmark_of(run: dict[str, Any]) -> Benchmark:
    """Rebuild a finished run's training data (adapter, preset, grouping, targets) from its results.json "run"
    block."""
    spec = recorded_grouping(run.get("grouping_params") or {"name": "class"})
    adapter = make_adapter(run["dataset"], run.get("data_root"))
    bench = apply_grouping(adapter.load(adapter.preset(run["preset"])), spec)
    return with_targets(bench, tuple(run["targets"]) if run.get("targets") else None)


def user_command(argv: list[str]) -> str:
    """The command as a reader would retype it: `guda-bench ...`, never the path of the executable that ran."""
    if not argv:
        return ""
    return " ".join(["guda-bench", *(shlex.quote(a) for a in argv[1:])])


def truth_hash(gold: np.ndarray, queries_key: str) -> str:
    """Identity of a ground truth: its LOGOA matrix and the cache key of the queries it scores."""
    return canonical_hash({"gold": gold.tobytes().hex(), "queries": queries_key})


def check_truth_seeds(preset: Any, explicit_studies: bool) -> Any:
    """The truth averages `truth_seeds` LOGO studies; a noise ceiling must be built the same way (as many
    further studies), or it would understate (fewer) or overstate (more) how far the truth agrees with itself."""
    n, studies = preset.truth_seeds, preset.ceiling_seeds
    if studies < n:
        if explicit_studies:
            raise BenchError(f"--ceiling-seeds {studies} is fewer LOGO studies than the truth averages "
                             f"(--truth-seeds {n}): use --ceiling-seeds {n} (no ceiling) or {2 * n}")
        return replace(preset, ceiling_seeds=n)
    if n < studies < 2 * n:
        raise BenchError(f"a noise ceiling for a truth of {n} LOGO seeds needs {n} more: --ceiling-seeds {2 * n} "
                         f"(or {n} for no ceiling), not {studies}")
    return preset


def ceiling_reason(truth_seeds: int, studies: int) -> str:
    """Which LOGO studies the noise-ceiling row compares (1-based seeds, as a reader counts them)."""
    def seeds(a: int, b: int) -> str:
        return f"seed {a}" if a == b else f"seeds {a}..{b}"
    extra = "" if truth_seeds == 1 else " (means)"
    return f"LOGO {seeds(truth_seeds + 1, studies)} vs {seeds(1, truth_seeds)}{extra}"


def check_runs_on_machine(method: Any, device: str) -> None:
    """Unavailable when `method` cannot run on this machine or installation whatever the board: a CUDA device,
    then its own check_available (weights, extras)."""
    if "cuda" in method.requires and not device.startswith("cuda"):
        raise Unavailable("needs a CUDA device (run with --device cuda on a GPU machine)")
    check = getattr(method, "check_available", None)  # a plugin written before the hook has none
    if check is not None:
        check()


def check_runs_here(method: Any, device: str, bench: Benchmark) -> None:
    """Unavailable (with the reason) when `method` cannot run on this benchmark and machine."""
    missing = set(method.requires) - KNOWN_REQUIREMENTS
    if missing:
        raise Unavailable(f"declares unknown requirements {sorted(missing)}")
    if "text_conditional" in method.requires and bench.text is None:
        raise Unavailable("needs a text-to-image benchmark (prompts), e.g. --dataset styled-digits")
    if "unconditional_model" in method.requires and bench.text is not None:
        raise Unavailable("runs on unconditional models only (its fine-tune passes no text condition); "
                          "for text-to-image use guda-c")
    check_runs_on_machine(method, device)


def shipped_options(spec: RunSpec, preset: Any, name: str) -> dict[str, Any]:
    """The settings a method's shipped row runs at: the preset's options, then the user's --option."""
    return {**preset.method_options.get(name, {}), **spec.method_options.get(name, {})}


def check_something_runs(spec: RunSpec, preset: Any) -> None:
    """When no requested method can run on this machine, say so in one line before the truth is built for
    nothing. A method that cannot run on this board (a text-only method on digits) still gets its row: that is
    a fact about the board, which a board records; a missing weights file is not."""
    reasons = {}
    for name in spec.methods:
        try:
            check_runs_on_machine(METHODS.entry(name).create(shipped_options(spec, preset, name)), spec.device)
        except Unavailable as exc:
            reasons[name] = str(exc)
        except Exception:  # noqa: BLE001 - anything else is the row's to report, as when it runs
            return
        else:
            return
    raise BenchError("nothing to run here: " + "; ".join(f"{n}: {why}" for n, why in reasons.items()))


def drop_stale_scores(out: Path) -> None:
    """An earlier run's score files in `out` (not other files), removed only as this run's truth is written:
    until then the folder stays the earlier run, whole, however long the truth takes or wherever it stops."""
    if (out / "results.json").exists():
        for stale in (out / "scores").glob("*.npy"):
            stale.unlink()


def check_device(device: str) -> None:
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise BenchError(f"--device must be cpu or cuda, not {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("--device cuda was asked for, but torch sees no CUDA device here")


def class_sanity(bench: Benchmark, queries: torch.Tensor, gold: np.ndarray) -> float | None:
    """Share of queries whose top LOGOA group is the group of the class a simple classifier assigns."""
    if bench.grouping != "class":
        return None
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=3000).fit(bench.images.flatten(1).numpy(), bench.labels)
    predicted = clf.predict(queries.flatten(1).numpy())
    group_of_class = {int(c): int(g) for c, g in zip(bench.labels, bench.group_of, strict=True)}
    return float(np.mean([group_of_class[int(c)] == int(g) for c, g in zip(predicted, gold.argmax(1),
                                                                              strict=True)]))


def sanity_key(bench: Benchmark) -> str:
    """Text-to-image benchmarks group by style: their classifier is a style classifier ("style_sanity")."""
    return "style_sanity" if bench.text is not None else "class_sanity"


def per_group(scores: np.ndarray, gold: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Group-level results: for queries whose true top group is k, how often the method agrees."""
    top_s, top_g = scores.argmax(1), gold.argmax(1)
    rows = []
    for k, name in enumerate(names):
        sel = top_g == k
        rows.append({"group": name, "n_queries": int(sel.sum()),
                     "top1": float((top_s[sel] == k).mean()) if sel.any() else None,
                     "predicted_top": int((top_s == k).sum())})
    return rows


def validate_scores(scores: Any, shape: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"scores have shape {arr.shape}, expected {shape} (queries x groups)")
    if not np.isfinite(arr).all():
        raise ValueError(f"scores contain {int((~np.isfinite(arr)).sum())} non-finite values")
    return arr


@dataclass
class Opened:
    """A benchmark ready to score on: its preset (as the adapter fitted it), data, cache and executor."""

    preset: Any
    bench: Benchmark
    store: Store
    base_model: BaseModel | None

    def context(self, spec: RunSpec, executor: Any) -> Context:
        return Context(self.bench, self.store, seed=spec.seed, device=spec.device, executor=executor,
                       precision=spec.precision, base_model=self.base_model)


def open_benchmark(spec: RunSpec) -> Opened:
    """Everything a run or a tuning needs before the first model is built, checked (one-line errors)."""
    progress.set_enabled(not spec.quiet)
    check_device(spec.device)
    check_precision(spec.precision, spec.device)
    adapter = make_adapter(spec.dataset, spec.data_root)
    ok, why = adapter.available()
    if not ok:
        raise BenchError(f"dataset {spec.dataset!r} is not available here: {why}")
    preset = adapter.preset(spec.preset)
    base_model = resolve_base_model(spec, preset)
    grouping = parse_grouping(spec.grouping)
    if spec.ceiling_seeds is not None:
        if spec.ceiling_seeds < 1:
            raise BenchError("--ceiling-seeds must be >= 1")
        preset = replace(preset, ceiling_seeds=spec.ceiling_seeds)
    if spec.truth_seeds is not None:
        if spec.truth_seeds < 1:
            raise BenchError("--truth-seeds must be >= 1")
        preset = replace(preset, truth_seeds=spec.truth_seeds)
    preset = check_truth_seeds(preset, explicit_studies=spec.ceiling_seeds is not None)
    for name in spec.methods:
        METHODS.entry(name)
    for name in spec.method_options:
        if name not in spec.methods:
            raise BenchError(f"--option for {name!r}, which is not in --method")
    # every setting typed and checked now, before anything is trained (one-line errors)
    spec.method_options = {n: METHODS.entry(n).check_options(o) for n, o in spec.method_options.items()}
    for name in spec.methods:
        METHODS.entry(name).check_options(preset.method_options.get(name, {}), f"preset {preset.name!r} option")
    if spec.truth not in ("logo", "lds"):
        raise BenchError(f"--truth must be logo or lds, not {spec.truth!r}")
    if spec.truth == "lds":
        spec.lds.check()
    elif spec.lds_ceiling:
        raise BenchError("--lds-ceiling needs --truth lds")
    if spec.lds_ceiling and preset.ceiling_seeds <= preset.truth_seeds:
        raise BenchError(f"--lds-ceiling fills the noise-ceiling row: add --ceiling-seeds {2 * preset.truth_seeds}")
    if spec.targets is None and preset.targets:  # an UnlearnCanvas-shaped preset names its evaluated styles
        spec.targets = tuple(preset.targets)
    if spec.query_mode is not None:
        if preset.text is None:
            raise BenchError(f"--query-mode is for text-to-image datasets; {spec.dataset!r} has no prompts")
        preset = replace(preset, queries=replace(preset.queries, mode=spec.query_mode))
    check_query_mode(preset.queries.mode)
    bench = with_targets(apply_grouping(adapter.load(preset), grouping), spec.targets)
    if bench.n_groups < 3:
        raise BenchError(f"grouping {bench.grouping!r} gives {bench.n_groups} groups; NDCG@3 and Top-3 need >= 3")
    if spec.truth == "lds":
        draw_subsets(bench.n_groups, spec.lds)  # a subset that keeps no group: one line, before any training
    if spec.tuned:  # every chosen setting read and checked now: a missing tuning file stops the run here
        from guda_bench.tuning import board_of, tuned_options, tuning_hash

        board = board_of(bench, spec.targets)
        chosen = {n: tuned_options(METHODS.entry(n), board, spec.tuning_dir, tuning_hash(bench.preset), spec.seed)
                  for n in spec.methods if METHODS.entry(n).space()}
        if not chosen:
            raise BenchError(f"--tuned adds rows at tuned settings, and {', '.join(spec.methods)} "
                             f"{'has' if len(spec.methods) == 1 else 'have'} nothing to tune (no search space)")
        spec.tuned_settings = {n: c for n, c in chosen.items() if c is not None}
    # bench.preset: an adapter may fit the preset to its data (e.g. the image channels)
    return Opened(bench.preset, bench, Store(spec.cache, log=progress.log), base_model)


def run(spec: RunSpec) -> dict[str, Any]:
    """Build (or load) the ground truth, run the methods, write the run folder; return the results dict."""
    opened = open_benchmark(spec)
    if spec.refuse_if_nothing_runs:
        check_something_runs(spec, opened.preset)
    check_output_dir(spec.out)
    provenance = environment(spec.device)  # the source as the run starts (files may change while it runs)
    executor = make_executor(spec.executor, spec.ray_address, spec.task_threads)
    try:
        return _run(spec, opened.preset, opened.bench, opened.context(spec, executor), provenance)
    finally:
        executor.shutdown()


@dataclass
class Scoring:
    """Scores a [queries x groups] matrix on the test split against the truth: the board's metrics, both NDCG
    gains and (with --truth lds) group LDS, all on the same bootstrap resamples."""

    gold: np.ndarray
    test: np.ndarray
    preset: Any
    seed: int
    lds: LdsTruth | None = None

    def summarize(self, scores: np.ndarray, with_lds: bool = True) -> dict[str, Any]:
        test, gold, n_boot = self.test, self.gold, self.preset.n_boot
        out = metrics.summarize(scores[test], gold[test], n_boot=n_boot, seed=self.seed,
                                ndcg_gain=self.preset.ndcg_gain)
        for gain in metrics.NDCG_GAINS:  # both variants; the board's own is "ndcg@3" (same resamples)
            out[f"ndcg@3_{gain}"] = out["ndcg@3"] if gain == self.preset.ndcg_gain else metrics.summarize_values(
                metrics.ndcg_at_k(scores[test], gold[test], 3, gain), n_boot=n_boot, seed=self.seed)
        if self.lds is not None and with_lds:
            out["lds"] = self.summarize_lds(self.lds.lds(scores))
        return out

    def summarize_lds(self, per_query: np.ndarray) -> dict[str, Any]:
        """Mean and bootstrap CI over the test queries of a per-query group LDS (the same resamples as Top-1)."""
        return metrics.summarize_values(per_query[self.test], n_boot=self.preset.n_boot, seed=self.seed)


def _run(spec: RunSpec, preset: Any, bench: Benchmark, ctx: Context, provenance: dict[str, Any]) -> dict[str, Any]:
    t_start = time.perf_counter()
    _ = ctx.full_unet, ctx.queries  # the model under attribution and its queries: given to every method
    with ctx.stage() as logo_stage:  # one LOGO study: what every speedup divides, whatever the truth averages
        first = ctx.logoa(0)
    with ctx.stage() as more_stage:
        gold = gold_of([first, *(ctx.logoa(s) for s in range(1, preset.truth_seeds))])
    results = _run_record(spec, preset, bench, ctx, provenance, gold,
                          truth_cost=logo_stage["cost_s"] + more_stage["cost_s"], logo_cost=logo_stage["cost_s"])
    lds = None
    if spec.truth == "lds":
        with ctx.stage() as lds_stage:
            lds = lds_truth(ctx, spec.lds)
        results["run"]["lds"] = ({"subsets": "all", "n_subsets": len(lds.kept)} if spec.lds.exhaustive else
                                 {"subsets": spec.lds.subsets, "alpha": spec.lds.alpha, "seed": spec.lds.seed})
        results["truth"]["lds"] = {"cost_s": lds_stage["cost_s"], "kept": lds.kept.astype(int).tolist(),
                                   "size_spearman": size_share(lds.kept, lds.losses[ctx.splits["test"]])}
        results["truth"]["artefacts"]["lds"] = [lds.key]
    drop_stale_scores(spec.out)
    if lds is not None:
        save_truth(spec.out, lds)
    save_scores(spec.out, "_truth_logoa", gold)
    atomic_write_bytes(spec.out / "queries.npy", lambda p: np.save(open(p, "wb"), ctx.query_images.numpy()))
    write_run(spec.out, results)
    scoring = Scoring(gold, ctx.splits["test"], preset, spec.seed, lds)
    if preset.ceiling_seeds > preset.truth_seeds:
        results["rows"].append(_ceiling_row(spec, preset, bench, ctx, scoring, results))
        write_run(spec.out, results)
    for row_name, name, options, tuning in _row_plan(spec, preset):
        row = _method_row(spec, bench, ctx, scoring, row_name, name, options, tuning, logo_stage["cost_s"])
        results["rows"].append(row)
        write_run(spec.out, results)
        if row["status"] != "ok":
            progress.log(f"{row_name}: {row['status']}: {row['reason']}")
    results["run"]["wall_s"] = time.perf_counter() - t_start
    write_run(spec.out, results)
    if not spec.quiet:
        print_table(results)
    return results


def _run_record(spec: RunSpec, preset: Any, bench: Benchmark, ctx: Context, provenance: dict[str, Any],
                gold: np.ndarray, truth_cost: float, logo_cost: float) -> dict[str, Any]:
    """results.json before any row: what was run, where, and the truth every row is scored against."""
    store = ctx.store
    full_share = ctx.full_terms().mean(0) / ctx.full_terms().mean(0).sum()
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "command": spec.command or user_command(sys.argv),
            "dataset": spec.dataset, "data_root": str(spec.data_root) if spec.data_root else None,
            "preset": preset.name, "grouping": bench.grouping,
            "grouping_params": bench.grouping_params or {"name": "class"},
            "targets": list(spec.targets) if spec.targets else None,
            "n_background": bench.n_background, "seed": spec.seed,
            "ceiling_seeds": preset.ceiling_seeds, "truth_seeds": preset.truth_seeds,
            "device": spec.device, "precision": spec.precision,
            "base_model": {"path": str(ctx.base.folder), "fingerprint": ctx.base.fingerprint} if ctx.base else None,
            "n_groups": bench.n_groups, "groups": bench.group_names, "n_train": len(bench.images),
            "n_queries": len(ctx.queries), "n_test": len(ctx.splits["test"]), "n_tune": len(ctx.splits["tune"]),
            "ndcg_gain": preset.ndcg_gain, "query_mode": preset.queries.mode if bench.text is not None else None,
            "config_hash": canonical_hash(preset), "truth_hash": truth_hash(gold, ctx.queries_artefact.key),
            "data_hash": ctx.data_hash,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "preset_config": preset,
        },
        "provenance": provenance,
        "splits": {k: v.tolist() for k, v in ctx.splits.items()},
        "truth": {"cost_s": truth_cost, "logo_study_cost_s": logo_cost,
                  # where that cost was measured (a bundle's truth: on the machine that built it); "" if unrecorded
                  "logo_machine": store.lookup("logoa", ctx.logoa_spec(0)).manifest.get("machine", ""),
                  sanity_key(bench): class_sanity(bench, ctx.query_images, gold),
                  "elbo_timesteps": ctx.scorer.timesteps, "full_term_share": full_share.tolist(),
                  "elbo_weighting": preset.elbo.weighting,
                  # cache entries a ground-truth bundle carries (guda-bench bundle export)
                  "artefacts": {"model": [ctx.full.key], "queries": [ctx.queries_artefact.key],
                                "logoa": [store.key("logoa", ctx.logoa_spec(s)) for s in range(preset.ceiling_seeds)]}},
        "rows": [],
    }


def _ceiling_row(spec: RunSpec, preset: Any, bench: Benchmark, ctx: Context, scoring: Scoring,
                 results: dict[str, Any]) -> dict[str, Any]:
    """The noise-ceiling row: further LOGO studies, averaged as the truth is, scored as a method (and, with
    --lds-ceiling, a second seed's subset models for group LDS, whose cost and key go into `results`)."""
    test, gold = scoring.test, scoring.gold
    extra = gold_of([ctx.logoa(s) for s in range(preset.truth_seeds, preset.ceiling_seeds)])  # as the truth
    save_scores(spec.out, "_ceiling_logoa", extra)
    # LOGOA of another seed is not the LDS ceiling: that needs its own subset models (--lds-ceiling)
    row = {"method": "noise-ceiling", "kind": "ceiling", "status": "ok", "metrics": scoring.summarize(extra, False),
           "per_group": per_group(extra[test], gold[test], bench.group_names),
           "reason": ceiling_reason(preset.truth_seeds, preset.ceiling_seeds)}
    if scoring.lds is not None and spec.lds_ceiling:
        with ctx.stage() as again:
            second = lds_truth(ctx, spec.lds, study=1)
        results["truth"]["lds"]["ceiling_cost_s"] = again["cost_s"]
        results["truth"]["artefacts"]["lds"].append(second.key)
        save_truth(spec.out, scoring.lds, second)
        row["metrics"]["lds"] = scoring.summarize_lds(ceiling_lds(scoring.lds.losses, second.losses))
        row["reason"] += "; LDS: a second seed's subset models vs the first"
    return row


def _row_plan(spec: RunSpec, preset: Any) -> list[tuple[str, str, dict[str, Any], dict[str, Any] | None]]:
    """(row name, method, options, tuning record) per row: each method as shipped, then NAME@tuned if tuned."""
    plan: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = []
    for name in spec.methods:
        plan.append((name, name, shipped_options(spec, preset, name), None))
        if name in spec.tuned_settings:
            tuned = spec.tuned_settings[name]
            options = {**preset.method_options.get(name, {}), **tuned["options"]}
            plan.append((f"{name}{TUNED_SUFFIX}", name, options, tuned))
    return plan


def _method_row(spec: RunSpec, bench: Benchmark, ctx: Context, scoring: Scoring, row_name: str, name: str,
                options: dict[str, Any], tuning: dict[str, Any] | None, logo_cost: float) -> dict[str, Any]:
    """One method's row: ok with its metrics and cost, or unavailable / failed with the reason (a failing
    method must not stop the others)."""
    entry = METHODS.entry(name)
    test, gold = scoring.test, scoring.gold
    row: dict[str, Any] = {"method": row_name, "kind": "method", "family": getattr(entry.cls, "family", ""),
                           "source": entry.source, "description": entry.description}
    if tuning is not None:
        row["tuning"] = {k: tuning[k] for k in ("budget", "tuning_cost_s", "chosen_index", "n_settings",
                                                "tune_top1", "at_edge", "chosen_vs_shipped")}
    try:
        method = entry.create(options)
        check_runs_here(method, spec.device, bench)
        with time_limit(spec.method_timeout):
            with ctx.stage() as prep:
                method.prepare(ctx)
            with ctx.stage() as sc:
                scores = validate_scores(method.score(ctx), (len(ctx.queries), bench.n_groups))
        cost = prep["cost_s"] + sc["cost_s"]
        cost_machines = dict(prep["machines"])
        for machine, seconds in sc["machines"].items():
            add_seconds(cost_machines, machine, seconds)
        row.update(status="ok", metrics=scoring.summarize(scores), prepare_s=prep["wall_s"], score_s=sc["wall_s"],
                   prepare_cost_s=prep["cost_s"], score_cost_s=sc["cost_s"], cost_s=cost,
                   cost_machines=cost_machines,
                   speedup=logo_cost / cost if cost > 0 else None,
                   settings=method.describe_settings(),
                   tune_top1=float(metrics.per_query_metrics(scores[ctx.splits["tune"]],
                                                             gold[ctx.splits["tune"]])["top1"].mean()),
                   per_group=per_group(scores[test], gold[test], bench.group_names))
        save_scores(spec.out, row_name, scores)
    except Unavailable as exc:
        row.update(status="unavailable", reason=str(exc))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a failing method must not stop the others
        row.update(status="failed", reason=f"{type(exc).__name__}: {exc}",
                   traceback=traceback.format_exc(limit=5))
    return row
