"""Any image folder laid out as ROOT/<group name>/<images>: the user's own groups, no code needed.

Every image Pillow reads (any size and format) is resized to the preset's resolution (square, bicubic)
and scaled to [-1, 1]. Groups are the sub-folders, sorted by name; class labels are the groups, so the
class-sanity check and every grouping work unchanged. Bad data stops the run before any training with
one line naming the culprit: a missing root, fewer than two groups, an empty group, an unreadable file,
or mixed channel counts (grey and colour in one dataset: convert them first).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from guda_bench.datasets.base import IMAGE_SUFFIXES, ImageReader, LocalDataAdapter, image_files, to_unit_range

from guda_bench.benchmark import Benchmark
from guda_bench.config import ElboConfig, ModelConfig, Preset, QueryConfig, TrainRecipe, UnlearnConfig
from guda_bench.errors import BenchError
from guda_bench.registry import register_dataset

ENV_ROOT = "GUDA_BENCH_FOLDER"

# 16x16 images, the digits recipe scaled up one step; a starting point, not a tuned benchmark
DEFAULT = Preset(
    name="default",
    model=ModelConfig(sample_size=16, block_out_channels=(32, 64), norm_num_groups=8),
    recipe=TrainRecipe(steps=1500, batch_size=64, lr=2e-3, warmup_steps=50, ema_decay=0.995),
    elbo=ElboConfig(t_start=110, t_stop=700, t_stride=60, weighting="eps"),
    queries=QueryConfig(n_queries=200, inference_steps=250, batch_size=200),
    unlearn=UnlearnConfig(steps=20, pair_batch=32, lr=3e-4, lambda_forget=1.0),
)
SMOKE = Preset(
    name="smoke",
    model=ModelConfig(sample_size=8, block_out_channels=(16, 32), norm_num_groups=8),
    recipe=TrainRecipe(steps=60, batch_size=32, lr=2e-3, warmup_steps=10, ema_decay=0.98),
    elbo=ElboConfig(t_start=10, t_stop=1000, t_stride=200),
    queries=QueryConfig(n_queries=12, inference_steps=50, batch_size=12),
    unlearn=UnlearnConfig(steps=4, pair_batch=8),
    n_boot=100,
)


@register_dataset("folder", description="your images: ROOT/<group>/<images> (--data-root or $GUDA_BENCH_FOLDER)")
class ImageFolder(LocalDataAdapter):
    """Groups from sub-folders of a local root."""

    presets = {"default": DEFAULT, "smoke": SMOKE}
    env_root = ENV_ROOT

    def load(self, preset: Preset) -> Benchmark:
        self.require_available()
        groups = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(groups) < 2:
            raise BenchError(f"{self.root} holds {len(groups)} group folder(s); attribution needs at least two "
                             "(layout: ROOT/<group name>/<images>)")
        reader = ImageReader(preset.model.sample_size)
        images, group_of = [], []
        for k, folder in enumerate(groups):
            files = image_files(folder)
            if not files:
                raise BenchError(f"group {folder.name!r} ({folder}) holds no images "
                                 f"({', '.join(sorted(IMAGE_SUFFIXES))})")
            images.extend(reader.read(f) for f in files)
            group_of.extend([k] * len(files))
        # the model's channels follow the data (grey or colour); recorded in the preset, hence in every key
        preset = replace(preset, model=replace(preset.model, in_channels=reader.channels()))
        labels = np.asarray(group_of, dtype=np.int64)
        return Benchmark(dataset="folder", grouping="class", images=to_unit_range(images), labels=labels,
                         group_of=labels.copy(), group_names=[g.name for g in groups], preset=preset)
