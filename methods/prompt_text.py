"""Prompt-text similarity: what a method scores that reads the query's prompt and never the image.

On a text-to-image board whose queries are prompted in one style, "the style the prompt names" is an
answer open to every method that conditions on the prompt. This row shows how far that answer goes: a
method at or below it has not shown it reads the image's causes rather than its prompt (two-style queries,
`--query-mode two-style`, name two styles and make the prompt a weaker guide).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from guda_bench.method import Method
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context


@register_method("prompt-text",
                 description="nearest training caption of the group to the query's prompt (text-state cosine; "
                             "reads the prompt only; text-to-image boards)")
class PromptText(Method):
    """score_k = max over group k's training captions of cos(text states of the query's condition, of the caption).

    The nearest caption, not the mean: a prompted query's own prompt is among its style's captions (cosine 1),
    so this is "the style the prompt names" with a text-similarity order behind it."""

    requires = frozenset({"text_conditional"})
    family = "prompt"
    OPTIONS = {}

    def score(self, ctx: Context) -> np.ndarray:
        query = F.normalize(ctx.query_cond.flatten(1).double(), dim=1)
        captions = F.normalize(ctx.image_cond.flatten(1).double(), dim=1)
        out = np.empty((len(query), ctx.bench.n_groups))
        for k in range(ctx.bench.n_groups):
            out[:, k] = (query @ captions[torch.from_numpy(ctx.bench.members(k))].T).amax(1).numpy()
        return out
