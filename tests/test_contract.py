"""Contract tests generated from the registry: every registered method, on a tiny real benchmark."""

from __future__ import annotations

import json

import numpy as np
import pytest

from guda_bench.cli import main
from guda_bench.registry import METHODS
from tests import tiny_dataset

# methods that cannot run without an outside resource must say why instead
NEEDS_RESOURCES = {"clip_weights", "cuda"}


@pytest.fixture(scope="module")
def contract_run(tmp_path_factory):
    tiny_dataset.register()
    root = tmp_path_factory.mktemp("contract")
    assert main(["run", "--dataset", tiny_dataset.NAME, "--preset", "tiny", "--method", "all", "--out",
                 str(root / "run"), "--cache", str(root / "cache"), "--quiet"]) == 0
    results = json.loads((root / "run" / "results.json").read_text())
    return root, {r["method"]: r for r in results["rows"]}


@pytest.mark.parametrize("name", METHODS.names())
def test_method_contract(contract_run, name):
    root, rows = contract_run
    row = rows[name]
    requires = set(getattr(METHODS.entry(name).cls, "requires", set()))
    if requires & NEEDS_RESOURCES and row["status"] == "unavailable":
        assert row["reason"], "an unavailable row must say why"
        return
    if "text_conditional" in requires:  # this run is unconditional: the row must say so (scored in test_text)
        assert row["status"] == "unavailable" and "text-to-image" in row["reason"]
        return
    assert row["status"] == "ok", row.get("reason")
    scores = np.load(root / "run" / "scores" / f"{name}.npy")
    assert scores.shape == (8, 3) and np.isfinite(scores).all()
    for key in ("prepare_s", "score_s", "cost_s"):
        assert row[key] >= 0
    for metric in ("top1", "ndcg@3", "mrr", "top3", "rbo", "spearman"):
        stats = row["metrics"][metric]
        assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"]
