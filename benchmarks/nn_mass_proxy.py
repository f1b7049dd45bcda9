"""Why nearest-neighbour similarity scores well on a grouping, computed without training anything.

LOGO blames the group whose removal takes away most of the model's support near a query; nearest-neighbour
similarity (`pixel-nn`) names the group of the single closest training image. This script takes a board's
published queries (from its truth bundle) and, for each grouping, measures how often the nearest image's
group is the group holding the most Gaussian-kernel training mass near the query (pixel space, width h).
Set beside the measured `pixel-nn` Top-1 (grouping study, headline board), it shows whether a grouping
can separate "looks like" from "was caused by" before a single LOGO model is trained.

    python benchmarks/nn_mass_proxy.py --bundle leaderboards/digits.truth.tar.gz \
        --out benchmarks/nn_mass_proxy.json

Only groupings that keep the adapter's images (class, owners, owners-sized, specialists) are probed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import torch

from guda_bench.groupings import apply_grouping, parse_grouping
from guda_bench.runner import make_adapter
from guda_bench.store import atomic_write_text

GROUPINGS = ["class", "owners:alpha=0.1,n=5", "owners:n=5", "owners-sized:n=5", "specialists",
             "specialists:pick=typical"]
WIDTHS = (1.0, 2.0, 4.0)
# measured pixel-nn Top-1 against LOGO (one study), where a published board or the README has it
MEASURED = {"specialists:pick=typical": (0.437, "README, typical-specialists probe (1,050 test queries)")}


def bundle_queries(bundle: Path) -> tuple[np.ndarray, dict]:
    with tarfile.open(bundle) as tar:
        meta = json.load(tar.extractfile("bundle.json"))
        (key,) = meta["artefacts"]["queries"]
        data = tar.extractfile(f"artefacts/queries/{key}/queries.npy").read()
    return np.load(io.BytesIO(data)), meta


def measured_from_study(study: Path) -> dict[str, tuple[float, str]]:
    out = dict(MEASURED)
    for row in csv.DictReader(study.open()):
        if row["method"] == "pixel-nn" and row["status"] == "ok":
            out.setdefault(row["grouping"], (float(row["top1"]), f"{study.name}, {row['n_test']} test queries"))
    return out


def probe(bundle: Path, groupings: list[str], study: Path) -> dict:
    queries, meta = bundle_queries(bundle)
    run = meta.get("run", {})
    adapter = make_adapter(run.get("dataset", "digits"), None)
    base = adapter.load(adapter.preset(run.get("preset", "default")))
    q = torch.from_numpy(queries).reshape(len(queries), -1).double()
    x = base.images.reshape(len(base.images), -1).double()
    distance = torch.cdist(q, x)
    nearest = distance.argmin(1).numpy()
    weights = {h: torch.exp(-distance.square() / (2 * h * h)) for h in WIDTHS}  # shared by every grouping
    measured = measured_from_study(study) if study.exists() else dict(MEASURED)
    rows = []
    for text in groupings:
        spec = parse_grouping(text)
        bench = apply_grouping(base, spec)
        row: dict = {"grouping": text, "label": spec.label, "n_groups": bench.n_groups}
        for h, weight in weights.items():
            mass = np.stack([weight[:, bench.group_of == k].sum(1).numpy() for k in range(bench.n_groups)], 1)
            row[f"nn_agrees_with_mass_h{h:g}"] = round(float(np.mean(mass.argmax(1) == bench.group_of[nearest])), 3)
        key = next((k for k in measured if k in (text, spec.label)), None)
        row["pixel_nn_top1_measured"], row["measured_in"] = measured[key] if key else (None, None)
        rows.append(row)
    return {"bundle": bundle.as_posix(), "n_queries": len(queries), "widths": list(WIDTHS), "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=Path("leaderboards/digits.truth.tar.gz"))
    ap.add_argument("--study", type=Path, default=Path("leaderboards/digits-groupings.csv"))
    ap.add_argument("--grouping", action="append", help="grouping to probe (repeatable; default: a set)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    result = probe(args.bundle, args.grouping or GROUPINGS, args.study)
    for row in result["rows"]:
        agree = "  ".join(f"h{h:g} {row[f'nn_agrees_with_mass_h{h:g}']:.3f}" for h in WIDTHS)
        seen = "-" if row["pixel_nn_top1_measured"] is None else f"{row['pixel_nn_top1_measured']:.3f}"
        print(f"{row['grouping']:28s} nearest image's group = top mass group: {agree}   pixel-nn Top-1 measured {seen}")
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
