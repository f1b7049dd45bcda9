"""GUDA with ESD unlearning (SPEC §4.2): negative guidance from a group-conditional model + ELBO difference."""

from __future__ import annotations

from dataclasses import asdict
from functools import cache, partial
from typing import TYPE_CHECKING, Any

import numpy as np

from guda_bench.executor import prebuild
from guda_bench.method import Method
from guda_bench.options import POSITIVE, Option, preset_option, typed
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context

U = preset_option("unlearn")  # options whose default is the preset's unlearn config



@register_method("guda-esd", description="GUDA with ESD unlearning: negative guidance (w 7.5) from a group-"
                                         "conditional CFG model (trained here) + ELBO difference")
class GudaEsd(Method):
    """score_k = ELBO(full) - ELBO(full after ESD unlearning of group k).

    ESD target on group-k images: eps_c(x_t, t, null) - w (eps_c(x_t, t, k) - eps_c(x_t, t, null)) from a
    class-conditional model over GROUP labels (null = n_groups, label dropout 0.1), trained by this method
    (its cost is charged to prepare). The student is the unconditional full model (all weights), with
    loss = retain denoising + lambda ||eps_s - target||^2, Adam and grad clip 1.0. steps, pair_batch and lr
    default to the preset's UnlearnConfig (re-tuned for our small scale like guda's; the reference uses
    lr 3e-5); lambda 0.3 and w 7.5 as the reference. Options: steps, pair_batch, lr, lambda_forget,
    guidance, grad_clip, label_dropout, seed.
    """

    requires = frozenset({"full_model", "train_images", "unconditional_model"})
    OPTIONS = {  # defaults None: the preset's UnlearnConfig
        "steps": U("int", "fine-tune steps", low=1),
        "pair_batch": U("int", "images per retain batch and per forget batch", low=1),
        "lr": U("float", "Adam learning rate", **POSITIVE),
        "lambda_forget": Option("float", 0.3, "weight of the ESD forget loss", low=0),
        "guidance": Option("float", 7.5, "negative-guidance scale w of the ESD target", low=0),
        "grad_clip": U("float", "gradient-norm clip", **POSITIVE),
        "label_dropout": Option("float", 0.1, "label dropout of the group-conditional CFG model", low=0, high=1),
        "seed": U("int", "seed of the fine-tune's draws (added to the run seed)"),
    }
    SEARCH_SPACE = {"guidance": (3.0, 7.5, 15.0), "lambda_forget": (0.1, 0.3, 1.0), "lr": (1e-4, 3e-4, 1e-3)}

    def __init__(self, **options: Any) -> None:
        self.options = typed(self.OPTIONS, options)
        self._terms: list[np.ndarray] = []

    def config(self, ctx: Context):
        from guda_bench.conditional import EsdConfig

        u = ctx.preset.unlearn
        base = {"steps": u.steps, "pair_batch": u.pair_batch, "lr": u.lr, "grad_clip": u.grad_clip, "seed": u.seed}
        return EsdConfig(**{**base, **self.options})

    def prepare(self, ctx: Context) -> None:
        from guda_bench.conditional import conditional_model, esd_unlearned_terms

        cfg = self.config(ctx)
        self._cfg = cfg
        cond_art = conditional_model(ctx, cfg.label_dropout)
        prebuild(ctx, partial(_unlearned_job, cfg), range(ctx.bench.n_groups))  # fanned out with --executor ray
        loader = _loader(cond_art, ctx.device)
        self._terms = [esd_unlearned_terms(ctx, k, cfg, cond_art, loader) for k in range(ctx.bench.n_groups)]

    def score(self, ctx: Context) -> np.ndarray:
        return ctx.elbo_difference(self._terms)

    def describe_settings(self) -> dict:
        if hasattr(self, "_cfg"):
            return {**asdict(self._cfg), "conditional_labels": "groups (null = n_groups)", "student": "all weights"}
        return dict(self.options)


def _loader(cond_art: Any, device: str):
    """Loads the conditional model on first use only (a cached fine-tune never needs it)."""
    from guda_bench.conditional import load_conditional

    return cache(partial(load_conditional, cond_art, device))


def _unlearned_job(cfg: Any, ctx: Context, k: int) -> int:
    """One executor job: group k's ESD fine-tune and its ELBO terms (the conditional model comes from the cache)."""
    from guda_bench.conditional import conditional_model, esd_unlearned_terms

    cond_art = conditional_model(ctx, cfg.label_dropout)
    esd_unlearned_terms(ctx, k, cfg, cond_art, _loader(cond_art, ctx.device))
    return k
