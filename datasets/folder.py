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
import torch
from guda_bench.datasets.base import LocalDataAdapter

from guda_bench.benchmark import Benchmark
from guda_bench.config import ElboConfig, ModelConfig, Preset, QueryConfig, TrainRecipe, UnlearnConfig
from guda_bench.errors import BenchError
from guda_bench.registry import register_dataset

ENV_ROOT = "GUDA_BENCH_FOLDER"
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}

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

    def available(self) -> tuple[bool, str]:
        if self.root is None:
            return False, self.no_root_reason()
        if not self.root.is_dir():
            return False, f"data root {self.root} does not exist or is not a folder"
        return True, ""

    def load(self, preset: Preset) -> Benchmark:
        from PIL import Image, UnidentifiedImageError

        ok, why = self.available()
        if not ok:
            raise BenchError(f"dataset 'folder': {why}")
        groups = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(groups) < 2:
            raise BenchError(f"{self.root} holds {len(groups)} group folder(s); attribution needs at least two "
                             "(layout: ROOT/<group name>/<images>)")
        size = preset.model.sample_size
        images, group_of, channels = [], [], {}
        for k, folder in enumerate(groups):
            files = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not files:
                raise BenchError(f"group {folder.name!r} ({folder}) holds no images ({', '.join(sorted(SUFFIXES))})")
            for f in files:
                try:
                    with Image.open(f) as im:
                        im.load()
                        mode = "L" if im.mode in ("L", "LA", "1", "I", "I;16", "F") else "RGB"
                        arr = np.asarray(im.convert(mode).resize((size, size), Image.BICUBIC), dtype=np.float32)
                except (UnidentifiedImageError, OSError, ValueError) as exc:
                    raise BenchError(f"cannot read image {f}: {exc}") from None
                channels.setdefault(1 if arr.ndim == 2 else 3, f)
                images.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
                group_of.append(k)
        if len(channels) > 1:
            raise BenchError(f"mixed channel counts: {channels[1]} is greyscale but {channels[3]} is colour "
                             "(convert the folder to one mode)")
        # the model's channels follow the data (grey or colour); recorded in the preset, hence in every key
        preset = replace(preset, model=replace(preset.model, in_channels=next(iter(channels))))
        x = torch.from_numpy(np.stack(images)) / 127.5 - 1.0
        labels = np.asarray(group_of, dtype=np.int64)
        return Benchmark(dataset="folder", grouping="class", images=x.clamp(-1, 1), labels=labels,
                         group_of=labels.copy(), group_names=[g.name for g in groups], preset=preset)
