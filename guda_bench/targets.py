"""Target groups: score only some groups, keep the others' images in every model as background.

UnlearnCanvas (SPEC §7) fine-tunes on 60 styles and evaluates 16: the full model and every LOGO model see
all 60, but only the 16 target styles are candidates (16 LOGO fine-tunes, 16 score columns) and the
prompted queries are written in target styles only. ``--targets NAME,NAME,...`` does this for any
benchmark: the other groups' images get group id -1 (never removed, never scored).

The full model is the same model as without targets (its cache key is the all-groups data hash). The
queries are the same too for unconditional data; for text-to-image data they are drawn from the target
styles' prompts only, so their cache key records the target styles.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from guda_bench.benchmark import BACKGROUND, Benchmark
from guda_bench.errors import BenchError
from guda_bench.registry import did_you_mean


def parse_targets(text: str | None) -> tuple[str, ...] | None:
    """'a,b,c' -> ('a', 'b', 'c'); None or '' -> None (every group is a target)."""
    if not text:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if len(set(names)) != len(names):
        raise BenchError(f"--targets names a group twice: {text}")
    return names


def with_targets(bench: Benchmark, targets: tuple[str, ...] | None) -> Benchmark:
    """The benchmark whose candidate groups are `targets` (in that order); other groups become background."""
    if targets is None:
        return bench
    known = list(bench.group_names)
    for name in targets:
        if name not in known:
            raise BenchError(f"--targets: no group {name!r} in {bench.dataset}{did_you_mean(name, known)} "
                             f"(groups: {', '.join(known[:8])}{', ...' if len(known) > 8 else ''})")
    if len(targets) < 3:
        raise BenchError(f"--targets names {len(targets)} group(s); NDCG@3 and Top-3 need >= 3")
    old = [known.index(t) for t in targets]
    text = bench.text
    if text is not None:
        text = replace(text, query_styles=tuple(bench.style_of_group(k) for k in old))
    return replace(bench, group_of=_remap(bench.group_of, old), group_names=list(targets),
                   base_hash=bench.full_model_hash(), text=text)


def _remap(group_of: np.ndarray, old: list[int]) -> np.ndarray:
    new = np.full(len(group_of), BACKGROUND, dtype=np.int64)
    for position, k in enumerate(old):
        new[group_of == k] = position
    return new
