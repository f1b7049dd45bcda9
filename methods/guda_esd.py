"""GUDA with ESD unlearning (SPEC §4.2): negative guidance from a group-conditional model + ELBO difference."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from guda_bench.method import Method
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context

_TYPES = {"steps": int, "pair_batch": int, "lr": float, "lambda_forget": float, "guidance": float,
          "grad_clip": float, "label_dropout": float, "seed": int}


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

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(_TYPES)
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)} (known: {', '.join(_TYPES)})")
        self.options = {k: _TYPES[k](v) for k, v in options.items()}
        self._terms: list[np.ndarray] = []

    def config(self, ctx: Context):
        from guda_bench.conditional import EsdConfig

        u = ctx.preset.unlearn
        base = {"steps": u.steps, "pair_batch": u.pair_batch, "lr": u.lr, "grad_clip": u.grad_clip, "seed": u.seed}
        return EsdConfig(**{**base, **self.options})

    def prepare(self, ctx: Context) -> None:
        from guda_bench.conditional import conditional_model, esd_unlearned_terms, load_conditional

        cfg = self.config(ctx)
        self._cfg = cfg
        cond_art = conditional_model(ctx, cfg.label_dropout)
        cache: dict[str, Any] = {}

        def loader():
            if "unet" not in cache:
                cache["unet"] = load_conditional(cond_art, ctx.device)
            return cache["unet"]

        self._terms = [esd_unlearned_terms(ctx, k, cfg, cond_art, loader) for k in range(ctx.bench.n_groups)]

    def score(self, ctx: Context) -> np.ndarray:
        return ctx.elbo_difference(self._terms)

    def describe_settings(self) -> dict:
        if hasattr(self, "_cfg"):
            return {**asdict(self._cfg), "conditional_labels": "groups (null = n_groups)", "student": "all weights"}
        return dict(self.options)
