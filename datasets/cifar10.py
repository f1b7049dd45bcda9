"""CIFAR-10 from the standard python batches (``cifar-10-batches-py``) at a local path: 10 classes as groups.

Nothing is downloaded: pass ``--data-root`` (or set ``$GUDA_BENCH_CIFAR10``) to the folder holding
``data_batch_1`` .. ``data_batch_5`` and ``batches.meta``. Two recipes:

- ``paper``: SPEC §2's reference (UNet2DModel blocks 128/256/256/256, 3 layers per block, attention at
  16 and 8 px, dropout 0.3, T = 4000 squaredcos_cap_v2, batch 256, AdamW lr 1e-4, 5,000 warm-up steps
  then cosine, grad clip 1.0, horizontal flips, 2,400 epochs = 468,750 steps; 2,048 queries). For a
  GPU cluster: LOGO is 10 such trainings.
- ``reduced``: the same architecture family at a size one GPU finishes in a few hours (blocks
  64/128/128, 2 layers, 60,000 steps at batch 128, 1,000 timesteps, 1,024 queries).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from guda_bench.datasets.base import LocalDataAdapter

from guda_bench.benchmark import Benchmark
from guda_bench.config import ElboConfig, ModelConfig, Preset, QueryConfig, TrainRecipe, UnlearnConfig
from guda_bench.errors import BenchError
from guda_bench.registry import register_dataset

ENV_ROOT = "GUDA_BENCH_CIFAR10"
BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))

PAPER = Preset(
    name="paper",
    model=ModelConfig(sample_size=32, in_channels=3, block_out_channels=(128, 256, 256, 256), layers_per_block=3,
                      down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                      up_block_types=("UpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                      norm_num_groups=32, dropout=0.3),
    recipe=TrainRecipe(steps=468_750, batch_size=256, lr=1e-4, weight_decay=1e-4, warmup_steps=5000,
                       grad_clip=1.0, ema_decay=0.9999, num_train_timesteps=4000, beta_schedule="squaredcos_cap_v2",
                       hflip=True),
    elbo=ElboConfig(t_start=10, t_stop=4000, t_stride=10, weighting="kl", batch_size=2048),
    queries=QueryConfig(n_queries=2048, inference_steps=4000, batch_size=512),
    unlearn=UnlearnConfig(steps=4000, pair_batch=128, lr=1e-5, lambda_forget=0.03),
)
REDUCED = Preset(
    name="reduced",
    model=ModelConfig(sample_size=32, in_channels=3, block_out_channels=(64, 128, 128), layers_per_block=2,
                      down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                      up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), norm_num_groups=32, dropout=0.1),
    recipe=TrainRecipe(steps=60_000, batch_size=128, lr=2e-4, warmup_steps=1000, ema_decay=0.9995, hflip=True),
    elbo=ElboConfig(t_start=10, t_stop=1000, t_stride=20, weighting="kl", batch_size=1024),
    queries=QueryConfig(n_queries=1024, inference_steps=1000, batch_size=512),
    unlearn=UnlearnConfig(steps=500, pair_batch=128, lr=1e-5, lambda_forget=1.0),
)


def read_batches(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """uint8 images [N, 3, 32, 32], int labels [N], class names, from the python-pickle batches."""
    missing = [b for b in (*BATCHES, "batches.meta") if not (root / b).exists()]
    if missing:
        raise BenchError(f"CIFAR-10 batches not found in {root} (missing {', '.join(missing)}; expected the "
                         "extracted cifar-10-python.tar.gz folder cifar-10-batches-py)")
    images, labels = [], []
    for name in BATCHES:
        try:
            with open(root / name, "rb") as fh:
                batch = pickle.load(fh, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
            raise BenchError(f"{root / name} is not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    with open(root / "batches.meta", "rb") as fh:
        names = [n.decode() for n in pickle.load(fh, encoding="bytes")[b"label_names"]]
    return np.concatenate(images), np.concatenate(labels), names


@register_dataset("cifar10", description="CIFAR-10 python batches at a local path (--data-root, $GUDA_BENCH_CIFAR10)")
class Cifar10(LocalDataAdapter):
    """The training split (50,000 images), classes as groups."""

    presets = {"paper": PAPER, "reduced": REDUCED}
    env_root = ENV_ROOT

    def available(self) -> tuple[bool, str]:
        if self.root is None:
            return False, self.no_root_reason()
        if not (self.root / BATCHES[0]).exists():
            return False, f"no CIFAR-10 python batches at {self.root}"
        return True, ""

    def load(self, preset: Preset) -> Benchmark:
        raw, labels, names = read_batches(self.root_or_error())
        images = torch.from_numpy(raw).float() / 127.5 - 1.0
        return Benchmark(dataset="cifar10", grouping="class", images=images, labels=labels, group_of=labels.copy(),
                         group_names=names, preset=preset)
