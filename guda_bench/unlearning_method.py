"""Shared base of every "unlearn group k, then take the ELBO difference" method (GUDA and its references)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from guda_bench.executor import prebuild_unlearned
from guda_bench.method import Method

if TYPE_CHECKING:
    from guda_bench.context import Context


class UnlearningMethod(Method):
    """score_k = ELBO(full) - ELBO(full after unlearning group k). Variants differ only in options,
    which override the preset's UnlearnConfig (forget target, steps, lr, lambda, K, ...)."""

    requires = frozenset({"full_model", "train_images", "unconditional_model"})

    def __init__(self, **options: Any) -> None:
        self.options = options
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
