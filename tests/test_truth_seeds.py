"""A ground truth averaged over several LOGO studies (--truth-seeds, SPEC §2), its noise ceiling built the same
way, and bundles and tuning records that know which truth they belong to."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from guda_bench import metrics
from guda_bench.cli import main
from guda_bench.config import canonical_hash
from guda_bench.context import gold_of
from guda_bench.results import print_table
from guda_bench.tuning import tuning_hash
from tests.test_cli_errors import one_error_line
from tests.tiny_dataset import NAME, TINY, register


def _study(cache: Path, key: str) -> np.ndarray:
    return np.load(cache / "logoa" / key / "logoa.npy")


@pytest.fixture(scope="module")
def averaged(tmp_path_factory):
    register()
    root = tmp_path_factory.mktemp("truth-seeds")
    args = ["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(root / "cache"), "--quiet",
            "--method", "logo,pixel-nn", "--truth-seeds", "2", "--ceiling-seeds", "4", "--out", str(root / "run")]
    assert main(args) == 0
    return root


def test_truth_is_the_mean_of_its_studies_and_the_ceiling_of_the_next(averaged: Path) -> None:
    res = json.loads((averaged / "run" / "results.json").read_text())
    keys = res["truth"]["artefacts"]["logoa"]
    assert res["run"]["truth_seeds"] == 2 and len(keys) == 4 == len(set(keys))
    studies = [_study(averaged / "cache", k) for k in keys]
    gold = np.load(averaged / "run" / "scores" / "_truth_logoa.npy")
    np.testing.assert_array_equal(gold, np.mean(np.stack(studies[:2]), axis=0))
    ceiling = np.load(averaged / "run" / "scores" / "_ceiling_logoa.npy")
    np.testing.assert_array_equal(ceiling, np.mean(np.stack(studies[2:]), axis=0))
    rows = {r["method"]: r for r in res["rows"]}
    assert rows["noise-ceiling"]["reason"] == "LOGO seeds 3..4 vs seeds 1..2 (means)"
    console = Console(record=True, width=200)
    print_table(res, console)
    assert "truth = mean of LOGO studies 1..2" in console.export_text()  # not "LOGO seed 0"
    # the logo row is ONE study (the first), scored against the two-study truth
    test = np.asarray(res["splits"]["test"])
    expected = metrics.top1(studies[0][test], gold[test]).mean()
    assert rows["logo"]["metrics"]["top1"]["mean"] == pytest.approx(expected)
    np.testing.assert_array_equal(np.load(averaged / "run" / "scores" / "logo.npy"), studies[0])
    # speedups divide one LOGO study's cost, not the whole truth's: comparable across truth sizes
    assert res["truth"]["cost_s"] > res["truth"]["logo_study_cost_s"] > 0
    assert rows["logo"]["speedup"] == pytest.approx(1.0, rel=0.1)
    nn = rows["pixel-nn"]
    assert nn["speedup"] == pytest.approx(res["truth"]["logo_study_cost_s"] / nn["cost_s"])


def test_bundle_of_an_averaged_truth_verifies_on_a_fresh_cache(averaged: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "truth.tar.gz"
    assert main(["bundle", "export", str(averaged / "run"), str(bundle), "--cache", str(averaged / "cache")]) == 0
    out = tmp_path / "again"
    assert main(["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(tmp_path / "fresh"), "--quiet",
                 "--method", "pixel-nn", "--truth-seeds", "2", "--truth-bundle", str(bundle),
                 "--out", str(out)]) == 0
    first = json.loads((averaged / "run" / "results.json").read_text())["run"]["truth_hash"]
    assert json.loads((out / "results.json").read_text())["run"]["truth_hash"] == first
    assert len(list((tmp_path / "fresh" / "model").iterdir())) == 1  # the bundled full model: nothing retrained
    assert "ground truth" in capsys.readouterr().out


def test_one_study_truth_is_unchanged() -> None:
    study = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    assert gold_of([study]) is study  # bit for bit: boards built before --truth-seeds keep their truth hash
    # the knob is hashed only when set: existing cache keys and tuning records stay valid
    assert canonical_hash(replace(TINY, truth_seeds=1)) == canonical_hash(TINY)
    assert tuning_hash(replace(TINY, truth_seeds=2)) != tuning_hash(TINY)


@pytest.mark.parametrize(("extra", "needle"), [
    (["--truth-seeds", "2", "--ceiling-seeds", "3"], "--ceiling-seeds 4"),
    (["--truth-seeds", "2", "--ceiling-seeds", "1"], "fewer LOGO studies"),
    (["--truth-seeds", "2", "--truth", "lds", "--lds-ceiling", "--ceiling-seeds", "2"], "--ceiling-seeds 4"),
])
def test_a_ceiling_unlike_its_truth_is_refused_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               extra: list[str], needle: str) -> None:
    register()
    args = ["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(tmp_path / "cache"), "--quiet",
            "--method", "pixel-nn", "--out", str(tmp_path / "out"), *extra]
    assert main(args) == 2
    assert needle in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "cache" / "model").exists()
