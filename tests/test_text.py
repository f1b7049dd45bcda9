"""Text-to-image path: prompts, the tiny text stack, conditional training/ELBO/sampling, GUDA-C, and a real
end-to-end run on the embedded styled-digits benchmark."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel

from guda_bench.anchor_unlearn import anchor_distribution
from guda_bench.cli import main
from guda_bench.config import AnchorConfig, ElboConfig, TextConfig
from guda_bench.elbo import ElboScorer
from guda_bench.errors import BenchError
from guda_bench.models import build_scheduler, load_unet
from guda_bench.registry import DATASETS
from guda_bench.text import TextData, TextStack
from tests.tiny_pipeline import write_tiny_canvas


@pytest.fixture
def text() -> TextData:
    return TextData(contents=["0", "1", "7"], styles=["plain", "bold", "inverted"],
                    content_of=np.array([0, 1, 2, 0]), style_of=np.array([0, 0, 1, 2]))


def test_prompt_indices_name_the_right_prompts(text):
    prompts = text.all_prompts()
    assert prompts[text.prompt_index(2, 1)] == "a 7 in bold style"
    assert prompts[text.no_style_index(1)] == "a 1"
    assert prompts[text.style_description_index(2)] == "inverted style"
    content, style = text.query_pairs(11)
    assert [prompts[i] for i in text.prompt_index(content, style)][:2] == ["a 0 in plain style", "a 1 in plain style"]
    assert (content[9], style[9]) == (0, 0)  # the 3 x 3 grid repeats


def test_tiny_text_stack_is_seeded_and_tells_prompts_apart(text):
    a = TextStack.tiny(text.words(), TextConfig(hidden_size=16, layers=1))
    b = TextStack.tiny(text.words(), TextConfig(hidden_size=16, layers=1))
    ha, pa = a.encode(text.all_prompts())
    hb, _ = b.encode(text.all_prompts())
    assert ha.shape == (len(text.all_prompts()), 8, 16) and torch.equal(ha, hb)
    assert torch.cdist(pa, pa).add(torch.eye(len(pa))).min() > 1e-3  # every prompt pools differently
    with pytest.raises(BenchError, match="outside the tiny text encoder's vocabulary"):
        a.encode(["a 9 in bold style"])


def test_pretrained_text_stack_needs_a_pipeline_folder(tmp_path):
    with pytest.raises(BenchError, match="missing tokenizer/, text_encoder/"):
        TextStack.pretrained(tmp_path)


def test_anchor_distribution_follows_spec():
    protos = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    cfg = AnchorConfig(beta=2.0, eta=0.3)
    pi = anchor_distribution(protos, 0, cfg)
    assert pi[0] == 0 and pi.sum() == pytest.approx(1.0)
    assert pi[1] > pi[2] > pi[3] >= 0.3 / 3  # closer style prototypes are likelier; eta keeps a uniform floor
    cos = np.array([0.9 / np.hypot(0.9, 0.1), 0.0, -1.0])
    soft = np.exp(2 * cos) / np.exp(2 * cos).sum()
    np.testing.assert_allclose(pi[1:], 0.7 * soft + 0.1)
    uniform = anchor_distribution(protos, 0, AnchorConfig(anchors="uniform"))
    np.testing.assert_allclose(uniform, [0, 1 / 3, 1 / 3, 1 / 3])


def test_styled_digits_renders_balanced_styles_with_prompts():
    adapter = DATASETS.entry("styled-digits").create({})
    bench = adapter.load(adapter.preset("default"))
    assert bench.group_names == ["plain", "bold", "inverted", "faint"] and len(bench.images) == 1797
    sizes = np.bincount(bench.group_of)
    assert sizes.max() - sizes.min() <= 1
    inverted = bench.images[bench.group_of == 2]
    assert inverted.amax() > 0.9 and (inverted.flatten(1).mean(1) > 0).all()  # white page, dark ink
    faint = bench.images[bench.group_of == 3]
    assert faint.amax() <= -1 + 2 * 0.35 + 1e-6
    assert bench.text is not None and (bench.text.style_of == bench.group_of).all()
    assert bench.data_hash() != replace(bench, text=None).data_hash()  # the prompts are part of every key


def test_conditional_elbo_depends_on_the_prompt(text):
    from guda_bench.datasets.styled_digits import SMOKE

    from guda_bench.models import build_unet

    torch.manual_seed(0)
    stack = TextStack.tiny(text.words(), SMOKE.text)
    hidden, _ = stack.encode(text.all_prompts())
    unet = build_unet(SMOKE.model, text=SMOKE.text)
    queries = torch.rand(2, 1, 8, 8) * 2 - 1
    sched = build_scheduler(SMOKE.recipe)
    cfg = ElboConfig(t_start=100, t_stop=1000, t_stride=300)
    a = ElboScorer(sched, cfg, queries, ["q0", "q1"], query_cond=hidden[[0, 0]]).terms(unet)
    b = ElboScorer(sched, cfg, queries, ["q0", "q1"], query_cond=hidden[[0, 4]]).terms(unet)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[1], b[1])


def test_styled_digits_smoke_runs_guda_c_and_the_baselines_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("GUDA_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["run", "--dataset", "styled-digits", "--preset", "smoke", "--method",
                 "logo,guda-c,guda-c-nostyle,pixel-cosine,d-trak,instance-unlearning,random,guda,prompt-text",
                 "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in res["rows"]}
    for m in ("logo", "guda-c", "guda-c-nostyle", "pixel-cosine", "d-trak", "instance-unlearning", "random",
              "prompt-text"):
        assert rows[m]["status"] == "ok", rows[m].get("reason")
    assert rows["logo"]["metrics"]["top1"]["mean"] == 1.0
    assert rows["guda-c"]["settings"]["anchors"] == "clip"
    assert rows["guda-c-nostyle"]["settings"]["anchors"] == "no-style"
    assert rows["instance-unlearning"]["settings"]["unlearned_weights"].startswith("cross-attention K/V")
    assert rows["guda"]["status"] == "unavailable" and "unconditional models only" in rows["guda"]["reason"]
    assert res["run"]["groups"] == ["plain", "bold", "inverted"]
    full = next((tmp_path / "cache" / "model").glob("*/config.json")).parent
    assert isinstance(load_unet(full), UNet2DConditionModel)
    # the GUDA-C scores are an ELBO difference of real unlearned models: not all equal, finite
    scores = np.load(out / "scores" / "guda-c.npy")
    assert np.isfinite(scores).all() and scores.std() > 0
    # prompt-text reads the prompt only: its top group is every query's prompted style
    from guda_bench.runner import RunSpec, open_benchmark

    bench = open_benchmark(RunSpec(methods=[], dataset="styled-digits", preset="smoke", quiet=True)).bench
    prompt_scores = np.load(out / "scores" / "prompt-text.npy")
    _, style = bench.text.query_pairs(len(prompt_scores))
    group_of_style = {bench.style_of_group(k): k for k in range(bench.n_groups)}
    prompted = [group_of_style[int(s)] for s in style]
    assert prompt_scores.argmax(1).tolist() == prompted
    assert rows["prompt-text"]["family"] == "prompt"


def test_guda_c_is_unavailable_on_an_unconditional_benchmark(tmp_path, monkeypatch):
    monkeypatch.setenv("GUDA_BENCH_CACHE", str(tmp_path / "cache"))
    from tests.tiny_dataset import register

    register()
    out = tmp_path / "run"
    assert main(["run", "--dataset", "tiny-test", "--preset", "tiny", "--method", "random,guda-c,prompt-text", "--out",
                 str(out), "--quiet"]) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert rows["guda-c"]["status"] == "unavailable" and "text-to-image" in rows["guda-c"]["reason"]
    assert rows["prompt-text"]["status"] == "unavailable" and "text-to-image" in rows["prompt-text"]["reason"]


def test_unlearncanvas_reads_style_object_folders(tmp_path):
    from guda_bench.runner import make_adapter

    write_tiny_canvas(tmp_path)
    bench = make_adapter("unlearncanvas", tmp_path).load(DATASETS.entry("unlearncanvas").cls.presets["smoke"])
    assert bench.group_names == ["Pixel_Art", "Ukiyoe", "Van_Gogh"] and bench.images.shape == (12, 3, 16, 16)
    assert bench.text.prompt(1, 2) == "a Dogs in Van Gogh style"
    assert np.bincount(bench.group_of).tolist() == [4, 4, 4]


@pytest.mark.parametrize("skip, message", [(("Ukiyoe", "Cats"), "style 'Ukiyoe' has no images of object 'Cats'")])
def test_unlearncanvas_bad_layout_is_one_line_exit_2(tmp_path, capsys, skip, message):
    write_tiny_canvas(tmp_path / "uc", skip=skip)
    code = main(["run", "--dataset", "unlearncanvas", "--data-root", str(tmp_path / "uc"), "--preset", "smoke",
                 "--method", "random", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err
    code = main(["run", "--dataset", "unlearncanvas", "--data-root", str(tmp_path / "nowhere"), "--preset", "smoke",
                 "--method", "random", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_instance_unlearning_on_text_models_moves_only_cross_attention_kv(text):
    from guda_bench.datasets.styled_digits import SMOKE

    from guda_bench import instance_unlearn as iu
    from guda_bench.models import build_unet

    torch.manual_seed(0)
    hidden, _ = TextStack.tiny(text.words(), SMOKE.text).encode(text.all_prompts())
    unet = build_unet(SMOKE.model, text=SMOKE.text)
    from guda_bench.config import ModelConfig

    assert iu.cross_attention_kv(build_unet(ModelConfig())) is None
    names = iu.cross_attention_kv(unet)
    assert names and all(".attn2.to_k." in n or ".attn2.to_v." in n for n in names)
    abar = build_scheduler(SMOKE.recipe).alphas_cumprod.float()
    images = torch.rand(6, 1, 8, 8) * 2 - 1
    fisher = iu.damped(iu.diagonal_fisher(unet, images, abar, 6, 0, cond=hidden[[0, 1, 2, 3, 4, 5]], names=names), 0.1)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    steps = [100, 500]
    iu.unlearn_query(unet, images[0], torch.randn(2, 1, 8, 8), steps, abar, fisher, 0.1, 1, 6, cond=hidden[0])
    changed = {k for k, v in unet.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and changed <= set(names)


def test_prompt_text_ranks_a_float_rounding_tie_by_a_seeded_coin_not_by_the_cpu() -> None:
    """Two-style prompts name two styles equally: their cosines differ by float32 rounding only (1e-10 to
    7e-8 on style-canvas), which another CPU rounds the other way. Near ties (<= 1e-6 apart) become one tie
    ordered by a seeded coin, so the ranking is the same whichever way the rounding went; scores further
    apart keep their order."""
    from guda_bench.methods.prompt_text import NEAR_TIE, break_near_ties

    rng = np.random.default_rng(0)
    pair = rng.integers(0, 4, size=(400, 2))
    pair = pair[pair[:, 0] != pair[:, 1]]
    base = rng.uniform(0.2, 0.8, size=(len(pair), 4))
    rows = np.arange(len(pair))
    base[rows, pair[:, 0]] = base[rows, pair[:, 1]] = 0.95  # the two named styles, well above the rest
    noise = rng.uniform(1e-10, 7e-8, size=len(pair))
    one_cpu, other_cpu = base.copy(), base.copy()
    one_cpu[rows, pair[:, 0]] += noise  # one machine's rounding favours the first named style ...
    other_cpu[rows, pair[:, 1]] += noise  # ... another's the second
    a = break_near_ties(one_cpu, np.random.default_rng(7))
    b = break_near_ties(other_cpu, np.random.default_rng(7))
    assert np.array_equal(a.argsort(1), b.argsort(1))  # the same ranking on both machines
    first = a.argmax(1)
    assert ((first == pair[:, 0]) | (first == pair[:, 1])).all()  # one of the two named styles
    assert 0.4 < np.mean(first == pair[:, 0]) < 0.6  # a coin: the first named wins about half the time
    assert np.array_equal(np.argsort(-a, 1)[:, 2:], np.argsort(-base, 1, kind="stable")[:, 2:])  # the rest: kept
    assert np.abs(a - one_cpu).max() < NEAR_TIE  # scores move by less than the tie width
    clear = np.array([[0.9, 0.9 - 2 * NEAR_TIE, 0.1]])  # further apart than the tie width: the order stands
    assert break_near_ties(clear, np.random.default_rng(1)).argmax(1).tolist() == [0]
