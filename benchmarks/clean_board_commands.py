"""Rewrite the `command` column of every published CSV so it holds no machine path (issue 17): an executable's
path becomes `guda-bench`, absolute --out/--cache/... values a placeholder. Only that column changes.

Usage: python benchmarks/clean_board_commands.py [leaderboards]
"""

import sys
from pathlib import Path

import pandas as pd

from guda_bench.leaderboard import clean_command
from guda_bench.store import atomic_write_text

if __name__ == "__main__":
    for path in sorted(Path(sys.argv[1] if len(sys.argv) > 1 else "leaderboards").glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "command" in frame:
            cleaned = frame["command"].map(lambda c: clean_command(c) or "")
            if not cleaned.equals(frame["command"]):
                frame["command"] = cleaned
                atomic_write_text(path, frame.to_csv(index=False))
                print(f"cleaned {path}")
