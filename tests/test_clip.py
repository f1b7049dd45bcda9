"""The `clip` method on a tiny randomly initialised open_clip model: scoring math, runner rows, missing weights."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from guda_bench.methods import clip

from guda_bench import Unavailable
from guda_bench.cli import main
from tests import tiny_dataset

TINY_NAME = "tiny-test-clip"
TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 100, "width": 16, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread; two threads on a busy 2-core machine spin-wait badly."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> str:
    """Register the tiny architecture with open_clip and save randomly initialised weights to a file."""
    folder = tmp_path_factory.mktemp("clip-cfg")
    (folder / f"{TINY_NAME}.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(folder)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_NAME)
    path = folder / "tiny.pt"
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def run_cache(tmp_path_factory) -> Path:
    """One cache for every runner test here: the tiny truth is trained once."""
    return tmp_path_factory.mktemp("clip-run-cache")


@pytest.fixture(autouse=True)
def no_machine_weights(monkeypatch, tmp_path):
    """Neither the environment nor this machine's open_clip cache may leak into the tests."""
    monkeypatch.delenv(clip.ENV_VAR, raising=False)
    empty = tmp_path / "hf-cache"
    empty.mkdir()
    monkeypatch.setattr(clip, "_hf_cache_dir", lambda: str(empty))
    return empty


def reference_embed(model, images: torch.Tensor) -> torch.Tensor:
    """Independent preprocessing + embedding of [-1, 1] grey images, straight from the spec."""
    x = ((images + 1) / 2).repeat(1, 3, 1, 1)
    x = F.interpolate(x, size=(32, 32), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        e = model.encode_image((x - mean) / std)
    return F.normalize(e, dim=-1).double()


def fake_ctx(bench, n_queries: int = 4) -> SimpleNamespace:
    g = torch.Generator().manual_seed(1)
    queries = torch.rand((n_queries, 1, 8, 8), generator=g) * 2 - 1
    return SimpleNamespace(bench=bench, queries=queries, query_images=queries, device="cpu")


@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_score_is_the_aggregated_cosine_similarity(tiny_bench, tiny_weights, aggregate):
    ctx = fake_ctx(tiny_bench)
    # options arrive as strings from --option; batch_size 4 forces several batches
    method = clip.ClipSimilarity(weights=tiny_weights, model_name=TINY_NAME, aggregate=aggregate,
                                 max_per_group="3", batch_size="4")
    method.prepare(ctx)
    scores = method.score(ctx)
    assert scores.shape == (4, tiny_bench.n_groups) and scores.dtype == np.float64

    model = open_clip.create_model(TINY_NAME, pretrained=tiny_weights).eval()
    q = reference_embed(model, ctx.queries[:1])
    for k in range(tiny_bench.n_groups):
        first3 = tiny_bench.members(k)[:3]
        sims = (q @ reference_embed(model, tiny_bench.images[first3]).T)[0].numpy()
        expected = sims.mean() if aggregate == "mean" else sims.max()
        assert scores[0, k] == pytest.approx(expected, abs=1e-5)
    settings = method.describe_settings()
    assert settings["model_name"] == TINY_NAME and settings["aggregate"] == aggregate
    assert settings["weights"] == tiny_weights


def test_bad_options():
    with pytest.raises(ValueError, match="aggregate"):
        clip.ClipSimilarity(aggregate="median")
    with pytest.raises(ValueError):
        clip.ClipSimilarity(max_per_group="0")


def test_env_var_weights(tiny_bench, tiny_weights, monkeypatch, tmp_path):
    monkeypatch.setenv(clip.ENV_VAR, tiny_weights)
    method = clip.ClipSimilarity(model_name=TINY_NAME)
    method.prepare(fake_ctx(tiny_bench))
    assert method.describe_settings()["weights"] == tiny_weights
    missing = str(tmp_path / "nope.safetensors")
    monkeypatch.setenv(clip.ENV_VAR, missing)
    with pytest.raises(Unavailable, match=missing):
        clip.ClipSimilarity(model_name=TINY_NAME).prepare(fake_ctx(tiny_bench))


def test_cache_lookup_finds_only_existing_files(no_machine_weights):
    path, cfg, looked = clip.open_clip_cache_lookup("ViT-B-32")
    assert path is None and cfg.get("quick_gelu") is True  # the openai tag
    assert all(str(no_machine_weights) in p for p in looked)
    repo = no_machine_weights / "models--timm--vit_base_patch32_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    weights = repo / "snapshots" / "abc123" / "open_clip_model.safetensors"
    weights.write_bytes(b"x")
    path, _, _ = clip.open_clip_cache_lookup("ViT-B-32")
    assert path == str(weights)


def _run(out: Path, cache: Path, *options: str) -> dict:
    tiny_dataset.register()
    opts = [a for o in options for a in ("--option", o)]
    code = main(["run", "--dataset", tiny_dataset.NAME, "--preset", "tiny", "--method", "clip,random",
                 "--out", str(out), "--cache", str(cache), "--quiet", *opts])
    assert code == 0
    return {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}


@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_runner_scores_clip(tiny_weights, run_cache, tmp_path, aggregate):
    extra = [] if aggregate == "mean" else [f"clip.aggregate={aggregate}"]
    rows = _run(tmp_path / "run", run_cache, f"clip.weights={tiny_weights}", f"clip.model_name={TINY_NAME}",
                *extra)
    row = rows["clip"]
    assert row["status"] == "ok", row.get("reason")
    assert rows["random"]["status"] == "ok"
    assert row["settings"]["aggregate"] == aggregate and row["settings"]["weights"] == tiny_weights
    assert all(np.isfinite(v["mean"]) for v in row["metrics"].values())
    scores = np.load(tmp_path / "run" / "scores" / "clip.npy")
    assert scores.shape == (tiny_dataset.TINY.queries.n_queries, 3) and np.isfinite(scores).all()


def test_runner_without_weights_is_unavailable(run_cache, tmp_path, no_machine_weights):
    row = _run(tmp_path / "run", run_cache)["clip"]
    assert row["status"] == "unavailable"
    assert clip.ENV_VAR in row["reason"] and "clip.weights" in row["reason"]
    assert str(no_machine_weights) in row["reason"]  # the open_clip cache path looked at


def test_runner_with_missing_weights_file_is_unavailable(run_cache, tmp_path):
    missing = str(tmp_path / "missing" / "clip.bin")
    row = _run(tmp_path / "run", run_cache, f"clip.weights={missing}")["clip"]
    assert row["status"] == "unavailable" and missing in row["reason"]
