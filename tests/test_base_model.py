"""The fine-tune recipe (SD 1.5 shape) on a tiny pipeline folder the tests write: latents, base weights, LOGO."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from guda_bench.base_model import BaseModel
from guda_bench.cli import main
from guda_bench.errors import BenchError
from guda_bench.models import load_unet
from tests.tiny_pipeline import write_tiny_canvas, write_tiny_pipeline


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    return write_tiny_pipeline(tmp_path_factory.mktemp("pipeline") / "tiny-sd")


def test_base_model_reads_a_pipeline_folder_and_fingerprints_its_weights(pipeline, tmp_path):
    base = BaseModel(pipeline)
    assert base.scheduler().config.beta_schedule == "scaled_linear" and not base.scheduler().config.clip_sample
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    z = base.encode(x, batch_size=2)
    assert z.shape == (3, 4, 8, 8)  # SD's 8x smaller, 4-channel latents
    torch.testing.assert_close(z, base.encode(x, batch_size=3))  # deterministic (posterior mean)
    assert base.decode(z, batch_size=2).shape == x.shape
    other = write_tiny_pipeline(tmp_path / "other", seed=1)
    assert BaseModel(other).fingerprint != base.fingerprint
    (other / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(
        (pipeline / "unet" / "diffusion_pytorch_model.safetensors").read_bytes())
    assert BaseModel(other).fingerprint != base.fingerprint  # still differs: the VAE and text encoder do
    with pytest.raises(BenchError, match="missing vae/"):
        (tmp_path / "partial" / "unet").mkdir(parents=True)
        BaseModel(tmp_path / "partial")


def test_sd15_smoke_fine_tunes_the_base_and_runs_guda_c_end_to_end(pipeline, tmp_path, monkeypatch):
    monkeypatch.setenv("GUDA_BENCH_CACHE", str(tmp_path / "cache"))
    # the paper's split in small: fine-tune on every style, evaluate the target styles (one background style)
    write_tiny_canvas(tmp_path / "uc", styles=("Van_Gogh", "Ukiyoe", "Pixel_Art", "Crayon"))
    out = tmp_path / "run"
    methods = ["logo", "guda-c", "pixel-cosine", "d-trak", "random", "guda"]
    assert main(["run", "--dataset", "unlearncanvas", "--data-root", str(tmp_path / "uc"), "--preset", "sd15-smoke",
                 "--base-model", str(pipeline), "--method", ",".join(methods), "--targets", "Van_Gogh,Ukiyoe,Pixel_Art",
                 "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["groups"] == ["Van_Gogh", "Ukiyoe", "Pixel_Art"] and res["run"]["n_background"] == 4
    assert res["run"]["preset_config"]["queries"]["guidance_scale"] == 7.5  # guided queries (CFG)
    assert res["run"]["preset_config"]["recipe"]["prompt_dropout"] == 0.1
    rows = {r["method"]: r for r in res["rows"]}
    for m in methods[:-1]:
        assert rows[m]["status"] == "ok", rows[m].get("reason")
    assert rows["guda"]["status"] == "unavailable"
    assert res["run"]["base_model"]["fingerprint"] == BaseModel(pipeline).fingerprint
    # queries are sampled in latent space; the run folder keeps them decoded, as images
    assert np.load(out / "queries.npy").shape == (6, 3, 64, 64)
    # every model is a fine-tune of the base UNet: close to it, unlike a fresh initialisation
    base = BaseModel(pipeline).unet().state_dict()
    models = [load_unet(p.parent) for p in (tmp_path / "cache" / "model").glob("*/config.json")]
    assert len(models) == 4  # the full model and one LOGO model per target style
    for unet in models:
        state = unet.state_dict()
        drift = sum(float((state[k] - v).pow(2).sum()) for k, v in base.items()) ** 0.5 / sum(
            float(v.pow(2).sum()) for v in base.values()) ** 0.5
        assert 0 < drift < 0.1
    assert np.isfinite(np.load(out / "scores" / "guda-c.npy")).all()


def test_base_model_flags_are_checked_in_one_line(pipeline, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GUDA_BENCH_BASE_MODEL", raising=False)
    write_tiny_canvas(tmp_path / "uc")
    common = ["run", "--dataset", "unlearncanvas", "--data-root", str(tmp_path / "uc"), "--method", "random",
              "--out", str(tmp_path / "run"), "--quiet"]
    assert main([*common, "--preset", "sd15-smoke"]) == 2
    assert "--base-model PATH or set $GUDA_BENCH_BASE_MODEL" in capsys.readouterr().err
    assert main([*common, "--preset", "smoke", "--base-model", str(pipeline)]) == 2
    assert "trains from scratch: drop --base-model" in capsys.readouterr().err
    assert main([*common, "--preset", "sd15-smoke", "--base-model", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and "\n" not in err
