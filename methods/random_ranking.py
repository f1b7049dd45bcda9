"""Random ranking: the floor every method must clear."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from guda_bench.method import Method
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context


@register_method("random", description="uniformly random scores (seeded): the chance floor")
class RandomRanking(Method):
    """i.i.d. uniform scores from the run seed."""

    family = "chance"
    OPTIONS: dict = {}

    def score(self, ctx: Context) -> np.ndarray:
        rng = np.random.default_rng(ctx.seed + 99)
        return rng.random((len(ctx.queries), ctx.bench.n_groups))
