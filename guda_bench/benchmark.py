"""The plain data a dataset adapter hands to the core."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from guda_bench.config import Preset
from guda_bench.text import TextData

BACKGROUND = -1  # group id of images in every model that are never a candidate (guda_bench.targets)


@dataclass
class Benchmark:
    """Training images in [-1, 1] with their group and class labels, plus the preset that sizes the run."""

    dataset: str
    grouping: str
    images: torch.Tensor  # [N, C, H, W], float32 in [-1, 1]
    labels: np.ndarray  # [N] class label (for class-sanity), -1 where unknown
    group_of: np.ndarray  # [N] group index in 0..n_groups-1; -1: background (guda_bench.targets)
    group_names: list[str]
    preset: Preset
    # set by a grouping (guda_bench.groupings): its parameters, and images the queries start near
    grouping_params: dict[str, Any] = field(default_factory=dict)
    query_anchors: torch.Tensor | None = None  # [A, C, H, W]: query i is generated near anchor i % A
    query_t: int = 0  # diffusers timestep the near-anchor queries start denoising from
    planted: dict[str, Any] | None = None  # planted grouping: source images and their groups
    # data hash of the class-grouped benchmark when a grouping kept its images unchanged: the full model,
    # its queries and everything derived from them are then shared by all such groupings
    base_hash: str | None = None
    # text-to-image benchmarks: content and style of every image (prompts); groups are styles
    text: TextData | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError("images must be [N, C, H, W]")
        if len(self.group_of) != len(self.images) or len(self.labels) != len(self.images):
            raise ValueError("one group and one label per image")
        present = set(np.unique(self.group_of).tolist()) - {BACKGROUND}
        if present != set(range(len(self.group_names))):
            raise ValueError("every group must hold at least one image and group ids must be 0..n_groups-1 "
                             "(or -1 for background)")
        if self.text is not None and len(self.text.content_of) != len(self.images):
            raise ValueError("one prompt (content, style) per image")

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    def members(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.group_of == k)

    def without(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.group_of != k)

    @property
    def n_background(self) -> int:
        return int((self.group_of == BACKGROUND).sum())

    def style_of_group(self, k: int) -> int:
        """Index into text.styles of group k (text-to-image benchmarks group by style)."""
        if self.text is None:
            raise ValueError(f"{self.dataset} has no prompts")
        styles = np.unique(self.text.style_of[self.group_of == k])
        if len(styles) != 1:
            raise ValueError(f"group {self.group_names[k]!r} holds {len(styles)} styles; groups must be styles")
        return int(styles[0])

    def full_model_hash(self) -> str:
        """Identity of the data the full model is trained on (the grouping only matters for LOGO)."""
        return self.base_hash or self.data_hash()

    def data_hash(self) -> str:
        """Identity of the training data and its grouping (part of every cache key)."""
        h = hashlib.sha256()
        h.update(self.images.numpy().astype(np.float32).tobytes())
        h.update(np.asarray(self.group_of, dtype=np.int64).tobytes())
        h.update("|".join(self.group_names).encode())
        if self.grouping != "class":  # the class grouping keeps the keys it always had
            h.update(self.grouping.encode())
        for part in self.text.hash_parts() if self.text is not None else []:
            h.update(part)
        return h.hexdigest()
