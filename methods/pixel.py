"""Pixel-space similarity references: does the benchmark separate "looks like" from "was caused by"?"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.neighbors import NearestNeighbors

from guda_bench.method import Method
from guda_bench.options import Option
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context


@register_method("pixel-cosine", aggregate="mean", description="mean cosine similarity to the group's images")
@register_method("pixel-nn", aggregate="nn", description="negative distance to the group's nearest image")
class PixelSimilarity(Method):
    """Similarity in raw pixel space, per group."""

    requires = frozenset({"train_images"})
    family = "similarity"
    OPTIONS = {"aggregate": Option("str", "mean", "mean cosine, or nearest-neighbour distance", choices=("mean", "nn"))}

    def __init__(self, aggregate: str) -> None:
        self.aggregate = aggregate

    def score(self, ctx: Context) -> np.ndarray:
        q = ctx.query_images.flatten(1).numpy().astype(np.float64)
        x = ctx.bench.images.flatten(1).numpy().astype(np.float64)
        out = np.empty((len(q), ctx.bench.n_groups))
        for k in range(ctx.bench.n_groups):
            members = x[ctx.bench.members(k)]
            if self.aggregate == "mean":
                qn = q / np.linalg.norm(q, axis=1, keepdims=True).clip(1e-12)
                mn = members / np.linalg.norm(members, axis=1, keepdims=True).clip(1e-12)
                out[:, k] = (qn @ mn.T).mean(1)
            else:
                dist, _ = NearestNeighbors(n_neighbors=1).fit(members).kneighbors(q)
                out[:, k] = -dist[:, 0]
        return out

    def describe_settings(self) -> dict:
        return {"aggregate": self.aggregate}
