"""Typed registries for methods and datasets: decorator, lazy built-ins, entry points, did-you-mean.

Built-ins are named here by module path only and imported on the first lookup; they keep their
heavy imports (torch models, the run context) inside functions or under TYPE_CHECKING, so a lookup,
a typo's did-you-mean and `guda-bench list` stay fast. Third-party packages register through the
entry-point groups ``guda_bench.methods`` and ``guda_bench.datasets``: the entry point names a module
(or an object inside it) whose import runs the decorators.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from guda_bench.errors import BenchError

T = TypeVar("T")

BUILTIN_METHOD_MODULES = (
    "guda_bench.methods.logo",
    "guda_bench.methods.guda",
    "guda_bench.methods.unlearn_refs",
    "guda_bench.methods.pixel",
    "guda_bench.methods.pixel_kde",
    "guda_bench.methods.prompt_text",
    "guda_bench.methods.random_ranking",
    "guda_bench.methods.clip",
    "guda_bench.methods.guda_esd",
    "guda_bench.methods.instance_unlearning",
    "guda_bench.methods.trak",
    "guda_bench.methods.das",
    "guda_bench.methods.guda_c",
)
BUILTIN_DATASET_MODULES = (
    "guda_bench.datasets.digits",
    "guda_bench.datasets.mnist5k",
    "guda_bench.datasets.folder",
    "guda_bench.datasets.cifar10",
    "guda_bench.datasets.styled_digits",
    "guda_bench.datasets.style_canvas",
    "guda_bench.datasets.unlearncanvas",
)


def did_you_mean(name: str, known: list[str]) -> str:
    """'; did you mean 'x'?' for close matches, else ''."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


@dataclass
class Entry(Generic[T]):
    """One registered name: the class, the variant's fixed options, a one-line description."""

    name: str
    cls: type[T]
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "builtin"
    search_space: dict[str, Any] | None = None  # the variant's own space (None: the class's SEARCH_SPACE)

    @property
    def declared_options(self) -> dict[str, Any] | None:
        return getattr(self.cls, "OPTIONS", None)

    def check_options(self, values: dict[str, Any], origin: str = "--option") -> dict[str, Any]:
        """`values` converted to the declared types and checked (one-line BenchError otherwise)."""
        from guda_bench.options import check_options

        return check_options(self.name, self.declared_options, values, origin)

    def space(self) -> dict[str, list]:
        """The checked search space ({} when there is nothing to tune)."""
        from guda_bench.options import check_space

        space = self.search_space if self.search_space is not None else getattr(self.cls, "SEARCH_SPACE", {})
        return check_space(self.name, self.declared_options, space or {})

    def create(self, overrides: dict[str, Any] | None = None) -> T:
        """Instantiate with the variant's options, then the user's overrides (`--option NAME.KEY=VALUE`),
        converted and checked against the declared options."""
        values = self.check_options({**self.options, **(overrides or {})})
        try:
            obj = self.cls(**values)
        except (TypeError, ValueError) as exc:
            raise BenchError(f"bad options for {self.name!r}: {exc}") from None
        obj.name = self.name  # type: ignore[attr-defined]
        return obj


class Registry(Generic[T]):
    """Names to classes; loads built-in modules and entry points once, on first lookup."""

    def __init__(self, kind: str, builtin_modules: tuple[str, ...], group: str) -> None:
        self.kind = kind
        self.builtin_modules = builtin_modules
        self.group = group
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False
        self._loading_source = "builtin"
        self.load_errors: dict[str, str] = {}

    def register(self, name: str, *, description: str = "", search_space: dict[str, Any] | None = None,
                 **options: Any) -> Callable[[type[T]], type[T]]:
        """Class decorator; stack it to register several variants of one class."""

        def deco(cls: type[T]) -> type[T]:
            if name in self._entries and self._entries[name].cls is not cls:
                raise BenchError(f"{self.kind} {name!r} is registered twice")
            doc = (cls.__doc__ or "").strip().splitlines()
            self._entries[name] = Entry(name, cls, dict(options), description or (doc[0] if doc else ""),
                                        self._loading_source, search_space)
            return cls

        return deco

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for mod in self.builtin_modules:
            importlib.import_module(mod)
        for ep in entry_points(group=self.group):
            self._loading_source = ep.dist.name if ep.dist else ep.value
            try:
                ep.load()
            except Exception as exc:  # a broken plugin must not break the suite
                self.load_errors[ep.name] = f"{type(exc).__name__}: {exc}"
            finally:
                self._loading_source = "builtin"

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entry(self, name: str) -> Entry[T]:
        self._load()
        if name not in self._entries:
            hint = did_you_mean(name, list(self._entries))
            raise BenchError(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._entries))})")
        return self._entries[name]

    def create(self, name: str) -> T:
        return self.entry(name).create()

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]


METHODS: Registry[Any] = Registry("method", BUILTIN_METHOD_MODULES, "guda_bench.methods")
DATASETS: Registry[Any] = Registry("dataset", BUILTIN_DATASET_MODULES, "guda_bench.datasets")


def register_method(name: str, *, description: str = "", search_space: dict[str, Any] | None = None,
                    **options: Any) -> Callable[[type[T]], type[T]]:
    """Register an attribution method (a `guda_bench.Method` subclass) under `name`; `options` fix the variant's
    settings, `search_space` (optional) replaces the class's SEARCH_SPACE for this variant."""
    return METHODS.register(name, description=description, search_space=search_space, **options)


def register_dataset(name: str, *, description: str = "", **options: Any) -> Callable[[type[T]], type[T]]:
    """Register a dataset adapter (a `guda_bench.datasets.base.DatasetAdapter` subclass)."""
    return DATASETS.register(name, description=description, **options)


def resolve_methods(spec: str) -> list[str]:
    """'all' or a comma list of names to a validated list of method names (in registry order for 'all')."""
    if spec.strip() == "all":
        return METHODS.names()
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise BenchError("--method needs 'all' or a comma-separated list of method names")
    for n in names:
        METHODS.entry(n)
    return list(dict.fromkeys(names))
