import numpy as np
import torch
from torch.distributions import Normal, kl_divergence

from guda_bench.config import ElboConfig, TrainRecipe
from guda_bench.elbo import ElboScorer, kl_weights
from guda_bench.models import build_scheduler, build_unet
from tests.conftest import TINY_MODEL


def test_kl_weight_matches_direct_gaussian_kl():
    """w_t ||eps_hat - eps||^2 equals KL(q(x_{t-1}|x_t,x0) || p(x_{t-1}|x_t)) with the posterior variance."""
    sched = build_scheduler(TrainRecipe(num_train_timesteps=1000))
    betas = sched.betas.double()
    abar = torch.cumprod(1 - betas, 0)
    g = torch.Generator().manual_seed(0)
    for t in (1, 10, 250, 999):
        x0 = torch.rand(64, generator=g, dtype=torch.float64) * 2 - 1
        eps = torch.randn(64, generator=g, dtype=torch.float64)
        eps_hat = eps + 0.3 * torch.randn(64, generator=g, dtype=torch.float64)
        xt = abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * eps
        beta, alpha, ab, ab_prev = betas[t], 1 - betas[t], abar[t], abar[t - 1]
        mu_q = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + (alpha.sqrt() * (1 - ab_prev) / (1 - ab)) * xt
        mu_p = (xt - beta / (1 - ab).sqrt() * eps_hat) / alpha.sqrt()
        std = (beta * (1 - ab_prev) / (1 - ab)).sqrt()
        direct = kl_divergence(Normal(mu_q, std), Normal(mu_p, std)).sum()
        w = kl_weights(sched, [t], "kl")[0]
        assert torch.isclose(w * (eps_hat - eps).pow(2).sum(), direct, rtol=1e-6), t


def test_eps_weighting_is_unweighted():
    sched = build_scheduler(TrainRecipe())
    assert torch.equal(kl_weights(sched, [10, 20], "eps"), torch.ones(2, dtype=torch.float64))


def _scorer(weighting="kl", n=5):
    torch.manual_seed(0)
    queries = torch.rand((n, 1, 8, 8)) * 2 - 1
    cfg = ElboConfig(t_start=10, t_stop=1000, t_stride=100, weighting=weighting, seed=3)
    return ElboScorer(build_scheduler(TrainRecipe()), cfg, queries, [f"q{i}" for i in range(n)])


def test_scores_do_not_change_with_batch_size():
    torch.manual_seed(1)
    unet = build_unet(TINY_MODEL).eval()
    scorer = _scorer()
    a = scorer.terms(unet, batch_size=1)
    b = scorer.terms(unet, batch_size=7)
    c = scorer.terms(unet, batch_size=1000)
    assert a.shape == (5, 10)
    np.testing.assert_allclose(a, b, rtol=1e-4)
    np.testing.assert_allclose(a, c, rtol=1e-4)


def test_noise_is_keyed_by_query_id_not_position():
    s1 = _scorer(n=5)
    s2 = ElboScorer(build_scheduler(TrainRecipe()), s1.cfg, s1.queries[[3, 1]], ["q3", "q1"])
    torch.testing.assert_close(s2.noise()[0], s1.noise()[3])
    torch.testing.assert_close(s2.noise()[1], s1.noise()[1])
    other_seed = ElboScorer(build_scheduler(TrainRecipe()), ElboConfig(t_stride=100, seed=4), s1.queries,
                            s1.query_ids)
    assert not torch.equal(other_seed.noise(), s1.noise())


def test_eps_and_kl_weightings_differ_by_the_weights():
    torch.manual_seed(1)
    unet = build_unet(TINY_MODEL).eval()
    kl, eps = _scorer("kl"), _scorer("eps")
    np.testing.assert_allclose(kl.terms(unet), eps.terms(unet) * kl.weights.numpy()[None], rtol=1e-5)
