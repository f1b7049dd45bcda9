"""How often a text-to-image run's truth names the query's prompted style, and how a second LOGO study does.

    python benchmarks/prompted_style_share.py runs/style-canvas [--out benchmarks/prompted_style_share.json]

Reads a finished run folder (results.json, scores/_truth_logoa.npy and, with --ceiling-seeds, the
independent studies' scores/_ceiling_logoa.npy; with --truth-seeds N both are means over N studies) and
prints, over the run's test queries: the share whose top LOGOA group is the prompted style (the Top-1 a
method answering "the prompted style" would reach) and the noise ceiling's Top-1 beside it. Why: a ceiling
below that share means the truth is too noisy to rank the methods that read the style off the image.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from guda_bench.runner import RunSpec, open_benchmark


def shares(run_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    run, test = results["run"], np.asarray(results["splits"]["test"])
    truth = np.load(run_dir / "scores" / "_truth_logoa.npy")
    opened = open_benchmark(RunSpec(methods=[], dataset=run["dataset"], preset=run["preset"],
                                    targets=tuple(run["targets"]) if run.get("targets") else None, quiet=True))
    text = opened.bench.text
    if text is None:
        raise SystemExit(f"{run_dir}: not a text-to-image run (no prompted styles)")
    _, style = text.query_pairs(len(truth))
    group_of_style = {opened.bench.style_of_group(k): k for k in range(opened.bench.n_groups)}
    prompted = np.array([group_of_style[int(s)] for s in style])
    out = {"run": run_dir.name, "dataset": run["dataset"], "targets": run.get("targets"), "n_test": int(len(test)),
           "truth_seeds": int(run.get("truth_seeds") or 1), "ceiling_seeds": int(run.get("ceiling_seeds") or 1),
           "truth_top_is_prompted": float((truth[test].argmax(1) == prompted[test]).mean())}
    ceiling = run_dir / "scores" / "_ceiling_logoa.npy"
    if ceiling.exists():
        second = np.load(ceiling)
        out["ceiling_top1"] = float((second[test].argmax(1) == truth[test].argmax(1)).mean())
        out["ceiling_top_is_prompted"] = float((second[test].argmax(1) == prompted[test]).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = shares(args.run_dir)
    print(json.dumps(out, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
