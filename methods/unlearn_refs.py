"""Reference unlearners with the same ELBO-difference score: retain-only fine-tune and gradient ascent."""

from __future__ import annotations

from guda_bench.registry import register_method
from guda_bench.unlearning_method import UnlearningMethod


@register_method("unlearn-retain-only", forget_target="none",
                 description="fine-tune on retain data only (no forget term) + ELBO difference")
@register_method("unlearn-ga", forget_target="ascent", lambda_forget=0.05,
                 description="gradient ascent on the group's denoising loss + ELBO difference")
class ReferenceUnlearner(UnlearningMethod):
    """Unlearning baselines that tell whether ReTrack's forget target matters."""
