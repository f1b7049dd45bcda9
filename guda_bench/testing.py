"""`check_method`: the method contract, runnable by a plugin author (in the spirit of scikit-learn's
check_estimator). It scores the method on a tiny built-in benchmark (3 groups of random blobs, tiny
diffusers models: seconds on a CPU) through the real runner, twice with fresh caches, and reports which
parts of the contract hold: declarations, shape and finiteness, determinism under one seed,
`Unavailable` semantics, declared `requires` honoured, settings that serialise, and prepare/score time.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from guda_bench.benchmark import Benchmark
from guda_bench.config import ElboConfig, ModelConfig, Preset, QueryConfig, TrainRecipe, UnlearnConfig
from guda_bench.errors import BenchError

CHECK_DATASET = "check-tiny"
CHECK_PRESET = Preset(name="tiny", model=ModelConfig(block_out_channels=(8, 16), norm_num_groups=4),
                      recipe=TrainRecipe(steps=6, batch_size=8, warmup_steps=1),
                      elbo=ElboConfig(t_start=10, t_stop=1000, t_stride=250),
                      queries=QueryConfig(n_queries=8, inference_steps=5, batch_size=8),
                      unlearn=UnlearnConfig(steps=2, pair_batch=4), n_boot=50)


def tiny_blobs(preset: Preset, name: str = CHECK_DATASET) -> Benchmark:
    """3 groups of 8 noisy copies of a random 8x8 mean image each (seeded)."""
    g = torch.Generator().manual_seed(0)
    means = torch.rand((3, 1, 8, 8), generator=g) * 2 - 1
    group_of = np.repeat(np.arange(3), 8)
    images = (means[group_of] + 0.2 * torch.randn((24, 1, 8, 8), generator=g)).clamp(-1, 1)
    return Benchmark(name, "class", images, group_of.copy(), group_of, ["a", "b", "c"], preset)


def register_check_dataset() -> None:
    """The tiny benchmark as a registered dataset (idempotent)."""
    from guda_bench.datasets.base import DatasetAdapter
    from guda_bench.registry import DATASETS

    if CHECK_DATASET in DATASETS.names():
        return

    class CheckTiny(DatasetAdapter):
        """Random blobs for guda_bench.testing.check_method."""

        presets = {"tiny": CHECK_PRESET}

        def load(self, preset: Preset) -> Benchmark:
            return tiny_blobs(preset)

    DATASETS.register(CHECK_DATASET, description="tiny random blobs (check_method)")(CheckTiny)


@dataclass
class Check:
    name: str
    status: str  # "pass" | "fail" | "skip"
    detail: str = ""


@dataclass
class CheckReport:
    method: str
    checks: list[Check] = field(default_factory=list)
    row: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def add(self, name: str, passed: bool | None, detail: str = "") -> None:
        self.checks.append(Check(name, "skip" if passed is None else "pass" if passed else "fail", detail))

    def text(self) -> str:
        lines = [f"check_method {self.method}: {'PASSED' if self.ok else 'FAILED'}"]
        lines += [f"  {c.status.upper():4s}  {c.name}" + (f": {c.detail}" if c.detail else "") for c in self.checks]
        return "\n".join(lines)


def _entry_for(name_or_class: str | type) -> tuple[Any, bool]:
    """(registry entry, whether it was registered here for the check and must be removed after)."""
    from guda_bench.registry import METHODS

    if isinstance(name_or_class, str):
        return METHODS.entry(name_or_class), False
    for e in METHODS.entries():
        if e.cls is name_or_class and not e.options:
            return e, False
    name = f"check-{name_or_class.__name__.lower()}"
    METHODS.register(name, description="under check_method")(name_or_class)
    return METHODS.entry(name), True


def _declarations(report: CheckReport, entry: Any) -> None:
    from guda_bench.method import KNOWN_REQUIREMENTS
    from guda_bench.options import Option

    requires = set(getattr(entry.cls, "requires", set()))
    unknown = requires - KNOWN_REQUIREMENTS
    report.add("requires are known", not unknown,
               f"unknown {sorted(unknown)} (known: {', '.join(sorted(KNOWN_REQUIREMENTS))})" if unknown
               else ", ".join(sorted(requires)) or "none")
    declared = entry.declared_options
    if declared is None:
        report.add("options declared", None, "no OPTIONS: --option values reach the constructor unchecked")
    else:
        bad = [k for k, o in declared.items() if not isinstance(o, Option)]
        report.add("options declared", not bad, f"not Option: {bad}" if bad else f"{len(declared)} typed options")
    try:
        space = entry.space()
        report.add("search space valid", True, ", ".join(f"{k} x{len(v)}" for k, v in space.items()) or
                   "nothing to tune")
    except BenchError as exc:
        report.add("search space valid", False, str(exc))


TRUTH_KINDS = ("model", "queries", "logoa")  # the full model, its queries and the LOGO truth; never a method's own


def seed_truth(src: Path, dst: Path) -> None:
    """Copy the ground-truth cache entries of `src` into `dst`, so a second run rebuilds only the method's own."""
    import shutil

    for kind in TRUTH_KINDS:
        if (src / kind).is_dir() and not (dst / kind).exists():
            shutil.copytree(src / kind, dst / kind)


def _run_once(entry: Any, root: Path, tag: str, device: str,
              truth: Path | None) -> tuple[dict[str, Any], np.ndarray | None]:
    from guda_bench.runner import RunSpec, run

    out, cache = root / f"run-{tag}", root / f"cache-{tag}"
    if truth is not None:
        seed_truth(truth, cache)
    results = run(RunSpec(methods=[entry.name], dataset=CHECK_DATASET, preset="tiny", out=out,
                          cache=cache, quiet=True, device=device))
    row = next(r for r in results["rows"] if r["method"] == entry.name)
    path = out / "scores" / f"{entry.name}.npy"
    return row, (np.load(path) if path.exists() else None)


def check_method(name_or_class: str | type, *, device: str = "cpu", workdir: Path | None = None,
                 truth_cache: Path | None = None) -> CheckReport:
    """Run the method contract on the tiny built-in benchmark; return a report (``report.ok``, ``report.text()``).

    The method runs twice, each time with a cache that holds only the ground truth (built by the first run,
    or copied from `truth_cache`, a cache of an earlier check), so its own artefacts are built twice.
    """
    from guda_bench import progress
    from guda_bench.runner import check_device

    check_device(device)
    register_check_dataset()
    entry, temporary = _entry_for(name_or_class)
    report = CheckReport(entry.name)
    previous = progress.enabled()
    try:
        _declarations(report, entry)
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            row, scores = _run_once(entry, Path(tmp), "a", device, truth_cache)
            report.row = row
            _check_row(report, entry, row, scores, device)
            if row["status"] == "ok":
                row_b, scores_b = _run_once(entry, Path(tmp), "b", device, truth_cache or Path(tmp) / "cache-a")
                same = scores_b is not None and np.array_equal(scores, scores_b)
                report.add("same scores twice under one seed (fresh caches)", same,
                           "" if same else f"max |diff| {np.abs(scores - scores_b).max():.3g}"
                           if scores_b is not None else f"second run: {row_b['status']}")
    finally:
        progress.set_enabled(previous)
        if temporary:
            from guda_bench.registry import METHODS

            METHODS._entries.pop(entry.name, None)
    return report


def _check_row(report: CheckReport, entry: Any, row: dict[str, Any], scores: np.ndarray | None, device: str) -> None:
    requires = set(getattr(entry.cls, "requires", set()))
    unmet = {r for r in requires if (r == "cuda" and not device.startswith("cuda")) or r == "text_conditional"
             or r == "clip_weights"}
    status, reason = row["status"], row.get("reason", "")
    if status == "failed":
        report.add("runs on the tiny benchmark", False, reason)
        return
    if status == "unavailable":
        report.add("Unavailable says why", bool(reason.strip()), reason or "empty reason")
        report.add("scores checked", None, f"not run here (declares {sorted(unmet)})" if unmet else
                   "not run here: it raised Unavailable although its `requires` are met (declare what it needs)")
        return
    hard = unmet - {"clip_weights"}  # weights may be found locally; cuda / text must have stopped it
    report.add("declared requires honoured", not hard,
               f"ran although it declares {sorted(hard)}" if hard else "met here")
    shape_ok = scores is not None and scores.shape == (8, 3) and bool(np.isfinite(scores).all())
    report.add("scores shape [queries, groups] and finite", shape_ok,
               f"{None if scores is None else list(scores.shape)}")
    try:
        json.dumps(row.get("settings", {}))
        report.add("settings serialise to JSON", True)
    except (TypeError, ValueError) as exc:
        report.add("settings serialise to JSON", False, str(exc))
    report.add("prepare and score timed", row.get("prepare_s", -1) >= 0 and row.get("score_s", -1) >= 0,
               f"prepare {row.get('prepare_s', 0):.2f} s, score {row.get('score_s', 0):.2f} s")
