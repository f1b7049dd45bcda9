"""pixel-kde: leave-one-group-out in closed form for a Gaussian kernel density of the training images."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from guda_bench.methods.pixel_kde import (
    PixelKDE,
    elbo_sigmas,
    kde_drops,
    median_nn_distance,
    optimal_denoiser_logoa,
)

from guda_bench.errors import Unavailable


def brute_force_drop(q: np.ndarray, x: np.ndarray, group_of: np.ndarray, k: int, sigma: float) -> float:
    """log density at q of the kernel mixture of every image, minus that without group k (plain sums)."""
    w = np.exp(-((x - q) ** 2).sum(1) / (2 * sigma**2))
    return float(np.log(w.sum()) - np.log(w[group_of != k].sum()))


def test_drops_equal_the_density_ratio_computed_by_brute_force() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2, 3, 3))
    group_of = rng.integers(-1, 4, size=40)  # -1: background images stay in every counterfactual
    q = rng.normal(size=(7, 2, 3, 3))
    sigmas = [1.5, 3.0]
    got = kde_drops(torch.from_numpy(q), torch.from_numpy(x), group_of, 4, sigmas)
    want = np.array([[np.mean([brute_force_drop(qi.ravel(), x.reshape(40, -1), group_of, k, s) for s in sigmas])
                      for k in range(4)] for qi in q])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_mass_not_the_single_nearest_image_decides_at_a_wide_kernel() -> None:
    """A query whose nearest image is a lone one of group 1, inside a crowd of group 0 slightly further
    away: a narrow kernel follows the nearest image (as pixel-nn does), a wide one the crowd's mass."""
    crowd = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]) * 1.2
    x = torch.from_numpy(np.vstack([crowd, [[0.5, 0.5]]])).view(5, 1, 1, 2)
    group_of = np.array([0, 0, 0, 0, 1])
    q = torch.zeros(1, 1, 1, 2, dtype=torch.float64)
    assert kde_drops(q, x, group_of, 2, [0.1]).argmax() == 1
    assert kde_drops(q, x, group_of, 2, [2.0]).argmax() == 0
    # a group holding every image near the query: a large but finite drop (computed in the log domain)
    far = torch.from_numpy(np.vstack([crowd, [[50.0, 50.0]]])).view(5, 1, 1, 2)
    drops = kde_drops(q, far, group_of, 2, [0.05])
    assert np.isfinite(drops).all() and drops[0, 0] > 1e3 and drops[0, 1] == pytest.approx(0.0, abs=1e-12)


def test_elbo_sigmas_are_the_grid_noise_levels_in_image_units() -> None:
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    sigmas = elbo_sigmas(sched.alphas_cumprod, [110, 410, 650])
    abar = sched.alphas_cumprod.double()
    assert sigmas == pytest.approx([float(((1 - abar[t]) / abar[t]).sqrt()) for t in (110, 410, 650)])
    assert sigmas[0] < sigmas[1] < sigmas[2]


def test_median_nn_distance_ignores_the_image_itself() -> None:
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0], [15.0]], dtype=torch.float64)
    assert median_nn_distance(x) == pytest.approx(2.0)  # nearest others: 1, 1, 2, 4, 8
    assert median_nn_distance(x[:4]) == pytest.approx(1.5)  # an even count: the mean of the middle two


def test_elbo_widths_are_unavailable_on_a_latent_model_and_a_fixed_width_is_not() -> None:
    images = torch.arange(12, dtype=torch.float64).view(4, 1, 1, 3)
    ctx = SimpleNamespace(base=object(), bench=SimpleNamespace(images=images))
    with pytest.raises(Unavailable, match="latent space"):
        PixelKDE(bandwidth=0.0).widths(ctx)
    # nearest-neighbour distance between consecutive images is sqrt(3 * 3^2)
    assert PixelKDE(bandwidth=0.5).widths(ctx) == pytest.approx([0.5 * np.sqrt(27.0)])


def optimal_eps(xt: np.ndarray, x: np.ndarray, a: float, s: float) -> np.ndarray:
    """eps prediction of the optimal denoiser of the images x at one noisy input, by the definition."""
    w = np.exp(-((xt - a * x) ** 2).sum(1) / (2 * s * s))
    return (xt - a * (w[:, None] * x).sum(0) / w.sum()) / s


def test_elbo_estimator_is_the_truths_estimator_on_the_optimal_denoiser_without_each_group() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 1, 2, 2)) * 0.5
    group_of = rng.integers(-1, 3, size=30)
    group_of[:3] = [0, 1, 2]  # every group holds an image
    q = rng.normal(size=(5, 1, 2, 2)) * 0.5
    timesteps = [100, 400]
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    abar = sched.alphas_cumprod.double()
    noise = rng.normal(size=(5, 2, 1, 2, 2))
    weights = torch.tensor([1.0, 0.5])
    got = optimal_denoiser_logoa(torch.from_numpy(q), torch.from_numpy(noise), timesteps, abar, weights,
                                 torch.from_numpy(x), group_of, 3)
    flat = x.reshape(30, -1)
    want = np.zeros((5, 3))
    for i in range(5):
        for j, t in enumerate(timesteps):
            a, s = float(abar[t].sqrt()), float((1 - abar[t]).sqrt())
            eps = noise[i, j].ravel()
            xt = a * q[i].ravel() + s * eps
            full = ((optimal_eps(xt, flat, a, s) - eps) ** 2).sum()
            for k in range(3):
                without = ((optimal_eps(xt, flat[group_of != k], a, s) - eps) ** 2).sum()
                want[i, k] += float(weights[j]) * (without - full)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_elbo_estimator_takes_no_kernel_width() -> None:
    with pytest.raises(ValueError, match="bandwidth"):
        PixelKDE(bandwidth=0.5, estimator="elbo")


def test_elbo_estimator_stays_finite_when_the_other_groups_weights_underflow() -> None:
    """At low noise only the nearest group has any weight in float64; removing it must still give an exact,
    finite counterfactual (the other groups' own means), not 0 / 0."""
    x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [40.0, 0.0], [0.0, 40.0]], dtype=torch.float64).view(4, 1, 1, 2)
    group_of = np.array([0, 0, 1, 2])
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    q = torch.zeros(1, 1, 1, 2, dtype=torch.float64)
    got = optimal_denoiser_logoa(q, torch.zeros(1, 1, 1, 1, 2, dtype=torch.float64), [5],
                                 sched.alphas_cumprod.double(), torch.tensor([1.0]), x, group_of, 3)
    assert np.isfinite(got).all()
    abar = float(sched.alphas_cumprod[5])
    # without group 0 the estimate is the midpoint of the two far images (equal weights): (20, 20)
    assert got[0, 0] == pytest.approx(abar / (1 - abar) * 800.0, rel=1e-6)
    assert got[0, 1] == pytest.approx(0.0, abs=1e-6) and got[0, 2] == pytest.approx(0.0, abs=1e-6)


def test_median_nn_distance_is_the_same_in_blocks() -> None:
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(700, 5)))
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    assert median_nn_distance(x, sample=700) == pytest.approx(float(np.median(d.min(1).values.numpy())))
