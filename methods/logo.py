"""LOGO: leave-one-group-out retraining, the counterfactual ground truth (SPEC §2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from guda_bench.method import Method
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context


@register_method("logo", description="leave-one-group-out retraining + ELBO difference (the ground truth itself)")
class Logo(Method):
    """LOGOA_k = ELBO(full) - ELBO(retrained without group k): ONE LOGO study, the first of the truth's.

    With a one-study truth (the default) its Top-1 is 1 by construction: a sanity row. With `--truth-seeds N`
    the truth is the mean of N studies and this row shows how far one retraining study agrees with it.
    Either way its cost, one study, is the reference for every speedup."""

    requires = frozenset({"full_model", "train_images"})
    family = "truth"
    OPTIONS: dict = {}

    def prepare(self, ctx: Context) -> None:
        self._scores = ctx.logoa(0)

    def score(self, ctx: Context) -> np.ndarray:
        return self._scores
