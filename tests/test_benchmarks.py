"""pytest-benchmark timings of the hot paths (tiny sizes; the digits-scale ratios are `guda-bench bench`)."""

import numpy as np
import torch

from guda_bench import metrics
from guda_bench.config import ElboConfig, TrainRecipe
from guda_bench.elbo import ElboScorer
from guda_bench.models import build_scheduler, build_unet
from tests.conftest import TINY_MODEL


def test_bench_elbo_terms(benchmark):
    torch.manual_seed(0)
    unet = build_unet(TINY_MODEL).eval()
    scorer = ElboScorer(build_scheduler(TrainRecipe()), ElboConfig(t_stride=100), torch.rand((32, 1, 8, 8)),
                        [str(i) for i in range(32)])
    scorer.noise()
    terms = benchmark.pedantic(scorer.terms, args=(unet,), rounds=3, iterations=1)
    assert terms.shape == (32, 10) and np.isfinite(terms).all()


def test_bench_metrics(benchmark):
    rng = np.random.default_rng(0)
    s, g = rng.random((400, 10)), rng.random((400, 10))
    out = benchmark.pedantic(metrics.summarize, args=(s, g), kwargs={"n_boot": 1000}, rounds=3, iterations=1)
    assert 0 <= out["top1"]["mean"] <= 1


def test_bench_projection_scales_the_measured_rates_to_the_truth(tiny_bench):
    from guda_bench.bench import projection

    p = projection(tiny_bench, {"guda_bench_per_s": 12.0}, {"ms_per_image": 50.0})
    recipe = tiny_bench.preset.recipe
    assert p["trainings"] == 4 and p["images_per_training"] == recipe.steps * recipe.batch_size
    assert p["truth_training_s"] == 4 * recipe.steps * recipe.batch_size / 12.0
    assert p["trak_train_features_s"] == 15 * 0.05 and "projection" in p["what"]
