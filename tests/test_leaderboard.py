"""Leaderboards (publish/show/compare), plots, and ground-truth bundles, on real tiny runs."""

import json
import tarfile

import numpy as np
import pandas as pd
import pytest

from guda_bench import leaderboard as lb
from guda_bench.cli import main
from tests.tiny_dataset import NAME, register


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    register()
    root = tmp_path_factory.mktemp("boards")
    base = ["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(root / "cache"), "--quiet",
            "--ceiling-seeds", "2"]
    assert main([*base, "--method", "logo,pixel-cosine,random", "--out", str(root / "a")]) == 0
    assert main([*base, "--method", "pixel-nn,guda", "--out", str(root / "b")]) == 0
    return root


def test_publish_merges_runs_of_one_truth_with_provenance_and_plots(runs, capsys):
    board_dir = runs / "boards"
    assert main(["leaderboard", "publish", str(runs / "a"), "--dir", str(board_dir)]) == 0
    assert main(["leaderboard", "publish", str(runs / "b"), "--dir", str(board_dir)]) == 0
    board = pd.read_csv(board_dir / f"{NAME}.csv")
    assert board["method"].iloc[0] == "noise-ceiling" and board["kind"].iloc[0] == "ceiling"
    assert set(board["method"]) == {"noise-ceiling", "logo", "pixel-cosine", "random", "pixel-nn", "guda"}
    for col in ("top1", "top1_ci_low", "top1_ci_high", "top1_stderr", "ndcg@3_ci_high", "speedup", "truth_hash",
                "config_hash", "git_commit", "torch", "diffusers", "seed", "created", "command", "device", "machine"):
        assert col in board.columns, col
    assert board["machine"].str.endswith(" cores").all()  # the machine that measured each row's cost
    assert (board["logo_machine"] == board["machine"]).all()  # LOGO trained here: speedups divide like by like
    assert board["truth_hash"].nunique() == 1
    ok = board[board.status == "ok"]
    assert (ok["top1_ci_low"] <= ok["top1"]).all() and (ok["top1"] <= ok["top1_ci_high"]).all()
    # republishing a run replaces its rows instead of duplicating them
    assert main(["leaderboard", "publish", str(runs / "b"), "--dir", str(board_dir)]) == 0
    assert len(pd.read_csv(board_dir / f"{NAME}.csv")) == len(board)
    groups = pd.read_csv(board_dir / f"{NAME}-per-group.csv")
    assert set(groups["group"].astype(str)) == {"a", "b", "c"} and len(groups) == 3 * len(board)
    assert (board_dir / f"{NAME}-pareto.png").stat().st_size > 1000
    assert (board_dir / f"{NAME}-queries.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["leaderboard", "show", NAME, "--dir", str(board_dir), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert md.splitlines()[2].startswith("| noise-ceiling") and "*methods*" in md.splitlines()[3]


def test_publish_refuses_a_run_with_another_ground_truth(runs, capsys):
    board_dir = runs / "boards-mixed"
    assert main(["leaderboard", "publish", str(runs / "a"), "--dir", str(board_dir), "--no-plots"]) == 0
    before = (board_dir / f"{NAME}.csv").read_bytes()
    other = runs / "other"
    other.mkdir()
    res = json.loads((runs / "a" / "results.json").read_text())
    res["run"]["truth_hash"] = "0" * 64
    (other / "results.json").write_text(json.dumps(res))
    code = main(["leaderboard", "publish", str(other), "--dir", str(board_dir), "--no-plots"])
    err = capsys.readouterr().err
    assert code == 2 and "refusing to publish" in err and err.count("\n") == 1
    assert "--truth-bundle" not in err  # no bundle beside the board: nothing to point at
    assert (board_dir / f"{NAME}.csv").read_bytes() == before
    (board_dir / f"{NAME}.truth.tar.gz").write_bytes(b"")  # a board that ships its truth bundle
    assert main(["leaderboard", "publish", str(other), "--dir", str(board_dir), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"--truth-bundle {board_dir / NAME}.truth.tar.gz" in err and err.count("\n") == 1


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    base = rng.random(300)
    better = {"top1": (base < 0.8).astype(float)}
    worse = {"top1": (base < 0.5).astype(float)}  # paired: wherever 'worse' is right, 'better' is too
    r = lb.paired_bootstrap(better, worse, n_boot=2000)[0]
    assert r["diff"] == pytest.approx(0.3, abs=0.05) and r["p_value"] < 0.001 and r["ci_low"] > 0
    same = lb.paired_bootstrap(better, better, n_boot=2000)[0]
    assert same["diff"] == 0 and same["p_value"] == 1.0


def test_compare_two_methods_of_one_run_and_one_method_of_two_runs(runs, capsys):
    assert main(["leaderboard", "compare", str(runs / "a"), "--method", "logo,random", "--format", "json",
                 "--n-boot", "500"]) == 0
    out = json.loads(capsys.readouterr().out)
    top1 = next(r for r in out["rows"] if r["metric"] == "top1")
    assert top1["mean_a"] == 1.0 and top1["diff"] == pytest.approx(1.0 - top1["mean_b"])
    assert main(["leaderboard", "compare", str(runs / "a"), str(runs / "b"), "--method", "pixel-cosine,pixel-nn",
                 "--n-boot", "200"]) == 0
    assert "paired bootstrap" in capsys.readouterr().out
    code = main(["leaderboard", "compare", str(runs / "a"), "--method", "logo,nope"])
    assert code == 2 and "no scores for 'nope'" in capsys.readouterr().err


def test_bundle_round_trip_scores_a_new_method_without_training_logo(runs, tmp_path, capsys):
    bundle = tmp_path / "truth.tar.gz"
    assert main(["bundle", "export", str(runs / "a"), str(bundle), "--cache", str(runs / "cache")]) == 0
    fresh = tmp_path / "fresh-cache"
    capsys.readouterr()
    assert main(["bundle", "import", str(bundle), "--cache", str(fresh)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["data"] == "training data verified" and len(info["added"]) == 4  # model, queries, 2 logoa
    assert main(["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(fresh), "--quiet", "--ceiling-seeds",
                 "2", "--method", "pixel-nn", "--out", str(tmp_path / "new")]) == 0
    new = json.loads((tmp_path / "new" / "results.json").read_text())
    old = json.loads((runs / "a" / "results.json").read_text())
    assert new["run"]["truth_hash"] == old["run"]["truth_hash"]
    assert len(list((fresh / "model").iterdir())) == 1  # only the full model: no LOGO model was trained
    assert new["truth"]["cost_s"] == pytest.approx(old["truth"]["cost_s"], abs=0.5)  # LOGO cost from the bundle


def test_bundle_import_refuses_a_tampered_bundle(runs, tmp_path, capsys):
    bundle = tmp_path / "truth.tar.gz"
    assert main(["bundle", "export", str(runs / "a"), str(bundle), "--cache", str(runs / "cache")]) == 0
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(bundle) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name.endswith("logoa.npy") and "flipped" not in locals():
                data = data[:-1] + bytes([data[-1] ^ 1])
                flipped = True
            import io

            dst.addfile(member, io.BytesIO(data))
    code = main(["bundle", "import", str(tampered), "--cache", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and "refusing the bundle" in err and err.count("\n") == 1
    assert not (tmp_path / "c" / "logoa").exists()


def test_pareto_front_keeps_only_undominated_methods():
    from guda_bench.plots import pareto_front

    cost = np.array([1.0, 2.0, 3.0, 10.0, 0.5])
    quality = np.array([0.5, 0.4, 0.8, 0.8, 0.1])
    assert pareto_front(cost, quality).tolist() == [4, 0, 2]


def test_publish_writes_pairs_power_and_per_query_files_that_merge_like_the_board(runs, capsys):
    board_dir = runs / "boards-power"
    assert main(["leaderboard", "publish", str(runs / "a"), "--dir", str(board_dir)]) == 0
    assert main(["leaderboard", "publish", str(runs / "b"), "--dir", str(board_dir)]) == 0
    board = pd.read_csv(board_dir / f"{NAME}.csv")
    assert dict(zip(board["method"], board["family"], strict=True)) == {
        "noise-ceiling": "ceiling", "logo": "truth", "pixel-cosine": "similarity", "pixel-nn": "similarity",
        "random": "chance", "guda": "attribution"}
    per_query = pd.read_csv(board_dir / f"{NAME}-per-query.csv")
    n_test = int(board["n_test"].iloc[0])
    assert per_query.groupby("method").size().to_dict() == {m: n_test for m in board["method"]}
    pairs = pd.read_csv(board_dir / f"{NAME}-pairs.csv")
    n_ok = len(board)
    assert len(pairs) == 2 * n_ok * (n_ok - 1) // 2  # every pair of ok rows (ceiling included), Top-1 and NDCG@3
    assert set(pairs["metric"]) == {"top1", "ndcg@3"}
    assert (pairs["p_holm"] >= pairs["p_value"]).all() and (pairs["p_holm"] <= 1).all()
    # each pair's diff is the difference of the two rows' published means on the same test queries
    means = dict(zip(board["method"], board["top1"], strict=True))
    for r in pairs[pairs.metric == "top1"].itertuples():
        assert r.diff == pytest.approx(means[r.a] - means[r.b], abs=1e-5)
    # and the pair test is the same test as `leaderboard compare` (same resamples)
    cmp = lb.compare(runs / "a", None, "logo", "random", n_boot=10_000)["rows"][0]
    row = pairs[(pairs.metric == "top1") & (pairs.a == "logo") & (pairs.b == "random")].iloc[0]
    assert row["p_value"] == pytest.approx(cmp["p_value"]) and row["ci_low"] == pytest.approx(cmp["ci_low"], abs=1e-4)
    power = json.loads((board_dir / f"{NAME}-power.json").read_text())
    assert power["n_test"] == n_test and power["best_similarity"] in ("pixel-cosine", "pixel-nn")
    assert power["pairs"] == 6  # guda, pixel-cosine, pixel-nn, random: the truth and the ceiling are not methods
    assert power["line"].startswith("power: n_test")
    beyond = power["beyond_similarity"]  # every ok row but the truth and the reference, on the reference's misses
    assert beyond["reference"] == power["best_similarity"] and beyond["n_test"] == n_test
    assert {r["method"] for r in beyond["rows"]} == set(board["method"]) - {"logo", beyond["reference"]}
    assert (board_dir / f"{NAME}-pairs.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["leaderboard", "show", NAME, "--dir", str(board_dir)]) == 0
    shown = capsys.readouterr().out
    assert "power: n_test" in shown and f"test queries {beyond['reference']} misses" in shown
    # republishing a run replaces its per-query rows, it does not duplicate them
    assert main(["leaderboard", "publish", str(runs / "b"), "--dir", str(board_dir), "--no-plots"]) == 0
    assert len(pd.read_csv(board_dir / f"{NAME}-per-query.csv")) == len(per_query)


def test_show_names_a_non_board_file_or_a_typo_in_one_line(runs, capsys):
    board_dir = runs / "boards-show"
    assert main(["leaderboard", "publish", str(runs / "a"), "--dir", str(board_dir), "--no-plots"]) == 0
    (board_dir / "study.csv").write_text("grouping,top1\nclasses,0.9\n")  # a study table, not a board
    (board_dir / "empty.csv").write_text("")
    capsys.readouterr()
    for name in (f"{NAME}-pairs", f"{NAME}-per-group", "study", "empty"):
        assert main(["leaderboard", "show", name, "--dir", str(board_dir)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith("guda-bench: error: ") and "is not a leaderboard" in err and len(err.splitlines()) == 1
    assert main(["leaderboard", "show", NAME[:-1], "--dir", str(board_dir)]) == 2
    err = capsys.readouterr().err
    # the typo gets a suggestion, and the list of published boards names boards only
    assert f"did you mean '{NAME}'" in err and f"(published: {NAME})" in err


def test_beyond_similarity_scores_rows_on_the_queries_the_strongest_look_alike_row_misses():
    from guda_bench.power import beyond_line, beyond_similarity

    q = np.arange(8)
    looks = np.array([1, 1, 1, 1, 0, 0, 0, 0])  # the shipped look-alike row
    tuned = np.array([1, 1, 1, 1, 1, 1, 0, 0])  # its tuned row: stronger, so it is the reference
    method = np.array([0, 0, 0, 0, 1, 1, 1, 0])  # right on one of the tuned row's two misses (query 6)
    ceiling = np.array([1, 1, 1, 1, 1, 1, 1, 1])
    frame = pd.concat([pd.DataFrame({"method": m, "query": q, "top1": v.astype(float), "ndcg@3": 0.5})
                       for m, v in (("pixel-x", looks), ("pixel-x@tuned", tuned), ("gradient", method),
                                    ("noise-ceiling", ceiling), ("logo", ceiling))], ignore_index=True)
    board = pd.DataFrame({"method": ["noise-ceiling", "logo", "pixel-x", "pixel-x@tuned", "gradient", "gone"],
                          "kind": ["ceiling", "method", "method", "method", "method", "method"],
                          "status": ["ok", "ok", "ok", "ok", "ok", "unavailable"],
                          "family": ["ceiling", "truth", "similarity", "similarity", "attribution", "attribution"],
                          "tuned": [False, False, False, True, False, False],
                          "top1": [1.0, 1.0, 0.5, 0.75, 0.375, None]})
    out = beyond_similarity(board, frame, n_boot=500)
    assert out["reference"] == "pixel-x@tuned" and (out["n_missed"], out["n_test"]) == (2, 8)
    got = {r["method"]: r["top1"] for r in out["rows"]}
    assert got == {"noise-ceiling": 1.0, "gradient": 0.5, "pixel-x": 0.0}  # queries 6 and 7 only; no truth row
    assert all(r["ci_low"] <= r["top1"] <= r["ci_high"] for r in out["rows"])
    line = beyond_line(out)
    assert line.startswith("beyond similarity (Top-1 on the 2 of 8 test queries pixel-x@tuned misses)")
    assert line.index("noise-ceiling") < line.index("gradient 0.500")
    assert beyond_similarity(board[board.family != "similarity"], frame) is None  # no look-alike row: no line
    # a tuned row level with its shipped twin: the shipped row is the reference, in whatever order the board holds
    tie = board.assign(top1=[1.0, 1.0, 0.75, 0.75, 0.375, None])
    for order in (tie, tie.iloc[::-1]):
        assert beyond_similarity(order, frame, n_boot=10)["reference"] == "pixel-x"


def test_holm_adjustment_matches_a_hand_computation():
    from guda_bench.power import holm

    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone: 0.02, 0.03, 0.06, 0.06
    assert holm(np.array([0.01, 0.04, 0.03, 0.005])) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(np.array([0.5, 0.9])) == pytest.approx([1.0, 1.0])  # step-down stays monotone


def test_pairs_separate_a_real_difference_and_not_a_null_one():
    from guda_bench.power import pairs, power_line, power_summary

    rng = np.random.default_rng(1)
    u = rng.random(400)
    q = np.arange(400)
    frame = pd.concat([pd.DataFrame({"method": m, "query": q, "top1": (u < p).astype(float), "ndcg@3": u})
                       for m, p in (("good", 0.8), ("good-twin", 0.8), ("weak", 0.4))], ignore_index=True)
    out = pairs(frame, ["good", "good-twin", "weak"], n_boot=2000).set_index(["metric", "a", "b"])
    assert not out.loc[("top1", "good", "good-twin"), "separated"]  # identical per-query values
    assert out.loc[("top1", "good", "good-twin"), "p_value"] == 1.0
    assert out.loc[("top1", "good", "weak"), "separated"] and out.loc[("top1", "good", "weak"), "ci_low"] > 0.3
    board = pd.DataFrame({"method": ["good", "good-twin", "weak"], "kind": "method", "status": "ok",
                          "family": ["attribution", "attribution", "similarity"], "top1": [0.8, 0.8, 0.4],
                          "top1_ci_low": [0.76, 0.76, 0.35], "top1_ci_high": [0.84, 0.84, 0.45], "n_test": 400})
    summary = power_summary(board, out.reset_index())
    assert (summary["pairs_separated"], summary["pairs"]) == (2, 3)
    assert summary["best_similarity"] == "weak" and summary["ceiling_minus_similarity"] is None
    assert "2/3" in power_line(summary)
    with pytest.raises(ValueError, match="same test queries"):
        pairs(frame[~((frame.method == "weak") & (frame["query"] == 0))], ["good", "weak"], n_boot=10)


def test_the_cost_line_names_the_machines_and_warns_when_speedups_divide_across_them():
    from guda_bench.leaderboard import cost_machines

    board = pd.DataFrame({"method": ["noise-ceiling", "logo", "a", "b"],
                          "kind": ["ceiling", "method", "method", "method"], "status": "ok",
                          "cost_s": [None, 600.0, 40.0, 2.0],
                          "machine": [None, "Xeon, 2 cores", "Xeon, 2 cores", "EPYC, 2 cores"],
                          "logo_machine": [None, "Xeon, 2 cores", "Xeon, 2 cores", "EPYC, 2 cores"]})
    line = cost_machines(board)
    assert "Xeon, 2 cores (2 rows), EPYC, 2 cores (1 rows)" in line and "more than one machine" in line
    same = board.assign(machine="Xeon, 2 cores", logo_machine="Xeon, 2 cores")
    assert "more than one machine" not in cost_machines(same) and "(3 rows)" in cost_machines(same)
    old = board.drop(columns=["machine", "logo_machine"])  # published before runs recorded it
    assert cost_machines(old) == ("costs measured on: unrecorded (3 rows); LOGO's cost, which speedups divide: "
                                  "unrecorded")
    assert cost_machines(board.assign(status="failed")) is None
    # a row scored on EPYC from cached work built on the Xeon (a bundle, an older cache) counts as the Xeon's
    rerun = board.assign(machine=[None, "EPYC, 2 cores", "EPYC, 2 cores", "EPYC, 2 cores"],
                         cost_machine=[None, "Xeon, 2 cores", "Xeon, 2 cores", None],
                         cost_machine_share=[None, 1.0, 0.9, None])
    line = cost_machines(rerun)
    assert "Xeon, 2 cores (2 rows), EPYC, 2 cores (1 rows)" in line
    assert "1 rows' costs were measured on more than one machine" in line
    # LOGO's models from a bundle whose manifests name no machine: its cost is not the EPYC's
    unknown = rerun.assign(cost_machine=[None, "unrecorded", "EPYC, 2 cores", None])
    assert "EPYC, 2 cores (2 rows), unrecorded (1 rows)" in cost_machines(unknown)


def test_board_rows_name_the_machine_that_measured_most_of_each_rows_cost():
    from guda_bench import leaderboard as lb

    results = {"run": {}, "provenance": {"machine": "EPYC, 2 cores"}, "rows": [
        {"method": "a", "kind": "method", "status": "ok", "cost_s": 100.0,
         "cost_machines": {"Xeon, 2 cores": 90.0, "EPYC, 2 cores": 10.0}},
        {"method": "b", "kind": "method", "status": "ok", "cost_s": 1.0}]}  # a run from before cost_machines
    rows = {r["method"]: r for r in lb.board_rows(results)}
    assert (rows["a"]["cost_machine"], rows["a"]["cost_machine_share"]) == ("Xeon, 2 cores", pytest.approx(0.9))
    assert rows["b"]["cost_machine"] is None and rows["b"]["machine"] == "EPYC, 2 cores"


def test_lds_pairs_cover_only_rows_scored_against_lds_and_rank_the_top_five_by_lds():
    from guda_bench.power import lds_power_line, pairs, power_summary

    rng = np.random.default_rng(2)
    q = np.arange(300)
    lds = {"a": 0.6, "b": 0.6, "c": 0.1, "old": np.nan}  # "old": published before runs saved the LDS truth
    frame = pd.concat([pd.DataFrame({"method": m, "query": q, "top1": (rng.random(300) < 0.5).astype(float),
                                     "ndcg@3": 0.5, "lds": v if np.isnan(v) else v + 0.3 * rng.standard_normal(300)})
                       for m, v in lds.items()], ignore_index=True)
    out = pairs(frame, list(lds), n_boot=2000)
    assert len(out[out["metric"] == "top1"]) == 6  # every pair on Top-1
    by_lds = out[out["metric"] == "lds"].set_index(["a", "b"])
    assert sorted(by_lds.index) == [("a", "b"), ("a", "c"), ("b", "c")]  # "old" has no per-query LDS
    assert by_lds.loc[("a", "c"), "separated"] and not by_lds.loc[("a", "b"), "separated"]
    board = pd.DataFrame({"method": list(lds), "kind": "method", "status": "ok", "family": "attribution",
                          "top1": [0.5, 0.49, 0.48, 0.47], "top1_ci_low": 0.4, "top1_ci_high": 0.6, "n_test": 300,
                          "lds": [0.58, 0.61, 0.1, np.nan]})
    summary = power_summary(board, out)
    assert summary["lds_top_methods"] == ["b", "a", "c"]  # ordered by LDS, not Top-1
    assert (summary["lds_pairs_separated"], summary["lds_pairs"]) == (2, 3)
    assert "group LDS power: method pairs separated 2/3" in lds_power_line(summary)
    assert lds_power_line(power_summary(board, out[out["metric"] != "lds"])) is None  # a board without LDS pairs


def test_a_published_truth_bundle_lets_a_new_method_join_a_copy_of_the_board(runs, tmp_path, capsys):
    """Add your method to a board: fresh cache + the board's bundle + a method -> a new row, the others untouched."""
    import json
    import shutil

    board_dir = tmp_path / "boards"
    assert main(["leaderboard", "publish", str(runs / "a"), "--dir", str(board_dir), "--no-plots"]) == 0
    bundle = board_dir / f"{NAME}.truth.tar.gz"
    cache = tmp_path / "maintainer-cache"  # the board's maintainer built the truth on another machine
    shutil.copytree(runs / "cache", cache)
    for manifest in (cache / "logoa").glob("*/manifest.json"):
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "machine": "a bigger CPU, 64 cores"}))
    assert main(["bundle", "export", str(runs / "a"), str(bundle), "--cache", str(cache)]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(board_dir, copy)
    before = pd.read_csv(copy / f"{NAME}.csv")
    fresh = tmp_path / "fresh"
    assert main(["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(fresh), "--quiet",
                 "--truth-bundle", str(bundle), "--method", "pixel-nn", "--out", str(tmp_path / "mine")]) == 0
    assert "from" in capsys.readouterr().out
    assert sorted(p.name for p in (fresh / "model").iterdir()) and len(list((fresh / "model").iterdir())) == 1
    assert main(["leaderboard", "publish", str(tmp_path / "mine"), "--dir", str(copy), "--no-plots"]) == 0
    after = pd.read_csv(copy / f"{NAME}.csv")
    assert set(after["method"]) == set(before["method"]) | {"pixel-nn"}
    key = ["method", "top1", "ndcg@3", "truth_hash", "created"]
    old = before[key].sort_values("method").reset_index(drop=True)
    kept = after[after["method"] != "pixel-nn"][key].sort_values("method").reset_index(drop=True)
    pd.testing.assert_frame_equal(old, kept)  # the other rows are untouched
    pairs = pd.read_csv(copy / f"{NAME}-pairs.csv")
    assert ((pairs["a"] == "pixel-nn") | (pairs["b"] == "pixel-nn")).any()
    # its speedup divides the maintainer's LOGO cost: the row says where each side was measured
    mine = after.set_index("method").loc["pixel-nn"]
    assert mine["logo_machine"] == "a bigger CPU, 64 cores" and mine["machine"].endswith(" cores")
    assert mine["machine"] != mine["logo_machine"]


def test_a_method_is_tuned_against_a_published_truth_bundle_without_logo_training(runs, tmp_path, capsys):
    """A plugin author tunes on a board's tuning split from its bundle alone: no LOGO model is trained."""
    import json

    bundle = tmp_path / f"{NAME}.truth.tar.gz"
    assert main(["bundle", "export", str(runs / "a"), str(bundle), "--cache", str(runs / "cache")]) == 0
    fresh = tmp_path / "fresh"
    assert main(["tune", "--dataset", NAME, "--preset", "tiny", "--cache", str(fresh), "--quiet", "--method", "trak",
                 "--budget", "2", "--truth-bundle", str(bundle), "--tuning-dir", str(tmp_path / "tuning")]) == 0
    assert "from" in capsys.readouterr().out
    assert len(list((fresh / "model").iterdir())) == 1  # the bundle's full model, nothing retrained
    record = json.loads((tmp_path / "tuning" / NAME / "trak.json").read_text())
    assert record["status"] == "ok" and len(record["settings"]) == 2


def test_boards_carry_no_machine_paths():
    from pathlib import Path

    assert lb.clean_command("/tmp/venv1/bin/guda-bench run --method all --out /tmp/x/run --cache /home/u/c") == \
        "guda-bench run --method all --out OUT --cache CACHE"
    assert lb.clean_command("guda-bench run --out runs/x") == "guda-bench run --out runs/x"
    assert lb.clean_command("guda-bench leaderboard draws digits /home/u/runs/s1 --truth-bundle /tmp/b.tar.gz") == \
        "guda-bench leaderboard draws digits s1 --truth-bundle b.tar.gz"
    assert lb.clean_command("guda-bench leaderboard draws digits /home/u/runs/s1+/home/u/runs/s1-tuned runs/s2") == \
        "guda-bench leaderboard draws digits s1+s1-tuned runs/s2"  # runs of one draw joined by +
    home = str(Path.home())
    assert lb.home_relative(f"looked at {home}/.cache/x.bin") == "looked at ~/.cache/x.bin"


def test_a_run_without_the_boards_leaders_keeps_its_query_grid(runs, tmp_path):
    board_dir = tmp_path / "boards"
    grid = board_dir / f"{NAME}-queries.png"
    assert main(["leaderboard", "publish", str(runs / "a"), "--dir", str(board_dir)]) == 0
    drawn = grid.read_bytes()
    # run b scores two methods: the board's four leaders are not all in it, so the grid is not redrawn
    assert main(["leaderboard", "publish", str(runs / "b"), "--dir", str(board_dir)]) == 0
    assert grid.read_bytes() == drawn
    grid.unlink()  # a board without a grid gets one from whatever run is published
    assert main(["leaderboard", "publish", str(runs / "b"), "--dir", str(board_dir)]) == 0
    assert grid.stat().st_size > 1000 and grid.read_bytes() != drawn


def test_query_grid_draws_colour_images_in_colour():
    from guda_bench.plots import _image

    rgb = np.stack([np.full((4, 4), 1.0), np.full((4, 4), -1.0), np.zeros((4, 4))])
    picture, style = _image(rgb)
    assert picture.shape == (4, 4, 3) and style == {}
    assert np.allclose(picture[0, 0], [1.0, 0.0, 0.5])
    grey, style = _image(np.zeros((1, 4, 4)))
    assert grey.shape == (4, 4) and style["cmap"] == "gray"


def test_publishing_one_more_row_leaves_the_other_rows_derived_files_byte_identical(runs):
    """Figures derived from a board (pairs, power, per-query, per-group) come from what its CSVs hold, so publishing
    one more row (here an unavailable method, as when a text-only method joins an unconditional board) or a run
    again never moves the other rows' figures in their last digits, nor reorders their rows."""
    board_dir = runs / "boards-idempotent"
    one_row = runs / "prompt-text"
    assert main(["run", "--dataset", NAME, "--preset", "tiny", "--cache", str(runs / "cache"), "--quiet",
                 "--method", "prompt-text", "--out", str(one_row)]) == 0
    assert [r["status"] for r in json.loads((one_row / "results.json").read_text())["rows"]] == ["unavailable"]
    for run in ("a", "b"):
        assert main(["leaderboard", "publish", str(runs / run), "--dir", str(board_dir), "--no-plots"]) == 0

    def derived() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in board_dir.iterdir() if p.suffix in (".csv", ".json")
                and p.name != f"{NAME}.csv"}

    files = derived()
    assert {f"{NAME}-power.json", f"{NAME}-pairs.csv", f"{NAME}-per-query.csv", f"{NAME}-per-group.csv"} == set(files)
    assert main(["leaderboard", "publish", str(one_row), "--dir", str(board_dir), "--no-plots"]) == 0
    assert "prompt-text" in set(pd.read_csv(board_dir / f"{NAME}.csv")["method"])
    assert derived() == files
    board = (board_dir / f"{NAME}.csv").read_bytes()
    assert main(["leaderboard", "publish", str(one_row), "--dir", str(board_dir), "--no-plots"]) == 0
    assert derived() == files and (board_dir / f"{NAME}.csv").read_bytes() == board


def test_merging_replaces_a_methods_rows_in_place_and_keeps_the_files_column_order(tmp_path):
    path = tmp_path / "board.csv"
    pd.DataFrame({"method": ["a", "b", "c"], "x": [1.0, 2.0, 3.0], "y": ["p", "q", "r"]}).to_csv(path, index=False)
    new = pd.DataFrame({"method": ["a", "d"], "z": [True, False], "y": ["P", "S"], "x": [10.0, 40.0]})
    merged = lb._merged(path, new)
    assert list(merged.columns) == ["method", "x", "y", "z"]
    assert merged["method"].tolist() == ["a", "b", "c", "d"] and merged["x"].tolist() == [10.0, 2.0, 3.0, 40.0]
    assert lb._merged(path, new.iloc[:0]).equals(pd.read_csv(path))


def test_replace_starts_a_board_afresh_from_one_run_and_drops_a_stale_truth_bundle(runs, capsys):
    """A board whose truth was rebuilt (more LOGO studies) is replaced as a whole: its files equal a fresh
    publish of the new run, the old rows and the old truth's bundle are gone; a run that cannot be published
    leaves the old board whole."""
    import shutil

    board_dir, fresh_dir = runs / "boards-replaced", runs / "boards-fresh"
    for run in ("a", "b"):
        assert main(["leaderboard", "publish", str(runs / run), "--dir", str(board_dir), "--no-plots"]) == 0
    bundle = board_dir / f"{NAME}.truth.tar.gz"
    bundle.write_bytes(b"old truth")
    rebuilt = runs / "rebuilt"  # run a's rows against another truth, one pandas would read as a number
    shutil.copytree(runs / "a", rebuilt)
    res = json.loads((rebuilt / "results.json").read_text())
    res["run"]["truth_hash"] = "1" * 64
    (rebuilt / "results.json").write_text(json.dumps(res))

    broken = runs / "rebuilt-broken"  # its truth scores are missing: publishing it fails
    shutil.copytree(rebuilt, broken)
    (broken / "scores" / "_truth_logoa.npy").unlink()
    before = {p.name: p.read_bytes() for p in board_dir.iterdir()}
    assert main(["leaderboard", "publish", str(broken), "--dir", str(board_dir), "--no-plots", "--replace"]) != 0
    assert {p.name: p.read_bytes() for p in board_dir.iterdir()} == before  # no scratch folder left either
    capsys.readouterr()

    assert main(["leaderboard", "publish", str(rebuilt), "--dir", str(board_dir), "--no-plots", "--replace"]) == 0
    out = capsys.readouterr().out
    assert f"removed {bundle}" in out and "bundle export" in out and not bundle.exists()
    assert main(["leaderboard", "publish", str(rebuilt), "--dir", str(fresh_dir), "--no-plots"]) == 0
    replaced = {p.name: p.read_bytes() for p in board_dir.iterdir()}
    assert replaced == {p.name: p.read_bytes() for p in fresh_dir.iterdir()}
    board = pd.read_csv(board_dir / f"{NAME}.csv", dtype=lb.TEXT_COLUMNS)
    assert set(board["truth_hash"]) == {"1" * 64} and not {"pixel-nn", "guda"} & set(board["method"])
    bundle.write_bytes(b"this truth")  # replacing with a run of the board's own truth keeps its bundle
    assert main(["leaderboard", "publish", str(rebuilt), "--dir", str(board_dir), "--no-plots", "--replace"]) == 0
    assert bundle.read_bytes() == b"this truth"


def test_a_pairs_matrix_needs_three_rows(tmp_path):
    """Two rows with per-query LDS (a re-run row and the ceiling on a board whose older rows lack it) are one
    pair, which pairs.csv holds; the who-beats-whom matrix starts at three rows."""
    from guda_bench.power import pairs, pairs_plot

    rng = np.random.default_rng(0)
    frame = pd.concat([pd.DataFrame({"method": m, "query": np.arange(200), "top1": (rng.random(200) < p) * 1.0,
                                     "ndcg@3": 0.5}) for m, p in (("a", 0.8), ("b", 0.5), ("c", 0.2))],
                      ignore_index=True)
    two = pairs(frame[frame.method != "c"], ["a", "b"], n_boot=200)
    pairs_plot(two, ["a", "b"], tmp_path / "two.png")
    assert not (tmp_path / "two.png").exists() and len(two[two.metric == "top1"]) == 1
    three = pairs(frame, ["a", "b", "c"], n_boot=200)
    pairs_plot(three, ["a", "b", "c"], tmp_path / "three.png")
    assert (tmp_path / "three.png").stat().st_size > 0


def test_a_long_reason_is_cut_at_a_word_boundary_and_marked():
    from guda_bench.results import short_reason

    reason = "no CLIP weights: --option clip.weights=PATH not given and no local folder found"
    assert short_reason(reason, 50) == "no CLIP weights: --option clip.weights=PATH..."
    assert short_reason("needs prompts, e.g. --dataset styled-digits or style-canvas", 30) == "needs prompts, e.g...."
    assert short_reason("x" * 80, 50) == "x" * 47 + "..."  # one long word: cut inside it
    assert all(len(short_reason(reason, w)) <= w for w in (10, 20, 50, 60))
    assert short_reason("short", 50) == "short" and short_reason(None, 50) == short_reason(float("nan"), 50) == ""
