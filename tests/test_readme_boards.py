"""The README's board tables are `leaderboard show --format md` of the published boards, verbatim: a board
republished without its README block refreshed fails here instead of leaving stale numbers in the README."""

from __future__ import annotations

import json
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


def readme_table(header_start: str) -> list[list[str]]:
    """The body rows of the README table whose header line starts with `header_start`, as lists of cells."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def power_of(board_cell: str) -> tuple[str, dict]:
    board = board_cell.split(" (")[0]  # "style-canvas-pretrained (2026-12-06)"
    return board, json.loads((ROOT / "leaderboards" / f"{board}-power.json").read_text())


def test_readme_power_table_matches_each_boards_power_file() -> None:
    """The pixel-kde summary table quotes every board's power line; a republished board changes those."""
    rows = readme_table("| board | noise ceiling | pixel-kde | pixel-kde@tuned |")
    assert len(rows) >= 9
    for cells in rows:
        board, power = power_of(cells[0])
        assert cells[1] == f"{power['ceiling_top1']:.3f}", board
        assert cells[7] == f"{power['pairs_separated']}/{power['pairs']}", board
        assert cells[8] == f"{power['top_pairs_separated']}/{power['top_pairs']}", board
        assert cells[9] == f"{power['ceiling_minus_similarity']:+.3f} ({power['best_similarity']})", board


def test_readme_beyond_similarity_table_matches_each_boards_power_file() -> None:
    rows = readme_table("| board | queries missed (of 1,050) by |")
    assert len(rows) >= 6
    for cells in rows:
        board, power = power_of(cells[0])
        beyond = power["beyond_similarity"]
        top1 = {row["method"]: row["top1"] for row in beyond["rows"]}
        assert cells[1] == f"{beyond['n_missed']}, {beyond['reference']}", board
        assert cells[2] == f"{top1['noise-ceiling']:.3f}", board
        assert cells[4] == f"{top1['random']:.3f}", board
        first = cells[3].split(",")[0].split(" [")[0]  # "d-trak 0.200"
        method, value = first.rsplit(" ", 1)
        assert value == f"{top1[method]:.3f}", board
