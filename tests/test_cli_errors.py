"""The CLI reports bad input in one line with exit code 2, before anything is trained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from guda_bench.cli import main

PREFIX = "guda-bench: error:"


def base_args(tmp_path: Path) -> list[str]:
    # --quiet: run() would otherwise switch the process-wide progress display on
    return ["run", "--preset", "smoke", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
            "--quiet"]


def one_error_line(err: str) -> str:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX), err
    assert "Traceback" not in err
    return lines[0]


def assert_nothing_trained(tmp_path: Path) -> None:
    assert not (tmp_path / "cache" / "model").exists()
    assert not (tmp_path / "out" / "results.json").exists()


# BenchError cases: main returns 2
@pytest.mark.parametrize(("extra", "needles"), [
    (["--method", "gudaa"], ["did you mean", "'guda'"]),
    (["--method", " , "], ["--method"]),
    (["--dataset", "digitz"], ["digitz", "did you mean", "'digits'"]),
    (["--preset", "huge"], ["huge", "smoke"]),
])
def test_bench_errors_return_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                               needles: list[str]) -> None:
    assert main(base_args(tmp_path) + extra) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err)
    for needle in needles:
        assert needle in line, line
    assert out == ""
    assert_nothing_trained(tmp_path)


def test_unwritable_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = base_args(tmp_path)
    args[args.index("--out") + 1] = "/proc/forbidden/x"
    assert main(args) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert "not writable" in line and "/proc/forbidden/x" in line
    assert out == ""
    assert_nothing_trained(tmp_path)


# argparse cases: sys.exit(2)
@pytest.mark.parametrize(("extra", "needle"), [
    (["--seed", "-1"], "--seed"),
    (["--seed", "abc"], "not an integer"),
    (["--ceiling-seeds", "0"], "--ceiling-seeds"),
    (["--device", "tpu"], "tpu"),
    (["--truth", "lds", "--lds-subsets", "many"], "neither a number of subsets nor 'all'"),
])
def test_argparse_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                needle: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(base_args(tmp_path) + extra)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert needle in line, line
    assert out == ""
    assert_nothing_trained(tmp_path)


def test_missing_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    one_error_line(capsys.readouterr().err)


def test_subprocess_exit_code_and_one_line(tmp_path: Path) -> None:
    # an argparse error: the child needs no torch import, so this stays fast
    proc = subprocess.run([sys.executable, "-m", "guda_bench.cli", *base_args(tmp_path), "--device", "tpu"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, env=dict(os.environ))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(PREFIX)
    assert "tpu" in lines[0]
    assert_nothing_trained(tmp_path)


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "guda" in out
    assert "digits" in out


def test_env(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "torch" in info and "diffusers" in info
    assert info["machine"] == info["cpu"] and info["cpu"].endswith(" cores")  # no GPU here: the CPU measured it
