"""--targets: score only some groups, keep the others' images in every model as background (SPEC §7)."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from guda_bench.datasets.base import DatasetAdapter

from guda_bench.benchmark import Benchmark
from guda_bench.cli import main
from guda_bench.conditional import null_label
from guda_bench.errors import BenchError
from guda_bench.gradients import group_aggregate
from guda_bench.registry import DATASETS
from guda_bench.runner import benchmark_of
from guda_bench.targets import parse_targets, with_targets
from guda_bench.text import TextData
from tests.conftest import tiny_preset
from tests.tiny_dataset import TINY


@pytest.fixture
def bench() -> Benchmark:
    """5 classes x 6 random images."""
    g = torch.Generator().manual_seed(0)
    labels = np.repeat(np.arange(5), 6)
    images = torch.rand((len(labels), 1, 8, 8), generator=g) * 2 - 1
    return Benchmark("t", "class", images, labels, labels.copy(), [f"g{c}" for c in range(5)], tiny_preset())


def test_targets_become_the_groups_and_the_rest_background(bench):
    sub = with_targets(bench, ("g3", "g0", "g4"))
    assert sub.group_names == ["g3", "g0", "g4"] and sub.n_groups == 3 and sub.n_background == 12
    np.testing.assert_array_equal(sub.members(0), bench.members(3))
    np.testing.assert_array_equal(np.flatnonzero(sub.group_of == -1), np.concatenate([bench.members(1),
                                                                                        bench.members(2)]))
    # LOGO of a target keeps the background: the same images as in the all-groups benchmark
    np.testing.assert_array_equal(sub.without(1), bench.without(0))
    # the full model is the all-groups one; everything keyed by the grouping is new
    assert sub.full_model_hash() == bench.data_hash() and sub.data_hash() != bench.data_hash()
    assert with_targets(bench, None) is bench


@pytest.mark.parametrize("text, message", [
    ("g0,g1", "NDCG@3 and Top-3 need >= 3"),
    ("g0,g1,g9", "no group 'g9'"),
    ("g0,g1,G2", "did you mean 'g2'"),
])
def test_bad_targets_are_one_line_errors(bench, text, message):
    with pytest.raises(BenchError, match=message):
        with_targets(bench, parse_targets(text))


def test_parse_targets():
    assert parse_targets("a, b,c") == ("a", "b", "c") and parse_targets(None) is None and parse_targets("") is None
    with pytest.raises(BenchError, match="twice"):
        parse_targets("a,b,a")


def test_background_images_count_for_no_group():
    scores = np.arange(12.0).reshape(2, 6)
    group_of = np.array([0, 0, 1, -1, 2, -1])
    np.testing.assert_array_equal(group_aggregate(scores, group_of, 3), [[1, 2, 4], [13, 8, 10]])
    np.testing.assert_array_equal(group_aggregate(scores, group_of, 3, "mean"), [[0.5, 2, 4], [6.5, 8, 10]])
    assert null_label(group_of, 3) == 4 and null_label(np.array([0, 1, 2]), 3) == 3


def test_queries_are_written_in_the_target_styles_only():
    text = TextData(contents=["0", "1"], styles=["a", "b", "c", "d"], content_of=np.array([0, 1, 0, 1]),
                    style_of=np.array([0, 1, 2, 3]))
    content, style = text.query_pairs(6)
    assert style.tolist() == [0, 0, 1, 1, 2, 2]
    content, style = replace(text, query_styles=(3, 1)).query_pairs(6)
    assert style.tolist() == [3, 3, 1, 1, 3, 3] and content.tolist() == [0, 1, 0, 1, 0, 1]
    assert replace(text, query_styles=(3, 1)).hash_parts() != text.hash_parts()


class FourBlobs(DatasetAdapter):
    """4 groups of 8 random-blob 8x8 images (tests.tiny_dataset with one more group)."""

    presets = {"tiny": TINY}

    def load(self, preset):
        g = torch.Generator().manual_seed(1)
        means = torch.rand((4, 1, 8, 8), generator=g) * 2 - 1
        group_of = np.repeat(np.arange(4), 8)
        images = (means[group_of] + 0.2 * torch.randn((32, 1, 8, 8), generator=g)).clamp(-1, 1)
        return Benchmark("four-blobs", "class", images, group_of.copy(), group_of, ["a", "b", "c", "d"], preset)


def test_a_target_run_is_the_all_groups_truth_restricted_to_the_targets(tmp_path):
    if "four-blobs" not in DATASETS.names():
        DATASETS.register("four-blobs", description="test data")(FourBlobs)
    cache = tmp_path / "cache"
    base = ["run", "--dataset", "four-blobs", "--preset", "tiny", "--cache", str(cache), "--quiet"]
    assert main([*base, "--method", "logo", "--out", str(tmp_path / "all")]) == 0
    n_models = len(list((cache / "model").iterdir()))
    methods = "logo,guda,guda-esd,trak,instance-unlearning,pixel-cosine,random"
    assert main([*base, "--method", methods, "--targets", "c,a,b", "--out", str(tmp_path / "targets")]) == 0
    res = json.loads((tmp_path / "targets" / "results.json").read_text())
    assert res["run"]["targets"] == ["c", "a", "b"] and res["run"]["groups"] == ["c", "a", "b"]
    assert res["run"]["n_background"] == 8 and res["run"]["n_train"] == 32
    for row in res["rows"]:
        assert row["status"] == "ok", (row["method"], row.get("reason"))
        assert np.load(tmp_path / "targets" / "scores" / f"{row['method']}.npy").shape == (8, 3)
    # the full model and the queries are shared with the all-groups run; 3 LOGO models are new, and they are
    # the same trainings (same kept images, same draws) as the all-groups run's, so the truth is its columns
    assert len(list((cache / "model").iterdir())) == n_models + 3
    np.testing.assert_array_equal(np.load(tmp_path / "all" / "queries.npy"),
                                  np.load(tmp_path / "targets" / "queries.npy"))
    gold_all = np.load(tmp_path / "all" / "scores" / "_truth_logoa.npy")
    gold = np.load(tmp_path / "targets" / "scores" / "_truth_logoa.npy")
    np.testing.assert_allclose(gold, gold_all[:, [2, 0, 1]], rtol=1e-6)
    # the run can be rebuilt from its results.json (bundles check this), and it publishes to its own board
    assert benchmark_of(res["run"]).data_hash() == res["run"]["data_hash"]
    assert main(["leaderboard", "publish", str(tmp_path / "targets"), "--dir", str(tmp_path / "boards"),
                 "--no-plots"]) == 0
    assert (tmp_path / "boards" / "four-blobs-3targets.csv").exists()


def test_text_to_image_targets_keep_background_styles_as_anchor_candidates(tmp_path, monkeypatch):
    from guda_bench.datasets.styled_digits import SMOKE, StyledDigits

    # the smoke preset with all four styles (fewer images and steps): three targets, one background style
    monkeypatch.setitem(StyledDigits.presets, "smoke4", replace(SMOKE, name="smoke4", groups=None, per_group_limit=12,
                                                                recipe=replace(SMOKE.recipe, steps=40)))
    cache = tmp_path / "cache"
    out = tmp_path / "run"
    assert main(["run", "--dataset", "styled-digits", "--preset", "smoke4", "--method", "logo,guda-c,d-trak,pixel-nn",
                 "--targets", "faint,plain,bold", "--cache", str(cache), "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["groups"] == ["faint", "plain", "bold"] and res["run"]["n_background"] == 12
    assert {r["status"] for r in res["rows"]} == {"ok"}
    # queries are prompted in the target styles only (the spec of the queries artefact records them)
    (queries,) = [json.loads(p.read_text()) for p in (cache / "queries").glob("*/manifest.json")]
    assert queries["spec"]["query_styles"] == [3, 0, 1]
    # GUDA-C forgetting a target style may anchor on the background style ("inverted", index 2)
    for manifest in (cache / "anchor-unlearned").glob("*/manifest.json"):
        meta = json.loads(manifest.read_text())
        pi = np.asarray(meta["anchor_pi"])
        forget_style = [3, 0, 1][meta["spec"]["group"]]
        assert pi[forget_style] == 0 and pi[2] > 0 and abs(pi.sum() - 1) < 1e-9
    assert len(list((cache / "anchor-unlearned").glob("*/manifest.json"))) == 3


def test_lds_subset_models_keep_the_background(tmp_path):
    """Group LDS on a board with targets (style-canvas): subsets are drawn over the targets only, and every
    subset model keeps the background groups' images, as LOGO's models do."""
    from guda_bench.context import Context
    from guda_bench.lds import LdsConfig, lds_truth
    from guda_bench.store import Store

    bench = with_targets(FourBlobs().load(TINY), ("c", "a", "b"))  # d (8 images) is background
    cache = tmp_path / "cache"
    truth = lds_truth(Context(bench, Store(cache)), LdsConfig(subsets=4))
    assert truth.kept.shape == (4, 3) and np.isfinite(truth.losses).all()
    n_train = {json.loads(p.read_text()).get("n_train") for p in (cache / "model").glob("*/manifest.json")}
    assert n_train == {8 + 8 * int(row.sum()) for row in truth.kept} | {32}  # background + kept targets; full


def test_a_pretraining_preset_fine_tunes_every_model_from_one_background_model(tmp_path, monkeypatch):
    """Preset.pretrain (UnlearnCanvas's shape, SPEC §1/§7): one model is trained on the background alone, and the
    full, LOGO and LDS subset models are fine-tunes of its weights; no background is a one-line error."""
    from guda_bench import context as context_mod
    from guda_bench.config import canonical_hash, to_jsonable
    from guda_bench.context import Context
    from guda_bench.models import load_unet
    from guda_bench.store import Store

    plain = with_targets(FourBlobs().load(TINY), ("c", "a", "b"))  # d (8 images) is background
    bench = with_targets(FourBlobs().load(TINY), ("c", "a", "b"))
    bench.preset = replace(bench.preset, pretrain=replace(bench.preset.recipe, steps=2))
    starts: list[tuple[int, dict | None]] = []
    real = context_mod.train_model

    def spy(images, keep, model_cfg, recipe, seed, *args, init=None, **kwargs):
        state = None if init is None else {k: v.clone() for k, v in init.state_dict().items()}
        starts.append((len(keep), state))
        return real(images, keep, model_cfg, recipe, seed, *args, init=init, **kwargs)

    monkeypatch.setattr(context_mod, "train_model", spy)
    ctx = Context(bench, Store(tmp_path / "cache"))
    ctx.full  # noqa: B018
    ctx.trained_model(0, ctx.study_seed(1))
    assert [n for n, _ in starts] == [8, 32, 24]  # the background, then the full and a LOGO model
    assert starts[0][1] is None  # the pretrained model starts fresh
    base = load_unet(ctx.pretrained.path).state_dict()
    for _, state in starts[1:]:
        assert state is not None and state.keys() == base.keys()
        assert all(torch.equal(state[k], base[k]) for k in base)
    assert ctx.pretrained.key == ctx.pretrained_key
    shutil.rmtree(ctx.pretrained.path)  # a cache with the models but not their base (a bundle's): found, not rebuilt
    fresh = Context(bench, Store(tmp_path / "cache"))
    assert fresh.full.key == ctx.full.key and len(starts) == 3
    plain_ctx = Context(plain, Store(tmp_path / "cache"))
    assert canonical_hash(plain_ctx.model_spec(None, 0)) != canonical_hash(ctx.model_spec(None, 0))
    assert "pretrain" not in json.dumps(to_jsonable(plain.preset, for_key=True))  # old keys kept

    every = FourBlobs().load(TINY)  # no background: nothing to pretrain on
    every.preset = bench.preset
    with pytest.raises(BenchError, match="pretrains on the background"):
        Context(every, Store(tmp_path / "c2")).full  # noqa: B018
