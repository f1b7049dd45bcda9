"""Several draws of one board (guda_bench/draws.py): verdicts per pair on synthetic draws, and the CLI on real
tiny runs of two seeds (one published as the board, one a run folder)."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from guda_bench import draws as dr
from guda_bench.cli import main
from guda_bench.errors import BenchError
from tests.tiny_dataset import NAME, register


def synthetic(label: str, truth: str, hits: dict[str, np.ndarray], board: str = "b") -> dr.Draw:
    """A draw whose per-query Top-1 of each method is `hits` (ndcg@3 the same): rows carry their means."""
    per_query = pd.concat([pd.DataFrame({"method": m, "query": np.arange(len(h)), "top1": h.astype(float),
                                         "ndcg@3": h.astype(float)}) for m, h in hits.items()], ignore_index=True)
    rows = pd.DataFrame([{"method": m, "kind": "method", "status": "ok", "family": "", "tuned": False,
                          "top1": h.mean(), "ndcg@3": h.mean(), "top1_ci_low": h.mean() - 0.05,
                          "top1_ci_high": h.mean() + 0.05} for m, h in hits.items()])
    return dr.Draw(label, board, rows, per_query, {"truth_hash": truth, "seed": 0})


def test_verdicts_replicated_reversed_and_never_on_synthetic_draws():
    n = 400
    rng = np.random.default_rng(0)
    high, low, coin = np.ones(n), np.zeros(n), rng.integers(0, 2, n)
    first = synthetic("d0", "t0", {"a": high, "b": low, "c": coin, "d": coin.copy()})
    second = synthetic("d1", "t1", {"a": high, "b": coin, "c": low, "d": coin.copy()})
    first.per_query["lds"] = 0.5  # a board scored against the LDS truth too: its LDS is not compared
    result = dr.compare([first, second], n_boot=500)
    top1 = result["pairs"][result["pairs"]["metric"] == "top1"].set_index(["a", "b"])["verdict"]
    assert top1[("a", "b")] == dr.REPLICATED  # a beats b by 1.0 and by 0.5: separated both times, same sign
    assert top1[("a", "d")] == dr.REPLICATED
    assert top1[("b", "c")] == dr.REVERSED  # b < c in the first draw, b > c in the second
    assert top1[("c", "d")] == dr.ONE_DRAW  # tied in the first draw (identical hits), separated in the second
    s = result["summary"]
    assert s["reversed"] == 1 and s["pairs"] == 6 and s["n_draws"] == 2
    assert set(result["pairs"]["metric"]) == {"top1", "ndcg@3"}
    assert s["replicated"] == int((top1 == dr.REPLICATED).sum())
    rows = result["rows"].set_index("method")
    assert rows.loc["b", "top1_range"] == pytest.approx(abs(coin.mean() - 0.0))
    inside = rows["top1_inside_first_ci[d1]"]  # the first draw's CIs are its means +-0.05
    assert inside.to_dict() == {"a": True, "b": False, "c": False, "d": True}  # b and c moved by about 0.5
    assert s["top1_outside_first_ci"] == {"d1": 2} and s["n_rows"] == 4
    assert "reversed 1" in s["line"] and "2 draws" in s["line"] and "first draw's Top-1 CI 2 of 4" in s["line"]


def test_draws_must_be_different_draws_of_one_board():
    hits = {"a": np.ones(10), "b": np.zeros(10)}
    with pytest.raises(BenchError, match="two or more"):
        dr.compare([synthetic("d0", "t0", hits)])
    with pytest.raises(BenchError, match="same draw"):
        dr.compare([synthetic("d0", "t0", hits), synthetic("d1", "t0", hits)])
    with pytest.raises(BenchError, match="not draws of one board"):
        dr.compare([synthetic("d0", "t0", hits), synthetic("d1", "t1", hits, board="other")])
    with pytest.raises(BenchError, match="share a label"):
        dr.compare([synthetic("d0", "t0", hits), synthetic("d0", "t1", hits)])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    register()
    root = tmp_path_factory.mktemp("draws")
    base = ["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(root / "cache"), "--quiet",
            "--ceiling-seeds", "2", "--method", "logo,pixel-cosine,pixel-nn,random"]
    for seed in (0, 1, 2):
        assert main([*base, "--seed", str(seed), "--out", str(root / f"seed{seed}")]) == 0
    more = [*base[:-1], "pixel-kde,random", "--seed", "1", "--out", str(root / "seed1-more")]  # the same models
    assert main(more) == 0
    assert main(["leaderboard", "publish", str(root / "seed0"), "--dir", str(root / "boards"), "--no-plots"]) == 0
    return root


def test_cli_sets_a_second_seed_beside_the_board_and_show_prints_it(seeds, capsys):
    boards = seeds / "boards"
    capsys.readouterr()
    assert main(["leaderboard", "draws", NAME, str(seeds / "seed1"), "--dir", str(boards), "--write",
                 "--n-boot", "200"]) == 0
    out = capsys.readouterr().out
    assert "noise-ceiling" in out and "draws: 2 draws of the models" in out
    saved = json.loads((boards / f"{NAME}-draws.json").read_text())
    assert [d["label"] for d in saved["draws"]] == [NAME, "seed1"]
    assert [d["seed"] for d in saved["draws"]] == [0, 1]
    assert saved["draws"][0]["truth_hash"] != saved["draws"][1]["truth_hash"]  # the seed drew a new truth
    assert saved["written_by"]["command"].startswith(f"guda-bench leaderboard draws {NAME} seed1 --dir boards ")
    assert str(seeds) not in json.dumps(saved)  # no machine path (the test's folders are absolute)
    assert saved["written_by"]["n_boot"] == 200 and "git_commit" in saved["written_by"]
    rows = pd.read_csv(boards / f"{NAME}-draws.csv")
    assert {"noise-ceiling", "logo", "pixel-cosine", "pixel-nn", "random"} == set(rows["method"])
    board = pd.read_csv(boards / f"{NAME}.csv").set_index("method")
    assert rows.set_index("method").loc["pixel-nn", f"top1[{NAME}]"] == pytest.approx(board.loc["pixel-nn", "top1"])
    pairs = pd.read_csv(boards / f"{NAME}-draws-pairs.csv")
    assert set(pairs["verdict"]) <= {dr.REPLICATED, dr.ONE_DRAW, dr.REVERSED, dr.NEVER} and len(pairs) == 2 * 10
    assert main(["leaderboard", "show", NAME, "--dir", str(boards), "--format", "md"]) == 0
    assert saved["line"] in capsys.readouterr().out


def test_cli_refuses_the_same_draw_twice_and_write_without_the_board(seeds, capsys):
    boards = seeds / "boards"
    capsys.readouterr()
    assert main(["leaderboard", "draws", NAME, str(seeds / "seed0"), "--dir", str(boards)]) == 2
    err = capsys.readouterr().err
    assert "same draw" in err and len(err.strip().splitlines()) == 1
    assert main(["leaderboard", "draws", str(seeds / "seed0"), str(seeds / "seed1"), "--dir", str(boards),
                 "--write", "--n-boot", "100"]) == 2
    assert "name it among the draws" in capsys.readouterr().err


def test_replacing_the_board_drops_its_draws(seeds):
    boards = seeds / "boards-replaced"
    assert main(["leaderboard", "publish", str(seeds / "seed0"), "--dir", str(boards), "--no-plots"]) == 0
    assert main(["leaderboard", "draws", NAME, str(seeds / "seed1"), "--dir", str(boards), "--write",
                 "--n-boot", "100"]) == 0
    assert (boards / f"{NAME}-draws.json").exists()
    assert main(["leaderboard", "publish", "--replace", str(seeds / "seed1"), "--dir", str(boards),
                 "--no-plots"]) == 0
    assert not any((boards / f"{NAME}{suffix}").exists() for suffix in ("-draws.json", "-draws.csv",
                                                                         "-draws-pairs.csv"))


def test_three_draws_replicate_only_what_all_three_separate():
    n = 400
    coin = np.random.default_rng(1).integers(0, 2, n)
    high, low = np.ones(n), np.zeros(n)
    draws = [synthetic("d0", "t0", {"a": high, "b": low, "c": coin}),
             synthetic("d1", "t1", {"a": high, "b": low, "c": coin.copy()}),
             synthetic("d2", "t2", {"a": high, "b": coin.copy(), "c": coin.copy()})]
    result = dr.compare(draws, n_boot=500)
    top1 = result["pairs"][result["pairs"]["metric"] == "top1"].set_index(["a", "b"])["verdict"]
    assert top1[("a", "b")] == dr.REPLICATED and top1[("a", "c")] == dr.REPLICATED
    assert top1[("b", "c")] == dr.ONE_DRAW  # separated in d0 and d1, tied in d2: not every draw
    s = result["summary"]
    assert len(s["kendall_tau_top1"]) == 3 and s["line"].startswith("draws: 3 draws of the models (d0, d1, d2)")
    assert list(s["separated_in_each_draw"].values()) == [3, 3, 2]


def test_the_line_rounds_each_figure_once():
    """388/1050 = 0.369524 prints 0.370 and 746/1050 = 0.710476 prints 0.710, not rounded to 4 digits first
    (0.3695 -> 0.369, 0.7105 -> 0.711)."""
    n = 1050
    coin = np.random.default_rng(2).integers(0, 2, n)

    def ceiling_draw(label: str, hits: int) -> dr.Draw:
        draw = synthetic(label, f"t{label}", {"ceil": (np.arange(n) < hits).astype(float), "a": coin.copy()})
        draw.rows.loc[draw.rows["method"] == "ceil", "kind"] = "ceiling"
        return draw

    s = dr.compare([ceiling_draw("d0", 388), ceiling_draw("d1", 746)], n_boot=200)["summary"]
    assert s["ceiling_top1"] == [pytest.approx(388 / n, abs=1e-6), pytest.approx(746 / n, abs=1e-6)]
    assert s["line"].endswith("noise ceiling 0.370 / 0.710")


def test_a_row_in_some_draws_is_listed_with_its_levels_but_kept_out_of_pairs_and_counts():
    n = 400
    coin = np.random.default_rng(2).integers(0, 2, n)
    high, low = np.ones(n), np.zeros(n)
    draws = [synthetic("d0", "t0", {"a": high, "b": low, "a@tuned": high}),
             synthetic("d1", "t1", {"a": high, "b": low, "a@tuned": coin}),  # tuned on d0 and d1 only
             synthetic("d2", "t2", {"a": high, "b": low}),
             ]
    result = dr.compare(draws, n_boot=300)
    rows = result["rows"].set_index("method")
    assert rows["in_every_draw"].to_dict() == {"a": True, "b": True, "a@tuned": False}
    tuned = rows.loc["a@tuned"]
    assert tuned["top1[d0]"] == 1.0 and tuned["top1[d1]"] == pytest.approx(coin.mean()) and np.isnan(tuned["top1[d2]"])
    assert tuned["top1_range"] == pytest.approx(1 - coin.mean()) and tuned["top1_ci[d2]"] == ""
    assert not tuned["top1_inside_first_ci[d1]"] and tuned["top1_inside_first_ci[d2]"] is None
    assert "a@tuned" not in set(result["pairs"]["a"]) | set(result["pairs"]["b"])
    assert result["summary"]["n_rows"] == 2 and result["summary"]["top1_outside_first_ci"] == {"d1": 0, "d2": 0}
    printed = dr.top1_table(result).splitlines()
    assert printed[0].startswith("Top-1 per draw") and len(printed) == 2 + 3
    assert printed[-1].startswith("a@tuned") and printed[-1].endswith("(not in every draw: no pairs)")
    assert printed[-1].split()[1:4] == ["1.000", f"{coin.mean():.3f}", "-"]


def test_level_spread_tells_a_level_that_moves_between_draws_from_query_noise():
    rng = np.random.default_rng(3)
    n = 1000

    def hits(p: float) -> np.ndarray:
        return (rng.random(n) < p).astype(float)

    two = [hits(0.3), hits(0.4)]  # two draws: Q is the squared difference over the summed query variances
    q = (two[0].mean() - two[1].mean()) ** 2 / sum(h.var(ddof=1) / n for h in two)
    assert dr.level_spread(two)[1] == pytest.approx(chi2.sf(q, 1))
    moving = [hits(0.2), hits(0.5), hits(0.8)]
    sd, p = dr.level_spread(moving)
    assert p < 1e-9 and sd == pytest.approx(0.3, abs=0.03)  # the levels drawn: 0.2, 0.5, 0.8 (SD 0.3)
    sd, p = dr.level_spread([hits(0.5), hits(0.5), hits(0.5)])  # one level: only the queries differ
    assert p > 0.05 and sd < 0.02
    assert np.isnan(dr.level_spread([np.ones(n), hits(0.5)])[0])  # a draw without query variance weighs nothing
    assert np.isnan(dr.level_spread([hits(0.5)])[1])
    draws = [synthetic(f"d{i}", f"t{i}", {"moves": hits(p), "steady": hits(0.5), "one": np.ones(n)})
             for i, p in enumerate((0.2, 0.5, 0.8))]
    result = dr.compare(draws, n_boot=200)
    rows = result["rows"].set_index("method")
    assert rows.loc["moves", "top1_level_p_holm"] < 0.05 <= rows.loc["steady", "top1_level_p_holm"]
    assert np.isnan(rows.loc["one", "top1_level_p_holm"])
    s = result["summary"]
    assert (s["levels_differ"], s["levels_tested"], s["max_between_draw_sd"]["method"]) == (1, 2, "moves")
    assert "Top-1 levels differ beyond query noise in 1 of 2 rows" in s["line"]
    printed = dr.top1_table(result).splitlines()
    assert printed[2].startswith("moves") and printed[2].endswith("*") and printed[4].endswith("-")


def test_runs_of_one_draw_join_with_plus_and_must_share_its_truth(seeds, capsys):
    boards = seeds / "boards"
    joined = dr.load_draw(f"{seeds / 'seed1'}+{seeds / 'seed1-more'}", boards)
    assert joined.label == "seed1" and joined.path is None
    assert {"logo", "pixel-cosine", "pixel-nn", "pixel-kde", "random"} <= set(joined.per_query["method"])
    alone = dr.from_run(seeds / "seed1")
    assert joined.meta["truth_hash"] == alone.meta["truth_hash"]
    one = joined.by_method.loc["pixel-nn"]
    assert one["top1"] == pytest.approx(alone.by_method.loc["pixel-nn", "top1"])
    with pytest.raises(BenchError, match="share one truth"):
        dr.load_draw(f"{seeds / 'seed1'}+{seeds / 'seed0'}", boards)
    with pytest.raises(BenchError, match="is no run folder"):
        dr.load_draw(f"{seeds / 'seed1'}+{seeds / 'nope'}", boards)
    capsys.readouterr()
    assert main(["leaderboard", "draws", NAME, f"{seeds / 'seed1'}+{seeds / 'seed1-more'}", "--dir", str(boards),
                 "--n-boot", "100"]) == 0
    assert "pixel-kde" not in capsys.readouterr().out  # the board has no pixel-kde row: not a shared row


def test_stored_draws_join_a_new_draw_without_their_runs(seeds, tmp_path, capsys):
    boards = tmp_path / "boards"
    assert main(["leaderboard", "publish", str(seeds / "seed0"), "--dir", str(boards), "--no-plots"]) == 0
    assert main(["leaderboard", "draws", NAME, "--stored", "--dir", str(boards)]) == 2
    assert "no draws file" in capsys.readouterr().err
    assert main(["leaderboard", "draws", NAME, str(seeds / "seed1"), "--dir", str(boards), "--write",
                 "--n-boot", "200"]) == 0
    saved = json.loads((boards / f"{NAME}-draws.json").read_text())
    assert "rows" not in saved["draws"][0] and saved["draws"][1]["rows"]  # the board's own files hold its rows
    assert str(seeds) not in json.dumps(saved)
    first = dr.compare([dr.load_draw(NAME, boards), dr.from_run(seeds / "seed1")], n_boot=200)

    # the run folder gone, its stored draw compares as the run did: the same levels, pairs and verdicts
    stored = dr.stored_draws(boards / f"{NAME}.csv")
    assert [d.label for d in stored] == ["seed1"] and stored[0].meta["seed"] == 1
    again = dr.compare([dr.load_draw(NAME, boards), *stored], n_boot=200)
    pd.testing.assert_frame_equal(again["rows"], first["rows"], check_exact=False, atol=1e-5)
    top1 = [r[r["metric"] == "top1"].reset_index(drop=True) for r in (first["pairs"], again["pairs"])]
    pd.testing.assert_frame_equal(top1[1], top1[0])  # per-query Top-1 is stored exactly
    assert again["summary"]["line"] == first["summary"]["line"]

    # a run of a stored draw's models is that draw again; rewriting keeps the stored draw
    assert main(["leaderboard", "draws", NAME, str(seeds / "seed1-more"), "--stored", "--dir", str(boards)]) == 2
    assert "same draw" in capsys.readouterr().err
    assert main(["leaderboard", "draws", NAME, "--stored", "--dir", str(boards), "--write", "--n-boot", "200"]) == 0
    rewritten = json.loads((boards / f"{NAME}-draws.json").read_text())
    assert [d["label"] for d in rewritten["draws"]] == [NAME, "seed1"]
    assert rewritten["draws"][1]["rows"] == saved["draws"][1]["rows"]

    # a third draw joins the stored one; the board republished on another truth drops the stored draws
    assert main(["leaderboard", "draws", NAME, str(seeds / "seed2"), "--stored", "--dir", str(boards), "--write",
                 "--n-boot", "200"]) == 0
    three = json.loads((boards / f"{NAME}-draws.json").read_text())
    assert [d["label"] for d in three["draws"]] == [NAME, "seed1", "seed2"] and three["n_draws"] == 3
    assert set(pd.read_csv(boards / f"{NAME}-draws-per-query.csv.gz")["draw"]) == {"seed1", "seed2"}
    capsys.readouterr()
    assert main(["leaderboard", "draws", NAME, str(seeds / "seed2"), "--dir", str(boards), "--write",
                 "--n-boot", "100"]) == 0  # without --stored: says which stored draws it drops
    assert "replaces the draws stored beside tiny-test (seed1, seed2)" in capsys.readouterr().err
    assert main(["leaderboard", "publish", "--replace", str(seeds / "seed1"), "--dir", str(boards),
                 "--no-plots"]) == 0
    assert not (boards / f"{NAME}-draws-per-query.csv.gz").exists()


def test_a_draws_file_without_stored_draws_says_so(seeds, tmp_path, capsys):
    boards = tmp_path / "boards"
    assert main(["leaderboard", "publish", str(seeds / "seed0"), "--dir", str(boards), "--no-plots"]) == 0
    assert main(["leaderboard", "draws", NAME, str(seeds / "seed1"), "--dir", str(boards), "--write",
                 "--n-boot", "100"]) == 0
    (boards / f"{NAME}-draws-per-query.csv.gz").unlink()  # as a draws file written before draws were stored
    capsys.readouterr()
    assert main(["leaderboard", "draws", NAME, "--stored", "--dir", str(boards)]) == 2
    err = capsys.readouterr().err
    assert "stores no per-query metrics" in err and len(err.strip().splitlines()) == 1
    assert main(["leaderboard", "draws", str(seeds / "seed1"), "--stored", "--dir", str(boards)]) == 2
    assert "name the board among the draws" in capsys.readouterr().err
