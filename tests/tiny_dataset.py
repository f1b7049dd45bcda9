"""A tiny dataset adapter for fast runner tests: 3 groups of 8 random-blob 8x8 images, tiny models."""

from __future__ import annotations

from guda_bench.datasets.base import DatasetAdapter

from guda_bench.benchmark import Benchmark
from guda_bench.config import Preset, TrainRecipe
from guda_bench.registry import DATASETS
from guda_bench.testing import CHECK_PRESET, tiny_blobs

NAME = "tiny-test"
TINY = CHECK_PRESET  # check_method's tiny preset: tiny models, 8 queries
# long enough LOGO trainings that a test can kill a run in the middle of them
SLOW = Preset(name="slow-train", model=TINY.model, recipe=TrainRecipe(steps=400, batch_size=8, warmup_steps=1),
              elbo=TINY.elbo, queries=TINY.queries, unlearn=TINY.unlearn, n_boot=50)


class TinyDataset(DatasetAdapter):
    """Random blobs, one mean image per group."""

    presets = {"tiny": TINY, "slow-train": SLOW}

    def load(self, preset: Preset) -> Benchmark:
        return tiny_blobs(preset, NAME)  # the same blobs as check_method's built-in benchmark


def register() -> None:
    if NAME not in DATASETS.names():
        DATASETS.register(NAME, description="tiny test data")(TinyDataset)
