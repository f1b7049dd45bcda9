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
        return break_near_ties(out, np.random.default_rng(ctx.seed + 0x7E47))


# Text states are float32: cosines agree to about 1e-7. A two-style query's condition is the mean of two
# prompts' states, and where the encoder normalises its states (style-canvas) its cosines to the two named
# styles' own captions are equal but for that rounding (gaps 1e-10 to 7e-8 on all 1,400 two-style queries of
# style-canvas-pretrained, against at least 2e-3 to the next style), so which one ranked first was the CPU's
# float rounding: 15 of the board's 1,050 test queries flipped between an Intel and an AMD machine.
NEAR_TIE = 1e-6


def break_near_ties(scores: np.ndarray, rng: np.random.Generator, tol: float = NEAR_TIE) -> np.ndarray:
    """Scores within `tol` of the next better one in their row become equal to it, and a seeded coin orders
    each such tie: a prompt that names two styles equally ranks either first with probability 1/2, on every
    machine. Scores further apart keep their order."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(scores, order, 1)
    starts = np.ones(ranked.shape, dtype=bool)
    starts[:, 1:] = (ranked[:, :-1] - ranked[:, 1:]) > tol
    head = np.maximum.accumulate(np.where(starts, np.arange(ranked.shape[1]), 0), axis=1)
    merged = np.take_along_axis(ranked, head, 1)
    out = np.empty_like(scores)
    np.put_along_axis(out, order, merged, 1)
    return out + rng.random(scores.shape) * (tol / 10)  # under every kept gap (> tol): reorders ties only
