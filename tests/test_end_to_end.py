"""A real end-to-end run on the smoke preset: real diffusers training, LOGO truth, every method."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from guda_bench.cli import main
from guda_bench.registry import METHODS


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    code = main(["run", "--preset", "smoke", "--method", "all", "--out", str(root / "run"),
                 "--cache", str(root / "cache"), "--quiet"])
    assert code == 0
    return root


def test_smoke_run_scores_every_method(smoke_run):
    results = json.loads((smoke_run / "run" / "results.json").read_text())
    rows = {r["method"]: r for r in results["rows"]}
    assert set(METHODS.names()) <= set(rows)
    for name in METHODS.names():
        requires = set(METHODS.entry(name).cls.requires)
        if {"clip_weights", "cuda"} & requires and rows[name]["status"] == "unavailable":
            assert rows[name]["reason"]
            continue
        if "text_conditional" in requires:  # digits is unconditional; GUDA-C is run in tests/test_text.py
            assert rows[name]["status"] == "unavailable" and "text-to-image" in rows[name]["reason"]
            continue
        assert rows[name]["status"] == "ok", (name, rows[name].get("reason"))
        assert 0.0 <= rows[name]["metrics"]["top1"]["mean"] <= 1.0
        assert rows[name]["cost_s"] > 0 or name == "random"
    assert rows["logo"]["metrics"]["top1"]["mean"] == 1.0
    assert results["provenance"]["torch"] and results["run"]["truth_hash"]
    assert results["truth"]["class_sanity"] is not None
    summary = pd.read_csv(smoke_run / "run" / "summary.csv")
    assert set(summary["method"]) == set(rows)
    assert (smoke_run / "run" / "scores" / "guda.npy").exists()


def test_warm_rerun_trains_nothing_and_gives_same_metrics(smoke_run, tmp_path):
    models = sorted(p.name for p in (smoke_run / "cache" / "model").iterdir())
    code = main(["run", "--preset", "smoke", "--method", "logo,guda,pixel-nn", "--out", str(tmp_path / "warm"),
                 "--cache", str(smoke_run / "cache"), "--quiet"])
    assert code == 0
    assert sorted(p.name for p in (smoke_run / "cache" / "model").iterdir()) == models
    cold = pd.read_csv(smoke_run / "run" / "summary.csv").set_index("method")
    warm = pd.read_csv(tmp_path / "warm" / "summary.csv").set_index("method")
    for name in ("logo", "guda", "pixel-nn"):
        assert warm.loc[name, "top1"] == cold.loc[name, "top1"]
        assert warm.loc[name, "ndcg@3"] == cold.loc[name, "ndcg@3"]
    # the cost of cached work is still charged: LOGO is never "free" on a warm run
    assert warm.loc["logo", "cost_s"] == pytest.approx(cold.loc["logo", "cost_s"], rel=0.5)


def test_cli_subprocess_prints_table(smoke_run, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "guda_bench.cli", "run", "--preset", "smoke", "--method",
                           "pixel-cosine,random", "--out", str(tmp_path / "o"), "--cache",
                           str(smoke_run / "cache")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pixel-cosine" in proc.stdout and "Top-1" in proc.stdout
