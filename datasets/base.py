"""What a dataset adapter provides: groups, training images, presets (model + recipe), class labels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

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

    def no_root_reason(self) -> str:
        return f"no data root given (--data-root PATH or ${self.env_root})"
