"""Tiny real components (the diffusers get_dummy_components() habit): built by the tests themselves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from guda_bench import progress
from guda_bench.benchmark import Benchmark
from guda_bench.config import ElboConfig, ModelConfig, Preset, QueryConfig, TrainRecipe, UnlearnConfig

torch.set_num_threads(2)
progress.set_enabled(False)

TINY_MODEL = ModelConfig(block_out_channels=(8, 16), norm_num_groups=4)


def tiny_preset(**kw) -> Preset:
    base = dict(name="tiny", model=TINY_MODEL, recipe=TrainRecipe(steps=6, batch_size=8, warmup_steps=1),
                elbo=ElboConfig(t_start=10, t_stop=1000, t_stride=250),
                queries=QueryConfig(n_queries=6, inference_steps=5, batch_size=6),
                unlearn=UnlearnConfig(steps=2, pair_batch=4), n_boot=50)
    base.update(kw)
    return Preset(**base)


@pytest.fixture
def tiny_bench() -> Benchmark:
    """3 groups of 5 random 8x8 images."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand((15, 1, 8, 8), generator=g) * 2 - 1
    group_of = np.repeat(np.arange(3), 5)
    return Benchmark("tiny", "class", images, group_of.copy(), group_of, ["a", "b", "c"], tiny_preset())
