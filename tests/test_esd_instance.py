"""guda-esd (ESD negative guidance from a group-conditional model) and instance-unlearning (AbU)."""

from __future__ import annotations

import copy
import json

import guda_bench.methods.guda_esd  # noqa: F401 - registers "guda-esd"
import guda_bench.methods.instance_unlearning  # noqa: F401 - registers "instance-unlearning"
import numpy as np
import torch

from guda_bench import instance_unlearn as iu
from guda_bench.cli import main
from guda_bench.conditional import build_conditional_unet, conditional_model, esd_target, load_conditional
from guda_bench.context import Context
from guda_bench.models import build_scheduler, build_unet
from guda_bench.registry import METHODS
from guda_bench.store import Store
from tests import tiny_dataset
from tests.conftest import TINY_MODEL


def test_esd_target_matches_hand_computation():
    torch.manual_seed(0)
    cond = build_conditional_unet(TINY_MODEL, n_groups=3).eval()
    with torch.no_grad():  # a random class embedding, so labels matter
        cond.class_embedding.weight.normal_(0, 1.0)
    xt = torch.randn(4, 1, 8, 8)
    t = torch.tensor([5, 100, 500, 900])
    with torch.no_grad():
        eps_null = cond(xt, t, class_labels=torch.full((4,), 3)).sample
        eps_k = cond(xt, t, class_labels=torch.full((4,), 1)).sample
    expected = eps_null - 7.5 * (eps_k - eps_null)
    got = esd_target(cond, xt, t, 1, null=3, guidance=7.5)
    assert (eps_k - eps_null).abs().max() > 1e-4
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(esd_target(cond, xt, t, 1, null=3, guidance=0.0), eps_null, rtol=1e-4, atol=1e-5)


def test_conditional_model_trains_and_is_cached(tiny_bench, tmp_path):
    ctx = Context(tiny_bench, Store(tmp_path / "cache"))
    first = conditional_model(ctx)
    second = conditional_model(ctx)
    assert first.built and not second.built and first.key == second.key
    assert first.manifest["spec"]["label_dropout"] == 0.1
    unet = load_conditional(second)
    assert unet.class_embedding.num_embeddings == tiny_bench.n_groups + 1
    init = build_conditional_unet(TINY_MODEL, tiny_bench.n_groups)
    assert not torch.equal(unet.class_embedding.weight, init.class_embedding.weight)


def _tiny_setup():
    torch.manual_seed(0)
    unet = build_unet(TINY_MODEL).eval()
    abar = build_scheduler(tiny_dataset.TINY.recipe).alphas_cumprod.float()
    timesteps = iu.grid_timesteps(4, 1000)
    x_q = torch.rand(1, 8, 8) * 2 - 1
    noise = iu.fixed_noise([0], timesteps, 0, (1, 8, 8), iu.NOISE_TAG_QUERY)[0]
    return unet, abar, timesteps, x_q, noise


def test_fisher_preconditioned_update_is_lr_g_over_fn():
    unet, abar, timesteps, x_q, noise = _tiny_setup()
    g = torch.Generator().manual_seed(1)
    fisher = {n: torch.rand(p.shape, generator=g) + 0.5 for n, p in unet.named_parameters()}
    before = {n: p.detach().clone() for n, p in unet.named_parameters()}
    loss = iu.query_loss(unet, x_q, noise, timesteps, abar)
    grads = dict(zip(before, torch.autograd.grad(loss, list(unet.parameters()), allow_unused=True), strict=True))
    lr, n_train = 0.3, 7
    iu.unlearn_query(unet, x_q, noise, timesteps, abar, fisher, lr, steps=1, n_train=n_train)
    for n, p in unet.named_parameters():
        expected = before[n] + (0 if grads[n] is None else lr * grads[n] / (fisher[n] * n_train))
        torch.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-7)
    # damping is relative to the Fisher's mean
    d = iu.damped({"a": torch.tensor([0.0, 2.0])}, 0.5)
    torch.testing.assert_close(d["a"], torch.tensor([0.5, 2.5]))


def test_instance_unlearning_ascends_the_query_loss():
    unet, abar, timesteps, x_q, noise = _tiny_setup()
    images = torch.rand(6, 1, 8, 8) * 2 - 1
    fisher = iu.damped(iu.diagonal_fisher(unet, images, abar, n_samples=6, seed=0), 0.01)
    assert all(torch.isfinite(f).all() and (f > 0).all() for f in fisher.values())
    original = copy.deepcopy(unet)
    with torch.no_grad():
        loss_before = float(iu.query_loss(unet, x_q, noise, timesteps, abar))
    iu.unlearn_query(unet, x_q, noise, timesteps, abar, fisher, lr=0.01, steps=1, n_train=6)
    with torch.no_grad():
        loss_after = float(iu.query_loss(unet, x_q, noise, timesteps, abar))
    assert loss_after > loss_before
    changed = sum(not torch.equal(a, b) for a, b in zip(unet.parameters(), original.parameters(), strict=True))
    assert changed > 0.9 * len(list(unet.parameters()))  # all weights are unlearned
    # the query itself, scored like a training image, rises too
    x = x_q[None]
    nz = noise[None]
    after = iu.per_image_losses(unet, x, nz, timesteps, abar)
    before = iu.per_image_losses(original, x, nz, timesteps, abar)
    assert after[0] > before[0]


def test_image_losses_do_not_depend_on_the_batch_size():
    """The shipped batch (256) is a speed choice only: the same image-timestep losses in any grouping."""
    unet, abar, timesteps, _, _ = _tiny_setup()
    images = torch.rand(7, 1, 8, 8) * 2 - 1
    noise = iu.fixed_noise(list(range(7)), timesteps, 0, (1, 8, 8), iu.NOISE_TAG_TRAIN)
    whole = iu.per_image_losses(unet, images, noise, timesteps, abar, batch_size=len(images) * len(timesteps))
    split = iu.per_image_losses(unet, images, noise, timesteps, abar, batch_size=3)
    np.testing.assert_allclose(split, whole, rtol=1e-6)
    assert len(np.unique(whole)) == len(images)  # seven different losses, not one broadcast value


def test_subsample_and_aggregate():
    group_of = np.repeat(np.arange(3), [5, 2, 4])
    idx = iu.subsample_per_group(group_of, 3, 3, seed=0)
    assert np.array_equal(np.bincount(group_of[idx]), [3, 2, 3])
    assert np.array_equal(idx, iu.subsample_per_group(group_of, 3, 3, seed=0))
    s = np.array([[1.0, 2.0, 3.0, 4.0]])
    groups = np.array([0, 0, 1, 1])
    assert np.array_equal(iu.aggregate_groups(s, groups, 2, "mean"), [[1.5, 3.5]])
    assert np.array_equal(iu.aggregate_groups(s, groups, 2, "sum"), [[3.0, 7.0]])


def test_options_arrive_as_strings():
    m = METHODS.entry("instance-unlearning").create({"lr": "0.1", "steps": "3", "max_train_per_group": "none"})
    assert m.cfg.lr == 0.1 and m.cfg.steps == 3 and m.cfg.max_train_per_group is None
    e = METHODS.entry("guda-esd").create({"guidance": "5", "steps": "2"})
    assert e.options == {"guidance": 5.0, "steps": 2}


def _run(out, cache) -> int:
    tiny_dataset.register()
    return main(["run", "--dataset", tiny_dataset.NAME, "--preset", "tiny",
                 "--method", "guda-esd,instance-unlearning,random", "--out", str(out), "--cache", str(cache),
                 "--quiet"])


def test_whole_run_with_both_methods(tmp_path):
    assert _run(tmp_path / "run", tmp_path / "cache") == 0
    rows = {r["method"]: r for r in json.loads((tmp_path / "run" / "results.json").read_text())["rows"]}
    for name in ("guda-esd", "instance-unlearning", "random"):
        assert rows[name]["status"] == "ok", rows[name].get("reason")
    for name in ("guda-esd", "instance-unlearning"):
        scores = np.load(tmp_path / "run" / "scores" / f"{name}.npy")
        assert scores.shape == (8, 3) and scores.dtype == np.float64 and np.isfinite(scores).all()
    assert rows["instance-unlearning"]["settings"]["max_train_per_group"] == 20
    assert rows["guda-esd"]["settings"]["guidance"] == 7.5
    for kind in ("conditional-model", "unlearned-esd", "instance-fisher", "instance-before", "instance-scores"):
        assert any((tmp_path / "cache" / kind).iterdir()), kind
    # a fresh cache gives the same scores (seeded end to end)
    assert _run(tmp_path / "run2", tmp_path / "cache2") == 0
    for name in ("guda-esd", "instance-unlearning"):
        assert np.array_equal(np.load(tmp_path / "run" / "scores" / f"{name}.npy"),
                              np.load(tmp_path / "run2" / "scores" / f"{name}.npy")), name
