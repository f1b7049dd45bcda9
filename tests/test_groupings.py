"""Groupings: parsing, what each builder produces, cache keys, and a real run on a non-class grouping."""

import json

import numpy as np
import pytest
import torch

from guda_bench.benchmark import Benchmark
from guda_bench.cli import main
from guda_bench.errors import BenchError
from guda_bench.groupings import apply_grouping, parse_grouping, recorded_grouping
from tests.conftest import tiny_preset
from tests.tiny_dataset import register


@pytest.fixture
def bench() -> Benchmark:
    """6 classes x 12 distinct random images."""
    g = torch.Generator().manual_seed(0)
    labels = np.repeat(np.arange(6), 12)
    images = torch.rand((len(labels), 1, 8, 8), generator=g) * 2 - 1
    return Benchmark("t", "class", images, labels, labels.copy(), [str(c) for c in range(6)], tiny_preset())


def test_parse_fills_defaults_types_and_label():
    spec = parse_grouping("owners:alpha=0.3,n=6")
    assert spec.params == {"n": 6, "alpha": 0.3, "seed": 0}
    assert spec.label == "owners-alpha0.3-n6"
    assert parse_grouping("owners").label == "owners"


@pytest.mark.parametrize("text, message", [
    ("ownres", "did you mean 'owners'"),
    ("owners:beta=1", "bad parameter 'beta=1'"),
    ("owners:n=two", "n='two' is not a int"),
    ("owners:n=1", "n=1 must be >= 2"),
    ("planted:query_t=1000", "must be in 1..999"),
    ("redundant:base=owners,n=4,pairs=3", "too few owners"),
    ("redundant:base=styles", "must be 'class' or 'owners'"),
    ("specialists:share=1.5", "must be in \\(0, 1\\)"),
])
def test_parse_rejects_bad_input_in_one_line(text, message):
    with pytest.raises(BenchError, match=message):
        parse_grouping(text)


def test_owners_partition_every_image_and_follow_the_seed(bench):
    a = apply_grouping(bench, parse_grouping("owners:n=4,alpha=0.2"))
    b = apply_grouping(bench, parse_grouping("owners:n=4,alpha=0.2"))
    c = apply_grouping(bench, parse_grouping("owners:n=4,alpha=0.2,seed=1"))
    assert a.n_groups == 4 and len(a.images) == len(bench.images)
    assert np.bincount(a.group_of).min() >= 2
    np.testing.assert_array_equal(a.group_of, b.group_of)
    assert not np.array_equal(a.group_of, c.group_of)
    # small alpha concentrates owners on few classes; a large alpha gives every owner a similar mix
    def top_share(x):
        return np.mean([np.bincount(x.labels[x.group_of == o]).max() / (x.group_of == o).sum() for o in range(4)])

    assert top_share(a) > top_share(apply_grouping(bench, parse_grouping("owners:n=4,alpha=50"))) + 0.15
    # same images: the full model (and its queries) is shared with the class grouping; LOGO keys are not
    assert a.full_model_hash() == bench.data_hash() and a.data_hash() != bench.data_hash()
    assert a.grouping == "owners-alpha0.2-n4" and a.grouping_params["alpha"] == 0.2


def test_owners_sized_spread_sizes(bench):
    x = apply_grouping(bench, parse_grouping("owners-sized:n=4,size_spread=8"))
    sizes = np.bincount(x.group_of)
    assert sizes[-1] > 3 * sizes[0]


def test_specialists_split_each_class_into_a_pure_small_owner_and_a_generalist(bench):
    x = apply_grouping(bench, parse_grouping("specialists:share=0.25,per_generalist=2"))
    assert x.n_groups == 3 + 6 and len(x.images) == len(bench.images)
    assert x.group_names[:3] == ["generalist-0", "generalist-1", "generalist-2"]
    assert x.full_model_hash() == bench.data_hash()
    for c in range(6):
        held = np.bincount(x.group_of[x.labels == c], minlength=x.n_groups)
        spec_group = x.group_names.index(f"specialist-{c}")
        assert held[spec_group] == 3 and held[:3].max() == 9 and np.count_nonzero(held) == 2
        assert set(x.labels[x.group_of == spec_group]) == {c}  # pure
    assert all(len(set(x.labels[x.group_of == g])) == 2 for g in range(3))  # each generalist: two classes
    with pytest.raises(BenchError, match="empty specialist"):
        apply_grouping(bench, parse_grouping("specialists:share=0.01"))


def test_typical_specialists_hold_the_images_nearest_their_class_mean(bench):
    x = apply_grouping(bench, parse_grouping("specialists:pick=typical"))
    random = apply_grouping(bench, parse_grouping("specialists"))
    assert x.grouping == "specialists-picktypical" and random.grouping == "specialists"
    assert x.data_hash() != random.data_hash()
    for c in range(6):
        cls = x.labels == c
        flat = x.images[cls].reshape(int(cls.sum()), -1).double()
        distance = (flat - flat.mean(0)).norm(dim=1).numpy()
        spec = x.group_of[cls] == x.group_names.index(f"specialist-{c}")
        assert spec.sum() == 3 and distance[spec].max() <= distance[~spec].min()  # the most typical three
    assert np.array_equal(np.bincount(x.group_of), np.bincount(random.group_of))  # same owners, same sizes
    with pytest.raises(BenchError, match="pick='odd'"):
        parse_grouping("specialists:pick=odd")


def test_background_share_is_held_out_of_each_class_before_the_grouping_deals_the_rest(bench):
    """Preset.background_share: a seeded share of every class becomes background (in every model, never a
    candidate); a grouping deals only the other images, and the full model stays one across groupings."""
    from dataclasses import replace

    from guda_bench.targets import with_targets

    held = replace(bench, preset=tiny_preset(background_share=0.25))
    by_class = apply_grouping(held, parse_grouping("class"))
    assert by_class.n_background == 18 and by_class.n_groups == 6
    assert all((by_class.group_of[bench.labels == c] == -1).sum() == 3 for c in range(6))
    again = apply_grouping(replace(bench, preset=tiny_preset(background_share=0.25)), parse_grouping("class"))
    assert np.array_equal(again.group_of, by_class.group_of)  # a fixed draw, whatever the run seed
    assert apply_grouping(bench, parse_grouping("class")).n_background == 0  # share 0: unchanged

    x = apply_grouping(held, parse_grouping("specialists:share=0.25,per_generalist=2"))
    assert np.array_equal(x.group_of == -1, by_class.group_of == -1) and len(x.images) == len(bench.images)
    assert x.n_groups == 9 and x.full_model_hash() == by_class.data_hash()
    for c in range(6):
        counts = np.bincount(x.group_of[(x.labels == c) & (x.group_of >= 0)], minlength=9)
        assert counts[x.group_names.index(f"specialist-{c}")] == 2 and counts[:3].max() == 7  # of 9 candidates
    plain = apply_grouping(bench, parse_grouping("specialists:share=0.25,per_generalist=2"))
    assert x.data_hash() != plain.data_hash() and x.full_model_hash() != plain.full_model_hash()
    assert with_targets(x, ("generalist-0", "specialist-1", "specialist-2")).n_background > x.n_background

    with pytest.raises(BenchError, match="adds images and is not supported with background"):
        apply_grouping(held, parse_grouping("redundant"))
    with pytest.raises(BenchError, match="background_share=1.5 must lie in"):
        apply_grouping(replace(bench, preset=tiny_preset(background_share=1.5)), parse_grouping("class"))
    with pytest.raises(BenchError, match="leaves class 0"):
        apply_grouping(replace(bench, preset=tiny_preset(background_share=0.01)), parse_grouping("class"))


@pytest.mark.parametrize("spec, n_base, twins", [
    ("redundant:base=owners,n=5,pairs=2", 3, ["owner-00-copy", "owner-01-copy"]),
    ("redundant:pairs=2", 6, ["0-copy", "1-copy"]),
])
def test_redundant_twins_hold_identical_copies(bench, spec, n_base, twins):
    x = apply_grouping(bench, parse_grouping(spec))
    assert x.group_names[-2:] == twins and x.n_groups == n_base + 2
    for j in range(2):
        original, twin = x.images[x.group_of == j], x.images[x.group_of == n_base + j]
        assert len(original) > 0 and torch.equal(original, twin)
    assert len(x.images) == len(bench.images) + (x.group_of >= n_base).sum()
    assert x.full_model_hash() != bench.data_hash()  # more training images: its own full model


def test_planted_copies_go_to_another_group_and_queries_start_near_them(bench):
    x = apply_grouping(bench, parse_grouping("planted:n_planted=3,copies=2,sigma=0.01"))
    assert len(x.images) == len(bench.images) + 6
    p = x.planted
    assert all(s != t for s, t in zip(p["source_groups"], p["target_groups"], strict=True))
    copies = x.images[len(bench.images):]
    for j, src in enumerate(p["sources"]):
        assert (copies[2 * j:2 * j + 2] - bench.images[src]).abs().max() < 0.1
    assert x.group_of[len(bench.images):].tolist() == [t for t in p["target_groups"] for _ in range(2)]
    torch.testing.assert_close(x.query_anchors, bench.images[p["sources"]])


def test_run_on_owners_grouping_writes_grouping_into_rows_and_keys(tmp_path):
    register()
    cache = tmp_path / "cache"
    base = ["run", "--dataset", "tiny-test", "--preset", "tiny", "--method", "logo,pixel-cosine,guda",
            "--cache", str(cache), "--quiet"]
    assert main([*base, "--out", str(tmp_path / "class")]) == 0
    n_models = len(list((cache / "model").iterdir()))
    assert main([*base, "--grouping", "owners:n=3,alpha=5", "--out", str(tmp_path / "owners")]) == 0
    res = json.loads((tmp_path / "owners" / "results.json").read_text())
    assert res["run"]["grouping"] == "owners-alpha5-n3"
    assert res["run"]["grouping_params"] == {"name": "owners", "n": 3, "alpha": 5.0, "seed": 0}
    assert res["run"]["groups"] == ["owner-00", "owner-01", "owner-02"]
    assert {r["status"] for r in res["rows"]} == {"ok"}
    # the full model is shared with the class run; only the 3 LOGO models are new
    assert len(list((cache / "model").iterdir())) == n_models + 3


def test_run_on_planted_grouping_generates_queries_near_the_anchors(tmp_path):
    register()
    out = tmp_path / "planted"
    code = main(["run", "--dataset", "tiny-test", "--preset", "tiny", "--method", "logo,pixel-nn",
                 "--grouping", "planted:n_planted=2,copies=2,query_t=100", "--cache", str(tmp_path / "c"),
                 "--out", str(out), "--quiet"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["grouping"] == "planted-copies2-nplanted2-queryt100"
    assert res["run"]["n_train"] == 24 + 4


def test_unknown_grouping_is_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "--preset", "smoke", "--grouping", "onwers", "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "did you mean 'owners'" in err


def test_cli_help_names_every_grouping():
    from guda_bench.cli import GROUPING_NAMES
    from guda_bench.groupings import DEFAULTS

    assert GROUPING_NAMES.split(" | ") == list(DEFAULTS)


def test_recorded_grouping_fills_parameters_added_after_the_run():
    """A board recorded before `pick` existed (its bundle too) rebuilds the same benchmark and label."""
    old = {"name": "specialists", "share": 0.25, "per_generalist": 2, "seed": 0}
    assert recorded_grouping(old) == parse_grouping("specialists")
    assert recorded_grouping(old).label == "specialists"
    assert recorded_grouping({"name": "owners", "n": 6}).label == "owners-n6"
    with pytest.raises(BenchError, match="unknown"):
        recorded_grouping({"name": "nosuch"})
