"""Content-addressed cache of everything expensive (models, queries, ELBO terms).

Each artefact lives in ``<root>/<kind>/<key>/`` where key = sha256 of the canonical JSON of everything
that determines it. A ``manifest.json`` records the sha256 of every file, the config, and the compute
seconds it took to build (so a warm run can still report honest costs). Artefacts are built in a
temporary folder and renamed into place, guarded by a per-key file lock: an interrupted build leaves
nothing behind, two runs sharing a cache never see half an artefact, and a finished artefact is never
rebuilt. Every load re-verifies the checksums; a mismatch is reported in one line and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from guda_bench.config import canonical_hash, to_jsonable
from guda_bench.errors import BenchError

MANIFEST = "manifest.json"


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (os.umask(0) would briefly let files
    that another thread creates meanwhile be world-writable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _plain_mode(path: Path, folder: bool = False) -> None:
    """Give a temporary file or folder the mode a plain open()/mkdir() would (tempfile makes them owner-only),
    so a cache shared by a lab's users and the files it publishes stay readable by the others."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_output_dir(out: Path, what: str = "output folder") -> None:
    """Create `out` and prove it writable now, so a bad path fails in one line before any work."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise BenchError(f"{what} {out} is not writable ({exc.strerror or exc})") from None


def check_output_file(path: Path, what: str = "output file") -> None:
    """A file about to be written (atomically) at the end of some work: its folder must take it, and it must
    not be a folder."""
    if path.is_dir():
        raise BenchError(f"{what} {path} is a folder: give a file name")
    check_output_dir(path.parent, f"the folder of {what} {path}:")


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        _plain_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, write: Callable[[Path], None]) -> None:
    """Let `write` fill a temporary path, then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        _plain_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Artefact:
    """A verified cache entry. `built` says whether this call built it (its cost is then in wall time)."""

    key: str
    path: Path
    manifest: dict[str, Any]
    built: bool

    @property
    def cost_s(self) -> float:
        return float(self.manifest.get("cost_s", 0.0))


class NotCached(Exception):  # noqa: N818 - a probe's answer, not a failure
    """A probing reader needed an entry that is not in the cache (guda_bench.context.Context.probe)."""


class Store:
    """The shared cache. `get_or_build` is the only way artefacts come into being."""

    def __init__(self, root: Path, log: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.log = log or (lambda msg: None)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BenchError(f"cache folder {self.root} cannot be used ({exc.strerror or exc})") from None

    def key(self, kind: str, spec: Any) -> str:
        return canonical_hash({"kind": kind, "spec": spec})

    def folder(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def verify(self, folder: Path) -> dict[str, Any] | None:
        """The manifest if every listed file matches its checksum, else None (with a one-line report)."""
        mpath = folder / MANIFEST
        if not mpath.exists():
            return None
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, json.JSONDecodeError):
            self.log(f"cache: unreadable manifest in {folder}, rebuilding")
            return None
        for name, digest in manifest.get("files", {}).items():
            f = folder / name
            if not f.exists() or sha256_file(f) != digest:
                self.log(f"cache: checksum mismatch for {folder.name[:12]}/{name}, rebuilding")
                return None
        return manifest

    def lookup(self, kind: str, spec: Any) -> Artefact | None:
        """The verified artefact for (kind, spec) if it is in the cache, else None (nothing is built)."""
        return self._cached(kind, self.key(kind, spec))

    def _cached(self, kind: str, key: str) -> Artefact | None:
        folder = self.folder(kind, key)
        manifest = self.verify(folder)
        return None if manifest is None else Artefact(key, folder, manifest, built=False)

    def get_or_build(self, kind: str, spec: Any, build: Callable[[Path], dict[str, Any] | None]) -> Artefact:
        """Return the verified artefact for (kind, spec), building it with `build(tmp_folder)` if needed.

        `build` writes its files into the folder it is given and may return extra manifest fields.
        """
        key = self.key(kind, spec)  # hashed once: a spec can be large (e.g. lists of image indices)
        if (cached := self._cached(kind, key)) is not None:
            return cached
        folder = self.folder(kind, key)
        lock_dir = self.root / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_dir / f"{key}.lock")):
            if (cached := self._cached(kind, key)) is not None:  # another process may have finished it meanwhile
                return cached
            folder.parent.mkdir(parents=True, exist_ok=True)
            # a build killed hard (kill -9, power loss) leaves its temp folder; under the key's lock no other
            # process is building this key, so any such folder is stale and only costs disk
            tmp_prefix = f".{key[:12]}."
            for stale in folder.parent.glob(tmp_prefix + "*"):
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=tmp_prefix))
            try:
                _plain_mode(tmp, folder=True)
                t0 = time.perf_counter()
                extra = build(tmp) or {}
                cost = time.perf_counter() - t0
                files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
                # the spec as hashed (added knobs at their default left out): the key can be recomputed from it
                manifest = {"key": key, "kind": kind, "spec": to_jsonable(spec, for_key=True), "files": files,
                            "cost_s": cost, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}
                (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
                if folder.exists():
                    shutil.rmtree(folder)
                os.replace(tmp, folder)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return Artefact(key, folder, manifest, built=True)
