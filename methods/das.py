"""DAS, Diffusion Attribution Score (Lin et al., ICLR 2025), from its formula (SPEC §5).

DAS targets the change in the noise predictor when a training sample is removed. With D-TRAK's features
(projected gradients of ||eps_theta(x_t, t)||^2, averaged over the timesteps with fixed seeded noise;
`guda_bench.gradients`), the instance score implemented here is

    score(q, i) = || phi_q (Phi^T Phi + lam I)^-1 phi_i^T  r_i / (1 - h_i) ||^2

where, in this implementation:
- phi_q, phi_i: the D-TRAK features of query q and training image i (rows of Phi);
- lam: fixed by config, never tuned on test queries (default 1e-2 x the mean diagonal of Phi^T Phi;
  `lam_scale="absolute"` takes `lam` as is); the paper's (Phi^T Phi)^-1 gets lam I added for stability;
- r_i: the training image's residual, the eps-MSE residual NORM averaged over the same timesteps and the
  same noise as the features: r_i = mean_t ||eps_theta(x_t, t) - eps_t|| (a scalar, >= 0);
- h_i: the leverage h_i = phi_i (Phi^T Phi + lam I)^-1 phi_i^T (in [0, 1) for lam > 0); with
  `leverage=False` h_i = 0.
The features are scalar-output gradients, so the norm is the absolute value and the score is
(k_qi r_i / (1 - h_i))^2. Instance scores are summed (option: averaged) within each group. The public
DAS scorer does not run as written, so this follows the formula and reuses the D-TRAK features (same
cache entries as `d-trak`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from guda_bench import gradients as G
from guda_bench.options import Option
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context


@register_method("das", description="DAS: D-TRAK kernel x training residual / (1 - leverage), squared, per group")
class Das(G.GradientFeatureMethod):
    """Diffusion Attribution Score on D-TRAK features."""

    OPTIONS = {**G.GradientFeatureMethod.OPTIONS,
               "leverage": Option("bool", True, "divide residuals by (1 - leverage)")}
    SEARCH_SPACE = {"lam": (1e-3, 1e-2, 1e-1, 1.0), "leverage": (True, False)}

    def __init__(self, leverage: bool | str = True, **kw) -> None:
        kw.setdefault("output", "output_norm")
        super().__init__(**kw)
        self.leverage = leverage if isinstance(leverage, bool) else str(leverage).lower() in ("1", "true", "yes")

    def residuals(self, ctx: Context) -> np.ndarray:
        spec = {"full": ctx.full.key, "data": ctx.bench.full_model_hash(), "timesteps": list(self.timesteps),
                "seed": ctx.seed}
        ids = [f"{ctx.bench.dataset}/train/{i}" for i in range(len(ctx.train_data))]

        def build(folder: Path) -> None:
            r = G.residual_norms(ctx.full_unet, ctx.scheduler, ctx.train_data, ids, self.timesteps, ctx.seed,
                                 device=ctx.device, cond=ctx.image_cond)
            np.save(folder / "residuals.npy", r)

        return np.load(ctx.fetch("residuals-train", spec, build).path / "residuals.npy")

    def prepare(self, ctx: Context) -> None:
        super().prepare(ctx)
        self._r = self.residuals(ctx)

    def score(self, ctx: Context) -> np.ndarray:
        phi = self.train_features(ctx)
        r = self._r if hasattr(self, "_r") else self.residuals(ctx)
        lam = self.lambda_value(phi)
        k = G.kernel_scores(phi, self.features(ctx, "query"), lam)
        h = G.leverages(phi, lam) if self.leverage else np.zeros(len(phi))
        instance = np.square(k * (r / (1.0 - h))[None, :])
        return G.group_aggregate(instance, ctx.bench.group_of, ctx.bench.n_groups, self.aggregate)

    def describe_settings(self) -> dict:
        return {**super().describe_settings(), "leverage": self.leverage}
