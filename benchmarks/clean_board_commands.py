"""Rewrite the `command` and `reason` columns of every published CSV so they hold no machine path (issue 17): an
executable's path becomes `guda-bench`, absolute --out/--cache/... values a placeholder, the home folder ~.
Only those columns change.

Usage: python benchmarks/clean_board_commands.py [leaderboards]
"""

import sys
from pathlib import Path

import pandas as pd

from guda_bench.leaderboard import clean_command, home_relative
from guda_bench.store import atomic_write_text

if __name__ == "__main__":
    for path in sorted(Path(sys.argv[1] if len(sys.argv) > 1 else "leaderboards").glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        changed = False
        for column, clean in (("command", clean_command), ("reason", home_relative)):
            if column in frame:
                cleaned = frame[column].map(lambda c, f=clean: f(c) or "")
                if not cleaned.equals(frame[column]):
                    frame[column] = cleaned
                    changed = True
        if changed:
            atomic_write_text(path, frame.to_csv(index=False))
            print(f"cleaned {path}")
