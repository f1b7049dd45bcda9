"""The method contract: the only thing a plugin author learns.

A method declares what it needs, may build something once (``prepare``, timed as "prepare"), and
returns a [n_queries, n_groups] score matrix (``score``, timed as "score"); higher = more responsible.
It raises ``Unavailable("why")`` when it cannot run here; anything else it raises, and any NaN or
wrong shape it returns, makes its row ``failed`` while the run goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from guda_bench.options import Option

if TYPE_CHECKING:
    from guda_bench.context import Context

# What a method may declare in `requires`; the runner checks these before running it.
# "unconditional_model": its loops pass no text condition (unavailable on text-to-image benchmarks);
# "text_conditional": needs prompts (unavailable on unconditional benchmarks).
KNOWN_REQUIREMENTS = frozenset({"full_model", "train_images", "cuda", "clip_weights", "class_conditional",
                                "unconditional_model", "text_conditional"})


class Method:
    """Base class of attribution methods."""

    name: str = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    # what kind of evidence the scores are, for reading a board: "attribution" (estimates causal influence),
    # "similarity" (looks like the group: pixel-*, clip), "prompt" (reads the query's prompt only: prompt-text),
    # "chance" (random), "truth" (the ground truth itself)
    family: ClassVar[str] = "attribution"
    # every option the constructor takes, typed and ranged (None: undeclared, values pass unchecked)
    OPTIONS: ClassVar[dict[str, Option] | None] = None
    # what `guda-bench tune` may try: {option: [candidates]}, the shipped default among them ({}: nothing to
    # tune); a registered variant may bring its own (register_method(..., search_space=...))
    SEARCH_SPACE: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def check_available(self) -> None:  # noqa: B027 - optional hook
        """Raise Unavailable when this method cannot run here whatever the data (no weights, a missing extra).
        Called before the ground truth is built, so a run of methods that cannot run fails at once."""

    def prepare(self, ctx: Context) -> None:  # noqa: B027 - optional hook
        """Build counterfactual models or features once (cached through ctx.store where possible)."""

    def score(self, ctx: Context) -> np.ndarray:
        """Return scores of shape [n_queries, n_groups]."""
        raise NotImplementedError

    def describe_settings(self) -> dict:
        """Settings recorded in the result row (override to expose a config)."""
        return {}
