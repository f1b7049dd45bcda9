"""Reference unlearners with the same ELBO-difference score: retain-only fine-tune and gradient ascent."""

from __future__ import annotations

from guda_bench.registry import register_method
from guda_bench.unlearning_method import UnlearningMethod


@register_method("unlearn-retain-only", forget_target="none",
                 search_space={"steps": (10, 20, 40), "lr": (1e-4, 3e-4, 1e-3)},  # no forget term to weigh
                 description="fine-tune on retain data only (no forget term) + ELBO difference")
@register_method("unlearn-ga", forget_target="ascent", lambda_forget=0.05,
                 search_space={"steps": (10, 20, 40), "lr": (1e-4, 3e-4, 1e-3), "lambda_forget": (0.01, 0.05, 0.2)},
                 description="gradient ascent on the group's denoising loss + ELBO difference")
class ReferenceUnlearner(UnlearningMethod):
    """Unlearning baselines that tell whether ReTrack's forget target matters."""
