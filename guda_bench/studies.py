"""How firm a ground truth is: Top-1 agreement between disjoint sets of LOGO studies, measured and modelled.

A board's noise ceiling is the Top-1 of the mean of k further LOGO studies against the truth's k (SPEC §2).
With S studies in the cache, every split into two disjoint sets of k <= S/2 studies measures that agreement.
To say how many studies a firmer ceiling would need, a simple noise model is fitted to the S studies and
simulated for larger k; it is checked against the measured agreement at every k it can be:

- each study's LOGOA row of a query, centred over groups (a per-query constant changes no ranking), is a true
  effect (the studies' mean) plus independent Gaussian noise of variance c^2 sigma_q^2 w_g: a per-query scale
  and a per-group weight estimated from the studies' spread, and one factor c calibrated so that the model
  reproduces the measured agreement of one study against one;
- the measured agreement at k = 2..S/2 is then the model's out-of-sample check, reported beside it. Without c
  the model was off by -0.012 to +0.08 at k = 2 on the published four-study boards (digits-specialists,
  style-canvas and its two-style queries; the Gaussian model misreads their noise, which is larger on a
  query's top group); with it, within 0.01 on those three and 0.025 low on mnist5k-specialists
  (benchmarks/truth_studies-*.json).

Where two studies disagree on a query's top group, `disagreements` asks whether the two groups share a class
(a near-tie between plausible owners, e.g. a class's specialist and its generalist) as often as chance would
have them (any other group in the second study's place): the second says the disagreement is retraining noise.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from guda_bench.metrics import top1


def measured_agreement(studies: np.ndarray, test: np.ndarray) -> dict[int, dict[str, float]]:
    """{k: mean/min/max Top-1 over every split into two disjoint sets of k studies} on the test queries.

    studies: [S, n_queries, n_groups] LOGOA matrices of S independent LOGO studies."""
    s_total = len(studies)
    out = {}
    for k in range(1, s_total // 2 + 1):
        values = []
        for a in combinations(range(s_total), k):
            for b in combinations([s for s in range(s_total) if s not in a], k):
                if a < b:  # each unordered pair of sets once
                    truth, other = studies[list(a)].mean(0)[test], studies[list(b)].mean(0)[test]
                    values.append(float(top1(other, truth).mean()))
        out[k] = {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values)),
                  "splits": len(values)}
    return out


def noise_model(studies: np.ndarray) -> dict[str, np.ndarray]:
    """The fitted model: `effect` [n_queries, n_groups], `sigma2` [n_queries], `weight` [n_groups]."""
    s_total, _, n_groups = studies.shape
    if s_total < 2:
        raise ValueError("the noise model needs at least two LOGO studies")
    centred = studies - studies.mean(axis=2, keepdims=True)
    mean = centred.mean(axis=0)
    resid2 = ((centred - mean) ** 2).sum(axis=0) / (s_total - 1)  # [q, g]: unbiased per-entry variance
    sigma2 = resid2.mean(axis=1) * n_groups / (n_groups - 1)  # centring over groups removes one dof
    weight = (resid2 / np.maximum(sigma2[:, None], 1e-30)).mean(axis=0)
    weight = weight / weight.mean() if weight.mean() > 0 else np.ones(n_groups)  # identical studies: no noise
    return {"effect": mean, "sigma2": sigma2, "weight": weight}


def modelled_agreement(model: dict[str, np.ndarray], test: np.ndarray, ks: list[int], reps: int = 20,
                       seed: int = 0) -> dict[int, float]:
    """{k: Top-1 of k simulated studies against k others} on the test queries, averaged over `reps` draws."""
    rng = np.random.default_rng(seed)
    effect = model["effect"][test]
    scale = np.sqrt(model["sigma2"][test][:, None] * model["weight"][None, :])
    out = {}
    for k in ks:
        values = [top1(effect + scale * rng.standard_normal(effect.shape) / np.sqrt(k),
                       effect + scale * rng.standard_normal(effect.shape) / np.sqrt(k)).mean() for _ in range(reps)]
        out[k] = float(np.mean(values))
    return out


def calibrated(model: dict[str, np.ndarray], test: np.ndarray, one_vs_one: float) -> tuple[dict, float]:
    """The model with its noise scaled by the factor c (bisection) at which it reproduces `one_vs_one`, the
    measured Top-1 of one study against one; returns (model, c)."""
    low, high = 0.05, 20.0
    for _ in range(30):
        c = float(np.sqrt(low * high))
        value = modelled_agreement({**model, "sigma2": model["sigma2"] * c * c}, test, [1], reps=10)[1]
        low, high = (c, high) if value > one_vs_one else (low, c)
    return {**model, "sigma2": model["sigma2"] * c * c}, c


def firmness(studies: np.ndarray, test: np.ndarray, max_k: int = 8, target: float = 0.75) -> dict[str, Any]:
    """Measured and modelled agreement, the calibrated model's error where both exist (k >= 2; k = 1 is what it
    was calibrated on), and the smallest k (studies per side) whose agreement, measured where it was, modelled
    beyond, reaches `target` (None if no k <= max_k does)."""
    measured = measured_agreement(studies, test)
    model, scale = calibrated(noise_model(studies), test, measured[1]["mean"])
    modelled = modelled_agreement(model, test, list(range(1, max_k + 1)))
    best = {k: measured[k]["mean"] if k in measured else v for k, v in modelled.items()}  # measured where it can be
    reach = next((k for k, v in best.items() if v >= target), None)
    return {"studies": len(studies), "n_test": int(len(test)), "n_groups": int(studies.shape[2]),
            "measured": measured, "modelled": modelled, "noise_scale": scale,
            "model_error": {k: modelled[k] - m["mean"] for k, m in measured.items() if k > 1},
            "target": target, "studies_per_side_for_target": reach}


def disagreements(studies: np.ndarray, test: np.ndarray, classes: list[set]) -> dict[str, Any]:
    """Over every pair of studies and the test queries where their top groups differ: how many, the share whose
    two top groups share a class (`classes[g]`: group g's classes), and that share by chance (the first study's
    top group against every other group in turn, both directions averaged)."""
    n_groups = studies.shape[2]
    share = np.array([[bool(classes[a] & classes[b]) for b in range(n_groups)] for a in range(n_groups)])
    by_chance = (share.sum(1) - share.diagonal()) / (n_groups - 1)
    count, shared, chance = 0, 0.0, 0.0
    for i, j in combinations(range(len(studies)), 2):
        top_i, top_j = studies[i][test].argmax(1), studies[j][test].argmax(1)
        differ = top_i != top_j
        count += int(differ.sum())
        shared += float(share[top_i[differ], top_j[differ]].sum())
        chance += float((by_chance[top_i[differ]] + by_chance[top_j[differ]]).sum() / 2)
    return {"count": count, "sharing_a_class": shared / count if count else None,
            "by_chance": chance / count if count else None}
