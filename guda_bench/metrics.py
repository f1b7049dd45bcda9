"""Ranking metrics comparing a method's responsibility scores against gold scores.

Both inputs are float arrays of shape [n_queries, n_groups]; higher means "more responsible".
All metrics are computed per query (row) so that they can be averaged and bootstrapped over queries.
Ties are broken deterministically by group index (lower index ranks first) so results never depend
on sort-algorithm details.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

__all__ = [
    "bootstrap_ci",
    "mrr",
    "ndcg_at_k",
    "per_query_metrics",
    "ranking",
    "rbo",
    "spearman",
    "summarize",
    "top1",
    "topk_overlap",
]


def _validate(s: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes/values once up front so every metric can assume clean [n, K] float input."""
    s = np.asarray(s, dtype=float)
    g = np.asarray(g, dtype=float)
    if s.ndim != 2 or g.ndim != 2:
        raise ValueError(f"scores must be 2-D [n_queries, n_groups]; got s.ndim={s.ndim}, g.ndim={g.ndim}")
    if s.shape != g.shape:
        raise ValueError(f"s and g must have the same shape; got {s.shape} vs {g.shape}")
    if s.shape[0] < 1:
        raise ValueError("need at least 1 query (row)")
    if s.shape[1] < 2:
        raise ValueError(f"need at least 2 groups (columns) to rank; got {s.shape[1]}")
    if not (np.isfinite(s).all() and np.isfinite(g).all()):
        raise ValueError("scores must be finite (no NaN or inf)")
    return s, g


def _check_k(k: int, n_groups: int) -> None:
    """A cutoff outside [1, K] would silently change the metric's meaning, so reject it."""
    if not 1 <= k <= n_groups:
        raise ValueError(f"k must be in [1, n_groups={n_groups}]; got {k}")


def ranking(scores: np.ndarray) -> np.ndarray:
    """Per row, group indices ordered best-first; stable sort of -scores breaks ties by lower index."""
    scores = np.asarray(scores, dtype=float)
    return np.argsort(-scores, axis=-1, kind="stable")


def _positions(order: np.ndarray) -> np.ndarray:
    """Invert a ranking: 0-based position of each group (rank - 1), needed for rank lookups."""
    pos = np.empty_like(order)
    rows = np.arange(order.shape[0])[:, None]
    pos[rows, order] = np.arange(order.shape[1])[None, :]
    return pos


def top1(s: np.ndarray, g: np.ndarray) -> np.ndarray:
    """1.0 where the method's top group is the gold top group: the strictest 'did it find it' test."""
    s, g = _validate(s, g)
    return (ranking(s)[:, 0] == ranking(g)[:, 0]).astype(float)


def mrr(s: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Reciprocal rank (1-based, in s's ranking) of the gold top group: partial credit for near misses."""
    s, g = _validate(s, g)
    gold_top = ranking(g)[:, 0]
    pos_s = _positions(ranking(s))
    rank = pos_s[np.arange(s.shape[0]), gold_top] + 1
    return 1.0 / rank


def topk_overlap(s: np.ndarray, g: np.ndarray, k: int = 3) -> np.ndarray:
    """|topk(s) ∩ topk(g)| / k: set agreement on the head of the ranking, ignoring order within it."""
    s, g = _validate(s, g)
    _check_k(k, s.shape[1])
    in_s = _positions(ranking(s)) < k
    in_g = _positions(ranking(g)) < k
    return (in_s & in_g).sum(axis=1) / k


NDCG_GAINS = ("exp", "linear")  # CIFAR-10 reference (2^rel - 1), UnlearnCanvas reference (rel = K..1)


def ndcg_at_k(s: np.ndarray, g: np.ndarray, k: int = 3, gain: str = "exp") -> np.ndarray:
    """NDCG@k with relevance derived from gold ranks (not raw gold values), so scale of g is irrelevant.

    gain="exp":    rel_i = K - rank_g(i) (best K-1, worst 0), gain = 2^rel - 1.
    gain="linear": rel_i = K - rank_g(i) + 1 (best K, worst 1), gain = rel.
    DCG@k = sum_{p=1..k} gain(item at p) / log2(p + 1) in s's order; NDCG = DCG_s / DCG_ideal (0 if ideal 0).
    """
    s, g = _validate(s, g)
    n, n_groups = s.shape
    _check_k(k, n_groups)
    rank_g = _positions(ranking(g)) + 1  # 1-based gold ranks
    if gain == "exp":
        gains = 2.0 ** (n_groups - rank_g) - 1.0
    elif gain == "linear":
        gains = (n_groups - rank_g + 1).astype(float)
    else:
        raise ValueError(f"gain must be 'exp' or 'linear'; got {gain!r}")
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    rows = np.arange(n)[:, None]
    dcg = (gains[rows, ranking(s)[:, :k]] * discounts).sum(axis=1)
    ideal = (gains[rows, ranking(g)[:, :k]] * discounts).sum(axis=1)
    out = np.zeros(n)
    np.divide(dcg, ideal, out=out, where=ideal > 0)
    return out


def rbo(s: np.ndarray, g: np.ndarray, p: float = 0.9) -> np.ndarray:
    """Rank-biased overlap, truncated at depth K = n_groups, without extrapolation.

    RBO = (1 - p) * sum_{d=1..K} p^(d-1) * |top_d(s) ∩ top_d(g)| / d. It weights agreement near the top
    most heavily. Because of truncation the maximum (identical rankings) is 1 - p^K, not 1
    (e.g. 0.651 for p=0.9, K=10; 0.271 for K=3).
    """
    s, g = _validate(s, g)
    if not 0.0 < p < 1.0:
        raise ValueError(f"rbo p must be in (0, 1); got {p}")
    n_groups = s.shape[1]
    # Item i is in both top-d sets iff max(pos_s(i), pos_g(i)) < d (0-based positions).
    both = np.maximum(_positions(ranking(s)), _positions(ranking(g)))
    depths = np.arange(1, n_groups + 1)
    overlap = (both[:, :, None] < depths[None, None, :]).sum(axis=1)  # [n, K]
    weights = p ** (depths - 1) / depths
    return (1.0 - p) * (overlap * weights).sum(axis=1)


def spearman(s: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Per-query Spearman rho via scipy.stats.spearmanr (average ranks for ties).

    A constant row (in s or g) makes rho undefined (scipy returns nan); we score it 0.0 ("no
    correlation") so a degenerate query cannot poison the mean.
    """
    s, g = _validate(s, g)
    out = np.empty(s.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(s.shape[0]):
            rho = stats.spearmanr(s[i], g[i])[0]
            out[i] = 0.0 if not np.isfinite(rho) else float(rho)
    return out


def per_query_metrics(
    s: np.ndarray, g: np.ndarray, *, k: int = 3, rbo_p: float = 0.9, ndcg_gain: str = "exp"
) -> dict[str, np.ndarray]:
    """All metrics per query, keyed 'top1', 'mrr', f'top{k}', f'ndcg@{k}', 'rbo', 'spearman'."""
    s, g = _validate(s, g)
    _check_k(k, s.shape[1])
    return {
        "top1": top1(s, g),
        "mrr": mrr(s, g),
        f"top{k}": topk_overlap(s, g, k),
        f"ndcg@{k}": ndcg_at_k(s, g, k, gain=ndcg_gain),
        "rbo": rbo(s, g, rbo_p),
        "spearman": spearman(s, g),
    }


def _check_values(values: np.ndarray) -> np.ndarray:
    """Bootstrap needs a non-empty finite 1-D vector of per-query values."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array; got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite (no NaN or inf)")
    return values


def _check_level(level: float) -> None:
    """A confidence level outside (0, 1) has no percentile interpretation."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level}")


def _resample_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Query-index resamples [n_boot, n]; shared across metrics so their CIs are paired/comparable."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _percentile_ci(values: np.ndarray, idx: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of the resampled means (vectorised over all resamples at once)."""
    means = values[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def summarize_values(values: np.ndarray, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Mean, bootstrap CI and standard error of a per-query value (e.g. group LDS), with the resamples
    `summarize` draws for the same n, n_boot and seed."""
    values = _check_values(values)
    return _stats(values, _resample_indices(values.size, n_boot, seed), level)


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean over queries; deterministic for a given seed."""
    values = _check_values(values)
    _check_level(level)
    return _percentile_ci(values, _resample_indices(values.size, n_boot, seed), level)


def summarize(
    s: np.ndarray,
    g: np.ndarray,
    *,
    k: int = 3,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    **kw: object,
) -> dict[str, dict[str, float]]:
    """Mean, bootstrap CI and standard error per metric; kw goes to per_query_metrics (rbo_p, ndcg_gain).

    The same resample indices are used for every metric so intervals reflect the same query draws.
    """
    _check_level(level)
    per_q = per_query_metrics(s, g, k=k, **kw)  # type: ignore[arg-type]
    n = next(iter(per_q.values())).size
    idx = _resample_indices(n, n_boot, seed)
    out: dict[str, dict[str, float]] = {}
    for name, vals in per_q.items():
        out[name] = _stats(vals, idx, level)
    return out


def _stats(values: np.ndarray, idx: np.ndarray, level: float) -> dict[str, float]:
    """Mean, percentile-bootstrap CI over the resamples `idx`, and standard error of per-query values."""
    lo, hi = _percentile_ci(values, idx, level)
    stderr = float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size >= 2 else 0.0
    return {"mean": float(values.mean()), "ci_low": lo, "ci_high": hi, "stderr": stderr}
