"""scikit-learn's 8x8 digits (1,797 images, 10 classes as groups): the embedded default benchmark."""

from __future__ import annotations

import numpy as np
import torch
from guda_bench.datasets.base import DatasetAdapter

from guda_bench.benchmark import Benchmark
from guda_bench.config import ElboConfig, ModelConfig, Preset, QueryConfig, TrainRecipe, UnlearnConfig
from guda_bench.registry import register_dataset

SMOKE = Preset(
    name="smoke",
    model=ModelConfig(block_out_channels=(16, 32), norm_num_groups=8),
    recipe=TrainRecipe(steps=150, batch_size=64, lr=2e-3, warmup_steps=20, ema_decay=0.98),
    elbo=ElboConfig(t_start=10, t_stop=1000, t_stride=100),
    queries=QueryConfig(n_queries=24, inference_steps=100, batch_size=24),
    unlearn=UnlearnConfig(steps=8, pair_batch=16),
    groups=(0, 1, 7),
    per_group_limit=60,
    ceiling_seeds=1,
    n_boot=200,
    method_options={
        "trak": {"proj_dim": 256}, "d-trak": {"proj_dim": 256}, "das": {"proj_dim": 256},
        "instance-unlearning": {"max_train_per_group": 5, "n_timesteps": 5, "fisher_samples": 180},
    },
)

DEFAULT = Preset(
    name="default",
    model=ModelConfig(block_out_channels=(32, 64), norm_num_groups=8),
    recipe=TrainRecipe(steps=800, batch_size=64, lr=2e-3, warmup_steps=50, ema_decay=0.995),
    # 10 terms, t = 110, 170, ..., 650, unweighted eps error. Chosen among 20 grids x {kl, eps} by the
    # ground truth's own reproducibility (two LOGO seeds, 400 queries): this grid gave seed agreement
    # 0.87 and class-sanity 0.82; the full KL grid t = 10..990 only 0.69 / 0.72 (its t = 10 term dominates);
    # dense grids (45 terms) reach ~0.90 but cost 4.5x more ELBO passes for every ELBO-based method.
    elbo=ElboConfig(t_start=110, t_stop=700, t_stride=60, weighting="eps"),
    # 1,400 queries: a quarter (350) to tune on, 1,050 to test (a Top-1 CI of at most +-0.03, SPEC §6 Power)
    queries=QueryConfig(n_queries=1400, inference_steps=250, batch_size=700, tune_fraction=0.25),
    # chosen on the tuning split of the queries (benchmarks/tune_guda.json): best tune Top-1 of 8 settings
    unlearn=UnlearnConfig(steps=20, pair_batch=32, lr=3e-4, lambda_forget=1.0),
    ceiling_seeds=1,
    method_options={
        # traker's dense projection dominates featurisation on CPU: 512 dims keep it near 20 ms/sample
        "trak": {"proj_dim": 512}, "d-trak": {"proj_dim": 512}, "das": {"proj_dim": 512},
        # 8 images per group x 10 timesteps per query and a 1,024-draw Fisher keep 400 queries to ~2 min
        "instance-unlearning": {"max_train_per_group": 8, "n_timesteps": 10, "fisher_samples": 1024},
    },
)


@register_dataset("digits", description="scikit-learn 8x8 digits, 10 classes as groups (embedded, no download)")
class Digits(DatasetAdapter):
    """scikit-learn 8x8 digits."""

    presets = {"smoke": SMOKE, "default": DEFAULT}

    def load(self, preset: Preset) -> Benchmark:
        from sklearn.datasets import load_digits

        data = load_digits()
        images = data.images.astype(np.float32) / 8.0 - 1.0  # 0..16 -> [-1, 1]
        labels = data.target.astype(np.int64)
        classes = list(preset.groups) if preset.groups is not None else sorted(set(labels.tolist()))
        keep = []
        for c in classes:
            idx = np.flatnonzero(labels == c)
            keep.append(idx[: preset.per_group_limit] if preset.per_group_limit else idx)
        order = np.sort(np.concatenate(keep))
        labels = labels[order]
        group_of = np.searchsorted(np.asarray(classes), labels)
        return Benchmark(
            dataset="digits", grouping="class",
            images=torch.from_numpy(images[order][:, None]),
            labels=labels, group_of=group_of, group_names=[str(c) for c in classes], preset=preset,
        )
