"""Install size: how much a plain `pip install guda-bench` saves against the full one (every extra).

Run with each venv's python: `python benchmarks/install_size.py --out FILE.json` writes the total size of
its site-packages and every installed distribution's size (from its RECORD). `--compare FULL.json
PLAIN.json` prints the distributions only the full install has, and the full install's size without
them: the plain install with the same torch.
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
from importlib import metadata
from pathlib import Path


def measure() -> dict:
    site = Path(sysconfig.get_paths()["purelib"])
    total = sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink())
    dists: dict[str, int] = {}
    for dist in metadata.distributions():
        size = 0
        for f in dist.files or []:
            path = Path(dist.locate_file(f))
            if path.is_file():
                size += path.stat().st_size
        dists[_norm(dist.metadata["Name"])] = size
    return {"python": sys.version.split()[0], "torch": metadata.version("torch"), "site_packages_bytes": total,
            "distributions": dists, "torch_closure": sorted(closure("torch"))}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def closure(root: str) -> set[str]:
    """`root` and every distribution it requires (markers evaluated here), recursively: torch's own weight
    (its CUDA libraries) differs between builds and is not what the extras add."""
    from packaging.requirements import Requirement

    seen: set[tuple[str, str]] = set()
    todo = [(root, "")]
    while todo:
        name, extra = todo.pop()
        name = _norm(name)
        if (name, extra) in seen:
            continue
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add((name, extra))
        for r in reqs:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                todo.append((req.name, ""))
                todo.extend((req.name, e) for e in req.extras)
    return {name for name, _ in seen}


def compare(full: dict, plain: dict) -> dict:
    torch_own = set(full["torch_closure"]) - set(plain["distributions"]) - {"torch"}
    only_full = {k: v for k, v in full["distributions"].items()
                 if k not in plain["distributions"] and k not in torch_own}
    extras_bytes = sum(only_full.values())
    # torch itself differs between the two venvs (CUDA vs CPU build): "same torch" keeps the full one's
    return {"full_bytes": full["site_packages_bytes"], "full_torch": full["torch"],
            "plain_bytes": plain["site_packages_bytes"], "plain_torch": plain["torch"],
            "extras_only_bytes": extras_bytes, "plain_same_torch_bytes": full["site_packages_bytes"] - extras_bytes,
            "extras_only": dict(sorted(only_full.items(), key=lambda kv: -kv[1]))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("FULL", "PLAIN"))
    args = ap.parse_args()
    if args.compare:
        full, plain = (json.loads(p.read_text()) for p in args.compare)
        res = compare(full, plain)
        mib = 2**20
        print(f"full install (torch {res['full_torch']}): {res['full_bytes'] / mib:,.0f} MiB")
        print(f"plain install, same torch: {res['plain_same_torch_bytes'] / mib:,.0f} MiB "
              f"(-{res['extras_only_bytes'] / mib:,.0f} MiB: {len(res['extras_only'])} distributions)")
        print(f"plain install (torch {res['plain_torch']}): {res['plain_bytes'] / mib:,.0f} MiB")
        top = list(res["extras_only"].items())[:8]
        print("largest extras-only: " + ", ".join(f"{k} {v / mib:,.0f} MiB" for k, v in top))
        if args.out:
            args.out.write_text(json.dumps(res, indent=1) + "\n")
        return 0
    data = measure()
    if args.out:
        args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{data['site_packages_bytes'] / 2**20:,.0f} MiB in site-packages (torch {data['torch']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
