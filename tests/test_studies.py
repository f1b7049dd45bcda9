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


def test_the_script_reads_a_runs_studies_from_its_cache(tmp_path, capsys):
    from benchmarks.truth_studies import load_studies

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


def test_board_reproduction_reports_how_far_each_row_moved_and_whether_the_order_held(tmp_path):
    import pandas as pd

    from benchmarks.board_reproduction import compare

    methods = ["noise-ceiling", "logo", "a", "b", "c", "gone"]
    board = pd.DataFrame({"method": methods, "kind": ["ceiling"] + ["method"] * 5, "status": ["ok"] * 5 + ["failed"],
                          "top1": [0.8, 0.9, 0.7, 0.5, 0.3, None], "ndcg@3": [0.9, 0.95, 0.8, 0.7, 0.6, None],
                          "truth_hash": ["abc"] * 6})
    for metric in ("top1", "ndcg@3"):
        board[f"{metric}_ci_low"], board[f"{metric}_ci_high"] = board[metric] - 0.02, board[metric] + 0.02
    board.to_csv(tmp_path / "board.csv", index=False)
    run = tmp_path / "run"
    run.mkdir()
    moved = board.copy()
    moved["top1"] = [0.85, 0.9, 0.75, 0.31, 0.49, 0.1]  # b and c swap places; "gone" is not ok on the board
    moved["status"] = "ok"
    moved.to_csv(run / "summary.csv", index=False)
    (run / "results.json").write_text(json.dumps({
        "run": {"command": "guda-bench run --cache /home/me/cache --method all", "truth_hash": "def"},
        "provenance": {"git_commit": "1234", "machine": "cpu, 2 cores"}}))
    result = compare(run, tmp_path / "board.csv")
    assert result["n_rows"] == 5 and result["n_ranked"] == 3 and "gone" not in result["rows"]
    assert result["rows"]["a"]["top1"] == {"run": 0.75, "board": 0.7, "moved": 0.05, "inside_board_ci": False}
    assert result["rows"]["logo"]["top1"]["inside_board_ci"] and result["top1_inside_board_ci"] == 1
    assert result["kendall_tau_top1_order"] == pytest.approx(1 / 3, abs=1e-3)  # one of three pairs swapped
    assert not result["same_truth"] and result["command"] == "guda-bench run --cache CACHE --method all"
