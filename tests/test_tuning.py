"""Typed options (one-line errors before training), search spaces, `guda-bench tune` and `run --tuned`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from guda_bench.cli import main
from guda_bench.errors import BenchError
from guda_bench.options import Option, check_options
from guda_bench.registry import METHODS
from guda_bench.tuning import at_edge, tuning_cost
from tests.test_cli_errors import assert_nothing_trained, base_args, one_error_line
from tests.tiny_dataset import NAME, register

SHIPPED_BOARD_PRESETS = ("digits", "mnist5k")


# ---- typed options -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("option", "needles"), [
    ("guda.nosuch=1", ["guda.nosuch", "has no option 'nosuch'", "its options:", "steps"]),
    ("guda.stpes=3", ["did you mean 'steps'"]),
    ("guda.lr=abc", ["guda.lr=abc", "must be a number > 0"]),
    ("guda.lr=-1", ["must be a number > 0"]),
    ("guda.steps=2.5", ["guda.steps=2.5", "must be an integer >= 1"]),
    ("trak.proj_dim=abc", ["trak.proj_dim=abc", "an integer >= 1"]),
    ("instance-unlearning.aggregate=median", ["one of mean, sum"]),
    ("guda-esd.label_dropout=2", ["<= 1"]),
    ("logo.x=1", ["has no option 'x'", "its options: none"]),
])
def test_bad_options_fail_in_one_line_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     option: str, needles: list[str]) -> None:
    method = option.split(".")[0]
    assert main(base_args(tmp_path) + ["--method", method, "--option", option]) == 2
    line = one_error_line(capsys.readouterr().err)
    for needle in needles:
        assert needle in line, line
    assert_nothing_trained(tmp_path)


def test_option_values_are_converted_to_their_declared_types() -> None:
    entry = METHODS.entry("guda")
    assert entry.check_options({"steps": "30", "lr": "1e-3", "retain_loss": "distill"}) == {
        "steps": 30, "lr": 1e-3, "retain_loss": "distill"}
    method = entry.create({"steps": "30"})
    assert method.options["steps"] == 30 and isinstance(method.options["steps"], int)
    inst = METHODS.entry("instance-unlearning").create({"max_train_per_group": "none", "lr": "0.1"})
    assert inst.cfg.max_train_per_group is None and inst.cfg.lr == 0.1
    assert METHODS.entry("das").create({"leverage": "false"}).leverage is False
    assert Option("bool").convert("yes") is True
    with pytest.raises(ValueError):
        Option("int", low=1).convert(True)


def test_undeclared_plugin_options_pass_unchecked() -> None:
    assert check_options("plugin", None, {"anything": "1"}) == {"anything": "1"}


def test_every_method_with_hyperparameters_has_a_space_holding_its_shipped_default() -> None:
    from guda_bench.runner import make_adapter
    from guda_bench.tuning import shipped_setting

    no_space = {e.name for e in METHODS.entries() if not e.space()}
    assert no_space == {"logo", "random", "pixel-cosine", "pixel-nn", "prompt-text"}
    for dataset in SHIPPED_BOARD_PRESETS:
        preset = make_adapter(dataset).preset("default")
        for e in METHODS.entries():
            if e.name.startswith("guda-c"):
                continue  # text-to-image: checked on styled-digits below
            for key, value in shipped_setting(e, preset).items():
                assert value in e.space()[key], (dataset, e.name, key, value)
    preset = make_adapter("styled-digits").preset("default")
    for name in ("guda-c", "guda-c-uniform", "guda-c-nostyle"):
        e = METHODS.entry(name)
        for key, value in shipped_setting(e, preset).items():
            assert value in e.space()[key], (name, key, value)


def test_options_command_lists_types_defaults_and_space(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["options", "instance-unlearning"]) == 0
    out = capsys.readouterr().out
    assert "fisher_samples" in out and "an integer >= 1" in out and "0.003, 0.01, 0.03, 0.1" in out
    assert main(["options", "pixel-nn"]) == 0
    assert "nothing to tune" in capsys.readouterr().out


# ---- search spaces and candidates ---------------------------------------------------------------------
@pytest.mark.parametrize(("space", "needle"), [
    ({"nosuch": [1, 2]}, "has no option 'nosuch'"),
    ({"steps": []}, "empty candidate list"),
    ({"lr": [1e-3, -1.0]}, "lr=-1.0: must be a number > 0"),
    ({"steps": 3}, "needs a list of candidates"),
])
def test_a_bad_search_space_fails_in_one_line_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch, space: dict,
                                                             needle: str) -> None:
    monkeypatch.setattr(METHODS.entry("guda"), "search_space", space)
    args = ["tune", "--preset", "smoke", "--cache", str(tmp_path / "cache"), "--quiet", "--method", "guda",
            "--tuning-dir", str(tmp_path / "tuning")]
    assert main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert needle in line, line
    assert_nothing_trained(tmp_path)
    assert not (tmp_path / "tuning").exists()


@pytest.mark.parametrize(("methods", "needle"), [("random", "random declares no search space"),
                                                 ("random,pixel-cosine", "random, pixel-cosine declare no search")])
def test_methods_with_nothing_to_tune_fail_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      methods: str, needle: str) -> None:
    args = ["tune", "--preset", "smoke", "--cache", str(tmp_path / "cache"), "--quiet", "--method", methods,
            "--tuning-dir", str(tmp_path / "tuning")]
    assert main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert needle in line, line
    assert_nothing_trained(tmp_path)


def test_candidates_start_with_the_shipped_setting_and_respect_the_budget() -> None:
    from guda_bench.runner import make_adapter
    from guda_bench.tuning import candidates, shipped_setting

    preset = make_adapter("digits").preset("default")
    e = METHODS.entry("guda")
    c8 = candidates(e, preset, 8, seed=0)
    assert candidates(e, preset, 8, seed=1) != c8  # another seed draws other settings (hence --candidate-seed)
    assert len(c8) == 8 and c8[0] == shipped_setting(e, preset) and len({json.dumps(c) for c in c8}) == 8
    assert candidates(e, preset, 8, seed=0) == c8  # seeded
    assert len(candidates(e, preset, 100, seed=0)) == 27  # the whole grid when it fits
    assert candidates(METHODS.entry("random"), preset, 8, seed=0) == []
    with pytest.raises(BenchError):
        candidates(e, preset, 0, seed=0)


# ---- tune and run --tuned on a tiny benchmark ------------------------------------------------------------
TUNE_METHODS = "guda,trak,pixel-nn"


def tune_args(root: Path, tuning: Path) -> list[str]:
    return ["tune", "--dataset", NAME, "--preset", "tiny", "--cache", str(root / "cache"), "--quiet",
            "--method", TUNE_METHODS, "--budget", "3", "--tuning-dir", str(tuning)]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    register()
    root = tmp_path_factory.mktemp("tune")
    assert main(tune_args(root, root / "tuning")) == 0
    return root


def test_tune_writes_one_record_per_tunable_method(tuned: Path) -> None:
    board = tuned / "tuning" / NAME
    assert sorted(p.name for p in board.iterdir()) == ["guda.json", "trak.json"]  # pixel-nn has nothing to tune
    rec = json.loads((board / "guda.json").read_text())
    assert rec["budget"] == 3 and len(rec["settings"]) == 3 and rec["settings"][0]["shipped"]
    assert rec["status"] == "ok" and rec["chosen"] == rec["settings"][rec["chosen_index"]]["options"]
    assert rec["schema"] == 2 and rec["tuning_cost_s"] == pytest.approx(tuning_cost(rec["settings"]))
    assert all(s["used"] for s in rec["settings"])  # each setting names the artefacts it used
    assert all(0 <= s["tune"]["top1"] <= 1 for s in rec["settings"])
    assert rec["n_tune"] == 4 and "tuning-split" in rec["selection"]
    assert rec["truth_seeds"] == 1  # the gold it was tuned against: one LOGO study (the preset's)
    for r in (rec, json.loads((board / "trak.json").read_text())):
        gain = r["chosen_vs_shipped"]
        if r["chosen_index"] == 0:
            assert gain is None
        else:  # the chosen setting's tuning Top-1 over the shipped one's, on the same 4 queries
            tune = [s["tune"]["top1"] for s in r["settings"]]
            assert gain["n_tune"] == 4 and gain["top1_diff"] == pytest.approx(tune[r["chosen_index"]] - tune[0])
            assert gain["ci_low"] <= gain["top1_diff"] <= gain["ci_high"] and 0 <= gain["p_value"] <= 1


def test_another_draw_tries_the_same_settings_given_the_same_candidate_seed(tuned: Path) -> None:
    """--seed 1 trains other models; --candidate-seed 0 makes it try the settings the seed-0 tuning tried."""
    args = [a if a != TUNE_METHODS else "guda" for a in tune_args(tuned, tuned / "tuning-seed1")]
    assert main([*args, "--seed", "1", "--candidate-seed", "0"]) == 0
    rec = json.loads((tuned / "tuning-seed1" / NAME / "guda.json").read_text())
    seed0 = json.loads((tuned / "tuning" / NAME / "guda.json").read_text())
    assert rec["seed"] == 1 and rec["candidate_seed"] == 0 and seed0["candidate_seed"] == 0
    assert [s["options"] for s in rec["settings"]] == [s["options"] for s in seed0["settings"]]
    grid = seed0["space"]  # the grid outgrows the budget of 3 ...
    assert np.prod([len(v) for v in grid.values()]) > 3  # ... so without --candidate-seed, --seed 1 draws anew


def test_the_record_tells_a_real_choice_from_a_coin_toss() -> None:
    from guda_bench.tuning import vs_shipped

    rng = np.random.default_rng(0)
    shipped = (rng.random(350) < 0.6).astype(float)
    coin = vs_shipped({0: shipped, 1: shipped.copy()}, 1)  # a tie the tie-break would not choose: no evidence
    assert coin["top1_diff"] == 0 and coin["p_value"] == 1.0 and coin["n_tune"] == 350
    better = shipped.copy()
    better[np.flatnonzero(shipped == 0)[:60]] = 1  # 60 more queries right, none lost
    real = vs_shipped({0: shipped, 1: better}, 1)
    assert real["top1_diff"] == pytest.approx(60 / 350) and real["p_value"] < 0.001 and real["ci_low"] > 0
    assert vs_shipped({0: shipped, 1: better}, 0) is None and vs_shipped({1: better}, 1) is None
    assert real["p_best_of"] < 0.001 and real["n_alternatives"] == 1


def test_the_best_of_many_noisy_settings_pays_for_being_chosen() -> None:
    """Seven settings as good as the shipped one, each right on its own random queries: the winner looks
    real on its own (plain p small) but not once the choice among seven is paid for."""
    from guda_bench.tuning import vs_shipped

    rng = np.random.default_rng(3)
    hits = {i: (rng.random(350) < 0.5).astype(float) for i in range(8)}
    gains = {i: hits[i].mean() - hits[0].mean() for i in range(1, 8)}
    best = max(gains, key=gains.get)
    rec = vs_shipped(hits, best)
    assert rec["n_alternatives"] == 7 and rec["top1_diff"] == pytest.approx(gains[best])
    assert rec["p_value"] < 0.1 and rec["p_best_of"] > 2 * rec["p_value"]
    lone = vs_shipped({0: hits[0], best: hits[best]}, best)  # the same winner named in advance
    assert lone["p_best_of"] < rec["p_best_of"] and lone["p_best_of"] == pytest.approx(lone["p_value"], abs=0.02)


def test_a_tuning_counts_work_its_settings_share_once(tuned: Path) -> None:
    """TRAK's settings reuse one training-feature build: the tuning cost counts it once, not per setting."""
    rec = json.loads((tuned / "tuning" / NAME / "trak.json").read_text())
    sets = rec["settings"]
    shared = set.intersection(*(set(s["used"]) for s in sets))
    assert shared  # the features every setting used
    alone = sum(s["cost_s"] for s in sets)
    once = sum(sets[0]["used"][k] for k in shared)
    assert rec["tuning_cost_s"] == pytest.approx(alone - (len(sets) - 1) * once)
    assert max(s["cost_s"] for s in sets) <= rec["tuning_cost_s"] < alone


def test_tuning_cost_is_own_work_plus_each_used_artefact_once() -> None:
    settings = [{"cost_s": 10.0, "used": {"feat": 8.0}}, {"cost_s": 9.0, "used": {"feat": 8.0}},
                {"cost_s": 5.0, "used": {"other": 4.0}}, {"cost_s": 3.0}]  # a schema-1 setting: all its own
    assert tuning_cost(settings) == pytest.approx((2 + 1 + 1 + 3) + 8 + 4)
    assert tuning_cost([]) == 0.0


@pytest.mark.parametrize("gain", ["exp", "linear"])
def test_a_setting_is_scored_with_its_boards_ndcg_gain(tmp_path: Path, gain: str) -> None:
    """UnlearnCanvas-shaped presets rank by linear-gain NDCG@3: the tuner's tie-break must use the same one."""
    from types import SimpleNamespace

    from guda_bench import metrics
    from guda_bench.tuning import score_setting

    rng = np.random.default_rng(0)
    scores, gold = rng.normal(size=(40, 5)), rng.normal(size=(40, 5))
    np.save(tmp_path / "scores.npy", scores)
    art = SimpleNamespace(path=tmp_path, cost_s=1.0, manifest={"used": {}})
    ctx = SimpleNamespace(full=SimpleNamespace(key="f"), queries_artefact=SimpleNamespace(key="q"), data_hash="d",
                          fetch=lambda *a, **k: art)
    preset = SimpleNamespace(method_options={}, ndcg_gain=gain)
    got = score_setting(ctx, SimpleNamespace(name="m"), {}, preset, gold)["tune"]["ndcg@3"]
    assert got == pytest.approx(float(metrics.ndcg_at_k(scores, gold, 3, gain=gain).mean()))
    other = "linear" if gain == "exp" else "exp"
    assert got != pytest.approx(float(metrics.ndcg_at_k(scores, gold, 3, gain=other).mean()))


def test_a_choice_at_the_edge_of_its_grid_is_flagged() -> None:
    space = {"steps": [10, 20, 40], "lr": [1e-4, 3e-4, 1e-3], "aggregate": ["sum", "mean"], "k": [1, 3],
             "flag": [True, False]}
    assert at_edge(space, {"steps": 40, "lr": 3e-4, "aggregate": "sum", "k": 3, "flag": True}) == ["steps"]
    assert at_edge(space, {"steps": 20, "lr": 1e-4, "aggregate": "mean", "k": 1, "flag": False}) == ["lr"]
    assert at_edge(space, {"steps": 20, "lr": 3e-4}) == [] and at_edge(space, None) == []


def test_a_mode_value_is_off_the_scale_not_at_its_edge() -> None:
    widths = {"bandwidth": [0.0, 0.125, 0.5, 2.0, 8.0]}  # pixel-kde: 0 selects the ELBO grid's own widths
    options = METHODS.entry("pixel-kde").declared_options
    assert at_edge(widths, {"bandwidth": 0.0}, options) == []
    assert at_edge(widths, {"bandwidth": 0.125}, options) == ["bandwidth"]  # the smallest width on the scale
    assert at_edge(widths, {"bandwidth": 0.5}, options) == []
    assert at_edge(widths, {"bandwidth": 0.0}) == ["bandwidth"]  # without the declaration 0 looks like an edge


def test_rerunning_tune_is_served_from_the_cache(tuned: Path) -> None:
    before = {p: p.stat().st_mtime for p in (tuned / "cache" / "tuning-scores").iterdir()}
    assert main(tune_args(tuned, tuned / "tuning-again")) == 0
    assert {p: p.stat().st_mtime for p in (tuned / "cache" / "tuning-scores").iterdir()} == before
    a = json.loads((tuned / "tuning" / NAME / "guda.json").read_text())
    b = json.loads((tuned / "tuning-again" / NAME / "guda.json").read_text())
    assert [s["tune"] for s in a["settings"]] == [s["tune"] for s in b["settings"]]


def test_test_split_gold_never_steers_the_choice(tuned: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from guda_bench.context import Context

    real = Context.logoa

    def scrambled(self, study=0):
        gold = real(self, study).copy()
        test = self.splits["test"]
        gold[test] = np.random.default_rng(5).normal(size=gold[test].shape) * 1e3  # every test gold value rewritten
        return gold

    monkeypatch.setattr(Context, "logoa", scrambled)
    assert main(tune_args(tuned, tuned / "tuning-scrambled")) == 0
    for name in ("guda", "trak"):
        a = json.loads((tuned / "tuning" / NAME / f"{name}.json").read_text())
        b = json.loads((tuned / "tuning-scrambled" / NAME / f"{name}.json").read_text())
        assert a["chosen"] == b["chosen"] and [s["tune"] for s in a["settings"]] == [s["tune"] for s in b["settings"]]


def test_run_tuned_adds_tuned_rows_with_their_settings_budget_and_cost(tuned: Path) -> None:
    out = tuned / "run"
    assert main(["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(tuned / "cache"), "--quiet",
                 "--method", TUNE_METHODS, "--tuned", "--tuning-dir", str(tuned / "tuning"), "--out", str(out)]) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert set(rows) == {"guda", "guda@tuned", "trak", "trak@tuned", "pixel-nn"}
    rec = json.loads((tuned / "tuning" / NAME / "guda.json").read_text())
    t = rows["guda@tuned"]
    assert t["status"] == "ok" and t["tuning"]["budget"] == 3
    assert t["tuning"]["tuning_cost_s"] == pytest.approx(rec["tuning_cost_s"])
    assert t["tuning"]["at_edge"] == rec["at_edge"] == at_edge(rec["space"], rec["chosen"])
    for key, value in rec["chosen"].items():
        assert t["settings"][key] == pytest.approx(value)
    assert t["tune_top1"] == pytest.approx(rec["settings"][rec["chosen_index"]]["tune"]["top1"])
    assert t["tuning"]["chosen_vs_shipped"] == rec["chosen_vs_shipped"]
    from guda_bench import leaderboard as lb

    board = lb.board_rows(json.loads((out / "results.json").read_text()))
    flags = {r["method"]: (r["tuned"], r["tuning_budget"]) for r in board}
    assert flags["guda@tuned"] == (True, 3) and flags["guda"][0] is False


def test_run_tuned_without_a_tuning_file_fails_in_one_line(tuned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(tuned / "cache"), "--quiet",
                 "--method", "das", "--tuned", "--tuning-dir", str(tuned / "tuning"), "--out", str(tuned / "x")])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "das was not tuned" in line and "das.json is missing" in line
    assert not (tuned / "x" / "results.json").exists()


def test_a_plugin_declares_options_and_a_space_the_same_way(tmp_path: Path) -> None:
    from guda_bench import Method, Option, register_method

    if "plugin-temp" not in METHODS.names():
        @register_method("plugin-temp", description="README example")
        class PluginTemp(Method):
            OPTIONS = {"temperature": Option("float", 1.0, "softmax temperature", low=0, low_open=True)}
            SEARCH_SPACE = {"temperature": (0.5, 1.0, 2.0)}

            def __init__(self, temperature: float = 1.0) -> None:
                self.temperature = temperature

            def score(self, ctx):
                return np.zeros((len(ctx.queries), ctx.bench.n_groups))

    try:
        entry = METHODS.entry("plugin-temp")
        assert entry.create({"temperature": "2"}).temperature == 2.0
        assert entry.space() == {"temperature": [0.5, 1.0, 2.0]}
        with pytest.raises(BenchError, match="plugin-temp.temperature=0: must be a number > 0"):
            entry.create({"temperature": "0"})
    finally:  # other tests run `--method all`
        METHODS._entries.pop("plugin-temp", None)


@pytest.mark.parametrize("method", ["guda", "instance-unlearning", "d-trak", "pixel-nn"])
def test_a_query_view_scores_exactly_the_full_runs_rows(tuned: Path, method: str) -> None:
    """Tuning scores methods on a view holding only the tuning queries: each query's scores there are the
    full run's (noise is keyed by the original query), and no test query is scored."""
    from guda_bench.executor import LocalExecutor
    from guda_bench.runner import RunSpec, open_benchmark

    spec = RunSpec(methods=[method], dataset=NAME, preset="tiny", cache=tuned / "cache", quiet=True)
    ctx = open_benchmark(spec).context(spec, LocalExecutor())
    idx = np.array([5, 1, 6])
    view = ctx.on_queries(idx, "probe")
    assert len(view.queries) == 3 and view.query_index.tolist() == [5, 1, 6]
    assert view.queries_artefact.key != ctx.queries_artefact.key and len(ctx.queries) == 8

    def scores(c):
        m = METHODS.create(method)
        m.prepare(c)
        return np.asarray(m.score(c))

    full, part = scores(ctx), scores(view)
    assert part.shape == (3, full.shape[1])
    np.testing.assert_allclose(part, full[idx], rtol=1e-5, atol=1e-7)


def test_a_published_board_says_how_far_tuning_moved_each_method(tuned: Path) -> None:
    from guda_bench import leaderboard as lb
    from guda_bench import power

    out, boards = tuned / "run-publish", tuned / "boards"
    # a board with a noise ceiling uses the settings tuned without one (the ceiling does not enter tuning)
    assert main(["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(tuned / "cache"), "--quiet",
                 "--ceiling-seeds", "2", "--method", TUNE_METHODS, "--tuned", "--tuning-dir", str(tuned / "tuning"),
                 "--out", str(out)]) == 0
    path = lb.publish(out, boards, plots=False)
    board = lb.read_board(str(path), boards)[1]
    line = lb.board_power(path, board)
    tuning = [x for x in line.splitlines() if x.startswith("tuning")]
    assert len(tuning) == 1 and "budget 3 per method" in tuning[0]
    for name in ("guda", "trak"):
        before = float(board.loc[board["method"] == name, "top1"].iloc[0])
        after = float(board.loc[board["method"] == f"{name}@tuned", "top1"].iloc[0])
        assert f"{name} {before:.3f}->{after:.3f} ({after - before:+.3f} " in tuning[0]
        edge = board.loc[board["method"] == f"{name}@tuned", "tuning_at_edge"].fillna("").iloc[0]
        rec = json.loads((tuned / "tuning" / NAME / f"{name}.json").read_text())
        assert edge == ",".join(rec["at_edge"])
        part = next(x for x in tuning[0].split(": ", 1)[1].split("; ") if x.startswith(f"{name} "))
        assert part.endswith(f"{edge.replace(',', '/')} at grid edge)") if edge else "edge" not in part
        gain = rec["chosen_vs_shipped"]  # the tuning split's own evidence for the choice, beside the test's
        row = board.loc[board["method"] == f"{name}@tuned"].iloc[0]
        if gain is None:
            assert "tuning split" not in part and pd.isna(row["tuning_split_p"])
        else:
            assert f"tuning split {gain['top1_diff']:+.3f} p " in part
            assert row["tuning_split_gain"] == pytest.approx(gain["top1_diff"])
    summary = power.power_summary(board, None)  # each method counted once, as shipped
    assert not any(m.endswith("@tuned") for m in summary["top_methods"])
    assert json.loads(lb.sibling(path, "power.json").read_text())["tuning"] == tuning[0]


def test_a_method_unavailable_when_tuned_keeps_its_reason_and_gets_no_tuned_row(
        tuned: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUDA_BENCH_CLIP_WEIGHTS", raising=False)
    monkeypatch.setenv("HOME", str(tuned / "no-home"))  # no CLIP weights anywhere: clip is unavailable
    tuning = tuned / "tuning-clip"
    assert main(["tune", "--dataset", NAME, "--preset", "tiny", "--cache", str(tuned / "cache"), "--quiet",
                 "--method", "clip", "--tuning-dir", str(tuning)]) == 0
    assert json.loads((tuning / NAME / "clip.json").read_text())["status"] == "unavailable"
    out = tuned / "run-clip"
    assert main(["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(tuned / "cache"), "--quiet",
                 "--method", "clip,pixel-nn", "--tuned", "--tuning-dir", str(tuning), "--out", str(out)]) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert set(rows) == {"clip", "pixel-nn"} and rows["clip"]["status"] == "unavailable"


def test_the_tuning_line_names_tunable_methods_without_a_tuned_row() -> None:
    """A board where some tunable methods were tuned and others not says which were not (a fairness gap);
    methods with nothing to tune, rows that did not run and methods this installation does not know are
    left out."""
    import pandas as pd

    from guda_bench import leaderboard as lb
    from guda_bench import power

    rows = [("noise-ceiling", "ceiling", "ok", False, 0.9), ("guda", "method", "ok", False, 0.5),
            ("guda@tuned", "method", "ok", True, 0.6), ("trak", "method", "ok", False, 0.4),
            ("pixel-nn", "method", "ok", False, 0.3), ("das", "method", "unavailable", False, None),
            ("someone-elses-method", "method", "ok", False, 0.2)]
    board = pd.DataFrame(rows, columns=["method", "kind", "status", "tuned", "top1"]).assign(tuning_budget=8)
    untuned = lb.untuned_methods(board)
    assert untuned == ["trak"]
    line = power.tuning_line(board, None, untuned)
    assert line.startswith("tuning (budget 8 per method") and "guda 0.500->0.600 (+0.100)" in line
    assert line.endswith("; not tuned: trak")
    shipped_only = board[~board["tuned"]]
    assert lb.untuned_methods(shipped_only) == ["guda", "trak"]
    assert power.tuning_line(shipped_only, None, ["guda", "trak"]) == "tuning: no tuned rows; not tuned: guda, trak"
    assert power.tuning_line(shipped_only, None, []) is None


def test_the_tuning_line_shows_the_tuning_splits_own_evidence_for_each_choice() -> None:
    """A tuned row whose record says how far its choice beat the shipped setting on the tuning queries shows it
    beside the test's verdict (a coin toss on the split may not carry over); rows without the field do not."""
    from guda_bench import leaderboard as lb
    from guda_bench import power

    results = {"run": {}, "provenance": {}, "rows": [
        {"method": "iu", "kind": "method", "status": "ok", "metrics": {"top1": {"mean": 0.603}}},
        {"method": "iu@tuned", "kind": "method", "status": "ok", "metrics": {"top1": {"mean": 0.558}},
         "tuning": {"budget": 8, "at_edge": ["lr"],
                    "chosen_vs_shipped": {"top1_diff": 0.0057, "p_value": 0.8364, "n_tune": 350}}},
        {"method": "trak", "kind": "method", "status": "ok", "metrics": {"top1": {"mean": 0.5}}},
        {"method": "trak@tuned", "kind": "method", "status": "ok", "metrics": {"top1": {"mean": 0.52}},
         "tuning": {"budget": 8, "at_edge": [], "chosen_vs_shipped": None}},
        {"method": "guda", "kind": "method", "status": "ok", "metrics": {"top1": {"mean": 0.05}}},
        {"method": "guda@tuned", "kind": "method", "status": "ok", "metrics": {"top1": {"mean": 0.12}},
         "tuning": {"budget": 8, "at_edge": [], "chosen_vs_shipped": {"top1_diff": 0.071, "p_value": 0.0}}},
        {"method": "das", "kind": "method", "status": "ok", "metrics": {"top1": {"mean": 0.547}}},
        {"method": "das@tuned", "kind": "method", "status": "ok", "metrics": {"top1": {"mean": 0.524}},
         "tuning": {"budget": 8, "at_edge": [], "chosen_vs_shipped": {
             "top1_diff": 0.0429, "p_value": 0.0212, "p_best_of": 0.0634, "n_alternatives": 7}}}]}
    board = pd.DataFrame(lb.board_rows(results))
    tuned = board.set_index("method")
    assert tuned.loc["iu@tuned", "tuning_split_gain"] == pytest.approx(0.0057)
    assert tuned.loc["iu@tuned", "tuning_split_p"] == pytest.approx(0.8364)
    assert pd.isna(tuned.loc["trak@tuned", "tuning_split_p"]) and pd.isna(tuned.loc["iu", "tuning_split_p"])
    line = power.tuning_line(board, None)
    assert "iu 0.603->0.558 (-0.045, tuning split +0.006 p 0.84, lr at grid edge)" in line
    assert "trak 0.500->0.520 (+0.020)" in line and "guda 0.050->0.120 (+0.070, tuning split +0.071 p < 0.01)" in line
    # a record that also paid for the choice among the settings that ran shows it (p_best_of)
    assert "das 0.547->0.524 (-0.023, tuning split +0.043 p 0.02, best-of-8 p 0.06)" in line
    assert tuned.loc["das@tuned", "tuning_split_settings"] == 8
    assert pd.isna(tuned.loc["iu@tuned", "tuning_split_p_best_of"])


def test_a_record_carries_the_evidence_for_a_non_shipped_choice(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """tune_method end to end with scored settings stubbed: the second setting wins by 60 queries of 350 and its
    record says so (per-query hits stay out of the written record)."""
    from guda_bench import tuning
    from guda_bench.runner import make_adapter

    shipped = np.zeros(350)
    shipped[:200] = 1
    hits = [shipped, np.where(np.arange(350) < 260, 1.0, 0.0), np.where(np.arange(350) < 150, 1.0, 0.0)]
    calls = iter(range(3))

    def fake(ctx, entry, options, preset, gold_tune):
        h = hits[next(calls)]
        return {"tune": {"top1": float(h.mean()), "ndcg@3": 0.5}, "cost_s": 1.0, "used": {}, "hits": h}

    monkeypatch.setattr(tuning, "score_setting", fake)
    out = tmp_path / "guda.json"
    preset = make_adapter("digits").preset("default")
    rec = tuning.tune_method(None, METHODS.entry("guda"), preset, None, 3, 0, out, {})
    gain = json.loads(out.read_text())["chosen_vs_shipped"]
    assert rec["chosen_index"] == 1 and gain == rec["chosen_vs_shipped"]
    assert gain["top1_diff"] == pytest.approx(60 / 350) and gain["p_value"] < 0.001 and gain["n_tune"] == 350
    assert all("hits" not in s for s in json.loads(out.read_text())["settings"])
