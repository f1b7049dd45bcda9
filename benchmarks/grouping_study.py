"""Grouping study (issue 7): which groupings separate "looks like" from "was caused by"?

    python benchmarks/grouping_study.py run      # one `guda-bench run` per grouping (resumable: cached)
    python benchmarks/grouping_study.py report   # table + plot under leaderboards/

Each grouping runs with a second LOGO seed (noise-ceiling row) on the digits default preset. A grouping
that fails is recorded and the study goes on (timm's bulk-run habit). `run` runs the fast methods
(METHODS) into runs/study/<grouping>; `run --more` runs the slower ones (MORE: a conditional model,
per-group unlearning or per-query unlearning each) into runs/study/<grouping>-more, reusing the cached
ground truth. `report` merges both folders of a grouping.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

GROUPINGS = [
    "class",
    "owners-sized:n=5",
    "planted",
    "redundant:pairs=2",
    "specialists",
    "owners:n=5,alpha=0.1",
    "owners:n=5,alpha=1.0",
]
METHODS = "logo,guda,guda-reference,pixel-cosine,pixel-nn,trak,d-trak,das,random"
MORE = "logo,guda-esd,guda-clipped,unlearn-ga,unlearn-retain-only,instance-unlearning"
ROOT = Path("runs/study")


def label_of(grouping: str) -> str:
    from guda_bench.groupings import parse_grouping

    return parse_grouping(grouping).label


def run_all(groupings: list[str], methods: str, preset: str, suffix: str = "") -> None:
    status = {}
    for g in groupings:
        out = ROOT / (label_of(g) + suffix)
        cmd = ["guda-bench", "run", "--dataset", "digits", "--preset", preset, "--grouping", g, "--method", methods,
               "--ceiling-seeds", "2", "--out", str(out), "--quiet"]
        print("$", " ".join(cmd), flush=True)
        status[g] = subprocess.run(cmd).returncode
        print(f"{g}: exit {status[g]}", flush=True)
    print(json.dumps(status, indent=1))


def report(out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    rows = []
    for res_path in sorted(ROOT.glob("*/results.json")):
        res = json.loads(res_path.read_text())
        run = res["run"]
        ceiling = next((r for r in res["rows"] if r["kind"] == "ceiling"), None)
        for r in res["rows"]:
            m = r.get("metrics", {})
            rows.append({
                "grouping": run["grouping"], "grouping_params": json.dumps(run.get("grouping_params", {})),
                "method": r["method"], "kind": r["kind"], "status": r["status"],
                "top1": m.get("top1", {}).get("mean"), "top1_ci_low": m.get("top1", {}).get("ci_low"),
                "top1_ci_high": m.get("top1", {}).get("ci_high"), "ndcg@3": m.get("ndcg@3", {}).get("mean"),
                "ndcg@3_ci_low": m.get("ndcg@3", {}).get("ci_low"),
                "ndcg@3_ci_high": m.get("ndcg@3", {}).get("ci_high"),
                "ceiling_top1": ceiling["metrics"]["top1"]["mean"] if ceiling else None,
                "cost_s": r.get("cost_s"), "speedup": r.get("speedup"), "n_groups": run["n_groups"],
                "n_train": run["n_train"], "n_test": run["n_test"], "truth_hash": run["truth_hash"],
                "git_commit": res["provenance"].get("git_commit"), "created": run["created"],
                "command": run["command"],
            })
    if not rows:
        sys.exit(f"no finished runs under {ROOT}")
    # extra methods may come from a second run of the same grouping (e.g. runs/study/specialists-more):
    # the shared rows (ceiling, logo) are identical there, keep one of each
    frame = pd.DataFrame(rows).drop_duplicates(subset=["grouping", "method"], keep="first")
    frame["gap_to_ceiling"] = frame["ceiling_top1"] - frame["top1"]
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = out_dir / "digits-groupings.csv"
    tmp = csv.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(csv)

    ok = frame[(frame.status == "ok") & (frame.method != "logo")]
    pivot = ok.pivot_table(index="grouping", columns="method", values="top1")
    order = [label_of(g) for g in GROUPINGS if label_of(g) in pivot.index]
    pivot = pivot.loc[order + [g for g in pivot.index if g not in order]]
    methods = [m for m in ["guda", "guda-reference", "guda-clipped", "guda-esd", "unlearn-ga", "unlearn-retain-only",
                           "instance-unlearning", "d-trak", "das", "trak", "pixel-cosine", "pixel-nn", "random"]
               if m in pivot.columns]
    fig, ax = plt.subplots(figsize=(2.2 * len(pivot) + 2, 5))
    width = 0.8 / len(methods)
    for j, m in enumerate(methods):
        xs = [i + (j - len(methods) / 2) * width + width / 2 for i in range(len(pivot))]
        ax.bar(xs, pivot[m].values, width, label=m, color=plt.get_cmap("tab20")(j))
    if "noise-ceiling" in pivot.columns:
        ax.hlines(pivot["noise-ceiling"].values, [i - 0.45 for i in range(len(pivot))],
                  [i + 0.45 for i in range(len(pivot))], colors="black", linestyles="--", label="noise ceiling")
    ax.set_xticks(range(len(pivot)), pivot.index, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("Top-1 agreement with LOGO (test split)")
    ax.set_ylim(0, 1)
    ax.set_title("digits: Top-1 vs LOGO per grouping (dashed: noise ceiling)")
    ax.legend(fontsize=7, ncol=5)
    fig.tight_layout()
    png = out_dir / "digits-groupings.png"
    fig.savefig(png.with_suffix(".tmp.png"), dpi=120)
    png.with_suffix(".tmp.png").replace(png)
    print(pivot.round(3).to_string())
    print(f"wrote {csv} and {png}")
    share_tables = [("specialists", specialist_shares, "whose top group is a generalist / a specialist"),
                    ("planted", planted_shares, "whose top group is the copies' group / the source class / other")]
    for grouping, shares_of, what in share_tables:
        run_dir = ROOT / label_of(grouping)
        if (run_dir / "results.json").exists():
            shares = merged(run_dir, shares_of)
            (out_dir / f"digits-{grouping}-shares.json").write_text(json.dumps(shares, indent=1))
            print(f"{grouping}: share of test queries {what}")
            for m, v in shares.items():
                print(f"  {m:16s} " + "  ".join(f"{k} {x:.3f}" for k, x in v.items()))


def merged(run_dir: Path, shares_of: Callable[[Path], dict]) -> dict:
    """shares_of(run_dir), plus the methods of its `-more` folder (the slower methods, run separately)."""
    shares = shares_of(run_dir)
    more = run_dir.with_name(run_dir.name + "-more")
    if (more / "results.json").exists():
        shares.update({k: v for k, v in shares_of(more).items() if k not in shares})
    return shares


def top_groups(run_dir: Path, res: dict, skip: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Each LOGO study's and each ok method's top group per test query, by display label."""
    import numpy as np

    test = np.asarray(res["splits"]["test"])
    out = {}
    names = ["_truth_logoa", "_ceiling_logoa"] + [r["method"] for r in res["rows"] if r["status"] == "ok"]
    for name in names:
        path = run_dir / "scores" / f"{name}.npy"
        if path.exists() and name not in skip:
            label = {"_truth_logoa": "LOGO (truth)", "_ceiling_logoa": "LOGO seed 2"}.get(name, name)
            out[label] = np.load(path)[test].argmax(1)
    return out


def specialist_shares(run_dir: Path) -> dict[str, dict[str, float]]:
    """For the specialists grouping: how often each method's top group is a generalist (the big holder of
    the query's mode) rather than a specialist (the small pure owner), on the test queries."""
    import numpy as np

    res = json.loads((run_dir / "results.json").read_text())
    generalist = np.array([g.startswith("generalist") for g in res["run"]["groups"]])
    return {label: {"generalist": float(generalist[top].mean()), "specialist": float((~generalist[top]).mean())}
            for label, top in top_groups(run_dir, res, skip=("logo",)).items()}


def planted_shares(run_dir: Path) -> dict[str, dict[str, float]]:
    """For the planted grouping: how often each method's top group is the group holding the copies (the
    planted target), the source image's class (the look-alike), or another group, on the test queries."""
    import numpy as np

    from guda_bench.runner import benchmark_of

    res = json.loads((run_dir / "results.json").read_text())
    bench = benchmark_of(res["run"])
    test = np.asarray(res["splits"]["test"])
    n_anchor = len(bench.planted["sources"])
    target = np.asarray(bench.planted["target_groups"])[test % n_anchor]
    source = np.asarray(bench.planted["source_groups"])[test % n_anchor]
    return {label: {"copies": float((top == target).mean()), "source": float((top == source).mean()),
                    "other": float(((top != target) & (top != source)).mean())}
            for label, top in top_groups(run_dir, res).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("--groupings", default=";".join(GROUPINGS), help="';'-separated grouping specs")
    parser.add_argument("--methods", default=None, help=f"default: {METHODS} (with --more: {MORE})")
    parser.add_argument("--more", action="store_true", help="the slower methods, into runs/study/<grouping>-more")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--out", type=Path, default=Path("leaderboards"))
    args = parser.parse_args()
    if args.command == "run":
        methods = args.methods or (MORE if args.more else METHODS)
        run_all([g for g in args.groupings.split(";") if g], methods, args.preset, "-more" if args.more else "")
    else:
        report(args.out)


if __name__ == "__main__":
    main()
