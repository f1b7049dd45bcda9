"""CI, plain install: run in a venv made by `pip install -e .` (no extras) on a torch the user already had.

Checks that the core runs end to end (the smoke preset) and that every optional part reports which extra to
install, in one line, instead of an ImportError.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from importlib import metadata

from guda_bench.extras import EXTRAS, absent_modules


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["guda-bench", *args], capture_output=True, text=True, env={"COLUMNS": "400", **os.environ})


def one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], (proc.returncode, proc.stderr)


def main() -> int:
    print(f"torch {metadata.version('torch')} (wanted: {sys.argv[1] if len(sys.argv) > 1 else 'any'})")
    if len(sys.argv) > 1:
        assert metadata.version("torch").startswith(sys.argv[1]), metadata.version("torch")
    present = [m for extra, mods in EXTRAS.items() for m in mods if m not in absent_modules(extra)]
    assert not present, f"a plain install pulled in optional modules: {present}"
    listing = run("list")
    assert listing.returncode == 0, listing.stderr
    for extra in EXTRAS:
        assert f"pip install 'guda-bench[{extra}]'" in listing.stdout, f"`list` does not name the {extra} extra"
    one_line_error(run("run", "--preset", "smoke", "--executor", "ray", "--out", "runs/ci-plain-ray"),
                   "guda-bench[ray]")
    one_line_error(run("run", "--dataset", "styled-digits", "--preset", "smoke", "--out", "runs/ci-plain-text"),
                   "guda-bench[text]")
    one_line_error(run("run", "--dataset", "mnist5k", "--preset", "smoke", "--out", "runs/ci-plain-mnist"),
                   "guda-bench[mnist]")
    smoke = run("run", "--preset", "smoke", "--method", "logo,guda,trak,pixel-nn,clip", "--out", "runs/ci-plain",
                "--quiet")
    assert smoke.returncode == 0, smoke.stderr[-2000:]
    with open("runs/ci-plain/summary.csv", newline="") as fh:
        rows = {r["method"]: r for r in csv.DictReader(fh)}
    assert all(rows[m]["status"] == "ok" for m in ("logo", "guda", "trak", "pixel-nn")), rows
    assert rows["clip"]["status"] == "unavailable" and "guda-bench[clip]" in rows["clip"]["reason"], rows["clip"]
    print("plain install: core smoke run ok; clip, text, mnist and ray each name their extra")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
