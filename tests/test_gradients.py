"""TRAK / D-TRAK / DAS: projected gradient features, kernel algebra, aggregation, and a real tiny run."""

from __future__ import annotations

import json

import guda_bench.methods.das  # noqa: F401 - registers "das"
import guda_bench.methods.trak  # noqa: F401 - registers "trak", "d-trak"
import numpy as np
import pytest
import torch

from guda_bench import gradients as G
from guda_bench.cli import main
from guda_bench.config import TrainRecipe
from guda_bench.models import build_scheduler, build_unet
from guda_bench.registry import METHODS
from tests import tiny_dataset
from tests.conftest import TINY_MODEL

TIMESTEPS = (0, 300, 600, 900)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    unet = build_unet(TINY_MODEL).eval()
    sched = build_scheduler(TrainRecipe())
    images = torch.rand((10, 1, 8, 8), generator=torch.Generator().manual_seed(1)) * 2 - 1
    ids = [f"t/{i}" for i in range(len(images))]
    return unet, sched, images, ids


@pytest.mark.parametrize("output", G.OUTPUTS)
def test_features_finite_nonzero_and_batch_size_independent(setup, output):
    unet, sched, images, ids = setup
    a = G.gradient_features(unet, sched, images, ids, output, TIMESTEPS, proj_dim=64, batch_size=10)
    b = G.gradient_features(unet, sched, images, ids, output, TIMESTEPS, proj_dim=64, batch_size=3)
    assert a.shape == (10, 64) and a.dtype == np.float32
    assert np.isfinite(a).all() and (np.abs(a).sum(1) > 0).all()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(a).max())
    # a different seed gives different noise (and projection)
    c = G.gradient_features(unet, sched, images, ids, output, TIMESTEPS, proj_dim=64, seed=1)
    assert not np.allclose(a, c)


def test_projected_gradient_matches_autograd(setup):
    """The projected feature is R^T grad f, with grad f from a plain autograd pass on one sample."""
    unet, sched, images, ids = setup
    t = torch.tensor(TIMESTEPS)
    eps = G.fixed_noise(ids[:1], TIMESTEPS, 0, (1, 8, 8))[0]
    abar = sched.alphas_cumprod.double()[t]
    a, s = abar.sqrt().float()[:, None, None, None], (1 - abar).sqrt().float()[:, None, None, None]
    xt = a * images[0][None] + s * eps
    unet.zero_grad()
    loss = (unet(xt, t).sample - eps).pow(2).flatten(1).sum(1).mean()
    loss.backward()
    g = torch.cat([p.grad.flatten() for p in unet.parameters()])
    unet.zero_grad()
    proj = G._projector(g.numel(), 32, 0, "cpu").project(g[None].clone(), model_id=0)[0].numpy()
    phi = G.gradient_features(unet, sched, images[:1], ids[:1], "loss", TIMESTEPS, proj_dim=32)[0]
    np.testing.assert_allclose(phi, proj, rtol=1e-3, atol=1e-3 * np.abs(proj).max())


@pytest.mark.parametrize("max_bytes", [G.MAX_MATRIX_BYTES, 1])
def test_project_parts_equals_traker_project_of_the_concatenation(monkeypatch, max_bytes):
    """Per-parameter projection == traker's project() on the concatenated gradient, one block or many."""
    monkeypatch.setattr(G, "MAX_MATRIX_BYTES", max_bytes)
    G._projector.cache_clear()
    parts = [torch.randn(5, w, generator=torch.Generator().manual_seed(w)) for w in (7, 30, 3)]
    projector = G._projector(40, 1030, 3, "cpu")
    assert projector.num_blocks == (1 if max_bytes > 1 else 3)
    got = G.project_parts(projector, parts)
    G._projector.cache_clear()
    want = G._projector(40, 1030, 3, "cpu").project(torch.cat(parts, 1), model_id=0)
    G._projector.cache_clear()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_kernel_scores_and_leverage_match_numpy():
    rng = np.random.default_rng(0)
    phi, q, lam = rng.normal(size=(7, 5)), rng.normal(size=(3, 5)), 0.3
    inv = np.linalg.inv(phi.T @ phi + lam * np.eye(5))
    np.testing.assert_allclose(G.kernel_scores(phi, q, lam), q @ inv @ phi.T, rtol=1e-10)
    np.testing.assert_allclose(G.leverages(phi, lam), np.diag(phi @ inv @ phi.T), rtol=1e-10)
    assert G.relative_lambda(phi, 0.1) == pytest.approx(0.1 * np.trace(phi.T @ phi) / 5)


def test_group_aggregate_by_hand():
    s = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    group_of = np.array([0, 1, 0, 2, 2])
    np.testing.assert_allclose(G.group_aggregate(s, group_of, 3, "sum"), [[4.0, 2.0, 9.0]])
    np.testing.assert_allclose(G.group_aggregate(s, group_of, 3, "mean"), [[2.0, 2.0, 4.5]])
    with pytest.raises(ValueError):
        G.group_aggregate(s, group_of, 3, "max")


def test_check_features_rejects_bad_rows():
    with pytest.raises(FloatingPointError):
        G.check_features(np.array([[1.0, np.nan]]))
    with pytest.raises(FloatingPointError):
        G.check_features(np.array([[1.0, 2.0], [0.0, 0.0]]))


def test_cli_string_options_are_converted():
    m = METHODS.entry("d-trak").create({"proj_dim": "128", "lam": "0.5", "timesteps": "0,500", "aggregate": "mean"})
    assert (m.output, m.proj_dim, m.lam, m.timesteps, m.aggregate) == ("output_norm", 128, 0.5, (0, 500), "mean")
    assert METHODS.entry("trak").create().output == "loss"
    assert METHODS.entry("das").create({"leverage": "false"}).leverage is False


def test_runner_on_tiny_dataset(tmp_path):
    tiny_dataset.register()
    code = main(["run", "--dataset", tiny_dataset.NAME, "--preset", "tiny", "--method", "trak,d-trak,das,random",
                 "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"), "--quiet",
                 "--option", "trak.proj_dim=256", "--option", "d-trak.proj_dim=256", "--option", "das.proj_dim=256"])
    assert code == 0
    rows = {r["method"]: r for r in json.loads((tmp_path / "run" / "results.json").read_text())["rows"]}
    for name in ("trak", "d-trak", "das", "random"):
        assert rows[name]["status"] == "ok", (name, rows[name].get("reason"))
    das = np.load(tmp_path / "run" / "scores" / "das.npy")
    assert das.shape == (8, 3) and (das >= 0).all()
    assert (tmp_path / "cache" / "features-train").is_dir() and (tmp_path / "cache" / "features-query").is_dir()
