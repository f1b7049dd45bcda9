"""What a dataset adapter provides: groups, training images, presets (model + recipe), class labels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from guda_bench.benchmark import Benchmark
from guda_bench.config import Preset
from guda_bench.errors import BenchError


class DatasetAdapter:
    """Base class: subclasses set `presets` and implement `load`."""

    name: str = ""
    presets: ClassVar[dict[str, Preset]] = {}

    def available(self) -> tuple[bool, str]:
        """Whether the data can be read here, and why not."""
        return True, ""

    def preset(self, name: str) -> Preset:
        if name not in self.presets:
            raise BenchError(f"unknown preset {name!r} for dataset {self.name!r} "
                             f"(known: {', '.join(sorted(self.presets))})")
        return self.presets[name]

    def load(self, preset: Preset) -> Benchmark:
        """The class-grouped benchmark; the core applies any other grouping (guda_bench.groupings)."""
        raise NotImplementedError


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def image_files(folder: Path) -> list[Path]:
    """Every image file under `folder` (recursively), sorted."""
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


class ImageReader:
    """Reads images with Pillow, resized to size x size, as float32 [C, H, W] in 0..255; remembers one file
    per channel count so that mixed grey/colour data fails in one line naming both files."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.example_of: dict[int, Path] = {}

    def read(self, path: Path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                im.load()
                mode = "L" if im.mode in ("L", "LA", "1", "I", "I;16", "F") else "RGB"
                arr = np.asarray(im.convert(mode).resize((self.size, self.size), Image.BICUBIC), dtype=np.float32)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise BenchError(f"cannot read image {path}: {exc}") from None
        self.example_of.setdefault(1 if arr.ndim == 2 else 3, path)
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)

    def channels(self) -> int:
        """The one channel count seen, or a one-line error naming a grey and a colour file."""
        if len(self.example_of) > 1:
            raise BenchError(f"mixed channel counts: {self.example_of[1]} is greyscale but {self.example_of[3]} is "
                             "colour (convert the folder to one mode)")
        return next(iter(self.example_of))


def to_unit_range(images: list[np.ndarray]) -> torch.Tensor:
    """0..255 arrays -> one [N, C, H, W] tensor in [-1, 1]."""
    return (torch.from_numpy(np.stack(images)) / 127.5 - 1.0).clamp(-1, 1)


class LocalDataAdapter(DatasetAdapter):
    """An adapter that reads local files: its root comes from --data-root or the environment variable
    `env_root`; nothing is ever downloaded."""

    env_root: ClassVar[str] = ""

    def __init__(self, root: str | Path | None = None) -> None:
        env = os.environ.get(self.env_root) if self.env_root else None
        self.root = Path(root) if root else (Path(env) if env else None)

    def root_or_error(self) -> Path:
        """The root, or a one-line BenchError saying how to give one."""
        if self.root is None:
            raise BenchError(f"dataset {self.name!r}: {self.no_root_reason()}")
        return self.root

    def available(self) -> tuple[bool, str]:
        """A root was given and is a folder (subclasses may check more)."""
        if self.root is None:
            return False, self.no_root_reason()
        if not self.root.is_dir():
            return False, f"data root {self.root} does not exist or is not a folder"
        return True, ""

    def require_available(self) -> Path:
        """The root, or a one-line BenchError saying why the data cannot be read."""
        ok, why = self.available()
        if not ok:
            raise BenchError(f"dataset {self.name!r}: {why}")
        return self.root

    def no_root_reason(self) -> str:
        return f"no data root given (--data-root PATH or ${self.env_root})"


class PaintedDigitsAdapter(DatasetAdapter):
    """Embedded text-to-image benchmarks (styled-digits, style-canvas): scikit-learn's digits, each image
    painted in one style (balanced over the styles, seeded), prompted "a {digit} in {style} style"; groups
    are styles. Subclasses name the styles and paint them."""

    benchmark_name: ClassVar[str] = ""
    style_seed: ClassVar[int] = 0
    smoke_digits: ClassVar[tuple[int, ...] | None] = None  # with per_group_limit: keep only these digits

    def available(self) -> tuple[bool, str]:
        from guda_bench.extras import availability

        return availability("text")  # the text encoder is a transformers CLIPTextModel

    def style_names(self) -> list[str]:
        raise NotImplementedError

    def paint(self, digits: np.ndarray, style: int, rng: np.random.Generator) -> torch.Tensor:
        """[B, 8, 8] digit images (0..16) painted in `style`: [B, C, H, W] in [-1, 1]. Called once per kept
        style, in order, with one generator per load (seeded: every load paints the same images)."""
        raise NotImplementedError

    def load(self, preset: Preset) -> Benchmark:
        from sklearn.datasets import load_digits

        from guda_bench.text import TextData

        data = load_digits()
        digits = data.target.astype(np.int64)
        names = self.style_names()
        style = np.empty(len(digits), dtype=np.int64)
        style[np.random.default_rng(self.style_seed).permutation(len(digits))] = np.arange(len(digits)) % len(names)
        kept_styles = list(preset.groups) if preset.groups is not None else list(range(len(names)))
        keep = []
        for s in kept_styles:
            idx = np.flatnonzero(style == s)
            if preset.per_group_limit:  # smoke presets: a few images (of a few digits) per style
                if self.smoke_digits is not None:
                    idx = idx[np.isin(digits[idx], self.smoke_digits)]
                idx = idx[: preset.per_group_limit]
            keep.append(idx)
        order = np.sort(np.concatenate(keep))
        rng = np.random.default_rng(self.style_seed + 1)
        painted = {s: self.paint(data.images[order][style[order] == s].astype(np.float32), s, rng)
                   for s in kept_styles}
        images = torch.empty((len(order), *painted[kept_styles[0]].shape[1:]))
        for s in kept_styles:
            images[torch.from_numpy(style[order] == s)] = painted[s]
        group_of = np.searchsorted(np.asarray(kept_styles), style[order])
        contents = sorted(set(digits[order].tolist()))
        text = TextData(contents=[str(d) for d in contents], styles=[names[s] for s in kept_styles],
                        content_of=np.searchsorted(np.asarray(contents), digits[order]), style_of=group_of.copy())
        return Benchmark(dataset=self.benchmark_name, grouping="class", images=images, labels=group_of.copy(),
                         group_of=group_of, group_names=text.styles, preset=preset, text=text)
