"""A tiny dataset adapter for fast runner tests: 3 groups of 8 random-blob 8x8 images, tiny models."""

from __future__ import annotations

import numpy as np
import torch
from guda_bench.datasets.base import DatasetAdapter

from guda_bench.benchmark import Benchmark
from guda_bench.config import ElboConfig, ModelConfig, Preset, QueryConfig, TrainRecipe, UnlearnConfig
from guda_bench.registry import DATASETS

NAME = "tiny-test"
TINY = Preset(name="tiny", model=ModelConfig(block_out_channels=(8, 16), norm_num_groups=4),
              recipe=TrainRecipe(steps=6, batch_size=8, warmup_steps=1),
              elbo=ElboConfig(t_start=10, t_stop=1000, t_stride=250),
              queries=QueryConfig(n_queries=8, inference_steps=5, batch_size=8),
              unlearn=UnlearnConfig(steps=2, pair_batch=4), n_boot=50)
# long enough LOGO trainings that a test can kill a run in the middle of them
SLOW = Preset(name="slow-train", model=TINY.model, recipe=TrainRecipe(steps=400, batch_size=8, warmup_steps=1),
              elbo=TINY.elbo, queries=TINY.queries, unlearn=TINY.unlearn, n_boot=50)


class TinyDataset(DatasetAdapter):
    """Random blobs, one mean image per group."""

    presets = {"tiny": TINY, "slow-train": SLOW}

    def load(self, preset: Preset) -> Benchmark:
        g = torch.Generator().manual_seed(0)
        means = torch.rand((3, 1, 8, 8), generator=g) * 2 - 1
        group_of = np.repeat(np.arange(3), 8)
        images = (means[group_of] + 0.2 * torch.randn((24, 1, 8, 8), generator=g)).clamp(-1, 1)
        return Benchmark(NAME, "class", images, group_of.copy(), group_of, ["a", "b", "c"], preset)


def register() -> None:
    if NAME not in DATASETS.names():
        DATASETS.register(NAME, description="tiny test data")(TinyDataset)
