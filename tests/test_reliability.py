"""Hostile methods, per-method timeouts, determinism and crash-resume on a tiny real benchmark."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from guda_bench import Method, Unavailable
from guda_bench.cli import main
from guda_bench.registry import METHODS
from tests import tiny_dataset

TIMING = ["prepare_s", "score_s", "cost_s", "speedup"]
REPO = Path(__file__).resolve().parent.parent


class Raises(Method):
    def score(self, ctx):
        raise RuntimeError("boom")


class ReturnsNan(Method):
    def score(self, ctx):
        out = np.zeros((len(ctx.queries), ctx.bench.n_groups))
        out[0, 0] = np.nan
        return out


class WrongShape(Method):
    def score(self, ctx):
        return np.zeros((len(ctx.queries), ctx.bench.n_groups + 1))


class TooSlow(Method):
    def prepare(self, ctx):
        time.sleep(30)

    def score(self, ctx):
        return np.zeros((len(ctx.queries), ctx.bench.n_groups))


class NeedsWeights(Method):
    def score(self, ctx):
        raise Unavailable("no weights at /nowhere/clip.bin")


HOSTILE = {"hostile-raise": Raises, "hostile-nan": ReturnsNan, "hostile-shape": WrongShape,
           "hostile-slow": TooSlow, "hostile-unavailable": NeedsWeights}


@pytest.fixture
def hostile_methods():
    tiny_dataset.register()
    for name, cls in HOSTILE.items():
        METHODS.register(name)(cls)
    yield list(HOSTILE)
    for name in HOSTILE:
        METHODS._entries.pop(name, None)


def _run(out: Path, cache: Path, methods: str, *extra: str) -> int:
    tiny_dataset.register()
    return main(["run", "--dataset", tiny_dataset.NAME, "--preset", "tiny", "--method", methods, "--out", str(out),
                 "--cache", str(cache), "--quiet", *extra])


def test_hostile_methods_get_failed_rows_and_others_finish(hostile_methods, tmp_path):
    code = _run(tmp_path / "run", tmp_path / "cache", ",".join(["random", *hostile_methods, "pixel-nn"]),
                "--method-timeout", "2")
    assert code == 0
    rows = {r["method"]: r for r in json.loads((tmp_path / "run" / "results.json").read_text())["rows"]}
    assert rows["random"]["status"] == "ok" and rows["pixel-nn"]["status"] == "ok"
    assert rows["hostile-raise"]["status"] == "failed" and "boom" in rows["hostile-raise"]["reason"]
    assert rows["hostile-nan"]["status"] == "failed" and "non-finite" in rows["hostile-nan"]["reason"]
    assert rows["hostile-shape"]["status"] == "failed" and "shape" in rows["hostile-shape"]["reason"]
    assert rows["hostile-slow"]["status"] == "failed" and "timed out" in rows["hostile-slow"]["reason"]
    assert rows["hostile-unavailable"]["status"] == "unavailable"
    assert "/nowhere/clip.bin" in rows["hostile-unavailable"]["reason"]
    summary = pd.read_csv(tmp_path / "run" / "summary.csv")
    assert len(summary) == 7


def test_same_seed_gives_identical_csv(tmp_path):
    for name in ("a", "b"):
        assert _run(tmp_path / name, tmp_path / f"cache-{name}", "all") == 0
    a = pd.read_csv(tmp_path / "a" / "summary.csv").drop(columns=TIMING)
    b = pd.read_csv(tmp_path / "b" / "summary.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)
    for f in (tmp_path / "a" / "scores").iterdir():
        assert np.array_equal(np.load(f), np.load(tmp_path / "b" / "scores" / f.name)), f.name


def _models(cache: Path) -> dict[str, float]:
    folder = cache / "model"
    if not folder.exists():
        return {}
    return {p.name: (p / "manifest.json").stat().st_mtime for p in folder.iterdir()
            if (p / "manifest.json").exists()}


def test_kill_during_logo_training_then_resume(tmp_path):
    cmd = [sys.executable, "-c",
           "import sys; from tests import tiny_dataset; tiny_dataset.register(); from guda_bench.cli import main; "
           "sys.exit(main(sys.argv[1:]))",
           "run", "--dataset", tiny_dataset.NAME, "--preset", "slow-train", "--method", "logo,pixel-nn",
           "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env)
    deadline = time.time() + 240
    while len(_models(tmp_path / "cache")) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _models(tmp_path / "cache")
    assert 2 <= len(finished) < 4, "the kill should land in the middle of the LOGO trainings"
    assert subprocess.run(cmd, cwd=REPO, env=env, timeout=300).returncode == 0
    after = _models(tmp_path / "cache")
    assert len(after) == 4
    assert all(after[k] == v for k, v in finished.items()), "a finished model was retrained"
    # same result as an uninterrupted run in a fresh cache
    cmd_clean = [c.replace(str(tmp_path / "run"), str(tmp_path / "clean")).replace(
        str(tmp_path / "cache"), str(tmp_path / "cache2")) for c in cmd]
    assert subprocess.run(cmd_clean, cwd=REPO, env=env, timeout=300).returncode == 0
    a = pd.read_csv(tmp_path / "run" / "summary.csv").drop(columns=TIMING)
    b = pd.read_csv(tmp_path / "clean" / "summary.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)


def test_two_runs_sharing_a_cache_at_once(tmp_path):
    cmd = [sys.executable, "-c",
           "import sys; from tests import tiny_dataset; tiny_dataset.register(); from guda_bench.cli import main; "
           "sys.exit(main(sys.argv[1:]))",
           "run", "--dataset", tiny_dataset.NAME, "--preset", "tiny", "--method", "logo,guda,pixel-nn",
           "--cache", str(tmp_path / "cache"), "--quiet", "--out"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([*cmd, str(tmp_path / name)], cwd=REPO, env=env) for name in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    a = pd.read_csv(tmp_path / "a" / "summary.csv").drop(columns=TIMING)
    b = pd.read_csv(tmp_path / "b" / "summary.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)
    # every cache entry is complete and verifies; no temp folders are left behind
    from guda_bench.store import Store

    store = Store(tmp_path / "cache")
    for kind in ("model", "queries", "terms", "unlearned"):
        entries = list((tmp_path / "cache" / kind).iterdir())
        assert entries and all(not p.name.startswith(".") for p in entries)
        assert all(store.verify(p) is not None for p in entries)


def test_corrupted_checkpoint_is_detected_and_rebuilt(tmp_path, capsys):
    assert _run(tmp_path / "a", tmp_path / "cache", "logo") == 0
    first = pd.read_csv(tmp_path / "a" / "summary.csv").drop(columns=TIMING)
    model = next(p for p in (tmp_path / "cache" / "model").iterdir()
                 if json.loads((p / "manifest.json").read_text())["spec"]["exclude"] == 1)
    weights = next(model.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated checkpoint
    terms = next((tmp_path / "cache" / "terms").iterdir()) / "terms.npy"
    data = bytearray(terms.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in a cached score file
    terms.write_bytes(bytes(data))
    logoa = next((tmp_path / "cache" / "logoa").iterdir()) / "logoa.npy"
    data = bytearray(logoa.read_bytes())
    data[-3] ^= 0x01  # and in the cached LOGOA matrix, so the truth is rebuilt from the (corrupted) entries
    logoa.write_bytes(bytes(data))
    from guda_bench import progress

    progress.set_enabled(True)
    try:
        assert main(["run", "--dataset", tiny_dataset.NAME, "--preset", "tiny", "--method", "logo", "--out",
                     str(tmp_path / "b"), "--cache", str(tmp_path / "cache")]) == 0
    finally:
        progress.set_enabled(False)
    err = capsys.readouterr().err
    assert err.count("checksum mismatch") >= 3
    second = pd.read_csv(tmp_path / "b" / "summary.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(first, second)
