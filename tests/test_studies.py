"""guda_bench.studies: agreement between LOGO studies, measured over splits and modelled for more studies."""

import json

import numpy as np
import pytest

from guda_bench import studies
from guda_bench.cli import main
from tests.tiny_dataset import NAME, register


def _synthetic(n_studies: int, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    effect = rng.standard_normal((600, 6)) + 5.0  # a per-query offset changes no ranking
    return np.stack([effect + sigma * rng.standard_normal(effect.shape) for _ in range(n_studies)])


def test_the_model_predicts_the_measured_agreement_of_gaussian_studies_and_rises_with_more_studies():
    runs = _synthetic(4, sigma=0.5)
    test = np.arange(150, 600)
    result = studies.firmness(runs, test, max_k=6, target=0.8)
    assert [result["measured"][k]["splits"] for k in (1, 2)] == [6, 3]  # every split into disjoint sets once
    assert abs(result["modelled"][1] - result["measured"][1]["mean"]) < 0.02  # calibrated on one against one
    assert set(result["model_error"]) == {2} and abs(result["model_error"][2]) < 0.03, result  # its check
    modelled = [result["modelled"][k] for k in range(1, 7)]
    assert all(a < b for a, b in zip(modelled, modelled[1:], strict=False)) and modelled[0] < 0.8
    reach = result["studies_per_side_for_target"]
    assert reach is not None and result["modelled"][reach] >= 0.8 > result["modelled"][reach - 1]
    noisier = studies.firmness(_synthetic(4, sigma=1.5), test, max_k=6)
    assert noisier["measured"][1]["mean"] < result["measured"][1]["mean"] - 0.1  # noise is what it measures
    assert abs(noisier["model_error"][2]) < 0.03 and noisier["noise_scale"] < result["noise_scale"] * 1.5


def test_identical_studies_agree_fully_and_one_study_cannot_be_modelled():
    same = np.repeat(_synthetic(1, sigma=0.0), 2, axis=0)
    result = studies.firmness(same, np.arange(600), max_k=2)
    assert result["measured"][1]["mean"] == 1.0 and result["modelled"] == {1: 1.0, 2: 1.0}
    with pytest.raises(ValueError, match="two LOGO studies"):
        studies.noise_model(same[:1])


def test_disagreements_count_top_groups_sharing_a_class_against_chance():
    """Groups 0 and 1 hold class 0, group 2 class 1: study 0 tops 0, 0, 2; study 1 tops 1, 2, 2."""
    tops = [[0, 0, 2], [1, 2, 2]]
    stacked = np.stack([np.eye(3)[t] for t in tops])  # [2 studies, 3 queries, 3 groups]
    d = studies.disagreements(stacked, np.arange(3), [{0}, {0}, {1}])
    assert d["count"] == 2 and d["sharing_a_class"] == 0.5  # 0 vs 1 shares class 0, 0 vs 2 does not
    assert d["by_chance"] == pytest.approx((0.5 + 0.5) / 2 / 2 + (0.5 + 0.0) / 2 / 2)
    assert studies.disagreements(stacked[[0, 0]], np.arange(3), [{0}, {0}, {1}])["count"] == 0


def test_the_script_reads_a_runs_studies_from_its_cache(tmp_path, capsys):
    from benchmarks.truth_studies import group_classes, load_studies

    register()
    cache, run = tmp_path / "cache", tmp_path / "run"
    assert main(["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(cache), "--quiet", "--ceiling-seeds",
                 "2", "--method", "random", "--out", str(run)]) == 0
    results, runs, test = load_studies(run, cache)
    assert runs.shape[0] == 2 and list(test) == results["splits"]["test"]
    ceiling = next(r for r in results["rows"] if r["kind"] == "ceiling")
    measured = studies.measured_agreement(runs, test)[1]["mean"]
    assert measured == pytest.approx(ceiling["metrics"]["top1"]["mean"])  # one split: the board's ceiling
    with pytest.raises(SystemExit, match="not in"):
        load_studies(run, tmp_path / "empty-cache")
    json.dumps(studies.firmness(runs, test, max_k=2))  # JSON-ready
    classes = group_classes(results["run"])  # the tiny dataset's groups are its classes
    assert len(classes) == runs.shape[2] and all(len(c) == 1 for c in classes)
    json.dumps(studies.disagreements(runs, test, classes))
