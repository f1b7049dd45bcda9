"""Typed, checked method options: what `--option NAME.KEY=VALUE` and a tuning search space may set.

A method declares ``OPTIONS = {"lr": Option("float", 1e-3, "learning rate", low=0, low_open=True), ...}``.
Values (strings from the command line, or Python values from presets and search spaces) are converted
and checked when the command line is read, so a typo or a bad value stops the run in one line before
anything is trained, instead of failing a row after the ground truth was built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from guda_bench.errors import BenchError

TYPES = ("int", "float", "str", "bool", "int-or-none", "timesteps")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One option: its type, default (None: taken from the preset), help, and the range or choices it allows."""

    type: str
    default: Any = None
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed (e.g. a learning rate > 0)
    choices: tuple[Any, ...] | None = None
    preset: str | None = None  # default None: read from this Preset field (e.g. "unlearn": preset.unlearn.<key>)
    # values that switch the method to another mode instead of sitting on the option's scale (pixel-kde's
    # bandwidth 0: the ELBO grid's own widths): a tuning that chooses one is not at the edge of its grid
    modes: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"Option type must be one of {TYPES}, not {self.type!r}")

    def requirement(self) -> str:
        """What a value must be, in words (for errors and `guda-bench options`)."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        kind = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
                "int-or-none": "an integer or 'none'", "timesteps": "comma-separated timestep indices 'a,b,c'"}
        text = kind[self.type]
        if self.low is not None:
            text += f" {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            text += f"{' and' if self.low is not None else ''} <= {self.high:g}"
        return text

    def convert(self, value: Any) -> Any:
        """The typed value, or ValueError naming what it must be."""
        text = str(value).strip()
        try:
            if self.type == "int":
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                out: Any = int(value) if not isinstance(value, str) else int(text)
            elif self.type == "float":
                if isinstance(value, bool):
                    raise ValueError
                out = float(text)
                if out != out or out in (float("inf"), float("-inf")):
                    raise ValueError
            elif self.type == "bool":
                if isinstance(value, bool):
                    out = value
                elif text.lower() in _TRUE | _FALSE:
                    out = text.lower() in _TRUE
                else:
                    raise ValueError
            elif self.type == "int-or-none":
                out = None if value is None or text.lower() in ("none", "all", "") else int(text)
            elif self.type == "timesteps":
                out = value if isinstance(value, tuple) else text
                _parse_timesteps(out)
            else:
                out = text
        except (TypeError, ValueError):
            raise ValueError(self.requirement()) from None
        if self.choices is not None and out not in self.choices:
            raise ValueError(self.requirement())
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            if self.low is not None and (out < self.low or (self.low_open and out == self.low)):
                raise ValueError(self.requirement())
            if self.high is not None and out > self.high:
                raise ValueError(self.requirement())
        return out


def _parse_timesteps(value: Any) -> None:
    from guda_bench.gradients import parse_timesteps

    if not parse_timesteps(value):
        raise ValueError


def preset_option(field: str) -> Any:
    """An Option factory whose default comes from a Preset field: ``U = preset_option("unlearn")``."""
    def make(type_: str, help_: str = "", **kw: Any) -> Option:
        return Option(type_, None, help_, preset=field, **kw)
    return make


def shipped_value(key: str, option: Option, fixed: Mapping[str, Any], preset: Any) -> Any:
    """The value a method runs with when nobody sets `key`: the preset's method_options or the variant's fixed
    options (`fixed`), else the declared default, else the preset's config field the option names."""
    if key in fixed:
        return option.convert(fixed[key])
    if option.default is not None or option.preset is None:
        return option.default
    return getattr(getattr(preset, option.preset), key)


def typed(declared: Mapping[str, Option], values: Mapping[str, Any]) -> dict[str, Any]:
    """For constructors: `values` converted by their declared options; TypeError on an unknown key."""
    unknown = set(values) - set(declared)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)} (known: {', '.join(declared)})")
    return {k: declared[k].convert(v) for k, v in values.items()}


POSITIVE = {"low": 0.0, "low_open": True}


def check_options(method: str, declared: Mapping[str, Option] | None, values: Mapping[str, Any],
                  origin: str = "--option") -> dict[str, Any]:
    """Convert and check `values` against a method's declared options: one-line BenchError on an unknown key
    (with did-you-mean and the known keys) or a bad value (naming key, value and what it must be).
    A method that declares nothing (None: a plugin of the older contract) gets its values unchecked."""
    if declared is None:
        return dict(values)
    from guda_bench.registry import did_you_mean

    out = {}
    for key, value in values.items():
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise BenchError(f"{origin} {method}.{key}: {method!r} has no option {key!r}"
                             f"{did_you_mean(key, list(declared))} (its options: {known})")
        try:
            out[key] = declared[key].convert(value)
        except ValueError as exc:
            raise BenchError(f"{origin} {method}.{key}={value}: must be {exc}") from None
    return out


def check_space(method: str, declared: Mapping[str, Option] | None, space: Mapping[str, Any]) -> dict[str, list]:
    """A search space {key: [candidates]} with every candidate converted and checked (one-line errors)."""
    out: dict[str, list] = {}
    for key, candidates in space.items():
        if isinstance(candidates, (str, bytes)) or not hasattr(candidates, "__iter__"):
            raise BenchError(f"search space of {method!r}: {key} needs a list of candidates, not {candidates!r}")
        candidates = list(candidates)
        if not candidates:
            raise BenchError(f"search space of {method!r}: {key} has an empty candidate list")
        out[key] = [next(iter(check_options(method, declared, {key: c}, "search space").values()))
                    for c in candidates]
    return out
