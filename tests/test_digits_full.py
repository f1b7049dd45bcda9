"""The full digits benchmark (default preset, two LOGO studies) and the targets it must meet.

Slow (~20-30 min on 2 cores): `tox -e slow` or `pytest -m slow`. Set GUDA_BENCH_CACHE to reuse a cache.
"""

import json
import os
from pathlib import Path

import pytest

from guda_bench.cli import main


@pytest.mark.slow
def test_digits_default_meets_targets(tmp_path):
    cache = Path(os.environ.get("GUDA_BENCH_CACHE", tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["run", "--preset", "default", "--ceiling-seeds", "2", "--out", str(out), "--cache", str(cache),
                 "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in results["rows"]}
    assert rows["noise-ceiling"]["metrics"]["top1"]["mean"] >= 0.80
    assert results["truth"]["class_sanity"] >= 0.6
    assert rows["guda"]["status"] == "ok"
    assert rows["guda"]["metrics"]["top1"]["mean"] >= 0.70
    assert rows["guda"]["speedup"] >= 20
