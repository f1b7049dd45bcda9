"""Kept for old instructions: GUDA is now tuned like every other method, by `guda-bench tune` (SPEC §9).

Usage: python benchmarks/tune_guda.py [--dataset D --preset P --budget N ...]  ==  guda-bench tune --method guda ...
(benchmarks/tune_guda.json is the record of how the shipped digits default was first chosen, on the
400-query truth of that time.)
"""

import sys

from guda_bench.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", "--method", "guda", *sys.argv[1:]]))
