"""The content-addressed cache: build once, verify checksums, rebuild on corruption, atomic writes."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from guda_bench.store import MANIFEST, Store, atomic_write_bytes, atomic_write_text, sha256_file


class CountingBuilder:
    """Writes two small files; counts calls (thread-safe)."""

    def __init__(self, sleep: float = 0.0, payload: bytes = b"hello artefact") -> None:
        self.calls = 0
        self.sleep = sleep
        self.payload = payload
        self._lock = threading.Lock()

    def __call__(self, folder: Path) -> dict:
        with self._lock:
            self.calls += 1
        if self.sleep:
            time.sleep(self.sleep)
        (folder / "data.bin").write_bytes(self.payload)
        (folder / "meta.txt").write_text("meta")
        return {"extra_field": 7}


def leftovers(kind_folder: Path) -> list[str]:
    """Hidden temp folders/files left next to finished artefacts."""
    if not kind_folder.exists():
        return []
    return [p.name for p in kind_folder.iterdir() if p.name.startswith(".")]


def test_builds_once_then_cached(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    build = CountingBuilder()
    a = store.get_or_build("model", {"steps": 3}, build)
    assert a.built is True
    assert build.calls == 1
    assert (a.path / "data.bin").read_bytes() == b"hello artefact"
    b = store.get_or_build("model", {"steps": 3}, build)
    assert b.built is False
    assert build.calls == 1
    assert b.key == a.key and b.path == a.path
    # a fresh Store on the same root also finds it
    c = Store(tmp_path / "cache").get_or_build("model", {"steps": 3}, build)
    assert c.built is False and build.calls == 1


def test_manifest_lists_checksums_and_cost(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    a = store.get_or_build("model", {"steps": 3}, CountingBuilder(sleep=0.05))
    manifest = json.loads((a.path / MANIFEST).read_text())
    assert set(manifest["files"]) == {"data.bin", "meta.txt"}
    for name, digest in manifest["files"].items():
        assert digest == sha256_file(a.path / name)
        assert len(digest) == 64
    assert manifest["cost_s"] >= 0.05
    assert a.cost_s == pytest.approx(manifest["cost_s"])
    assert manifest["extra_field"] == 7
    assert manifest["key"] == a.key
    assert manifest["kind"] == "model"
    assert manifest["spec"] == {"steps": 3}
    # the warm load reports the recorded cost, not zero
    b = store.get_or_build("model", {"steps": 3}, CountingBuilder())
    assert b.cost_s == pytest.approx(manifest["cost_s"])


@pytest.mark.parametrize("corrupt", ["append", "truncate", "delete"])
def test_corruption_detected_and_rebuilt(tmp_path: Path, corrupt: str) -> None:
    messages: list[str] = []
    store = Store(tmp_path / "cache", log=messages.append)
    build = CountingBuilder()
    a = store.get_or_build("model", {"steps": 3}, build)
    assert store.verify(a.path) is not None
    assert messages == []
    target = a.path / "data.bin"
    if corrupt == "append":
        with open(target, "ab") as f:
            f.write(b"garbage")
    elif corrupt == "truncate":
        target.write_bytes(target.read_bytes()[:3])
    else:
        target.unlink()

    assert store.verify(a.path) is None
    assert len(messages) == 1
    assert "checksum" in messages[0]
    assert "\n" not in messages[0]
    assert "data.bin" in messages[0]

    messages.clear()
    b = store.get_or_build("model", {"steps": 3}, build)
    assert b.built is True
    assert build.calls == 2
    assert b.path == a.path
    assert (b.path / "data.bin").read_bytes() == b"hello artefact"
    assert store.verify(b.path) is not None
    assert any("checksum" in m for m in messages)
    assert all("\n" not in m for m in messages)
    assert leftovers(tmp_path / "cache" / "model") == []
    # and now it is cached again
    assert store.get_or_build("model", {"steps": 3}, build).built is False
    assert build.calls == 2


def test_unreadable_manifest_rebuilt(tmp_path: Path) -> None:
    messages: list[str] = []
    store = Store(tmp_path / "cache", log=messages.append)
    build = CountingBuilder()
    a = store.get_or_build("model", {"steps": 3}, build)
    (a.path / MANIFEST).write_text("{not json")
    b = store.get_or_build("model", {"steps": 3}, build)
    assert b.built is True and build.calls == 2
    assert len(messages) >= 1 and all("\n" not in m for m in messages)


def test_failing_builder_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")

    def boom(folder: Path) -> None:
        (folder / "half.bin").write_bytes(b"half")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        store.get_or_build("model", {"steps": 3}, boom)
    kind = tmp_path / "cache" / "model"
    assert not store.folder("model", store.key("model", {"steps": 3})).exists()
    assert not kind.exists() or list(kind.iterdir()) == []
    # a later good build works
    build = CountingBuilder()
    assert store.get_or_build("model", {"steps": 3}, build).built is True
    assert build.calls == 1


def test_keyboard_interrupt_in_builder_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")

    def interrupted(folder: Path) -> None:
        (folder / "half.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.get_or_build("model", {"steps": 3}, interrupted)
    kind = tmp_path / "cache" / "model"
    assert not kind.exists() or list(kind.iterdir()) == []


def test_killed_build_leftover_removed_by_next_build(tmp_path: Path) -> None:
    """kill -9 runs no cleanup: the next build of the same key removes the dead build's temp folder, and
    leaves another key's temp folder (a build that may be running) alone."""
    store = Store(tmp_path / "cache")
    key, other = store.key("model", {"steps": 3}), store.key("model", {"steps": 4})
    kind = tmp_path / "cache" / "model"
    dead, running = kind / f".{key[:12]}.k1ll3d", kind / f".{other[:12]}.bu1ld"
    for folder in (dead, running):
        folder.mkdir(parents=True)
        (folder / "half.bin").write_bytes(b"half")
    assert store.get_or_build("model", {"steps": 3}, CountingBuilder()).built is True
    assert leftovers(kind) == [running.name]


def test_keys(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    spec = {"a": 1, "b": [1, 2], "c": {"x": 1.5, "y": "z"}}
    shuffled = {"c": {"y": "z", "x": 1.5}, "b": [1, 2], "a": 1}
    assert store.key("model", spec) == store.key("model", shuffled)
    assert store.key("model", spec) != store.key("model", {**spec, "a": 2})
    assert store.key("model", spec) != store.key("queries", spec)
    assert store.key("model", {"b": [1, 2]}) != store.key("model", {"b": [2, 1]})
    assert len(store.key("model", spec)) == 64
    build = CountingBuilder()
    a = store.get_or_build("model", spec, build)
    b = store.get_or_build("model", shuffled, build)
    assert a.path == b.path and b.built is False and build.calls == 1
    c = store.get_or_build("model", {**spec, "a": 2}, build)
    assert c.path != a.path and c.built is True and build.calls == 2


def test_atomic_write_text(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "file.json"
    atomic_write_text(path, "first")
    assert path.read_text() == "first"
    atomic_write_text(path, "second, longer content")
    assert path.read_text() == "second, longer content"
    atomic_write_text(path, "3")
    assert path.read_text() == "3"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.json"]


def test_concurrent_builds_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    build = CountingBuilder(sleep=0.3)
    results: list = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        try:
            barrier.wait(timeout=5)
            results.append(store.get_or_build("model", {"steps": 3}, build))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert errors == []
    assert len(results) == 2
    assert build.calls == 1
    assert sorted(r.built for r in results) == [False, True]
    assert results[0].path == results[1].path
    assert (results[0].path / "data.bin").read_bytes() == b"hello artefact"
    assert leftovers(tmp_path / "cache" / "model") == []


def test_written_files_and_artefacts_get_plain_modes(tmp_path: Path) -> None:
    """Temporary files are owner-only; what lands must be readable like any file, so a lab can share a cache."""
    old = os.umask(0o022)
    try:
        text, blob = tmp_path / "t.json", tmp_path / "b.npy"
        atomic_write_text(text, "x")
        atomic_write_bytes(blob, lambda p: p.write_bytes(b"x"))
        art = Store(tmp_path / "cache").get_or_build("model", {"steps": 1}, CountingBuilder())
    finally:
        os.umask(old)
    assert stat.S_IMODE(text.stat().st_mode) == 0o644
    assert stat.S_IMODE(blob.stat().st_mode) == 0o644
    assert stat.S_IMODE(art.path.stat().st_mode) == 0o755
