"""Contract tests generated from the registry: every registered method through `check_method`, the same
check a plugin author runs (`guda-bench check NAME`), on the tiny built-in benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from guda_bench.method import Method
from guda_bench.registry import METHODS
from guda_bench.testing import CHECK_DATASET, check_method, register_check_dataset

# methods that cannot run without an outside resource must say why instead
NEEDS_RESOURCES = {"clip_weights", "cuda"}


@pytest.fixture(scope="module")
def truth_cache(tmp_path_factory):
    """The tiny benchmark's ground truth, built once; every check copies it and builds its method twice."""
    from guda_bench.runner import RunSpec, run

    register_check_dataset()
    root = tmp_path_factory.mktemp("contract")
    run(RunSpec(methods=["random"], dataset=CHECK_DATASET, preset="tiny", out=root / "run", cache=root / "cache",
                quiet=True))
    return root / "cache"


def statuses(report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


@pytest.mark.parametrize("name", METHODS.names())
def test_method_contract(truth_cache, tmp_path, name):
    report = check_method(name, truth_cache=truth_cache, workdir=tmp_path)
    assert report.ok, report.text()
    got = statuses(report)
    requires = set(getattr(METHODS.entry(name).cls, "requires", set()))
    if report.row["status"] == "unavailable":
        assert requires & (NEEDS_RESOURCES | {"text_conditional"}), report.text()  # only for a declared reason
        assert got["Unavailable says why"] == "pass"
        if "text_conditional" in requires:  # this benchmark is unconditional: the row must say so
            assert "text-to-image" in report.row["reason"]
        return
    assert got["scores shape [queries, groups] and finite"] == "pass"
    assert got["same scores twice under one seed (fresh caches)"] == "pass"
    assert got["options declared"] == "pass"  # every built-in types its options
    for metric in ("top1", "ndcg@3", "mrr", "top3", "rbo", "spearman"):
        stats = report.row["metrics"][metric]
        assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"]


class Unseeded(Method):
    """Breaks the contract: different scores on every call."""

    def score(self, ctx):
        return np.random.default_rng().random((len(ctx.queries), ctx.bench.n_groups))


class NotFinite(Method):
    def score(self, ctx):
        return np.full((len(ctx.queries), ctx.bench.n_groups), np.nan)


class SilentlyUnavailable(Method):
    def score(self, ctx):
        from guda_bench.errors import Unavailable

        raise Unavailable("")


@pytest.mark.parametrize(("cls", "failing"), [
    (Unseeded, "same scores twice under one seed (fresh caches)"),
    (NotFinite, "runs on the tiny benchmark"),
    (SilentlyUnavailable, "Unavailable says why"),
])
def test_check_method_catches_broken_methods(truth_cache, tmp_path, cls, failing):
    report = check_method(cls, truth_cache=truth_cache, workdir=tmp_path)
    assert not report.ok and statuses(report)[failing] == "fail", report.text()
    assert "FAILED" in report.text().splitlines()[0]
    assert f"check-{cls.__name__.lower()}" not in METHODS.names()  # the temporary registration is gone


def test_the_plugin_template_passes_guda_bench_check_through_its_entry_point(tmp_path):
    """A newcomer's path: the template installed (here: its package plus the entry point its pyproject declares,
    as pip writes it) is found by `guda-bench check` and keeps the contract."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import tomllib

    template = Path(__file__).resolve().parents[1] / "examples" / "plugin-template"
    meta = tomllib.loads((template / "pyproject.toml").read_text())
    entry_points = meta["project"]["entry-points"]["guda_bench.methods"]
    info = tmp_path / "guda_bench_plugin_template-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['project']['name']}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[guda_bench.methods]\n" + "".join(
        f"{name} = {target}\n" for name, target in entry_points.items()))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(template)])}
    proc = subprocess.run([sys.executable, "-m", "guda_bench.cli", "check", "template-centroid"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "check_method template-centroid: PASSED" in proc.stdout
    assert "PASS  same scores twice under one seed" in proc.stdout
