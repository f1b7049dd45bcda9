"""Optional parts (pyproject extras): without one, what needs it says which extra to install, in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from guda_bench.cli import main
from guda_bench.extras import EXTRAS, missing
from guda_bench.registry import DATASETS
from tests.test_cli_errors import assert_nothing_trained, base_args, one_error_line

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def hide(monkeypatch: pytest.MonkeyPatch, extra: str) -> None:
    """Make every module of `extra` unimportable, as in a plain install."""
    for mod in EXTRAS[extra]:
        for name in [m for m in sys.modules if m == mod or m.startswith(mod + ".")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, mod, None)


def test_extras_match_pyproject() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    assert extras["all"] == [f"guda-bench[{','.join(EXTRAS)}]"]
    assert "guda-bench[all]" in extras["dev"]  # README command 1 (.[dev]) still installs everything


def test_installed_here() -> None:
    assert all(missing(extra) is None for extra in EXTRAS)  # the full install (.[dev]) the suite runs in


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch, extra: str) -> None:
    hide(monkeypatch, extra)
    why = missing(extra)
    assert why is not None and f"pip install 'guda-bench[{extra}]'" in why and "\n" not in why


@pytest.mark.parametrize(("dataset", "extra"), [("mnist5k", "mnist"), ("styled-digits", "text"),
                                                ("unlearncanvas", "text")])
def test_dataset_unavailable_without_its_extra(monkeypatch: pytest.MonkeyPatch, dataset: str, extra: str) -> None:
    hide(monkeypatch, extra)
    ok, why = DATASETS.create(dataset).available()
    assert not ok and f"guda-bench[{extra}]" in why


def test_run_on_a_dataset_without_its_extra_is_one_line(monkeypatch, tmp_path, capsys) -> None:
    hide(monkeypatch, "text")
    args = base_args(tmp_path) + ["--dataset", "styled-digits"]
    assert main(args) == 2
    assert "guda-bench[text]" in one_error_line(capsys.readouterr().err)
    assert_nothing_trained(tmp_path)


def test_ray_executor_without_ray_is_one_line(monkeypatch, tmp_path, capsys) -> None:
    hide(monkeypatch, "ray")
    assert main(base_args(tmp_path) + ["--executor", "ray"]) == 2
    assert "guda-bench[ray]" in one_error_line(capsys.readouterr().err)
    assert_nothing_trained(tmp_path)


@pytest.mark.parametrize(("extra", "row"), [("clip", "clip"), ("mnist", "mnist5k"), ("text", "styled-digits"),
                                            ("ray", "ray")])
def test_list_names_the_extra(monkeypatch, capsys, extra: str, row: str) -> None:
    """`list` shows what cannot run without an extra and the install command (escaped: [x] is rich markup)."""
    hide(monkeypatch, extra)
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps table cells to the terminal's width
    assert main(["list"]) == 0
    line = next(r for r in capsys.readouterr().out.splitlines() if r.startswith(f"│ {row} "))
    assert f"pip install 'guda-bench[{extra}]'" in line
