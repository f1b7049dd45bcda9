"""The Ray executor on a local 2-CPU instance gives the same CSV as the local executor."""

import json

import pandas as pd
import pytest

from guda_bench import results
from guda_bench.cli import main
from tests.tiny_dataset import NAME, register

TIMING = list(results.TIMING)

ray = pytest.importorskip("ray")


@pytest.fixture
def keep_torch_threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_ray_executor_matches_local_executor(tmp_path, monkeypatch, keep_torch_threads):
    register()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    # one torch thread here and in every task (two tasks at a time on 2 CPUs): same float reduction order
    base = ["run", "--dataset", NAME, "--preset", "tiny", "--method", "logo,guda,pixel-nn", "--quiet",
            "--ceiling-seeds", "2", "--threads", "1"]
    assert main([*base, "--out", str(tmp_path / "local"), "--cache", str(tmp_path / "c1")]) == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        assert main([*base, "--executor", "ray", "--out", str(tmp_path / "ray"), "--cache", str(tmp_path / "c2")]) == 0
        # a rerun finds every entry the workers built: nothing is rebuilt
        models = sorted(p.name for p in (tmp_path / "c2" / "model").iterdir())
        assert main([*base, "--executor", "ray", "--out", str(tmp_path / "ray2"), "--cache", str(tmp_path / "c2")]) == 0
        assert sorted(p.name for p in (tmp_path / "c2" / "model").iterdir()) == models
    finally:
        ray.shutdown()
    a = pd.read_csv(tmp_path / "local" / "summary.csv").drop(columns=TIMING)
    b = pd.read_csv(tmp_path / "ray" / "summary.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)
    res = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert len(models) == 1 + 2 * 3  # full model + 2 LOGO studies x 3 groups, built by the workers
    assert res["truth"]["cost_s"] > 0
    # same keys, and byte-identical weights: Ray tasks run torch with the driver's thread count
    for key in models:
        local = (tmp_path / "c1" / "model" / key / "diffusion_pytorch_model.safetensors").read_bytes()
        assert (tmp_path / "c2" / "model" / key / "diffusion_pytorch_model.safetensors").read_bytes() == local


def test_ray_address_without_ray_executor_is_one_line(tmp_path, capsys):
    code = main(["run", "--preset", "smoke", "--ray-address", "auto", "--out", str(tmp_path / "x"), "--quiet"])
    assert code == 2 and "--ray-address needs --executor ray" in capsys.readouterr().err


def test_task_threads_without_ray_executor_is_one_line(tmp_path, capsys):
    code = main(["run", "--preset", "smoke", "--task-threads", "1", "--out", str(tmp_path / "x"), "--quiet"])
    assert code == 2 and "--task-threads needs --executor ray" in capsys.readouterr().err


def test_task_threads_set_the_threads_of_ray_tasks_only(tmp_path, monkeypatch, keep_torch_threads):
    """--threads 2 --task-threads 1: the driver builds the full model with 2 threads, the tasks build the LOGO
    models with 1, byte-identical to LOGO models built locally with --threads 1."""
    register()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    base = ["run", "--dataset", NAME, "--preset", "tiny", "--method", "logo", "--quiet"]
    assert main([*base, "--threads", "1", "--out", str(tmp_path / "local"), "--cache", str(tmp_path / "c1")]) == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        assert main([*base, "--threads", "2", "--executor", "ray", "--task-threads", "1",
                     "--out", str(tmp_path / "ray"), "--cache", str(tmp_path / "c2")]) == 0
    finally:
        ray.shutdown()
    import torch

    assert torch.get_num_threads() == 2  # the driver kept its own threads
    models = sorted(p.name for p in (tmp_path / "c2" / "model").iterdir())
    assert models == sorted(p.name for p in (tmp_path / "c1" / "model").iterdir()) and len(models) == 1 + 3
    logo = [k for k in models
            if json.loads((tmp_path / "c2" / "model" / k / "manifest.json").read_text())["spec"]["exclude"] is not None]
    assert len(logo) == 3
    for key in logo:  # built by one-thread tasks: the bytes of a local --threads 1 build
        local = (tmp_path / "c1" / "model" / key / "diffusion_pytorch_model.safetensors").read_bytes()
        assert (tmp_path / "c2" / "model" / key / "diffusion_pytorch_model.safetensors").read_bytes() == local


class InlineParallel:
    """A stand-in for a parallel executor that runs jobs in this process (each in a fresh worker Context)."""

    name = "inline"
    parallel = True

    def map(self, fn, items):
        return [fn(i) for i in items]


def _method_job(tag: str, ctx, k: int) -> str:
    def build(folder):
        (folder / "value.txt").write_text(f"{tag}{k}")

    return ctx.fetch("test-job", {"tag": tag, "k": k, "data": ctx.data_hash}, build).key


def test_prebuild_runs_method_jobs_in_worker_contexts_and_the_driver_reuses_them(tmp_path):
    from functools import partial

    from guda_bench.context import Context
    from guda_bench.executor import prebuild
    from guda_bench.registry import DATASETS
    from guda_bench.store import Store

    register()
    adapter = DATASETS.entry(NAME).create({})
    ctx = Context(adapter.load(adapter.preset("tiny")), Store(tmp_path / "cache"), executor=InlineParallel())
    prebuild(ctx, partial(_method_job, "x"), [0, 1, 2])
    entries = sorted(p.name for p in (tmp_path / "cache" / "test-job").iterdir())
    assert len(entries) == 3
    art = ctx.fetch("test-job", {"tag": "x", "k": 1, "data": ctx.data_hash}, lambda folder: None)
    assert not art.built and (art.path / "value.txt").read_text() == "x1"


class RecordingParallel(InlineParallel):
    """InlineParallel that records the items it was sent."""

    def __init__(self):
        self.sent = []

    def map(self, fn, items):
        self.sent.append(list(items))
        return super().map(fn, items)


def _failing_job(ctx, k: int) -> None:
    raise RuntimeError(f"job {k} fails")


def test_prebuild_sends_only_the_items_whose_entries_are_not_cached_and_charges_no_probe(tmp_path):
    from functools import partial

    from guda_bench.context import Context
    from guda_bench.executor import prebuild
    from guda_bench.registry import DATASETS
    from guda_bench.store import Store

    register()
    adapter = DATASETS.entry(NAME).create({})
    executor = RecordingParallel()
    ctx = Context(adapter.load(adapter.preset("tiny")), Store(tmp_path / "cache"), executor=executor)
    prebuild(ctx, partial(_method_job, "x"), [0, 1])
    with ctx.stage() as stage:
        prebuild(ctx, partial(_method_job, "x"), [0, 1, 2])  # 0 and 1 are cached: only 2 is sent
        prebuild(ctx, partial(_method_job, "x"), [0, 1, 2])  # all cached (a warm rerun): nothing is sent
    assert executor.sent == [[0, 1], [2]]
    assert stage["cached_cost_s"] == 0 and stage["used"] == {}  # the probes read, they are not charged
    assert not ctx.probing and ctx._stage is None
    with pytest.raises(RuntimeError, match="job 3 fails"):  # an error in a probe is left to the worker to raise
        prebuild(ctx, _failing_job, [3])


def _slow_job(ctx, k: int) -> str:
    import time

    def build(folder):
        time.sleep(0.3)
        (folder / "value.txt").write_text(str(k))

    return ctx.fetch("slow-job", {"k": k, "data": ctx.data_hash}, build).key


def test_a_stage_charges_task_work_once_not_also_the_driver_wait_nor_a_repeated_read(tmp_path):
    """The driver waits while tasks build entries, then reads them: the entries' recorded cost is charged, the
    wait is not (else a parallel run's cost counts its task work twice), and an entry read twice in one stage
    (a repeated LDS subset) is charged once; a warm rerun of the stage costs what the cold one did."""

    from guda_bench.context import Context
    from guda_bench.executor import prebuild
    from guda_bench.registry import DATASETS
    from guda_bench.store import Store

    register()
    adapter = DATASETS.entry(NAME).create({})
    costs = []
    for _ in range(2):  # cold, then warm
        ctx = Context(adapter.load(adapter.preset("tiny")), Store(tmp_path / "cache"), executor=InlineParallel())
        _ = ctx.full, ctx.queries_artefact  # what every job needs, outside the stage
        with ctx.stage() as stage:
            prebuild(ctx, _slow_job, [0, 1])
            for k in (0, 1, 1):
                _slow_job(ctx, k)
        costs.append(stage["cost_s"])
    recorded = sum(ctx.fetch("slow-job", {"k": k, "data": ctx.data_hash}, lambda f: None).cost_s for k in (0, 1))
    assert recorded >= 0.6
    assert costs[0] == pytest.approx(recorded, abs=0.25)  # not recorded + the 0.6 s wait, not 3 reads
    assert costs[1] == pytest.approx(recorded, abs=0.25)


def test_instance_unlearning_per_query_chunks_equal_the_single_pass_and_are_shared_by_executors(tmp_path,
                                                                                                 monkeypatch):
    import numpy as np

    from guda_bench.context import Context
    from guda_bench.registry import DATASETS, METHODS
    from guda_bench.store import Store

    register()
    module = __import__(METHODS.entry("instance-unlearning").cls.__module__, fromlist=["QUERY_CHUNK"])
    adapter = DATASETS.entry(NAME).create({})
    bench = adapter.load(adapter.preset("tiny"))
    options = {"max_train_per_group": "2", "n_timesteps": "2", "fisher_samples": "6"}

    def scores(cache: str, executor=None):
        ctx = Context(bench, Store(tmp_path / cache), executor=executor)
        method = METHODS.entry("instance-unlearning").create(options)
        method.prepare(ctx)
        return method.score(ctx)

    monkeypatch.setattr(module, "QUERY_CHUNK", 100)
    whole = scores("whole")  # the 8 queries in one pass
    monkeypatch.setattr(module, "QUERY_CHUNK", 3)
    local = scores("chunked")  # the local executor builds three chunks of <= 3 queries
    parallel = RecordingParallel()
    fanned = scores("chunked", parallel)  # a parallel executor finds the local run's chunks: nothing to send
    np.testing.assert_array_equal(whole, local)
    np.testing.assert_array_equal(whole, fanned)
    assert len(list((tmp_path / "whole" / "instance-scores").iterdir())) == 1
    assert len(list((tmp_path / "chunked" / "instance-scores").iterdir())) == 3
    assert parallel.sent == []


def test_guda_esd_fans_its_per_group_fine_tunes_out_and_scores_as_a_local_run(tmp_path):
    import numpy as np

    from guda_bench.context import Context
    from guda_bench.registry import DATASETS, METHODS
    from guda_bench.store import Store

    register()
    adapter = DATASETS.entry(NAME).create({})
    bench = adapter.load(adapter.preset("tiny"))
    scores, entries, driver_built = [], [], []
    for executor, cache in ((InlineParallel(), "fanned"), (None, "local")):
        ctx = Context(bench, Store(tmp_path / cache), executor=executor)
        built: list[str] = []
        ctx.store.get_or_build = _recording(ctx.store.get_or_build, built)
        method = METHODS.entry("guda-esd").create({})
        method.prepare(ctx)
        scores.append(method.score(ctx))
        entries.append(sorted(p.name for p in (tmp_path / cache / "unlearned-esd").iterdir()))
        driver_built.append(built.count("unlearned-esd"))
    assert len(entries[0]) == bench.n_groups and entries[0] == entries[1]  # one fine-tune per group, same keys
    np.testing.assert_array_equal(scores[0], scores[1])
    # fanned out: the jobs' worker contexts built every fine-tune, the driver only read them
    assert driver_built == [0, bench.n_groups]


def _recording(get_or_build, built: list):
    """Wraps Store.get_or_build: logs the kind of every entry this store built itself."""

    def wrapped(kind, spec, build):
        art = get_or_build(kind, spec, build)
        if art.built:
            built.append(kind)
        return art

    return wrapped


def test_a_stage_splits_its_cost_by_the_machine_that_measured_it(tmp_path):
    """A cost read from a cache entry was measured where the entry was built (its manifest's machine: a
    bundle's, or an older cache's, may be another CPU); the driver's own seconds were measured here."""
    import json
    import time

    from guda_bench.context import Context
    from guda_bench.registry import DATASETS
    from guda_bench.store import Store

    register()
    adapter = DATASETS.entry(NAME).create({})
    ctx = Context(adapter.load(adapter.preset("tiny")), Store(tmp_path / "cache"))

    def build(folder):
        time.sleep(0.05)
        (folder / "x.txt").write_text("x")

    with ctx.stage() as first:
        art = ctx.fetch("features-train", {"probe": 1}, build)
    assert set(first["machines"]) == {ctx.machine} and first["machines"][ctx.machine] >= 0.05
    manifest = json.loads((art.path / "manifest.json").read_text())
    assert manifest["machine"] == ctx.machine
    (art.path / "manifest.json").write_text(json.dumps({**manifest, "machine": "Other CPU, 2 cores"}))
    with ctx.stage() as again:  # the same entry, cached, as a bundle from another machine would hold it
        ctx.fetch("features-train", {"probe": 1}, build)
        ctx.fetch("features-train", {"probe": 1}, build)  # read twice: charged once
    assert again["machines"]["Other CPU, 2 cores"] == pytest.approx(art.cost_s)
    assert sum(again["machines"].values()) == pytest.approx(again["cost_s"])
    assert again["machines"].get(ctx.machine, 0.0) < art.cost_s  # only the driver's own reading time is here's
