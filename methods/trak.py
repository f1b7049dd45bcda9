"""TRAK (Park et al. 2023) and D-TRAK (Zheng et al. 2024) on the full diffusion model (SPEC §5).

Per-sample gradients of an output function, averaged over timesteps with fixed seeded noise, projected
with traker's projector (`guda_bench.gradients`); instance score phi_q (Phi^T Phi + lambda I)^-1 phi_i^T,
summed (or averaged) within each group. TRAK's output function is the eps-MSE loss, D-TRAK's the squared
norm of the model output. Lambda is fixed by config, never tuned on test queries: by default
lam = 1e-2 x the mean diagonal of Phi^T Phi (`lam_scale="relative"`), or an absolute value
(`lam_scale="absolute"`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from guda_bench import gradients as G
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context


@register_method("trak", output="loss",
                 description="TRAK: projected eps-MSE loss gradients, kernel phi_q (Phi^T Phi + lam I)^-1 phi_i")
@register_method("d-trak", output="output_norm",
                 description="D-TRAK: projected gradients of ||eps_theta||^2, TRAK kernel")
class Trak(G.GradientFeatureMethod):
    """TRAK / D-TRAK instance scores summed (or averaged) per group."""

    def score(self, ctx: Context) -> np.ndarray:
        phi = self.train_features(ctx)
        instance = G.kernel_scores(phi, self.features(ctx, "query"), self.lambda_value(phi))
        return G.group_aggregate(instance, ctx.bench.group_of, ctx.bench.n_groups, self.aggregate)
