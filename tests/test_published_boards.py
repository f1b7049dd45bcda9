"""What the published boards promise about where their numbers came from: every row from a committed tree
(a dirty tree's command cannot be rerun to the same figures) and no machine path in any cell."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from guda_bench.leaderboard import TEXT_COLUMNS

BOARDS = Path(__file__).resolve().parents[1] / "leaderboards"
# the method boards: each row names the commit and command it came from
METHOD_BOARDS = sorted(p for p in BOARDS.glob("*.csv") if "git_dirty" in pd.read_csv(p, nrows=0).columns)
MACHINE_PATH = re.compile(r"(^|[\s=:'\"(])(/home/|/tmp/|/work/|/root/|/Users/|[A-Z]:\\)")


def test_there_are_method_boards() -> None:
    assert len(METHOD_BOARDS) >= 7


@pytest.mark.parametrize("path", METHOD_BOARDS, ids=lambda p: p.stem)
def test_every_row_comes_from_a_clean_committed_tree(path: Path) -> None:
    board = pd.read_csv(path, dtype=TEXT_COLUMNS)
    dirty = board.loc[board["git_dirty"].astype(str).str.lower() == "true", "method"].tolist()
    assert not dirty, f"{path.name}: rows from a dirty tree: {dirty} (rerun them from a clean commit and republish)"
    assert board["git_commit"].astype(str).str.fullmatch(r"[0-9a-f]{40}").all()


@pytest.mark.parametrize("path", sorted(BOARDS.glob("*.csv")), ids=lambda p: p.stem)
def test_no_cell_carries_a_machine_path(path: Path) -> None:
    text = path.read_text()
    hits = [m.group(0) for m in MACHINE_PATH.finditer(text)]
    assert not hits, f"{path.name} carries machine paths: {hits[:3]}"


def boards_with_lds() -> set[str]:
    out = set()
    for path in METHOD_BOARDS:
        board = pd.read_csv(path)
        if "lds" in board and board["lds"].notna().any():
            out.add(path.stem)
    return out


def test_the_readme_names_every_board_with_lds_columns_and_only_those() -> None:
    readme = (BOARDS.parent / "README.md").read_text()
    start = readme.index("Boards with LDS columns:")
    sentence = readme[start:readme.index("(each board's", start)]
    named = {n for n in re.findall(r"`([a-z0-9-]+)`", sentence) if (BOARDS / f"{n}.csv").exists()}
    assert named == boards_with_lds()


@pytest.mark.parametrize("board", sorted(boards_with_lds()))
def test_a_board_with_lds_ships_its_lds_truth_in_its_bundle(board: str) -> None:
    """A new method's LDS row needs the subset models' losses: without them in the bundle, scoring it against
    the board retrains every subset model (hours)."""
    import json
    import tarfile

    with tarfile.open(BOARDS / f"{board}.truth.tar.gz") as tar:
        meta = json.load(tar.extractfile("bundle.json"))
    ceiling = pd.read_csv(BOARDS / f"{board}.csv").query("method == 'noise-ceiling'")
    expected = 2 if len(ceiling) and ceiling["lds"].notna().any() else 1  # the --lds-ceiling seed's too
    assert len(meta["artefacts"].get("lds", [])) == expected
