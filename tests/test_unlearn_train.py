import numpy as np
import torch

from guda_bench.config import TrainRecipe, UnlearnConfig
from guda_bench.models import build_scheduler
from guda_bench.train import coupled_batches, step_draws, train_model
from guda_bench.unlearn import retrack_target, unlearn_group
from tests.conftest import TINY_MODEL


def test_retrack_target_is_posterior_weighted_epsilon():
    """target = sum_j w_j (x_t - sqrt(abar) a_j) / sigma with w = softmax of the Gaussian log-likelihoods."""
    g = torch.Generator().manual_seed(0)
    x_f, eps = torch.randn((2, 1, 2, 2), generator=g), torch.randn((2, 1, 2, 2), generator=g)
    anchors = torch.randn((2, 3, 1, 2, 2), generator=g)
    sa, sg = torch.tensor([0.9, 0.5]), torch.tensor([0.4359, 0.8660])
    got = retrack_target(x_f, eps, anchors, sa, sg)
    for b in range(2):
        xt = sa[b] * x_f[b] + sg[b] * eps[b]
        d = torch.stack([(xt - sa[b] * a).pow(2).sum() / (2 * sg[b] ** 2) for a in anchors[b]])
        w = torch.exp(-d) / torch.exp(-d).sum()
        want = sum(w[j] * (xt - sa[b] * anchors[b, j]) / sg[b] for j in range(3))
        torch.testing.assert_close(got[b], want, rtol=1e-4, atol=1e-5)


def test_retrack_single_anchor_equal_to_image_gives_own_noise():
    g = torch.Generator().manual_seed(1)
    x_f, eps = torch.randn((1, 1, 2, 2), generator=g), torch.randn((1, 1, 2, 2), generator=g)
    got = retrack_target(x_f, eps, x_f[:, None], torch.tensor([0.7]), torch.tensor([0.71]))
    torch.testing.assert_close(got, eps)


def test_clipped_shift_is_bounded():
    g = torch.Generator().manual_seed(2)
    x_f, eps = torch.randn((4, 1, 8, 8), generator=g) * 3, torch.randn((4, 1, 8, 8), generator=g)
    anchors = torch.randn((4, 5, 1, 8, 8), generator=g) * 3
    sa, sg = torch.full((4,), 0.99), torch.full((4,), 0.14)
    shift = retrack_target(x_f, eps, anchors, sa, sg, kl_cap=1.0) - eps
    assert (shift.flatten(1).norm(dim=1) <= np.sqrt(2) + 1e-5).all()
    unclipped = retrack_target(x_f, eps, anchors, sa, sg) - eps
    assert (unclipped.flatten(1).norm(dim=1) > np.sqrt(2)).all()


def test_batches_are_coupled_across_leave_one_out_sets():
    keep_all = np.arange(20)
    keep = np.setdiff1d(keep_all, [3, 7, 11])
    a = np.concatenate([next(b) for b in [coupled_batches(20, keep_all, 5, 0)] for _ in range(8)])
    it = coupled_batches(20, keep, 5, 0)
    b = np.concatenate([next(it) for _ in range(8)])
    # the leave-out stream is the full stream with the removed images deleted
    assert list(b[:30]) == [i for i in a if i not in (3, 7, 11)][:30]
    t1, n1 = step_draws(5, 0, 4, (1, 8, 8), 1000, "cpu")
    t2, n2 = step_draws(5, 0, 4, (1, 8, 8), 1000, "cpu")
    assert torch.equal(t1, t2) and torch.equal(n1, n2)


def test_training_is_deterministic_and_data_dependent(tiny_bench):
    recipe = TrainRecipe(steps=3, batch_size=4, warmup_steps=1)
    all_idx = np.arange(len(tiny_bench.images))
    m1 = train_model(tiny_bench.images, all_idx, TINY_MODEL, recipe, seed=0)
    m2 = train_model(tiny_bench.images, all_idx, TINY_MODEL, recipe, seed=0)
    m3 = train_model(tiny_bench.images, tiny_bench.without(0), TINY_MODEL, recipe, seed=0)
    p1, p2, p3 = (torch.cat([p.flatten() for p in m.parameters()]) for m in (m1, m2, m3))
    assert torch.equal(p1, p2)
    assert not torch.equal(p1, p3)


def test_unlearning_variants_run_and_move_weights(tiny_bench):
    recipe = TrainRecipe(steps=2, batch_size=4, warmup_steps=1)
    full = train_model(tiny_bench.images, np.arange(15), TINY_MODEL, recipe, seed=0)
    sched = build_scheduler(recipe)
    before = torch.cat([p.flatten() for p in full.parameters()]).clone()
    for target in ("retrack", "retrack-clipped", "reference", "none", "ascent"):
        cfg = UnlearnConfig(forget_target=target, steps=2, pair_batch=3, k_neighbours=2)
        out = unlearn_group(full, sched, tiny_bench.images, tiny_bench.group_of, 1, cfg)
        after = torch.cat([p.flatten() for p in out.parameters()])
        assert not torch.equal(before, after), target
    # the full model itself is untouched
    assert torch.equal(before, torch.cat([p.flatten() for p in full.parameters()]))
