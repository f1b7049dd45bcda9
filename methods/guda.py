"""GUDA-U: group unlearning with ReTrack + ELBO difference (SPEC §4.1), in its three forget targets."""

from __future__ import annotations

from guda_bench.registry import register_method
from guda_bench.unlearning_method import UnlearningMethod


@register_method("guda", forget_target="retrack",
                 description="GUDA-U: ReTrack unlearning (unclipped posterior-weighted target) + ELBO difference")
@register_method("guda-clipped", forget_target="retrack-clipped",
                 description="GUDA-U with the paper's KL cap on the ReTrack shift (target ~ own noise)")
@register_method("guda-reference", forget_target="reference",
                 description="GUDA-U as the public reference code computes it (forget target = 0)")
class Guda(UnlearningMethod):
    """GUDA_k = ELBO(full) - ELBO(full after ReTrack unlearning of group k)."""
