"""Group LDS (SPEC §10): subsets, the per-query score, the truth's cache entries, bad input, boards."""

from __future__ import annotations

import json
import shutil
import tarfile

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from guda_bench import leaderboard as lb
from guda_bench.cli import main
from guda_bench.errors import BenchError
from guda_bench.lds import LdsConfig, all_subsets, draw_subsets, lds_truth, per_query_lds, size_share
from tests.test_cli_errors import assert_nothing_trained, base_args, one_error_line
from tests.test_executor import InlineParallel
from tests.tiny_dataset import NAME, register


def test_subsets_are_seeded_and_keep_groups_with_probability_alpha() -> None:
    a = draw_subsets(16, LdsConfig(subsets=400, alpha=0.5, seed=3))
    assert a.shape == (400, 16) and a.dtype == bool
    assert np.array_equal(a, draw_subsets(16, LdsConfig(subsets=400, alpha=0.5, seed=3)))
    assert not np.array_equal(a, draw_subsets(16, LdsConfig(subsets=400, alpha=0.5, seed=4)))
    assert abs(a.mean() - 0.5) < 0.03
    assert abs(draw_subsets(16, LdsConfig(subsets=400, alpha=0.8)).mean() - 0.8) < 0.03
    # more subsets extend the draw: the first M subsets (and their cached models) stay the same
    assert np.array_equal(draw_subsets(10, LdsConfig(subsets=8)), draw_subsets(10, LdsConfig(subsets=12))[:8])


@pytest.mark.parametrize(("cfg", "needle"), [(LdsConfig(alpha=1.0), "--lds-alpha"),
                                             (LdsConfig(alpha=0.0), "--lds-alpha"),
                                             (LdsConfig(subsets=1), "--lds-subsets"),
                                             (LdsConfig(subsets=64, alpha=0.05), "keeps no group")])
def test_bad_designs_fail_in_one_line(cfg: LdsConfig, needle: str) -> None:
    with pytest.raises(BenchError, match=needle):
        draw_subsets(3, cfg)


def test_an_empty_subset_names_the_next_seed_that_draws_none() -> None:
    """A 4-target board (style-canvas): at alpha 0.5 one subset in 16 keeps no group, so the default seed's
    16 subsets hit one; the error names the next seed that works, and that seed's draw is accepted."""
    with pytest.raises(BenchError, match="keeps no group") as err:
        draw_subsets(4, LdsConfig(subsets=16, alpha=0.5, seed=0))
    message = str(err.value)
    assert "probability 0.0625" in message and "\n" not in message
    seed = int(message.split("--lds-seed ")[1].split()[0])
    assert draw_subsets(4, LdsConfig(subsets=16, alpha=0.5, seed=seed)).any(1).all()
    for earlier in range(1, seed):  # it is the next one, not just any
        with pytest.raises(BenchError):
            draw_subsets(4, LdsConfig(subsets=16, alpha=0.5, seed=earlier))


def test_all_subsets_is_every_non_empty_subset_once_and_leaves_published_keys_alone() -> None:
    """With 4 groups (style-canvas's targets), 16 random draws repeat subsets and weight the repeats double;
    `--lds-subsets all` trains each of the 15 once. The knob joins the config's hash only when set, so the
    published LDS truths (random designs) keep their keys."""
    from guda_bench.config import canonical_hash

    every = draw_subsets(4, LdsConfig(exhaustive=True))
    assert every.shape == (15, 4) and every.any(1).all() and len({tuple(r) for r in every.tolist()}) == 15
    assert len({tuple(r) for r in draw_subsets(4, LdsConfig(subsets=16, seed=10)).tolist()}) < 15
    assert np.array_equal(every, all_subsets(4)) and all_subsets(2).tolist() == [[True, False], [False, True],
                                                                               [True, True]]
    assert canonical_hash(LdsConfig(subsets=16, seed=10)) == canonical_hash({"alpha": 0.5, "seed": 10,
                                                                            "subsets": 16})
    assert canonical_hash(LdsConfig(exhaustive=True)) != canonical_hash(LdsConfig())
    with pytest.raises(BenchError, match="2,047 models for 11 groups"):
        draw_subsets(11, LdsConfig(exhaustive=True))
    with pytest.raises(BenchError, match="at least 2 groups"):
        draw_subsets(1, LdsConfig(exhaustive=True))


def test_per_query_lds_is_spearman_of_the_additive_prediction_and_minus_the_loss() -> None:
    rng = np.random.default_rng(0)
    scores, kept = rng.normal(size=(20, 8)), draw_subsets(8, LdsConfig(subsets=16))
    losses = rng.normal(size=(20, 16))
    got = per_query_lds(scores, kept, losses)
    prediction = (scores - scores.mean(1, keepdims=True)) @ kept.T
    want = [spearmanr(prediction[q], -losses[q]).statistic for q in range(20)]
    np.testing.assert_allclose(got, want, atol=1e-12)
    # a perfectly additive datamodel is found exactly; the reversed one is -1; a constant one has no order
    np.testing.assert_allclose(per_query_lds(scores, kept, -prediction), 1.0)
    np.testing.assert_allclose(per_query_lds(scores, kept, prediction), -1.0)
    assert np.all(per_query_lds(np.zeros((3, 8)), kept, losses[:3]) == 0.0)
    # invariant to a per-query constant: random positive scores do not "predict" that bigger subsets fit better
    np.testing.assert_allclose(per_query_lds(scores + 5.0, kept, losses), got, atol=1e-12)
    size_driven = -np.broadcast_to(kept.sum(1), (20, 16)) + 0.01 * losses
    assert size_share(kept, size_driven) > 0.9 and abs(per_query_lds(np.ones((20, 8)), kept, size_driven)).max() == 0


def test_lds_run_end_to_end_with_its_ceiling(tmp_path) -> None:
    """Subset models are cache entries (a rerun trains nothing), the row's LDS is recomputable from the run
    folder and the cached losses, the ceiling fills the noise-ceiling row, bundles carry the LDS truth."""
    register()
    cache, out = tmp_path / "cache", tmp_path / "run"
    args = ["run", "--dataset", NAME, "--preset", "tiny", "--method", "logo,pixel-nn,random", "--quiet",
            "--cache", str(cache), "--out", str(out), "--truth", "lds", "--lds-subsets", "4",
            "--ceiling-seeds", "2", "--lds-ceiling"]
    assert main(args) == 0
    res = json.loads((out / "results.json").read_text())
    kept = np.asarray(res["truth"]["lds"]["kept"], dtype=bool)
    assert kept.shape == (4, 3) and res["run"]["lds"] == {"subsets": 4, "alpha": 0.5, "seed": 0}
    keys = res["truth"]["artefacts"]["lds"]
    assert len(keys) == 2  # the truth and its ceiling's second seed
    models = {p.name: json.loads((p / "manifest.json").read_text()) for p in (cache / "model").iterdir()}
    n_distinct = len({tuple(r) for r in kept.tolist()})
    assert len(models) == 1 + 2 * 3 + 2 * n_distinct  # full, 2 LOGO studies, 2 seeds of the distinct subsets
    rows = {r["method"]: r for r in res["rows"]}
    test = np.asarray(res["splits"]["test"])
    losses = np.load(cache / "lds" / keys[0] / "losses.npy")
    for name in ("logo", "pixel-nn", "random"):
        scores = np.load(out / "scores" / f"{name}.npy")
        assert rows[name]["metrics"]["lds"]["mean"] == pytest.approx(per_query_lds(scores, kept, losses)[test].mean())
    ceiling = rows["noise-ceiling"]["metrics"]["lds"]
    assert -1 <= ceiling["ci_low"] <= ceiling["mean"] <= ceiling["ci_high"] <= 1
    summary = pd.read_csv(out / "summary.csv")
    assert summary["lds"].notna().all() and {"lds_ci_low", "lds_ci_high"} <= set(summary.columns)
    # a board published from the run carries every row's per-query LDS (from the truth the run saved), whose
    # mean is the row's LDS, and pairs them
    boards = tmp_path / "boards"
    assert main(["leaderboard", "publish", str(out), "--dir", str(boards), "--no-plots"]) == 0
    per_query = pd.read_csv(boards / f"{NAME}-per-query.csv")
    means = per_query.groupby("method")["lds"].mean()
    for name in ("logo", "pixel-nn", "random", "noise-ceiling"):
        assert means[name] == pytest.approx(rows[name]["metrics"]["lds"]["mean"], abs=1e-5)
    lds_pairs = pd.read_csv(boards / f"{NAME}-pairs.csv").query("metric == 'lds'")
    assert len(lds_pairs) == 6 and lds_pairs["p_holm"].between(0, 1).all()
    compared = {r["metric"]: r for r in lb.compare(out, None, "pixel-nn", "random", n_boot=200)["rows"]}
    assert compared["lds"]["mean_a"] == pytest.approx(rows["pixel-nn"]["metrics"]["lds"]["mean"])
    assert compared["lds"]["mean_b"] == pytest.approx(rows["random"]["metrics"]["lds"]["mean"])
    shown = lb.board_power(boards / f"{NAME}.csv", pd.read_csv(boards / f"{NAME}.csv"))
    assert "group LDS power: method pairs separated" in shown
    # the board says which subsets its LDS is over (boards differ: 15 exhaustive, 16 or 32 drawn)
    assert "group LDS noise ceiling" in shown and "over 4 random subsets (alpha 0.5, seed 0; repeats possible)" in shown
    assert lb.lds_design({"subsets": "all", "n_subsets": 15}) == ("every non-empty subset of the groups "
                                                                  "(15 subset models)")
    assert lb.lds_design(None) is None
    # warm rerun: every subset model and both loss matrices come from the cache
    stamp = {p.name for p in cache.rglob("*") if p.is_dir()}
    assert main(args) == 0
    assert {p.name for p in cache.rglob("*") if p.is_dir()} == stamp
    # a build that resumes from cached subset models (a killed run) reports the cold run's LDS cost: the models
    # are charged at their recorded cost, not dropped
    shutil.rmtree(cache / "lds")
    assert main(args) == 0
    resumed = json.loads((out / "results.json").read_text())["truth"]["lds"]["cost_s"]
    assert resumed == pytest.approx(res["truth"]["lds"]["cost_s"], rel=0.25)
    # one more subset extends the design: only its model (and its second seed's) is trained
    assert main([*args[:-5], "--lds-subsets", "5", "--ceiling-seeds", "2"]) == 0
    assert len(list((cache / "model").iterdir())) <= len(models) + 1
    # the ground-truth bundle carries the LDS truth
    bundle = tmp_path / "truth.tar.gz"
    assert main(["bundle", "export", str(out), str(bundle), "--cache", str(cache)]) == 0
    latest = json.loads((out / "results.json").read_text())["truth"]["artefacts"]["lds"][0]
    assert latest != keys[0]  # five subsets: another truth
    with tarfile.open(bundle) as tar:
        assert any(f"artefacts/lds/{latest}/losses.npy" in n for n in tar.getnames())
    # on another machine: the bundle's LDS truth scores methods with no subset model (nor LOGO model) trained
    fresh = tmp_path / "fresh"
    assert main(["bundle", "import", str(bundle), "--cache", str(fresh)]) == 0
    assert main(["run", "--dataset", NAME, "--preset", "tiny", "--method", "pixel-nn", "--quiet", "--cache", str(fresh),
                 "--out", str(tmp_path / "again"), "--truth", "lds", "--lds-subsets", "5"]) == 0
    assert len(list((fresh / "model").iterdir())) == 1  # the full model, from the bundle
    again = pd.read_csv(tmp_path / "again" / "summary.csv").set_index("method")
    assert again.loc["pixel-nn", "lds"] == pytest.approx(pd.read_csv(out / "summary.csv").set_index("method")
                                                         .loc["pixel-nn", "lds"])
    # every non-empty subset once (--lds-subsets all: 7 of 3 groups) reuses the random draws' subset models
    before = {p.name for p in (cache / "model").iterdir()}
    assert main([*args[:-5], "--lds-subsets", "all", "--ceiling-seeds", "2", "--out", str(tmp_path / "all")]) == 0
    every = json.loads((tmp_path / "all" / "results.json").read_text())
    assert every["run"]["lds"] == {"subsets": "all", "n_subsets": 7}
    assert np.array_equal(np.asarray(every["truth"]["lds"]["kept"], dtype=bool), all_subsets(3))
    drawn = {tuple(r) for r in np.asarray(res["truth"]["lds"]["kept"], dtype=bool).tolist()}
    new_models = {p.name for p in (cache / "model").iterdir()} - before
    assert len(new_models) <= 7 - len(drawn) and every["truth"]["artefacts"]["lds"][0] not in keys


def test_subset_models_fan_out_over_the_executor(tmp_path) -> None:
    from guda_bench.context import Context
    from guda_bench.registry import DATASETS
    from guda_bench.store import Store

    register()
    adapter = DATASETS.entry(NAME).create({})
    ctx = Context(adapter.load(adapter.preset("tiny")), Store(tmp_path / "cache"), executor=InlineParallel())
    truth = lds_truth(ctx, LdsConfig(subsets=3))
    assert truth.losses.shape == (len(ctx.queries), 3) and np.isfinite(truth.losses).all()
    n_train = sorted(json.loads((p / "manifest.json").read_text()).get("n_train", -1)
                     for p in (tmp_path / "cache" / "model").iterdir())
    group_sizes = np.bincount(ctx.bench.group_of[ctx.bench.group_of >= 0])
    wanted = sorted({int(group_sizes[row].sum()) for row in truth.kept} | {len(ctx.bench.images)})
    assert sorted(set(n_train)) == wanted  # each subset model saw exactly its kept groups' images


@pytest.mark.parametrize(("extra", "needle"), [
    (["--truth", "lds", "--lds-alpha", "1.5"], "--lds-alpha"),
    (["--truth", "lds", "--lds-subsets", "1"], "--lds-subsets"),
    (["--truth", "lds", "--lds-subsets", "40", "--lds-alpha", "0.02"], "keeps no group"),
    (["--lds-ceiling"], "--lds-ceiling needs --truth lds"),
    (["--truth", "lds", "--lds-ceiling"], "--ceiling-seeds 2"),
])
def test_bad_lds_input_is_one_line_before_training(tmp_path, capsys, extra: list[str], needle: str) -> None:
    assert main(base_args(tmp_path) + extra) == 2
    assert needle in one_error_line(capsys.readouterr().err)
    assert_nothing_trained(tmp_path)


def test_ranking_agreement_counts_the_pairs_ordered_differently() -> None:
    board = pd.DataFrame({"method": ["noise-ceiling", "logo", "a", "b", "c", "d"],
                          "kind": ["ceiling", "method", "method", "method", "method", "method"],
                          "family": ["ceiling", "truth", "attribution", "attribution", "similarity", "chance"],
                          "status": "ok", "top1": [0.7, 1.0, 0.6, 0.5, 0.4, 0.1],
                          "lds": [0.9, 0.8, 0.3, 0.4, 0.2, 0.0]})
    agree = lb.ranking_agreement(board)
    assert agree["n_methods"] == 4 and agree["disagreements"] == [("a", "b")]
    assert agree["kendall_tau"] == pytest.approx(4 / 6)
    assert lb.ranking_agreement(board.drop(columns="lds")) is None
    assert "group LDS [95% CI]" in lb.headers(board) and "group LDS [95% CI]" not in lb.headers(board.assign(lds=None))


def test_rows_above_the_lds_ceiling_are_those_whose_ci_clears_the_ceilings() -> None:
    board = pd.DataFrame({"method": ["noise-ceiling", "logo", "a", "b", "c"],
                          "kind": ["ceiling", "method", "method", "method", "method"],
                          "status": ["ok", "ok", "ok", "ok", "failed"],
                          "lds": [0.26, 0.24, 0.32, 0.30, 0.9], "lds_ci_low": [0.24, 0.22, 0.30, 0.27, 0.8],
                          "lds_ci_high": [0.28, 0.26, 0.34, 0.33, 1.0]})
    # a's CI clears the ceiling's; b's overlaps it (0.27 < 0.28); c did not run; logo is under it
    assert lb.lds_above_ceiling(board) == (pytest.approx(0.26), ["a"])
    assert lb.lds_above_ceiling(board[board["kind"] != "ceiling"]) is None  # no ceiling row: nothing to say
    assert lb.lds_above_ceiling(board.assign(lds=None)) is None
