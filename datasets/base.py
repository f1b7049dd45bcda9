"""What a dataset adapter provides: groups, training images, presets (model + recipe), class labels."""

from __future__ import annotations

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
