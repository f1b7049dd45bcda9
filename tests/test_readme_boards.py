"""The README's board tables are `leaderboard show --format md` of the published boards, verbatim: a board
republished without its README block refreshed fails here instead of leaving stale numbers in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from guda_bench.cli import main

ROOT = Path(__file__).resolve().parents[1]
# boards whose whole `show` output the README quotes (other sections quote single figures, with their dates)
QUOTED = ("digits-specialists", "digits")


@pytest.mark.parametrize("board", QUOTED)
def test_readme_quotes_the_published_board_as_show_prints_it(board: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leaderboard", "show", board, "--dir", str(ROOT / "leaderboards"), "--format", "md"]) == 0
    shown = capsys.readouterr().out.strip()
    assert shown.splitlines()[0].startswith("| method | status | Top-1")
    readme = (ROOT / "README.md").read_text()
    assert shown in readme, (f"README's {board} block differs from `guda-bench leaderboard show {board} --format md`:"
                             " paste the new output into the README")
