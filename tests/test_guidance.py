"""Classifier-free guidance for prompted queries: prompt dropout in training, guided sampling, and the
added knobs leaving the cache keys of everything that does not use them unchanged."""

import numpy as np
import pytest
import torch

from guda_bench.config import QueryConfig, TrainRecipe, canonical_hash, to_jsonable
from guda_bench.models import build_scheduler, build_unet
from guda_bench.sampling import sample_prompted
from guda_bench.text import TextData, TextStack
from guda_bench.train import drop_prompts, train_model


@pytest.fixture
def stack_and_unet():
    from guda_bench.datasets.styled_digits import SMOKE

    text = TextData(contents=["0", "1"], styles=["plain", "bold"], content_of=np.array([0, 1]),
                    style_of=np.array([0, 1]))
    torch.manual_seed(0)
    stack = TextStack.tiny(text.words(), SMOKE.text)
    hidden, _ = stack.encode(text.all_prompts())
    null = stack.encode([""])[0][0]
    return SMOKE, hidden, null, build_unet(SMOKE.model, text=SMOKE.text).eval()


def test_drop_prompts_replaces_a_seeded_share_of_rows():
    cond, null = torch.randn(2000, 3, 4), torch.zeros(3, 4)
    out = drop_prompts(cond, null, 0.1, seed=5)
    dropped = (out == 0).all(dim=(1, 2))
    assert 0.07 < dropped.float().mean() < 0.13
    torch.testing.assert_close(out[~dropped], cond[~dropped])
    torch.testing.assert_close(drop_prompts(cond, null, 0.1, seed=5), out)
    assert not torch.equal(drop_prompts(cond, null, 0.1, seed=6), out)


def test_guided_sampling_is_the_cfg_combination(stack_and_unet):
    preset, hidden, null, unet = stack_and_unet
    sched = build_scheduler(preset.recipe)
    cond = hidden[[0, 3]]
    plain = sample_prompted(unet, sched, cond, (1, 8, 8), seed=0, inference_steps=5, batch_size=2)
    # guidance towards the prompt itself is no guidance: eps_null + w (eps_c - eps_null) with null = c
    same = sample_prompted(unet, sched, cond, (1, 8, 8), seed=0, inference_steps=5, batch_size=2, guidance=4.0,
                           null_cond=cond[0])
    torch.testing.assert_close(same[0], plain[0], atol=1e-5, rtol=1e-5)
    guided = sample_prompted(unet, sched, cond, (1, 8, 8), seed=0, inference_steps=5, batch_size=2, guidance=4.0,
                             null_cond=null)
    assert not torch.allclose(guided, plain, atol=1e-3)
    with pytest.raises(ValueError, match="null_cond"):
        sample_prompted(unet, sched, cond, (1, 8, 8), seed=0, inference_steps=5, batch_size=2, guidance=4.0)


def test_prompt_dropout_changes_training_and_needs_the_empty_prompt(stack_and_unet):
    preset, hidden, null, _ = stack_and_unet
    images = torch.rand(8, 1, 8, 8) * 2 - 1
    cond = hidden[[0, 1, 2, 3] * 2]
    recipe = TrainRecipe(steps=3, batch_size=8, warmup_steps=1)
    kw = dict(text=preset.text, cond=cond)
    base = train_model(images, np.arange(8), preset.model, recipe, seed=0, **kw)
    dropped = train_model(images, np.arange(8), preset.model, TrainRecipe(steps=3, batch_size=8, warmup_steps=1,
                                                                          prompt_dropout=0.5), seed=0, null_cond=null,
                          **kw)
    assert any(not torch.equal(a, b) for a, b in zip(base.state_dict().values(), dropped.state_dict().values(),
                                                     strict=True))
    with pytest.raises(ValueError, match="null_cond"):
        train_model(images, np.arange(8), preset.model, TrainRecipe(steps=1, batch_size=8, prompt_dropout=0.1),
                    seed=0, **kw)


def test_added_knobs_join_the_key_only_when_set():
    default = to_jsonable(TrainRecipe(), for_key=True)
    assert "prompt_dropout" not in default and "prompt_dropout" in to_jsonable(TrainRecipe())
    assert canonical_hash(TrainRecipe(prompt_dropout=0.1)) != canonical_hash(TrainRecipe())
    assert canonical_hash(QueryConfig(guidance_scale=7.5)) != canonical_hash(QueryConfig())
    assert "guidance_scale" not in to_jsonable(QueryConfig(), for_key=True)


def test_a_manifest_spec_recomputes_its_key_with_added_knobs(tmp_path):
    """Bundle import recomputes each entry's key from its manifest's spec: knobs left out of the hash must be
    left out of the manifest too, and set ones kept."""
    import json

    from guda_bench.store import MANIFEST, Store

    store = Store(tmp_path)
    for recipe in (TrainRecipe(), TrainRecipe(prompt_dropout=0.1)):
        art = store.get_or_build("model", {"recipe": recipe}, lambda folder: None)
        spec = json.loads((art.path / MANIFEST).read_text())["spec"]
        assert store.key("model", spec) == art.key
