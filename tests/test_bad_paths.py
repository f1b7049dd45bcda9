"""Paths the system refuses, run folders of the wrong shape, bundles of another board and flags that shape
nothing: each is one error line and exit 2 before any work; a run folder being rerun stays whole until the
new run's truth is written."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from guda_bench import cli
from guda_bench.cli import main
from tests import tiny_dataset
from tests.test_cli_errors import assert_nothing_trained, base_args, one_error_line

REPO = Path(__file__).resolve().parent.parent


def fake_run(folder: Path, results: object) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def error_of(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    return one_error_line(capsys.readouterr().err)


def test_a_cache_path_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("not a folder")
    args = base_args(tmp_path)
    args[args.index("--cache") + 1] = str(tmp_path / "afile")
    line = error_of(capsys, [*args, "--method", "random"])
    assert "cache folder" in line and "afile" in line, line
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize(("results", "needle"), [
    ([], "not a guda-bench run's results"),
    ({}, "not a guda-bench run's results"),
    ({"run": {"truth_hash": "ab"}}, "not a guda-bench run's results"),
    ({"schema_version": 999, "run": {"truth_hash": "ab"}, "rows": []}, "schema 999"),
])
def test_a_run_folder_of_the_wrong_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str], results: object,
                                         needle: str) -> None:
    run = fake_run(tmp_path / "run", results)
    for argv in (["leaderboard", "publish", str(run), "--dir", str(tmp_path / "boards")],
                 ["leaderboard", "compare", str(run), str(run), "--method", "random"],
                 ["bundle", "export", str(run), str(tmp_path / "b.tar.gz")]):
        assert needle in error_of(capsys, argv)
    assert not (tmp_path / "boards").exists() and not (tmp_path / "b.tar.gz").exists()


def test_bench_reads_its_runs_and_checks_its_output_before_timing(tmp_path: Path, capsys, monkeypatch) -> None:
    import guda_bench.bench as bench

    def timed(*_a, **_k):
        raise AssertionError("timing started before the inputs were checked")

    monkeypatch.setattr(bench, "bench_train", timed)
    run = fake_run(tmp_path / "run", {})
    assert "not a guda-bench run's results" in error_of(capsys, ["bench", "--run", str(run), "--out",
                                                                 str(tmp_path / "b.json")])
    (tmp_path / "afile").write_text("x")
    line = error_of(capsys, ["bench", "--out", str(tmp_path / "afile" / "b.json")])
    assert "not writable" in line, line


def test_bundle_export_to_a_folder_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = fake_run(tmp_path / "run", {"run": {"truth_hash": "ab"}, "rows": [], "truth": {"artefacts": {}}})
    (tmp_path / "dest").mkdir()
    line = error_of(capsys, ["bundle", "export", str(run), str(tmp_path / "dest")])
    assert "is a folder" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "run"]


def test_a_tar_without_bundle_json_names_no_temp_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / "x.txt").write_text("x")
    with tarfile.open(tmp_path / "other.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "x.txt", arcname="x.txt")
    line = error_of(capsys, ["bundle", "import", str(tmp_path / "other.tar.gz"), "--cache", str(tmp_path / "c")])
    assert "no bundle.json" in line and "tmp" not in line.replace(str(tmp_path), ""), line


def test_a_truth_bundle_of_another_board_is_refused(tmp_path: Path, capsys) -> None:
    bundle = REPO / "leaderboards" / "mnist5k.truth.tar.gz"
    args = base_args(tmp_path)
    args[args.index("--preset") + 1] = "default"
    line = error_of(capsys, [*args, "--truth-bundle", str(bundle), "--method", "random"])
    assert "another board's truth" in line and "--dataset mnist5k (this run: digits)" in line, line
    assert "--preset" not in line  # only what differs
    assert not (tmp_path / "out" / "results.json").exists()
    assert not list((tmp_path / "cache").glob("logoa/*")), "refused only after its entries were added"


@pytest.mark.parametrize("extra", [["--lds-subsets", "5"], ["--lds-alpha", "1.5"], ["--lds-seed", "3"]])
def test_lds_flags_without_the_lds_truth(tmp_path: Path, capsys, extra: list[str]) -> None:
    line = error_of(capsys, [*base_args(tmp_path), "--method", "random", *extra])
    assert extra[0] in line and "--truth lds" in line, line
    assert_nothing_trained(tmp_path)


def test_tune_refuses_a_tuning_dir_it_cannot_write(tmp_path: Path, capsys) -> None:
    (tmp_path / "afile").write_text("x")
    line = error_of(capsys, ["tune", "--preset", "smoke", "--cache", str(tmp_path / "cache"), "--quiet", "--method",
                             "pixel-kde", "--tuning-dir", str(tmp_path / "afile")])
    assert "--tuning-dir" in line and "not writable" in line, line
    assert_nothing_trained(tmp_path)


def test_small_messages(tmp_path: Path, capsys) -> None:
    line = error_of(capsys, ["leaderboard", "draws", "digits", str(tmp_path / "nonexistent")])
    assert "no run folder" in line and "nonexistent.csv" not in line, line
    line = error_of(capsys, [*base_args(tmp_path), "--method", "random", "--grouping", "owners:n"])
    assert "'n' needs a value" in line, line
    run = fake_run(tmp_path / "run", {"run": {"truth_hash": "ab"}, "rows": []})
    line = error_of(capsys, ["leaderboard", "compare", str(run), "--method", "random,random"])
    assert "names one method twice" in line, line
    line = error_of(capsys, [*base_args(tmp_path), "--method", "random,pixel-nn", "--tuned"])
    assert "--tuned" in line and "random, pixel-nn have nothing to tune" in line, line


def test_an_os_error_anywhere_is_one_line(capsys, monkeypatch) -> None:
    def refuses(_args):
        raise FileExistsError(17, "File exists", "/somewhere/afile")

    monkeypatch.setattr(cli, "cmd_env", refuses)
    assert error_of(capsys, ["env"]) == "guda-bench: error: File exists: /somewhere/afile"


def test_a_rerun_folder_stays_whole_until_the_new_truth_is_written(tmp_path: Path, monkeypatch) -> None:
    tiny_dataset.register()
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = ["run", "--dataset", tiny_dataset.NAME, "--preset", "tiny", "--out", str(out), "--cache", str(cache),
            "--quiet"]
    assert main([*args, "--method", "pixel-nn"]) == 0
    kept = out / "scores" / "pixel-nn.npy"
    before = np.load(kept)
    import guda_bench.runner as runner

    def stops(_studies):
        raise KeyboardInterrupt  # the rerun is stopped while it builds its truth

    with monkeypatch.context() as m:
        m.setattr(runner, "gold_of", stops)
        assert main([*args, "--method", "random"]) == 130
    assert np.array_equal(np.load(kept), before)  # the earlier run, whole: results.json still names these
    assert [r["method"] for r in json.loads((out / "results.json").read_text())["rows"]
            if r["kind"] == "method"] == ["pixel-nn"]
    assert main([*args, "--method", "random"]) == 0  # a finished rerun drops the earlier run's scores
    assert not kept.exists() and (out / "scores" / "random.npy").exists()


def test_a_ray_address_that_answers_nothing_is_one_line(tmp_path: Path, capsys) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        line = error_of(capsys, [*base_args(tmp_path), "--method", "random", "--executor", "ray",
                                 "--ray-address", f"127.0.0.1:{port}"])
    assert "cannot reach the Ray cluster" in line and str(port) in line, line
    assert_nothing_trained(tmp_path)


def test_a_run_where_no_method_can_run_fails_before_its_truth(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("GUDA_BENCH_CLIP_WEIGHTS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "no-home"))  # no CLIP weights anywhere
    line = error_of(capsys, [*base_args(tmp_path), "--method", "clip"])
    assert line.startswith("guda-bench: error: nothing to run here: clip: no CLIP weights"), line
    assert_nothing_trained(tmp_path)


def test_a_truth_bundle_of_another_groupings_parameters_is_refused(tmp_path: Path, capsys) -> None:
    bundle = REPO / "leaderboards" / "digits-specialists.truth.tar.gz"
    args = base_args(tmp_path)
    args[args.index("--preset") + 1] = "default"
    line = error_of(capsys, [*args, "--grouping", "specialists:share=0.5", "--truth-bundle", str(bundle),
                             "--method", "random"])
    assert "--grouping specialists (this run: specialists:share=0.5)" in line, line
    assert not list((tmp_path / "cache").glob("logoa/*"))


@pytest.mark.parametrize(("asked", "differs"), [
    ("specialists", ""), ("specialists:share=0.25", ""), ("specialists:share=0.5", "specialists:share=0.5"),
    ("specialists:pick=typical", "specialists:pick=typical"), ("class", "class")])
def test_groupings_compare_with_their_parameters(asked: str, differs: str) -> None:
    from guda_bench.bundle import board_mismatch

    params = {"name": "specialists", "per_generalist": 2, "pick": "random", "seed": 0, "share": 0.25}
    held = {"grouping": "specialists", "grouping_params": params}
    line = board_mismatch(held, {"grouping": asked})
    assert line == (f"--grouping specialists (this run: {differs})" if differs else ""), line


def test_a_non_default_groupings_bundle_fits_its_own_board_only() -> None:
    from guda_bench.bundle import board_mismatch

    # its run records the label (specialists-share0.5) beside the parameters
    params = {"name": "specialists", "per_generalist": 2, "pick": "random", "seed": 0, "share": 0.5}
    held = {"grouping": "specialists-share0.5", "grouping_params": params}
    assert board_mismatch(held, {"grouping": "specialists:share=0.5"}) == ""
    assert board_mismatch(held, {"grouping": "specialists"}) == \
        "--grouping specialists:share=0.5 (this run: specialists)"
    # runs that predate grouping_params compare by label
    assert board_mismatch({"grouping": "owners-alpha0.3"}, {"grouping": "owners:alpha=0.3"}) == ""
