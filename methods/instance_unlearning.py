"""Instance unlearning attribution (AbU, Wang et al. 2024), aggregated to groups."""

from __future__ import annotations

import copy
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from guda_bench.method import Method
from guda_bench.options import POSITIVE, Option, typed
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context


# queries per cache entry, on every executor: a job of a parallel executor, the unit a killed run resumes
# from, and the same keys whichever executor built them (a local rerun reuses a Ray run's chunks)
QUERY_CHUNK = 25


@register_method("instance-unlearning", description="AbU: unlearn the query (Fisher-preconditioned ascent, all "
                                                    "weights); group score = mean rise of its images' eps-MSE")
class InstanceUnlearning(Method):
    """score[q, k] = mean over (subsampled) training images j of group k of L_j(after) - L_j(before).

    "after" = the full model after unlearning query q: `steps` gradient-ascent steps on the query's eps-MSE,
    theta += lr * g / (F * N), F the damped diagonal empirical Fisher of the training loss (estimated once,
    seeded), N the number of training images. The reference (text-to-image) unlearns cross-attention K/V
    only: so do we on text-to-image benchmarks; unconditional models have none, so ALL weights are unlearned.
    L_j is image j's eps-MSE averaged over
    n_timesteps strided timesteps with fixed noise per (image index, t, seed). Only max_train_per_group
    seeded images per group are scored (None: all), so the cost per query is n_groups * max_train_per_group
    * n_timesteps forward passes. Options: lr, steps, n_timesteps, fisher_samples, damping (relative to the
    Fisher's mean), max_train_per_group, aggregate (mean|sum), batch_size, seed.
    """

    requires = frozenset({"full_model", "train_images"})
    OPTIONS = {
        "lr": Option("float", 0.01, "ascent step size (theta += lr g / (F N))", **POSITIVE),
        "steps": Option("int", 1, "ascent steps on the query", low=1),
        "n_timesteps": Option("int", 20, "strided timesteps of the query loss and the training-image losses", low=1),
        "fisher_samples": Option("int", 2048, "draws of the diagonal empirical Fisher", low=1),
        "damping": Option("float", 0.01, "Fisher damping, relative to its mean", low=0),
        "max_train_per_group": Option("int-or-none", 20, "training images scored per group (none: all)", low=1),
        "aggregate": Option("str", "mean", "image scores to group score", choices=("mean", "sum")),
        "batch_size": Option("int", 256, "images x timesteps per forward (same losses at any size)", low=1),
        "seed": Option("int", 0, "seed of the noise and the subsample (added to the run seed)"),
    }
    SEARCH_SPACE = {"lr": (0.003, 0.01, 0.03, 0.1), "steps": (1, 3)}

    def __init__(self, **options: Any) -> None:
        from guda_bench.instance_unlearn import InstanceConfig

        self.options = typed(self.OPTIONS, options)
        self.cfg = replace(InstanceConfig(), **self.options)

    def _base_spec(self, ctx: Context) -> dict:
        spec = {"full": ctx.full.key, "data": ctx.data_hash, "seed": self.cfg.seed + ctx.seed}
        if ctx.image_cond is not None:  # text-to-image: the reference unlearns the cross-attention K/V only
            spec["weights"] = "cross-attention-kv"
        return spec

    def prepare(self, ctx: Context) -> None:
        from safetensors.torch import load_file, save_file

        from guda_bench import instance_unlearn as iu

        cfg, seed = self.cfg, self.cfg.seed + ctx.seed
        self._abar = ctx.scheduler.alphas_cumprod.float()
        self._timesteps = iu.grid_timesteps(cfg.n_timesteps, ctx.scheduler.config.num_train_timesteps)
        self._eval = iu.subsample_per_group(ctx.bench.group_of, ctx.bench.n_groups, cfg.max_train_per_group, seed)
        self._kv_only = ctx.image_cond is not None

        def build_fisher(folder: Path) -> None:
            names = iu.cross_attention_kv(ctx.full_unet) if self._kv_only else None
            f = iu.diagonal_fisher(ctx.full_unet, ctx.train_data, self._abar, cfg.fisher_samples, seed,
                                   ctx.device, "Fisher (instance unlearning)", ctx.image_cond, names)
            save_file({k: v.contiguous() for k, v in f.items()}, str(folder / "fisher.safetensors"))

        art = ctx.fetch("instance-fisher", {**self._base_spec(ctx), "fisher_samples": cfg.fisher_samples},
                        build_fisher)
        self._fisher = iu.damped(load_file(str(art.path / "fisher.safetensors")), cfg.damping)

        self._before_spec = {**self._base_spec(ctx), "eval": self._eval.tolist(), "timesteps": self._timesteps}

        def build_before(folder: Path) -> None:
            np.save(folder / "before.npy", iu.per_image_losses(ctx.full_unet, ctx.train_data[self._eval],
                                                                self._noise(ctx), self._timesteps, self._abar,
                                                                cfg.batch_size, ctx.device, self._eval_cond(ctx)))

        art = ctx.fetch("instance-before", self._before_spec, build_before)
        self._before = np.load(art.path / "before.npy")

    def _eval_cond(self, ctx: Context):
        return None if ctx.image_cond is None else ctx.image_cond[self._eval]

    def _noise(self, ctx: Context):
        from guda_bench import instance_unlearn as iu

        return iu.fixed_noise(self._eval.tolist(), self._timesteps, self.cfg.seed + ctx.seed,
                              tuple(ctx.train_data.shape[1:]), iu.NOISE_TAG_TRAIN)

    def score(self, ctx: Context) -> np.ndarray:
        from functools import partial

        from guda_bench import instance_unlearn as iu
        from guda_bench.executor import prebuild

        n = len(ctx.queries)
        # per-query work in chunks, each a cache entry and a job on a parallel executor
        ranges = [(a, min(a + QUERY_CHUNK, n)) for a in range(0, n, QUERY_CHUNK)]
        prebuild(ctx, partial(_chunk_job, self.options), ranges)
        after = np.concatenate([self.after(ctx, a, b) for a, b in ranges])
        diff = after - self._before[None]
        return iu.aggregate_groups(diff, ctx.bench.group_of[self._eval], ctx.bench.n_groups, self.cfg.aggregate)

    def after(self, ctx: Context, first: int, stop: int) -> np.ndarray:
        """[stop - first, n_eval] training-image losses after unlearning each query first..stop-1 (cached)."""
        import torch

        from guda_bench import instance_unlearn as iu
        from guda_bench import progress

        cfg, seed = self.cfg, self.cfg.seed + ctx.seed
        spec = {**self._before_spec, "queries": ctx.queries_artefact.key, "fisher_samples": cfg.fisher_samples,
                "damping": cfg.damping, "lr": cfg.lr, "steps": cfg.steps}
        if (first, stop) != (0, len(ctx.queries)):
            spec["query_range"] = [first, stop]

        def build(folder: Path) -> None:
            unet = copy.deepcopy(ctx.full_unet).eval()
            original = {k: v.detach().clone() for k, v in unet.state_dict().items()}
            x_eval = ctx.train_data[self._eval]
            noise = self._noise(ctx)
            q_noise = iu.fixed_noise(ctx.query_index.tolist(), self._timesteps, seed,
                                     tuple(ctx.queries.shape[1:]), iu.NOISE_TAG_QUERY)
            after = np.empty((stop - first, len(self._eval)), dtype=np.float64)
            with progress.bar("instance unlearning (per query)", stop - first) as advance:
                for q in range(first, stop):
                    unet.load_state_dict(original)
                    q_cond = None if ctx.query_cond is None else ctx.query_cond[q]
                    iu.unlearn_query(unet, ctx.queries[q].float(), q_noise[q], self._timesteps, self._abar,
                                     self._fisher, cfg.lr, cfg.steps, len(ctx.train_data), ctx.device, q_cond)
                    after[q - first] = iu.per_image_losses(unet, x_eval, noise, self._timesteps, self._abar,
                                                           cfg.batch_size, ctx.device, self._eval_cond(ctx))
                    advance(1)
            np.save(folder / "after.npy", after)

        with torch.enable_grad():
            art = ctx.fetch("instance-scores", spec, build)
        return np.load(art.path / "after.npy")

    def describe_settings(self) -> dict:
        weights = ("cross-attention K/V (as the reference, text-to-image)" if getattr(self, "_kv_only", False)
                   else "all (unconditional model; reference: cross-attn K/V)")
        return {**asdict(self.cfg), "unlearned_weights": weights,
                "fisher_damping": "relative to mean(F)",
                "train_images_scored": "all" if self.cfg.max_train_per_group is None
                else f"<= {self.cfg.max_train_per_group} per group (seeded subsample)"}


def _chunk_job(options: dict[str, Any], ctx: Context, query_range: tuple[int, int]) -> None:
    """One executor job: the losses after unlearning a range of queries (prepare's inputs come from the cache)."""
    method = InstanceUnlearning(**options)
    method.prepare(ctx)
    method.after(ctx, *query_range)
