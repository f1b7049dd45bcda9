"""Leave-one-group-out in closed form, for a Gaussian kernel density of the training images.

A diffusion model trained to its optimum on N images is the Gaussian mixture over those images: at noise
level sigma its density at x is mean_i N(x; x_i, sigma^2 I), and removing a group removes its mixture
components. So "how much does the query's log density drop without group k" has a closed form with no
model at all:

    drop_k(x_q, sigma) = log M(x_q) - log M_{-k}(x_q),    M_S(x) = sum_{i in S} exp(-|x - x_i|^2 / (2 sigma^2)),

computed in the log domain (no cancellation when one group holds nearly all the mass). It is a pure
function of pixel distances, so it sits with the similarity baselines: if it reaches the noise ceiling,
the board's ground truth is what a kernel density of the training set predicts, and a method has to beat
it to show it measured more than that.

Kernel widths: `bandwidth = 0` (shipped) averages the drop over the noise levels of the ELBO estimator's
timestep grid, sigma_t = sqrt((1 - abar_t) / abar_t) in image units: the levels at which the ground truth
itself compares models. `bandwidth > 0` uses one width, that multiple of the training images' median
nearest-neighbour distance (scale-free across datasets); `guda-bench tune` picks among these on the tuning
split like every other method's settings.

`estimator=elbo` applies the truth's own estimator (the ELBO grid's eps-MSE terms, the same noise draws) to
the training set's optimal denoiser with and without each group: LOGO of the memorising model, exactly as the
ground truth computes it for trained models (unconditional: it ignores prompts). Its low-noise terms snap to
the nearest training image, so it behaves more like `pixel-nn` than the density estimator does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from guda_bench.errors import Unavailable
from guda_bench.method import Method
from guda_bench.options import Option
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context

QUERY_CHUNK = 256  # queries per distance block: [256, N] doubles (50k CIFAR images: 100 MB)


def elbo_sigmas(alphas_cumprod: torch.Tensor, timesteps: list[int]) -> list[float]:
    """Noise std of each ELBO timestep in x0 units: x_t / sqrt(abar) = x0 + sqrt((1 - abar) / abar) eps."""
    abar = alphas_cumprod.double()[torch.as_tensor(timesteps, dtype=torch.long)]
    return [float(s) for s in ((1 - abar) / abar).sqrt()]


def median_nn_distance(x: torch.Tensor, sample: int = 2000, seed: int = 0) -> float:
    """Median distance from a training image to its nearest other training image (a seeded sample of at
    most `sample` images against all): the data's own length scale."""
    n = len(x)
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: min(sample, n)]
    nearest = []
    for start in range(0, len(idx), QUERY_CHUNK):  # [chunk, N] blocks: 50k CIFAR images stay ~100 MB
        rows = idx[start:start + QUERY_CHUNK]
        d = torch.cdist(x[rows], x)
        d[torch.arange(len(rows)), rows] = float("inf")
        nearest.append(d.min(1).values)
    return float(np.median(torch.cat(nearest).numpy()))


def group_members(group_of: np.ndarray, n_groups: int) -> list[torch.Tensor]:
    """Image indices of each group, then of the background images (group -1, kept in every counterfactual)."""
    return [torch.from_numpy(np.flatnonzero(group_of == k)) for k in [*range(n_groups), -1]]


def group_log_mass(logw: torch.Tensor, members: list[torch.Tensor]) -> torch.Tensor:
    """[Q, len(members)] log of each member set's summed kernel weight, from [Q, N] log weights (-inf: empty)."""
    return torch.stack([torch.logsumexp(logw[:, m], 1) if len(m)
                        else torch.full((len(logw),), -torch.inf, dtype=logw.dtype) for m in members], 1)


def removal_drops(log_mass: torch.Tensor) -> torch.Tensor:
    """[Q, K] log M - log M_{-k} from [Q, K + 1] group log masses (the last column is never removed)."""
    n_groups = log_mass.shape[1] - 1
    total = torch.logsumexp(log_mass, 1)
    out = torch.empty(len(log_mass), n_groups, dtype=log_mass.dtype)
    for k in range(n_groups):
        rest = torch.cat([log_mass[:, :k], log_mass[:, k + 1:]], 1)
        out[:, k] = total - torch.logsumexp(rest, 1)
    return out


def kde_drops(queries: torch.Tensor, images: torch.Tensor, group_of: np.ndarray, n_groups: int,
              sigmas: list[float]) -> np.ndarray:
    """[Q, n_groups] mean over `sigmas` of the log density drop at each query when a group is removed."""
    x = images.flatten(1).double()
    q = queries.flatten(1).double()
    members = group_members(group_of, n_groups)
    out = np.zeros((len(q), n_groups))
    for start in range(0, len(q), QUERY_CHUNK):
        sq = torch.cdist(q[start:start + QUERY_CHUNK], x).square()
        for sigma in sigmas:
            log_mass = group_log_mass(-sq / (2.0 * sigma * sigma), members)
            out[start:start + len(sq)] += removal_drops(log_mass).numpy()
    return out / len(sigmas)


def kernel_log_weights(xt: torch.Tensor, images: torch.Tensor, a: float, s: float) -> torch.Tensor:
    """[B, N] unnormalised log weights of the training images `images` [N, D] in the optimal denoiser's posterior
    at x_t [B, D] = a x0 + s eps: the Gaussian kernel of the memorising model, shared with the benchmark that
    measures how close a trained model comes to it."""
    return -torch.cdist(xt, a * images).square() / (2 * s * s)


def posterior_mean(log_mass: torch.Tensor, means: torch.Tensor, keep: list[int]) -> torch.Tensor:
    """[B, D] optimal denoiser's x0 estimate from the groups `keep` only: their means weighted by their shares
    of the kept weight (log_mass [B, G], means [B, G, D])."""
    share = torch.softmax(log_mass[:, keep], 1)
    return (share[:, :, None] * means[:, keep]).sum(1)


def optimal_denoiser_logoa(queries: torch.Tensor, noise: torch.Tensor, timesteps: list[int],
                           alphas_cumprod: torch.Tensor, weights: torch.Tensor, images: torch.Tensor,
                           group_of: np.ndarray, n_groups: int) -> np.ndarray:
    """[Q, n_groups] the truth's own estimator with the model replaced by the training set's optimal denoiser:
    sum over the ELBO grid of w_t (|eps - eps_opt^{-k}(x_t)|^2 - |eps - eps_opt(x_t)|^2), with the ELBO's noise
    draws (noise: [Q, n_t, C, H, W]). Removing a group drops its terms from the posterior mean
    x0_hat = sum_i w_i x_i / sum_i w_i, so every counterfactual comes from per-group masses and means (in the
    log domain: exact when the other groups' weights underflow)."""
    x = images.flatten(1).double()
    q = queries.flatten(1).double()
    members = group_members(group_of, n_groups)
    groups = [g for g, m in enumerate(members) if len(m)]  # an empty group has no mean
    out = np.zeros((len(q), n_groups))
    for start in range(0, len(q), QUERY_CHUNK):
        q0 = q[start:start + QUERY_CHUNK]
        for j in range(noise.shape[1]):
            eps = noise[start:start + QUERY_CHUNK, j].flatten(1).double()
            abar = float(alphas_cumprod[timesteps[j]])
            a, s = abar ** 0.5, (1 - abar) ** 0.5
            xt = a * q0 + s * eps
            logw = kernel_log_weights(xt, x, a, s)
            # per group: log of its total weight and its weighted mean image (each normalised on its own, so a
            # group far from x_t keeps an exact mean however small its weight)
            log_mass = group_log_mass(logw, members)  # [B, K + 1]
            means = torch.zeros(len(q0), len(members), x.shape[1], dtype=x.dtype)  # [B, K + 1, D]
            for g in groups:
                means[:, g] = torch.softmax(logw[:, members[g]], 1) @ x[members[g]]

            # |eps - eps_hat|^2 with eps_hat = (x_t - a x0_hat) / s is (a / s)^2 |x0 - x0_hat|^2
            scale = float(weights[j]) * (a / s) ** 2
            full = (q0 - posterior_mean(log_mass, means, groups)).square().sum(1)
            for k in range(n_groups):
                rest = [g for g in groups if g != k]
                without = (q0 - posterior_mean(log_mass, means, rest)).square().sum(1)
                out[start:start + len(q0), k] += scale * (without - full).numpy()
    return out


@register_method("pixel-kde", description="closed-form LOGO of a Gaussian kernel density of the training images")
class PixelKDE(Method):
    """Log density drop at the query when a group's images leave a pixel-space Gaussian kernel density."""

    requires = frozenset({"train_images"})
    family = "similarity"
    OPTIONS = {"bandwidth": Option("float", 0.0, "0: the ELBO grid's noise levels; > 0: one kernel width, in "
                                   "multiples of the training images' median nearest-neighbour distance", low=0.0,
                                   modes=(0.0,)),
               "estimator": Option("str", "density", "density: the drop in log kernel density; elbo: the truth's "
                                   "ELBO estimator on the optimal denoiser (its own noise levels and draws)",
                                   choices=("density", "elbo"))}
    SEARCH_SPACE = {"bandwidth": (0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)}  # 8: the tuning budget

    def __init__(self, bandwidth: float = 0.0, estimator: str = "density") -> None:
        if estimator == "elbo" and bandwidth > 0:
            raise ValueError("estimator=elbo uses the ELBO's own noise levels: leave bandwidth at 0")
        self.bandwidth = float(bandwidth)
        self.estimator = estimator
        self.sigmas: list[float] = []

    def widths(self, ctx: Context) -> list[float]:
        if self.bandwidth > 0:
            return [self.bandwidth * median_nn_distance(ctx.bench.images.flatten(1).double())]
        if ctx.base is not None:
            raise Unavailable("bandwidth 0 uses the ELBO's noise levels, which live in the base model's latent "
                              "space, not in pixels: set --option pixel-kde.bandwidth=0.5 (a multiple of the "
                              "median nearest-neighbour distance)")
        return elbo_sigmas(ctx.scheduler.alphas_cumprod, ctx.preset.elbo.timesteps())

    def score(self, ctx: Context) -> np.ndarray:
        self.sigmas = self.widths(ctx)
        if self.estimator == "elbo":
            scorer = ctx.scorer  # the truth's queries, noise draws, timesteps and term weights
            return optimal_denoiser_logoa(scorer.queries, scorer.noise(), scorer.timesteps,
                                          ctx.scheduler.alphas_cumprod.double(), scorer.weights, ctx.bench.images,
                                          ctx.bench.group_of, ctx.bench.n_groups)
        return kde_drops(ctx.query_images, ctx.bench.images, ctx.bench.group_of, ctx.bench.n_groups, self.sigmas)

    def describe_settings(self) -> dict:
        out: dict = {"bandwidth": self.bandwidth, "estimator": self.estimator}
        if self.sigmas:
            out["kernel_widths"] = [round(s, 4) for s in self.sigmas]
        return out
