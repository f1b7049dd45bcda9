"""Ground-truth bundles: the LOGO scores, the queries and the full model of a run, with their hashes.

A bundle lets another machine score a new method against the same ground truth without retraining a
single LOGO model: `import` verifies every file's sha256, every cache entry's key against its recorded
spec, the truth hash against the LOGO scores and queries, and (when the dataset can be rebuilt there)
the training data itself; any mismatch is refused. The entries then go into the cache, where a run
finds them exactly as if it had built them.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from guda_bench.context import gold_of
from guda_bench.errors import BenchError
from guda_bench.groupings import parse_grouping, recorded_grouping
from guda_bench.leaderboard import load_run
from guda_bench.runner import truth_hash
from guda_bench.store import Store, atomic_write_bytes, check_output_file, sha256_file

BUNDLE_SCHEMA = 1
KINDS = ("model", "queries", "logoa", "lds")  # lds: only runs with --truth lds have it (its loss matrices)


def export_bundle(run_dir: Path, out: Path, cache: Path) -> Path:
    results = load_run(run_dir)
    check_output_file(out, "bundle")
    keys = results.get("truth", {}).get("artefacts")
    if not keys:
        raise BenchError(f"{run_dir} was written by an older guda-bench (no artefact keys): rerun it to bundle it")
    store = Store(cache)
    files: dict[str, str] = {}
    members: list[tuple[Path, str]] = []
    for kind in KINDS:
        for key in keys.get(kind, []):
            folder = store.folder(kind, key)
            if store.verify(folder) is None:
                raise BenchError(f"cache {cache} has no valid {kind} entry {key[:12]} for this run "
                                 "(export from the cache the run used: --cache)")
            for f in sorted(folder.iterdir()):
                rel = f"artefacts/{kind}/{key}/{f.name}"
                files[rel] = sha256_file(f)
                members.append((f, rel))
    meta = {"bundle_schema": BUNDLE_SCHEMA, "truth_hash": results["run"]["truth_hash"], "artefacts": keys,
            "run": {k: v for k, v in results["run"].items() if k != "command"}, "files": files,
            "provenance": results["provenance"]}

    def write(tmp: Path) -> None:
        with tarfile.open(tmp, "w:gz") as tar:
            blob = json.dumps(meta, indent=1, sort_keys=True).encode()
            with tempfile.NamedTemporaryFile() as fh:
                fh.write(blob)
                fh.flush()
                tar.add(fh.name, arcname="bundle.json")
            for path, rel in members:
                tar.add(path, arcname=rel)

    atomic_write_bytes(out, write)  # a failed export leaves no half bundle and no temp file
    return out


def _check_benchmark(meta: dict[str, Any]) -> str:
    """Rebuild the training data here (when the adapter exists) and compare its hash with the bundle's."""
    from guda_bench.runner import benchmark_of

    run = meta["run"]
    try:
        bench = benchmark_of(run)
    except BenchError as exc:
        return f"training data not checked: {exc}"
    if bench.data_hash() != run["data_hash"]:
        raise BenchError(f"refusing the bundle: dataset {run['dataset']!r} here differs from the one its ground "
                         f"truth was built on (data hash {bench.data_hash()[:12]} != {run['data_hash'][:12]})")
    return "training data verified"


def board_mismatch(held: dict[str, Any], asked: dict[str, Any]) -> str:
    """The board settings in which a bundle's run (`held`) differs from `asked`; '' when it is the same board.

    Groupings compare with every parameter, defaults filled in (``specialists`` is ``specialists:share=0.25``;
    ``specialists:share=0.5`` is another board), and are named as ``--grouping`` flags."""
    shown = {k: held.get(k) for k in asked}
    if "grouping" in asked:
        spec = parse_grouping(str(asked["grouping"]))
        asked = {**asked, "grouping": spec.flag}
        # a run records its grouping's label and parameters; one that predates the parameters, its label only
        if held.get("grouping_params"):
            shown["grouping"] = recorded_grouping(held["grouping_params"]).flag
        elif held.get("grouping") == spec.label:
            shown["grouping"] = spec.flag
    return ", ".join(f"--{k} {shown[k]} (this run: {asked[k]})" for k in asked if shown[k] != asked[k])


def import_bundle(bundle: Path, cache: Path, board: dict[str, Any] | None = None) -> dict[str, Any]:
    """Verify a bundle and add its entries to `cache`; returns what was checked and added.

    `board` (dataset, preset, grouping, seed): a bundle of another board is refused before anything is added."""
    if not bundle.exists():
        raise BenchError(f"no bundle at {bundle}")
    store = Store(cache)
    with tempfile.TemporaryDirectory(dir=store.root) as tmpdir:
        tmp = Path(tmpdir)
        try:
            with tarfile.open(bundle, "r:gz") as tar:
                tar.extractall(tmp, filter="data")
            if not (tmp / "bundle.json").is_file():
                raise BenchError(f"{bundle} is not a guda-bench bundle (no bundle.json in it)")
            meta = json.loads((tmp / "bundle.json").read_text())
        except (tarfile.TarError, OSError, json.JSONDecodeError, KeyError) as exc:
            raise BenchError(f"{bundle} is not a readable guda-bench bundle ({exc})") from None
        for rel, digest in meta["files"].items():
            path = tmp / rel
            if not path.exists() or sha256_file(path) != digest:
                raise BenchError(f"refusing the bundle: {rel} does not match its sha256")
        for kind in KINDS:
            for key in meta["artefacts"].get(kind, []):
                folder = tmp / "artefacts" / kind / key
                manifest = store.verify(folder)
                if manifest is None or store.key(kind, manifest["spec"]) != key:
                    raise BenchError(f"refusing the bundle: {kind} entry {key[:12]} does not match its spec")
        n_truth = int(meta["run"].get("truth_seeds") or 1)  # the truth averages the first n studies
        gold = gold_of([np.load(tmp / "artefacts" / "logoa" / key / "logoa.npy")
                        for key in meta["artefacts"]["logoa"][:n_truth]])
        if truth_hash(gold, meta["artefacts"]["queries"][0]) != meta["truth_hash"]:
            raise BenchError("refusing the bundle: its LOGO scores do not hash to its truth hash")
        if board is not None and (differ := board_mismatch(meta["run"], board)):
            raise BenchError(f"{bundle} holds another board's truth: {differ}; give the board's flags or its own "
                             "bundle")
        data_check = _check_benchmark(meta)
        added = []
        for kind in KINDS:
            for key in meta["artefacts"].get(kind, []):
                dest = store.folder(kind, key)
                if store.verify(dest) is not None:
                    continue
                if dest.exists():
                    shutil.rmtree(dest)
                dest.parent.mkdir(parents=True, exist_ok=True)
                (tmp / "artefacts" / kind / key).rename(dest)
                added.append(f"{kind}/{key[:12]}")
    return {"truth_hash": meta["truth_hash"], "dataset": meta["run"]["dataset"], "preset": meta["run"]["preset"],
            "grouping": meta["run"]["grouping"], "run": meta["run"], "data": data_check, "added": added,
            "sha256": sha256_file(bundle)}

