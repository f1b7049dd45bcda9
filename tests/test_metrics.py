"""Hand-computed checks for guda_bench.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from guda_bench.metrics import (
    bootstrap_ci,
    ndcg_at_k,
    per_query_metrics,
    ranking,
    rbo,
    summarize,
)

L3 = math.log2(3)


def test_ranking_descending_and_tie_break():
    s = np.array([[0.1, 0.9, 0.5, 0.9], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(ranking(s), [[1, 3, 2, 0], [0, 1, 2, 3]])


@pytest.mark.parametrize("n_groups", [3, 4, 10])
def test_identity(n_groups):
    rng = np.random.default_rng(1)
    g = rng.normal(size=(5, n_groups))
    m = per_query_metrics(g.copy(), g)
    for key in ["top1", "mrr", "top3", "ndcg@3", "spearman"]:
        np.testing.assert_allclose(m[key], 1.0)
    np.testing.assert_allclose(m["rbo"], 1 - 0.9**n_groups)
    assert set(m) == {"top1", "mrr", "top3", "ndcg@3", "rbo", "spearman"}


def test_rbo_max_at_k10():
    g = np.arange(10, dtype=float)[None, :]
    assert rbo(g, g)[0] == pytest.approx(0.6513215599)


def test_reversal_k4():
    g = np.array([[4.0, 3.0, 2.0, 1.0]])
    m = per_query_metrics(-g, g)
    assert m["top1"][0] == 0.0
    assert m["mrr"][0] == pytest.approx(1 / 4)
    assert m["spearman"][0] == pytest.approx(-1.0)
    # top-3 of s = {3,2,1}, of g = {0,1,2}: overlap {1,2} -> 2/3
    assert m["top3"][0] == pytest.approx(2 / 3)
    # gold ranks 1..4 -> rel 3,2,1,0 -> gains 7,3,1,0.
    # s order 3,2,1: DCG = 0/1 + 1/log2(3) + 3/2 = 2.130930
    # ideal order 0,1,2: 7/1 + 3/log2(3) + 1/2 = 9.392789
    expected = (0 + 1 / L3 + 3 / 2) / (7 + 3 / L3 + 1 / 2)
    assert m["ndcg@3"][0] == pytest.approx(expected)
    assert m["ndcg@3"][0] == pytest.approx(0.226869, abs=1e-6)


def test_ties_broken_by_group_index():
    s = np.zeros((2, 4))  # ranking 0,1,2,3
    g = np.array([[9.0, 1.0, 2.0, 3.0], [1.0, 2.0, 9.0, 3.0]])
    m = per_query_metrics(s, g)
    np.testing.assert_array_equal(m["top1"], [1.0, 0.0])
    # second row: gold top is group 2, at position 3 in s's ranking
    np.testing.assert_allclose(m["mrr"], [1.0, 1 / 3])
    # constant s row -> spearman nan in scipy -> 0.0
    np.testing.assert_array_equal(m["spearman"], [0.0, 0.0])


def test_ties_in_gold():
    g = np.array([[1.0, 1.0, 0.0]])  # gold top is group 0 (lower index)
    s = np.array([[0.0, 1.0, 0.5]])
    assert per_query_metrics(s, g)["top1"][0] == 0.0
    assert per_query_metrics(g.copy(), g)["top1"][0] == 1.0


def test_ndcg3_permutation_k4_exp():
    g = np.array([[4.0, 3.0, 2.0, 1.0]])  # gains 7,3,1,0
    s = np.array([[3.0, 4.0, 1.0, 2.0]])  # order 1,0,3,2
    # DCG = 3/1 + 7/log2(3) + 0/2 = 3 + 4.416508 = 7.416508
    # ideal = 7 + 3/log2(3) + 1/2 = 9.392789 -> NDCG = 0.789596
    val = ndcg_at_k(s, g, k=3)[0]
    assert val == pytest.approx((3 + 7 / L3) / (7 + 3 / L3 + 0.5))
    assert val == pytest.approx(0.789596, abs=1e-6)


def test_ndcg3_linear_gain():
    g = np.array([[4.0, 3.0, 2.0, 1.0]])  # rel 4,3,2,1
    s = np.array([[3.0, 4.0, 1.0, 2.0]])  # order 1,0,3
    # DCG = 3 + 4/log2(3) + 1/2 = 6.023719; ideal = 4 + 3/log2(3) + 2/2 = 6.892789 -> 0.873916
    val = per_query_metrics(s, g, ndcg_gain="linear")["ndcg@3"][0]
    assert val == pytest.approx((3 + 4 / L3 + 0.5) / (4 + 3 / L3 + 1))
    assert val == pytest.approx(0.873916, abs=1e-6)


def test_k_changes_keys():
    g = np.array([[4.0, 3.0, 2.0, 1.0]])
    s = np.array([[3.0, 4.0, 1.0, 2.0]])
    m = per_query_metrics(s, g, k=2)
    assert "top2" in m and "ndcg@2" in m
    assert m["top2"][0] == 1.0  # {1,0} == {0,1}


def test_rbo_k3_by_hand():
    g = np.array([[3.0, 2.0, 1.0]])  # ranking 0,1,2
    s = np.array([[1.0, 3.0, 2.0]])  # ranking 1,2,0
    # d=1: {1}&{0}=0 ; d=2: {1,2}&{0,1}=1 -> 1/2 ; d=3: 3/3 = 1
    # RBO = 0.1 * (0 + 0.9*0.5 + 0.81*1) = 0.126
    assert rbo(s, g)[0] == pytest.approx(0.126)
    assert per_query_metrics(s, g)["rbo"][0] == pytest.approx(0.126)


def test_bootstrap_ci_properties():
    vals = np.random.default_rng(3).uniform(size=50)
    lo, hi = bootstrap_ci(vals, seed=7)
    assert lo <= vals.mean() <= hi
    assert lo < hi
    assert bootstrap_ci(vals, seed=7) == (lo, hi)
    assert bootstrap_ci(vals, seed=8) != (lo, hi)


def test_bootstrap_ci_constant():
    lo, hi = bootstrap_ci(np.full(20, 0.5))
    assert lo == hi == 0.5


def test_summarize():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(30, 5))
    s = g + rng.normal(scale=0.5, size=g.shape)
    out = summarize(s, g, n_boot=200, seed=1)
    per_q = per_query_metrics(s, g)
    assert set(out) == set(per_q)
    for name, d in out.items():
        assert d["mean"] == pytest.approx(per_q[name].mean())
        assert d["ci_low"] <= d["mean"] <= d["ci_high"]
        assert d["stderr"] == pytest.approx(per_q[name].std(ddof=1) / math.sqrt(30))
        assert (d["ci_low"], d["ci_high"]) == bootstrap_ci(per_q[name], n_boot=200, seed=1)
    assert summarize(s, g, n_boot=200, seed=1) == out
    one = summarize(s[:1], g[:1], n_boot=10)
    assert one["top1"]["stderr"] == 0.0


@pytest.mark.parametrize(
    ("s", "g", "msg"),
    [
        (np.zeros(4), np.zeros(4), "2-D"),
        (np.zeros((2, 4)), np.zeros((2, 3)), "same shape"),
        (np.zeros((2, 1)), np.zeros((2, 1)), "at least 2 groups"),
        (np.array([[0.0, np.nan]]), np.zeros((1, 2)), "finite"),
        (np.zeros((1, 2)), np.array([[np.inf, 0.0]]), "finite"),
    ],
)
def test_validation(s, g, msg):
    with pytest.raises(ValueError, match=msg):
        per_query_metrics(s, g, k=1)


def test_bad_k_and_gain():
    x = np.zeros((1, 3))
    with pytest.raises(ValueError, match="k must be"):
        per_query_metrics(x, x, k=4)
    with pytest.raises(ValueError, match="gain"):
        per_query_metrics(x, x, ndcg_gain="log")
    with pytest.raises(ValueError, match="1-D"):
        bootstrap_ci(np.zeros((2, 2)))
