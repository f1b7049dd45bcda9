"""Where per-group jobs run: in this process (default) or fanned out over a Ray cluster.

A job builds one cache entry (a LOGO model, an unlearned model and its ELBO terms) through a fresh
Context in the worker and returns its key; the driver then reads every entry from the cache exactly as
if it had built it, charging the recorded cost. The cache makes jobs idempotent: a job lost with its
worker is simply run again, and an entry another worker already finished is not rebuilt. Workers must
see the cache folder (one machine, or a shared file system for a multi-machine cluster).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from guda_bench.errors import BenchError


class LocalExecutor:
    """Runs nothing ahead: the driver builds each entry when it first needs it."""

    name = "local"
    parallel = False

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return [fn(i) for i in items]

    def shutdown(self) -> None:
        pass


class RayExecutor:
    """One Ray task per job. Each task reserves as many CPUs as it runs torch threads: the driver's
    (`--threads`) unless `--task-threads` says otherwise. Float reduction order depends on the thread count,
    so a Ray-built entry is byte-identical to one built locally with that many threads. `--task-threads 1`
    gives the most tasks: on 2 cores two one-thread tasks at a time, which beats one two-thread process on
    the small per-group fine-tunes (intra-op threads scale poorly on small batches), while the driver keeps
    both cores for the work it does itself (gradient features, metrics)."""

    name = "ray"
    parallel = True

    def __init__(self, address: str | None = None, num_cpus: int | None = None, threads: int | None = None) -> None:
        import torch

        self.threads = threads or torch.get_num_threads()
        from guda_bench.extras import missing

        if why := missing("ray"):
            raise BenchError(f"--executor ray needs Ray: {why}")
        if address:
            probe_address(address)
        import ray

        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            try:
                ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise BenchError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        task = self._ray.remote(num_cpus=self.threads, max_retries=3)(_apply)
        fn_ref = self._ray.put(fn)  # the job's data (e.g. the training images) goes to the object store once
        return self._ray.get([task.remote(fn_ref, i, self.threads) for i in items])

    def shutdown(self) -> None:
        if self._owns:
            self._ray.shutdown()


def probe_address(address: str, timeout_s: float = 5.0) -> None:
    """A cluster address (HOST:PORT or ray://HOST:PORT) that takes no TCP connection fails here in one line,
    before Ray's own retries (minutes of multi-line logs); 'auto' and other forms are left to Ray."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise BenchError(f"cannot reach the Ray cluster at {address!r} ({exc.strerror or exc})") from None


def make_executor(name: str, address: str | None = None,
                  task_threads: int | None = None) -> LocalExecutor | RayExecutor:
    if name == "local":
        if address:
            raise BenchError("--ray-address needs --executor ray")
        if task_threads:
            raise BenchError("--task-threads needs --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, threads=task_threads)
    raise BenchError(f"unknown executor {name!r} (local or ray)")


# ---- jobs (top-level functions: they travel to the workers) -----------------------------------------
def _apply(fn: Callable[[Any], Any], item: Any, threads: int = 1) -> Any:
    import torch

    torch.set_num_threads(threads)
    return fn(item)


def _worker_context(bench: Any, cache: Path, run_seed: int, device: str, precision: str, base_model: Any):
    from guda_bench import progress
    from guda_bench.context import Context
    from guda_bench.store import Store

    progress.set_enabled(False)
    return Context(bench, Store(cache), seed=run_seed, device=device, precision=precision, base_model=base_model)


def _context_job(bench: Any, cache: Path, run_seed: int, device: str, precision: str, base_model: Any,
                 view: Any, fn: Callable[[Any, Any], Any], item: Any) -> Any:
    ctx = _worker_context(bench, cache, run_seed, device, precision, base_model)
    return fn(ctx if view is None else ctx.on_queries(*view), item)


def prebuild(ctx: Any, fn: Callable[[Any, Any], Any], items: Sequence[Any]) -> None:
    """Run fn(worker_context, item) for every item on the executor (no-op for the local executor).

    fn must be a module-level function (or a partial of one) that builds cache entries through the
    worker's Context; the driver then reads them as if it had built them. Items whose entries the driver
    already finds in the cache (a probe: fn run here with building forbidden) are not sent.
    """
    if ctx.executor.parallel and not ctx.probing:
        _ = ctx.full, ctx.queries_artefact  # the workers read these from the cache
        pending = [item for item in items if not _cached(ctx, fn, item)]
        if pending:
            t0 = time.perf_counter()
            try:
                ctx.executor.map(partial(_context_job, ctx.bench, ctx.store.root, ctx.seed, ctx.device,
                                         ctx.precision, ctx.base, ctx.query_view, fn), pending)
            finally:  # the tasks' work is charged when the driver reads their entries, not as this wait
                ctx.waited_s += time.perf_counter() - t0


def _cached(ctx: Any, fn: Callable[[Any, Any], Any], item: Any) -> bool:
    """Whether fn(ctx, item) finds everything it would build already cached: then no task is sent for it (a
    warm rerun sends none). Any other error is left to the worker, which reports it as the run would."""
    try:
        with ctx.probe():
            fn(ctx, item)
    except Exception:  # NotCached; or an error the worker will raise and report as the run would
        return False
    return True


def _logo_model(seed: int, ctx: Any, k: int) -> str:
    return ctx.trained_model(k, seed).key


def _unlearned(cfg: Any, ctx: Any, k: int) -> int:
    ctx.unlearned_terms(k, cfg)
    return k


def prebuild_logo(ctx: Any, seed: int) -> None:
    """Train the LOGO models of one study on the executor (no-op for the local executor)."""
    prebuild(ctx, partial(_logo_model, seed), range(ctx.bench.n_groups))


def prebuild_unlearned(ctx: Any, cfg: Any) -> None:
    """Run the per-group unlearning fine-tunes (and their ELBO passes) on the executor."""
    prebuild(ctx, partial(_unlearned, cfg), range(ctx.bench.n_groups))
