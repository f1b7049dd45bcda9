"""A template guda-bench method: score each group by how close the query is to the group's mean image.

Copy this package, rename it and the method, replace `score`. Then `pytest` here (it calls
guda_bench.testing.check_method) and `guda-bench check template-centroid` tell you whether it keeps the
method contract; `guda-bench run --method template-centroid` scores it on a benchmark.
"""

from __future__ import annotations

import numpy as np

from guda_bench import Method, Option, register_method


@register_method("template-centroid", description="template plugin: closeness of the query to each group's mean image")
class TemplateCentroid(Method):
    """score[q, k] = -distance(query q, mean image of group k): a look-alike baseline, not a causal one."""

    requires = frozenset({"train_images"})  # what it needs; the runner reports `unavailable` otherwise
    family = "similarity"  # how boards read it: "attribution", "similarity", "chance" or "truth"
    OPTIONS = {"metric": Option("str", "l2", "distance to the group mean", choices=("l2", "cosine"))}
    SEARCH_SPACE = {"metric": ("l2", "cosine")}  # what `guda-bench tune` may try ({}: nothing to tune)

    def __init__(self, metric: str = "l2") -> None:
        self.metric = metric  # converted and checked against OPTIONS before it gets here

    def score(self, ctx) -> np.ndarray:
        q = ctx.query_images.flatten(1).numpy().astype(np.float64)
        x = ctx.bench.images.flatten(1).numpy().astype(np.float64)
        means = np.stack([x[ctx.bench.members(k)].mean(0) for k in range(ctx.bench.n_groups)])
        if self.metric == "cosine":
            qn = q / np.linalg.norm(q, axis=1, keepdims=True).clip(1e-12)
            mn = means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-12)
            return qn @ mn.T
        return -np.linalg.norm(q[:, None, :] - means[None], axis=2)

    def describe_settings(self) -> dict:
        return {"metric": self.metric}
