"""Groupings: who the groups are. Applied by the core to any adapter's class-grouped benchmark.

`class` (the adapter's own labels) is the default. The others exist because on visually distinct
classes, pixel similarity agrees with the LOGO truth about as well as the truth agrees with itself;
each of these makes "looks like" and "was caused by" come apart in a different way (SPEC §2, §7):

- ``owners``: N data owners holding Dirichlet(alpha)-weighted mixes of classes. Each class's images
  are dealt to owners with probability proportional to size_o * mix_o[class].
- ``owners-sized``: the same deal with owners of very different sizes (a geometric spread of
  ``size_spread`` between the smallest and the largest) and similar mixes (large alpha): influence
  should grow with how much of a mode an owner holds; mean similarity does not see size.
- ``redundant``: the first ``pairs`` groups of the base grouping (``base=class``, or ``base=owners``
  with ``n``, ``alpha``) get a twin group holding copies of the same images. Removing one copy should
  matter little; similarity sees both as equally close.
- ``specialists``: each class split between a small *specialist* owner holding only that class (a
  ``share`` of its images) and a *generalist* owner holding the rest of it together with the bulk of
  ``per_generalist - 1`` other classes. Mean similarity favours the pure specialist; removing the
  generalist removes most of the mode, so influence should favour it (the big catalogue vs the niche).
  With ``pick=typical`` the specialist holds the class's most typical images (nearest the class's pixel
  mean) instead of a random share: the stock library of canonical examples. A nearest-neighbour search is then
  expected to land in the specialist (typical images are near everything), while the generalist still holds
  most of the class.
- ``planted``: ``n_planted`` training images, each copied ``copies`` times with small Gaussian
  perturbations into a group of another class; the queries are generated near those images (SDEdit
  from the source image at ``query_t``), so the copies, not the look-alike class, may cause them.

A grouping is written ``NAME`` or ``NAME:key=value,key=value`` (e.g. ``owners:alpha=0.3,n=6``). Its
canonical label (``owners-alpha0.3-n6``: non-default parameters only) names cache entries, result rows
and leaderboard files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from guda_bench.benchmark import BACKGROUND, Benchmark
from guda_bench.errors import BenchError
from guda_bench.registry import did_you_mean

DEFAULTS: dict[str, dict[str, Any]] = {
    "class": {},
    "owners": {"n": 10, "alpha": 1.0, "seed": 0},
    "owners-sized": {"n": 10, "alpha": 10.0, "size_spread": 20.0, "seed": 0},
    "redundant": {"base": "class", "pairs": 3, "n": 10, "alpha": 1.0, "seed": 0},
    "specialists": {"share": 0.25, "per_generalist": 2, "pick": "random", "seed": 0},
    "planted": {"n_planted": 10, "copies": 15, "sigma": 0.05, "query_t": 300, "seed": 0},
}
HOLD_OUT_SEED = 20261207  # the background share's draw: fixed, so every run seed shares the same held-out images
DESCRIPTIONS = {
    "class": "the adapter's class labels",
    "owners": "N owners with Dirichlet(alpha) mixes of classes",
    "owners-sized": "owners of very different sizes with similar mixes",
    "redundant": "classes (or owners), some duplicated by a twin group holding copies of the same images",
    "specialists": "per class: a small pure specialist owner and a generalist owning most of several classes",
    "planted": "perturbed copies of a few images planted into another class's group; queries near them",
}


@dataclass(frozen=True)
class GroupingSpec:
    name: str
    params: dict[str, Any]

    def _changed(self) -> list[tuple[str, Any]]:
        """The parameters that differ from the grouping's defaults, sorted by key: what names a grouping."""
        return [(k, v) for k, v in sorted(self.params.items()) if DEFAULTS[self.name][k] != v]

    @property
    def label(self) -> str:
        """File-name-safe canonical label: the name plus every non-default parameter, sorted."""
        return self.name + "".join(f"-{k.replace('_', '')}{_fmt(v)}" for k, v in self._changed())

    @property
    def flag(self) -> str:
        """The ``--grouping`` text that gives this spec: the name plus every non-default parameter, sorted."""
        changed = [f"{k}={_fmt(v)}" for k, v in self._changed()]
        return self.name + (":" + ",".join(changed) if changed else "")


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_grouping(text: str) -> GroupingSpec:
    """``NAME[:key=value,...]`` -> GroupingSpec with every parameter filled in and type-checked."""
    name, _, rest = text.strip().partition(":")
    if name not in DEFAULTS:
        raise BenchError(f"unknown grouping {name!r}{did_you_mean(name, list(DEFAULTS))} "
                         f"(known: {', '.join(DEFAULTS)})")
    params = dict(DEFAULTS[name])
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq and key in params:
            raise BenchError(f"grouping {name!r}: parameter {key!r} needs a value ({key}=...)")
        if not eq or key not in params:
            known = ", ".join(params) or "none"
            raise BenchError(f"grouping {name!r}: bad parameter {item!r} (parameters: {known})")
        kind = type(DEFAULTS[name][key])
        try:
            params[key] = kind(value)
        except ValueError:
            raise BenchError(f"grouping {name!r}: {key}={value!r} is not a {kind.__name__}") from None
    _check(name, params)
    return GroupingSpec(name, params)


def recorded_grouping(params: dict[str, Any]) -> GroupingSpec:
    """The GroupingSpec of a results.json ``grouping_params`` block. Parameters added after the run was recorded
    take their defaults, which reproduce what that run did (e.g. ``pick=random`` for older specialists runs)."""
    params = dict(params)
    name = params.pop("name")
    if name not in DEFAULTS:
        raise BenchError(f"recorded grouping {name!r} is unknown to this guda-bench (known: {', '.join(DEFAULTS)})")
    return GroupingSpec(name, {**DEFAULTS[name], **params})


def _check(name: str, p: dict[str, Any]) -> None:
    rules = [("n", lambda v: v >= 2, "must be >= 2"), ("alpha", lambda v: v > 0, "must be > 0"),
             ("size_spread", lambda v: v >= 1, "must be >= 1"), ("pairs", lambda v: v >= 1, "must be >= 1"),
             ("n_planted", lambda v: v >= 1, "must be >= 1"), ("copies", lambda v: v >= 1, "must be >= 1"),
             ("sigma", lambda v: v >= 0, "must be >= 0"),
             ("share", lambda v: 0 < v < 1, "must be in (0, 1)"),
             ("per_generalist", lambda v: v >= 1, "must be >= 1"),
             ("query_t", lambda v: 0 < v < 1000, "must be in 1..999")]
    for key, ok, why in rules:
        if key in p and not ok(p[key]):
            raise BenchError(f"grouping {name!r}: {key}={p[key]} {why}")
    if name == "specialists" and p["pick"] not in ("random", "typical"):
        raise BenchError(f"grouping 'specialists': pick={p['pick']!r} must be 'random' or 'typical'")
    if name == "redundant" and p["base"] not in ("class", "owners"):
        raise BenchError(f"grouping 'redundant': base={p['base']!r} must be 'class' or 'owners'")
    if name == "redundant" and p["base"] == "owners" and p["n"] - p["pairs"] < max(p["pairs"], 2):
        raise BenchError(f"grouping 'redundant': n={p['n']} leaves too few owners for pairs={p['pairs']}")


def apply_grouping(bench: Benchmark, spec: GroupingSpec) -> Benchmark:
    """The benchmark regrouped (and, for redundant/planted, with its added copies), after the preset's
    background share is held out (`hold_out_background`): only the other images are dealt to groups."""
    if bench.grouping != "class":
        raise ValueError("groupings apply to an adapter's class-grouped benchmark")
    bench = hold_out_background(bench)
    if spec.name == "class":
        return bench
    if spec.name in _ADDS_IMAGES and bench.text is not None:
        raise BenchError(f"grouping {spec.name!r} adds images and is not supported on text-to-image benchmarks "
                         "(use class, owners, owners-sized or specialists)")
    if spec.name in _ADDS_IMAGES and bench.n_background:
        raise BenchError(f"grouping {spec.name!r} adds images and is not supported with background images "
                         f"(preset {bench.preset.name!r}); use class, owners, owners-sized or specialists")
    candidates = np.flatnonzero(bench.group_of != BACKGROUND)
    if len(candidates) == len(bench.group_of):
        out = _BUILDERS[spec.name](bench, spec.params)
    else:  # deal the candidate images only; the background keeps its id and the full model stays shared
        part = _BUILDERS[spec.name](replace(bench, images=bench.images[candidates],
                                            labels=bench.labels[candidates],
                                            group_of=bench.group_of[candidates]), spec.params)
        group_of = np.full(len(bench.group_of), BACKGROUND, dtype=np.int64)
        group_of[candidates] = part.group_of
        out = replace(part, images=bench.images, labels=bench.labels, group_of=group_of,
                      base_hash=bench.full_model_hash())
    return replace(out, grouping=spec.label, grouping_params={"name": spec.name, **spec.params})


def hold_out_background(bench: Benchmark) -> Benchmark:
    """The preset's `background_share` of each class's images (a seeded draw, rounded) made background."""
    share = bench.preset.background_share
    if not share:
        return bench
    if not 0 < share < 1:
        raise BenchError(f"preset {bench.preset.name!r}: background_share={share} must lie in (0, 1)")
    rng = np.random.default_rng(HOLD_OUT_SEED)
    group_of = np.array(bench.group_of, dtype=np.int64)
    for c in np.unique(bench.labels):
        idx = rng.permutation(np.flatnonzero((bench.labels == c) & (group_of != BACKGROUND)))
        n_held = int(round(share * len(idx)))
        if not 0 < n_held < len(idx):
            raise BenchError(f"preset {bench.preset.name!r}: background_share={share} leaves class {c} "
                             f"({len(idx)} images) with no background or no candidate image")
        group_of[idx[:n_held]] = BACKGROUND
    return replace(bench, group_of=group_of)


# ---- builders ----------------------------------------------------------------------------------------
def _deal(labels: np.ndarray, mixes: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Owner of each image: within each class, drawn with probability proportional to size * mix."""
    owner = np.empty(len(labels), dtype=np.int64)
    for c_index, c in enumerate(np.unique(labels)):
        idx = np.flatnonzero(labels == c)
        w = sizes * mixes[:, c_index]
        owner[idx] = rng.choice(len(sizes), size=len(idx), p=w / w.sum())
    return owner


def _owners(bench: Benchmark, n: int, alpha: float, size_spread: float, seed: int) -> np.ndarray:
    """Owner index per image; redraws (same seed stream) until every owner holds >= 2 images."""
    rng = np.random.default_rng(seed)
    n_classes = len(np.unique(bench.labels))
    sizes = size_spread ** (np.arange(n) / max(n - 1, 1))
    for _ in range(100):
        mixes = rng.dirichlet(np.full(n_classes, alpha), size=n)
        owner = _deal(bench.labels, mixes, sizes, rng)
        if np.bincount(owner, minlength=n).min() >= 2:
            return owner
    raise BenchError(f"could not give each of {n} owners two images (alpha={alpha}, size_spread={size_spread}); "
                     "use fewer owners or a larger alpha")


def _owner_names(n: int) -> list[str]:
    return [f"owner-{i:02d}" for i in range(n)]


def owners(bench: Benchmark, p: dict[str, Any]) -> Benchmark:
    owner = _owners(bench, p["n"], p["alpha"], 1.0, p["seed"])
    return replace(bench, group_of=owner, group_names=_owner_names(p["n"]), base_hash=bench.data_hash())


def owners_sized(bench: Benchmark, p: dict[str, Any]) -> Benchmark:
    owner = _owners(bench, p["n"], p["alpha"], p["size_spread"], p["seed"])
    return replace(bench, group_of=owner, group_names=_owner_names(p["n"]), base_hash=bench.data_hash())


def redundant(bench: Benchmark, p: dict[str, Any]) -> Benchmark:
    if p["base"] == "class":
        if p["pairs"] > bench.n_groups:
            raise BenchError(f"grouping 'redundant': pairs={p['pairs']} exceeds the {bench.n_groups} classes")
        n_base, owner, names = bench.n_groups, bench.group_of, list(bench.group_names)
    else:
        n_base = p["n"] - p["pairs"]
        owner = _owners(bench, n_base, p["alpha"], 1.0, p["seed"])
        names = _owner_names(n_base)
    images, labels, group_of = [bench.images], [bench.labels], [owner]
    for j in range(p["pairs"]):  # owner j gets a twin holding copies of the same images
        idx = np.flatnonzero(owner == j)
        images.append(bench.images[idx])
        labels.append(bench.labels[idx])
        group_of.append(np.full(len(idx), n_base + j))
        names.append(f"{names[j]}-copy")
    return replace(bench, images=torch.cat(images), labels=np.concatenate(labels),
                   group_of=np.concatenate(group_of), group_names=names)


def specialists(bench: Benchmark, p: dict[str, Any]) -> Benchmark:
    rng = np.random.default_rng(p["seed"])
    classes = np.unique(bench.labels)
    order = rng.permutation(len(classes))  # which classes share a generalist
    n_gen = -(-len(classes) // p["per_generalist"])
    owner = np.empty(len(bench.labels), dtype=np.int64)
    for rank, c_index in enumerate(order):
        idx = rng.permutation(np.flatnonzero(bench.labels == classes[c_index]))
        if p["pick"] == "typical":  # nearest the class's pixel mean first (stable: ties keep the draw's order)
            flat = bench.images[idx].reshape(len(idx), -1).double()
            distance = (flat - flat.mean(0)).norm(dim=1).numpy()
            idx = idx[np.argsort(distance, kind="stable")]
        n_spec = int(round(p["share"] * len(idx)))
        if not 1 <= n_spec < len(idx):
            raise BenchError(f"grouping 'specialists': share={p['share']} leaves class {classes[c_index]} "
                             f"({len(idx)} images) with an empty specialist or generalist part")
        owner[idx[:n_spec]] = n_gen + c_index
        owner[idx[n_spec:]] = rank // p["per_generalist"]
    names = [f"generalist-{g}" for g in range(n_gen)] + [f"specialist-{bench.group_names[c]}"
                                                          for c in range(len(classes))]
    return replace(bench, group_of=owner, group_names=names, base_hash=bench.data_hash())


def planted(bench: Benchmark, p: dict[str, Any]) -> Benchmark:
    rng = np.random.default_rng(p["seed"])
    if p["n_planted"] > len(bench.images):
        raise BenchError(f"grouping 'planted': n_planted={p['n_planted']} exceeds the {len(bench.images)} images")
    sources = np.sort(rng.choice(len(bench.images), size=p["n_planted"], replace=False))
    images, labels, group_of = [bench.images], [bench.labels], [bench.group_of]
    targets = []
    for i in sources:
        others = np.setdiff1d(np.arange(bench.n_groups), [bench.group_of[i]])
        target = int(rng.choice(others))
        targets.append(target)
        noise = torch.from_numpy(rng.standard_normal((p["copies"], *bench.images.shape[1:])).astype(np.float32))
        images.append((bench.images[i][None] + p["sigma"] * noise).clamp(-1, 1))
        labels.append(np.full(p["copies"], bench.labels[i]))
        group_of.append(np.full(p["copies"], target))
    return replace(bench, images=torch.cat(images), labels=np.concatenate(labels),
                   group_of=np.concatenate(group_of), query_anchors=bench.images[sources].clone(),
                   query_t=p["query_t"],
                   planted={"sources": sources.tolist(), "source_groups": bench.group_of[sources].tolist(),
                            "target_groups": targets})


_ADDS_IMAGES = frozenset({"redundant", "planted"})
_BUILDERS: dict[str, Callable[[Benchmark, dict[str, Any]], Benchmark]] = {
    "owners": owners, "owners-sized": owners_sized, "redundant": redundant,
    "specialists": specialists, "planted": planted,
}
