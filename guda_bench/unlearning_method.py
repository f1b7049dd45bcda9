"""Shared base of every "unlearn group k, then take the ELBO difference" method (GUDA and its references)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from guda_bench.executor import prebuild_unlearned
from guda_bench.method import Method
from guda_bench.options import POSITIVE, preset_option, typed

if TYPE_CHECKING:
    from guda_bench.context import Context

U = preset_option("unlearn")  # options whose default is the preset's unlearn config


class UnlearningMethod(Method):
    """score_k = ELBO(full) - ELBO(full after unlearning group k). Variants differ only in options,
    which override the preset's UnlearnConfig (forget target, steps, lr, lambda, K, ...)."""

    requires = frozenset({"full_model", "train_images", "unconditional_model"})
    # defaults None: the preset's UnlearnConfig (guda_bench/config.py)
    OPTIONS = {
        "forget_target": U("str", "what forget images are redirected to (SPEC §4.1)",
                                choices=("retrack", "retrack-clipped", "reference", "none", "ascent")),
        "steps": U("int", "fine-tune steps (one retain and one forget batch each)", low=1),
        "pair_batch": U("int", "images per retain batch and per forget batch", low=1),
        "lr": U("float", "AdamW learning rate", **POSITIVE),
        "weight_decay": U("float", "AdamW weight decay", low=0),
        "warmup_steps": U("int", "linear learning-rate warm-up steps", low=0),
        "lambda_forget": U("float", "weight of the forget loss", low=0),
        "k_neighbours": U("int", "retain neighbours in ReTrack's target", low=1),
        "kl_cap": U("float", "KL cap of the clipped ReTrack shift", **POSITIVE),
        "retain_loss": U("str", "retain term: denoising loss, or distillation to the full model",
                              choices=("denoise", "distill")),
        "grad_clip": U("float", "gradient-norm clip", **POSITIVE),
        "seed": U("int", "seed of the fine-tune's draws (added to the run seed)"),
    }
    SEARCH_SPACE = {"steps": (10, 20, 40), "lr": (1e-4, 3e-4, 1e-3), "lambda_forget": (0.3, 1.0, 3.0)}

    def __init__(self, **options: Any) -> None:
        self.options = typed(self.OPTIONS, options)
        self._terms: list[np.ndarray] = []

    def config(self, ctx: Context):
        return replace(ctx.preset.unlearn, **self.options)

    def prepare(self, ctx: Context) -> None:
        cfg = self.config(ctx)
        self._cfg = cfg
        prebuild_unlearned(ctx, cfg)  # fans the per-group fine-tunes out with --executor ray
        self._terms = [ctx.unlearned_terms(k, cfg) for k in range(ctx.bench.n_groups)]

    def score(self, ctx: Context) -> np.ndarray:
        return ctx.elbo_difference(self._terms)

    def describe_settings(self) -> dict:
        return asdict(self._cfg) if hasattr(self, "_cfg") else dict(self.options)
