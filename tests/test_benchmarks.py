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
