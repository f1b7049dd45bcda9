"""UnlearnCanvas style groups from a local copy: ROOT/<style>/<object>/<images> (SPEC §7).

Nothing is downloaded: the root comes from --data-root or $GUDA_BENCH_UNLEARNCANVAS. Every style folder
is a group; every object folder is a content; an image's prompt is "a {object} in {style} style" (names
with "_" become spaces). Folders without images (e.g. UnlearnCanvas's Seed_Images or a style missing an
object) are reported in one line, never silently skipped: styles must hold every object, so LOGO removes
exactly one style.

Presets in pixel space (the tiny in-code text encoder, a UNet2DConditionModel trained from scratch):
`smoke` (16x16, a few images per style/object) and `small` (32x32, up to 20 images per style/object) make
UnlearnCanvas runnable on one machine.

Presets that fine-tune a local Stable Diffusion 1.5 diffusers folder (--base-model or
$GUDA_BENCH_BASE_MODEL; guda_bench.base_model) in its latent space, as the paper: `sd15` (512 px, the
full model and each LOGO model are the same fine-tune of SD's UNet, LOGO without one style) and
`sd15-smoke` (64 px, a few steps: checks the recipe end to end, e.g. on a tiny pipeline). Both train with
prompt dropout 0.1 and sample the queries with classifier-free guidance 7.5. Every style folder under
ROOT is a group; the paper's split (the full model fine-tuned on all 60 styles, 16 target styles
evaluated, LOGO = 16 fine-tunes) is `--targets` with the 16 style names: the other 44 styles stay in every
model as background and the queries are prompted in the 16 target styles only (guda_bench.targets). The
sd15 recipe numbers (steps, batch, learning rates, dropout, guidance) are this suite's choice: the paper's
fine-tune settings are not in SPEC, and the recipe has not been run at this scale (no GPU here).
"""

from __future__ import annotations

import numpy as np
from guda_bench.datasets.base import ImageReader, LocalDataAdapter, image_files, to_unit_range

from guda_bench.benchmark import Benchmark
from guda_bench.config import (
    AnchorConfig,
    BaseModelConfig,
    ElboConfig,
    ModelConfig,
    Preset,
    QueryConfig,
    TextConfig,
    TrainRecipe,
    UnlearnConfig,
)
from guda_bench.errors import BenchError
from guda_bench.registry import register_dataset
from guda_bench.text import TextData

ENV_ROOT = "GUDA_BENCH_UNLEARNCANVAS"
_CROSS = dict(down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
              up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))

SMOKE = Preset(
    name="smoke",
    model=ModelConfig(sample_size=16, in_channels=3, block_out_channels=(16, 32, 32), norm_num_groups=8, **_CROSS),
    recipe=TrainRecipe(steps=60, batch_size=32, lr=2e-3, warmup_steps=10, ema_decay=0.98),
    elbo=ElboConfig(t_start=10, t_stop=1000, t_stride=200),
    queries=QueryConfig(n_queries=12, inference_steps=25, batch_size=12),
    text=TextConfig(hidden_size=16, layers=1, heads=2, max_length=12, attention_head_dim=4),
    anchor=AnchorConfig(steps=4, pair_batch=8),
    per_group_limit=4,  # images per (style, object)
    n_boot=100,
)
SMALL = Preset(
    name="small",
    model=ModelConfig(sample_size=32, in_channels=3, block_out_channels=(64, 128, 128), norm_num_groups=16, **_CROSS),
    recipe=TrainRecipe(steps=20_000, batch_size=128, lr=2e-4, warmup_steps=500, ema_decay=0.999, hflip=True),
    elbo=ElboConfig(t_start=110, t_stop=700, t_stride=60, weighting="eps"),
    queries=QueryConfig(n_queries=320, inference_steps=250, batch_size=160),
    text=TextConfig(hidden_size=64, layers=2, heads=4, max_length=12, attention_head_dim=8),
    anchor=AnchorConfig(steps=200, pair_batch=64, lr=1e-4),
    unlearn=UnlearnConfig(steps=200, pair_batch=64, lr=1e-4),
    per_group_limit=20,
)


# Fine-tunes of a local SD 1.5 folder (latents 4 x res/8 x res/8). ModelConfig only records the latent shape:
# the UNet is the pipeline's own; the noise schedule is the pipeline's (scaled-linear, T = 1000).
SD15 = Preset(
    name="sd15",
    model=ModelConfig(sample_size=64, in_channels=4),
    # prompt dropout 0.1 keeps the unconditional prediction that guided queries need (as SD was trained)
    recipe=TrainRecipe(steps=20_000, batch_size=16, lr=1e-5, weight_decay=1e-2, warmup_steps=500, ema_decay=0.999,
                       prompt_dropout=0.1),
    elbo=ElboConfig(t_start=10, t_stop=1000, t_stride=10, batch_size=64),  # SPEC §3: t = 10..990 stride 10
    # 16 target styles (--targets) x 20 objects, sampled with SD's default guidance scale
    queries=QueryConfig(n_queries=320, inference_steps=100, batch_size=16, guidance_scale=7.5),
    text=TextConfig(),  # unused sizes: the pipeline's own tokenizer and text encoder are used
    anchor=AnchorConfig(steps=200, pair_batch=8, lr=1e-5),
    unlearn=UnlearnConfig(steps=200, pair_batch=8, lr=1e-5),
    base_model=BaseModelConfig(resolution=512, encode_batch=8),
    # per-sample gradients of an 860M-parameter UNet: one image per vmapped call
    method_options={"trak": {"batch_size": 1}, "d-trak": {"batch_size": 1}, "das": {"batch_size": 1}},
)
SD15_SMOKE = Preset(
    name="sd15-smoke",
    model=ModelConfig(sample_size=8, in_channels=4),
    recipe=TrainRecipe(steps=6, batch_size=4, lr=1e-4, warmup_steps=1, ema_decay=0.5, prompt_dropout=0.1),
    elbo=ElboConfig(t_start=10, t_stop=1000, t_stride=200, batch_size=64),
    queries=QueryConfig(n_queries=6, inference_steps=10, batch_size=6, guidance_scale=7.5),
    text=TextConfig(),
    anchor=AnchorConfig(steps=2, pair_batch=4, lr=1e-4),
    unlearn=UnlearnConfig(steps=2, pair_batch=4, lr=1e-4),
    base_model=BaseModelConfig(resolution=64, encode_batch=8),
    per_group_limit=2,
    n_boot=100,
    method_options={"trak": {"proj_dim": 64}, "d-trak": {"proj_dim": 64}, "das": {"proj_dim": 64}},
)


def _words(name: str) -> str:
    return name.replace("_", " ").strip()


@register_dataset("unlearncanvas", description="UnlearnCanvas styles (ROOT/<style>/<object>/<images>, --data-root "
                                               "or $GUDA_BENCH_UNLEARNCANVAS); text-to-image, style groups")
class UnlearnCanvas(LocalDataAdapter):
    presets = {"smoke": SMOKE, "small": SMALL, "sd15": SD15, "sd15-smoke": SD15_SMOKE}
    env_root = ENV_ROOT

    def available(self) -> tuple[bool, str]:
        from guda_bench.extras import availability

        ok, why = availability("text")  # prompts go through a transformers CLIP text encoder
        return super().available() if ok else (ok, why)

    def load(self, preset: Preset) -> Benchmark:
        self.require_available()
        styles = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if preset.groups is not None:
            styles = [styles[i] for i in preset.groups]
        if len(styles) < 3:
            raise BenchError(f"{self.root} holds {len(styles)} style folder(s); attribution needs at least three "
                             "(layout: ROOT/<style>/<object>/<images>)")
        objects = sorted({o.name for s in styles for o in s.iterdir() if o.is_dir()})
        if not objects:
            raise BenchError(f"no object folders under the styles in {self.root} "
                             "(layout: ROOT/<style>/<object>/<images>)")
        reader = ImageReader(preset.base_model.resolution if preset.base_model else preset.model.sample_size)
        images, style_of, content_of = [], [], []
        for s, style in enumerate(styles):
            for c, obj in enumerate(objects):
                files = image_files(style / obj) if (style / obj).is_dir() else []
                if not files:
                    raise BenchError(f"style {style.name!r} has no images of object {obj!r} ({style / obj}); every "
                                     "style needs every object")
                files = files[: preset.per_group_limit] if preset.per_group_limit else files
                images.extend(reader.read(f) for f in files)
                style_of.extend([s] * len(files))
                content_of.extend([c] * len(files))
        if reader.channels() != 3:
            raise BenchError("UnlearnCanvas images must be colour (RGB)")
        style_of = np.asarray(style_of, dtype=np.int64)
        text = TextData(contents=[_words(o) for o in objects], styles=[_words(s.name) for s in styles],
                        content_of=np.asarray(content_of, dtype=np.int64), style_of=style_of)
        return Benchmark(dataset="unlearncanvas", grouping="class", images=to_unit_range(images),
                         labels=style_of.copy(), group_of=style_of.copy(), group_names=[s.name for s in styles],
                         preset=preset, text=text)
