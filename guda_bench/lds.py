"""Group LDS: the literature's other ground truth (linear datamodeling score at the group level; SPEC §10).

M random subsets of the groups (each kept with probability alpha; seeded), or with few groups every
non-empty subset once (`--lds-subsets all`: the alpha = 0.5 design's whole population, no repeated draws),
each get a model trained on the kept groups only, with LOGO's initial weights and coupled random stream;
every query's ELBO loss is measured under each subset model with the truth's estimator and grid. A
method's additive prediction for a subset is the sum of its scores over the kept groups; its group LDS on
a query is the Spearman correlation over the M subsets between that prediction and minus the measured loss.

The subset models and the measured losses are cache entries (`model`, `terms`, and `lds` for the loss
matrix with its cost), fanned out over the executor and carried in ground-truth bundles. A second set
of subset models trained from an independent seed on the same subsets, scored as if it were a method
(its own measured -loss as the prediction), is the LDS noise ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from guda_bench.config import added_knob
from guda_bench.errors import BenchError

MAX_EXHAUSTIVE_GROUPS = 10  # every non-empty subset of 10 groups is 1,023 models: past that, draw


@dataclass(frozen=True)
class LdsConfig:
    """The LDS truth's design: number of subset models, keep probability, subset-draw seed; or `exhaustive`,
    every non-empty subset once (subsets, alpha and seed then unused). With 4 groups, 16 random draws repeat
    subsets (seed 10 draws 12 distinct of the 15) and weight the repeats double in the Spearman; the 15
    subsets themselves are the alpha = 0.5 design's population, each once."""

    subsets: int = 32
    alpha: float = 0.5
    seed: int = 0
    exhaustive: bool = added_knob(False)  # a knob added after LDS truths were published: keys unchanged at False

    def check(self, n_groups: int | None = None) -> None:
        """One-line errors for a design that cannot give an LDS (before anything is trained)."""
        if self.exhaustive:
            if n_groups is not None and n_groups < 2:
                raise BenchError("--lds-subsets all needs at least 2 groups (one group has one non-empty subset)")
            if n_groups is not None and n_groups > MAX_EXHAUSTIVE_GROUPS:
                raise BenchError(f"--lds-subsets all trains every non-empty subset of the groups: "
                                 f"{2 ** n_groups - 1:,} models for {n_groups} groups; give a number of random "
                                 f"subsets instead (all is for at most {MAX_EXHAUSTIVE_GROUPS} groups)")
            return
        if not 0.0 < self.alpha < 1.0:
            raise BenchError(f"--lds-alpha must be in (0, 1) (the probability of keeping a group), not {self.alpha}")
        if self.subsets < 2:
            raise BenchError(f"--lds-subsets must be >= 2 (a Spearman correlation over subsets), not {self.subsets}")


def _draw(n_groups: int, subsets: int, alpha: float, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, 0x1D5]).random((subsets, n_groups)) < alpha


def all_subsets(n_groups: int) -> np.ndarray:
    """[2^K - 1, K] boolean: every non-empty subset of K groups, row m keeping the groups of the bits of m + 1."""
    codes = np.arange(1, 2 ** n_groups)[:, None]
    return (codes >> np.arange(n_groups)[None, :]) & 1 == 1


def draw_subsets(n_groups: int, cfg: LdsConfig) -> np.ndarray:
    """[M, K] boolean: which groups each subset keeps (seeded, or all of them for `exhaustive`). A subset
    that keeps no group is an error that names the next seed whose draw has none: with few groups (a
    4-target board: 1 in 16 subsets is empty at alpha 0.5) a user should not have to search for one."""
    cfg.check(n_groups)
    if cfg.exhaustive:
        return all_subsets(n_groups)
    kept = _draw(n_groups, cfg.subsets, cfg.alpha, cfg.seed)
    empty = np.flatnonzero(~kept.any(1))
    if empty.size:
        p_empty = (1 - cfg.alpha) ** n_groups
        usable = next((s for s in range(cfg.seed + 1, cfg.seed + 1001)
                       if _draw(n_groups, cfg.subsets, cfg.alpha, s).any(1).all()), None)
        hint = (f"use --lds-seed {usable} (the next seed whose {cfg.subsets} subsets all keep a group)"
                if usable is not None else f"no seed among the next 1,000 gives {cfg.subsets} such subsets")
        raise BenchError(f"LDS subset {int(empty[0])} keeps no group (alpha {cfg.alpha}, {n_groups} groups, "
                         f"seed {cfg.seed}: each subset is empty with probability {p_empty:.3g}): raise "
                         f"--lds-alpha, or {hint}")
    return kept


def per_query_lds(scores: np.ndarray, kept: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """Group LDS of every query: Spearman over subsets of (sum of scores over kept groups, -loss).

    scores [Q, K], kept [M, K] bool, losses [Q, M]. Each query's scores are centred first: a method's
    scores are defined up to a per-query constant (the runner only ranks them), and with subsets of
    varying size an uncentred sum would also count the kept groups (random positive scores "predict"
    that bigger subsets fit better; negative distances the reverse). Fixed-size subsets, as in the
    literature, get this invariance for free. A query whose prediction (or measured loss) does not vary
    over the subsets has no rank order: its LDS is 0, not undefined.
    """
    centred = scores - scores.mean(1, keepdims=True)
    return spearman_rows(centred @ kept.T.astype(np.float64), -losses)


def ceiling_lds(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The LDS noise ceiling of every query: the second seed's measured -loss "predicting" the first's
    (losses [Q, M] of the same subsets, independent seeds)."""
    return spearman_rows(-second, -first)


def save_truth(out: Path, truth: LdsTruth, ceiling: LdsTruth | None = None) -> None:
    """The LDS truth beside a run's scores (scores/_lds_kept.npy, _lds_losses.npy, _lds_ceiling_losses.npy), so
    that a board published from the run can recompute every row's per-query LDS (paired tests between rows)."""
    from guda_bench.store import atomic_write_bytes

    files = {"_lds_kept": truth.kept, "_lds_losses": truth.losses}
    if ceiling is not None:
        files["_lds_ceiling_losses"] = ceiling.losses
    for name, array in files.items():
        atomic_write_bytes(out / "scores" / f"{name}.npy", lambda path, a=array: np.save(open(path, "wb"), a))


def load_truth(run_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """(kept, losses, ceiling losses or None) saved by `save_truth`, or None for a run without them (a run
    without --truth lds, or one made before they were saved)."""
    folder = Path(run_dir) / "scores"
    if not (folder / "_lds_losses.npy").exists():
        return None
    ceiling = folder / "_lds_ceiling_losses.npy"
    return (np.load(folder / "_lds_kept.npy").astype(bool), np.load(folder / "_lds_losses.npy"),
            np.load(ceiling) if ceiling.exists() else None)


def size_share(kept: np.ndarray, losses: np.ndarray) -> float:
    """Mean over queries of Spearman(number of kept groups, -loss): how much of the measured loss the mere
    subset size explains (a truth diagnostic; no centred prediction can use it)."""
    return float(spearman_rows(np.broadcast_to(kept.sum(1), losses.shape).astype(float), -losses).mean())


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of x with the same row of y (0 where a row is constant)."""
    from scipy.stats import rankdata

    a = rankdata(x, axis=1)
    b = rankdata(y, axis=1)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    denom = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    out = np.zeros(len(x))
    ok = denom > 0
    out[ok] = (a * b).sum(1)[ok] / denom[ok]
    return out


@dataclass
class LdsTruth:
    """The measured datamodel: subsets [M, K] and each query's ELBO loss under each subset model [Q, M]."""

    kept: np.ndarray
    losses: np.ndarray
    cost_s: float
    key: str

    def lds(self, scores: np.ndarray) -> np.ndarray:
        return per_query_lds(scores, self.kept, self.losses)


def _subset_model(seed: int, kept: tuple[tuple[int, ...], ...], ctx: Any, m: int) -> str:
    return ctx.subset_model(kept[m], seed).key


def lds_spec(ctx: Any, cfg: LdsConfig, study: int) -> dict:
    return {"queries": ctx.queries_artefact.key, "data": ctx.data_hash, "model": ctx.preset.model,
            "recipe": ctx.preset.recipe, "elbo": ctx.preset.elbo, "seed": ctx.study_seed(study),
            "lds": cfg}


def lds_truth(ctx: Any, cfg: LdsConfig, study: int = 0) -> LdsTruth:
    """The LDS truth of one set of subset models (study 0; study 1 = the ceiling's independent seed)."""
    from guda_bench.executor import prebuild

    kept = draw_subsets(ctx.bench.n_groups, cfg)
    groups = tuple(tuple(int(k) for k in np.flatnonzero(row)) for row in kept)
    seed = ctx.study_seed(study)  # the ceiling's second set trains from LOGO's second-study seed

    charged: dict[str, float] = {}

    def build(folder: Any) -> dict:
        with ctx.stage() as inner:
            prebuild(ctx, partial(_subset_model, seed, groups), range(len(groups)))
            losses = [ctx.terms(ctx.subset_model(g, seed), f"ELBO subset {m + 1}/{len(groups)} (seed {seed})").sum(1)
                      for m, g in enumerate(groups)]
        np.save(folder / "kept.npy", kept)
        np.save(folder / "losses.npy", np.stack(losses, axis=1))
        charged.update(inner)
        return {"cost_s": inner["cost_s"]}

    art = ctx.fetch("lds", lds_spec(ctx, cfg, study), build)
    ctx.charge_built(art, charged)  # subset models read from the cache (or built by tasks): charge them too
    return LdsTruth(np.load(art.path / "kept.npy"), np.load(art.path / "losses.npy"), art.cost_s, art.key)
