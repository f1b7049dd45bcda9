"""Configuration as data: every knob that changes a number lives in one of these frozen dataclasses.

Their canonical JSON is hashed into cache keys and results, so a changed knob can never reuse a stale
artefact. A knob added after keys were published is declared with ``added_knob(default)``: it joins the
hash only when set to something else, so existing caches, truth hashes and leaderboards stay valid.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Arguments of diffusers' UNet2DModel (unconditional image model)."""

    sample_size: int = 8
    in_channels: int = 1
    block_out_channels: tuple[int, ...] = (32, 64)
    layers_per_block: int = 1
    down_block_types: tuple[str, ...] = ("DownBlock2D", "DownBlock2D")
    up_block_types: tuple[str, ...] = ("UpBlock2D", "UpBlock2D")
    norm_num_groups: int = 8
    dropout: float = 0.0

ADDED = "added_knob"  # field metadata: left out of canonical_hash while at its default


def added_knob(default: Any) -> Any:
    """A dataclass field hashed only when it differs from `default` (see the module docstring)."""
    return field(default=default, metadata={ADDED: True})


@dataclass(frozen=True)
class TrainRecipe:
    """How a model is trained. Full and LOGO models share this recipe and its random stream (SPEC §2)."""

    steps: int = 1500
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    hflip: bool = False
    # text-to-image: share of each batch's prompts replaced by the empty prompt (what classifier-free
    # guidance needs: QueryConfig.guidance_scale)
    prompt_dropout: float = added_knob(0.0)
    # what the UNet outputs: "epsilon" (DDPM) or "v_prediction" (v = sqrt(abar) eps - sqrt(1 - abar) x0, trained
    # on the v loss). At high noise a v-model outputs the image itself, so a prompt's global traits (a palette)
    # are learnt in a short recipe; an eps-model's loss there hardly depends on them. Every ELBO, loss and
    # gradient still reads eps (models.denoise converts), so the estimators are unchanged.
    prediction_type: str = added_knob("epsilon")


@dataclass(frozen=True)
class ElboConfig:
    """ELBO grid and weighting (SPEC §3). Timesteps are diffusers indices (0-based)."""

    t_start: int = 10
    t_stop: int = 1000
    t_stride: int = 10
    weighting: str = "kl"  # "kl" (true ELBO terms, nats) or "eps" (plain epsilon-error sum)
    seed: int = 0
    batch_size: int = 512  # image-timesteps per forward; measured fastest on 2 CPU cores (2048 was 1.5x slower)

    def timesteps(self) -> list[int]:
        return list(range(self.t_start, self.t_stop, self.t_stride))


@dataclass(frozen=True)
class QueryConfig:
    """Queries: DDPM samples of the full model with per-query seeded noise, split into tune/test halves."""

    n_queries: int = 400
    seed: int = 1234
    inference_steps: int = 1000
    batch_size: int = 400
    tune_fraction: float = 0.5
    split_seed: int = 7
    # text-to-image: classifier-free guidance scale of prompted queries (1.0: none; > 1 needs a model trained
    # with TrainRecipe.prompt_dropout > 0)
    guidance_scale: float = added_knob(1.0)
    # text-to-image: "prompted" (query i: the i-th (style, content) prompt) or "two-style" (a harder mode:
    # the prompt's hidden states averaged with those of the same content in a second, seeded target style)
    mode: str = added_knob("prompted")


@dataclass(frozen=True)
class UnlearnConfig:
    """Group unlearning fine-tune (GUDA-U, SPEC §4.1) and its reference unlearners.

    forget_target: "retrack" | "retrack-clipped" | "reference" | "none" (retain-only) | "ascent" (GA).
    """

    forget_target: str = "retrack"
    steps: int = 40
    pair_batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 0
    lambda_forget: float = 1.0
    k_neighbours: int = 10
    kl_cap: float = 1.0
    retain_loss: str = "denoise"  # "denoise" or "distill" (to the frozen full model)
    grad_clip: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class TextConfig:
    """Text conditioning (SPEC §4.3): a frozen CLIPTextModel and a cross-attention UNet2DConditionModel.

    The CLIPTextModel is tiny, built in code from ``seed`` with a word-level vocabulary of the
    benchmark's prompts (no download; guda_bench.text.TextStack.tiny). The UNet's block types come from ModelConfig
    (use CrossAttn* blocks); its cross-attention width is the encoder's hidden size.
    """

    hidden_size: int = 32
    layers: int = 2
    heads: int = 2
    max_length: int = 8
    attention_head_dim: int = 8
    seed: int = 0


@dataclass(frozen=True)
class AnchorConfig:
    """GUDA-C's anchor-redirection fine-tune (SPEC §4.3).

    anchors: "clip" (pi(s) = (1-eta) softmax(beta cos(e_f, p_s)) + eta uniform), "uniform" (ablation),
    or "no-style" (ablation: the anchor prompt drops the style description).
    """

    anchors: str = "clip"
    beta: float = 2.0
    eta: float = 0.3
    lambda_pres: float = 2.0
    steps: int = 40
    pair_batch: int = 32
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class BaseModelConfig:
    """Fine-tune a pretrained text-to-image pipeline in its latent space (SD 1.5 recipe, SPEC §2 and §7).

    The pipeline is a local diffusers folder given at run time (--base-model or $GUDA_BENCH_BASE_MODEL);
    its weights' fingerprint, not its path, goes into the cache keys. ModelConfig is then unused for the
    UNet (the pipeline's own UNet is fine-tuned); TrainRecipe's noise-schedule fields give way to the
    pipeline's scheduler.
    """

    resolution: int = 512  # training images are resized to this many pixels before the VAE encodes them
    encode_batch: int = 8  # images per VAE encode / decode call
    description: str = "Stable Diffusion 1.5 (diffusers folder: unet/ vae/ text_encoder/ tokenizer/ scheduler/)"


@dataclass(frozen=True)
class Preset:
    """Everything a dataset adapter needs to build one benchmark size ("smoke", "default", ...)."""

    name: str
    model: ModelConfig = field(default_factory=ModelConfig)
    recipe: TrainRecipe = field(default_factory=TrainRecipe)
    elbo: ElboConfig = field(default_factory=ElboConfig)
    queries: QueryConfig = field(default_factory=QueryConfig)
    unlearn: UnlearnConfig = field(default_factory=UnlearnConfig)
    text: TextConfig | None = None  # set: a text-to-image benchmark (prompts per image and per query)
    base_model: BaseModelConfig | None = None  # set: fine-tune a local pretrained pipeline in latent space
    # set: every model (full, LOGO, LDS subsets) is `recipe` fine-tuned from one model first trained with this
    # recipe on the background groups alone, so no candidate group is in the shared start (SPEC §1: a
    # fine-tuned model's LOGO is the same fine-tune from the same base; UnlearnCanvas's SD 1.5 in small)
    pretrain: TrainRecipe | None = added_knob(None)
    # share of each class's images made background before any grouping (seeded): in every model, never a
    # candidate, and with `pretrain` the only images the shared base sees, so a dataset whose groups cover
    # every image still gets a base that holds no candidate's images (mnist5k's `pretrained`)
    background_share: float = added_knob(0.0)
    # a preset that is its own benchmark (another recipe trains another truth) publishes to <board>-<suffix>
    board_suffix: str = added_knob("")
    anchor: AnchorConfig = field(default_factory=AnchorConfig)
    groups: tuple[int, ...] | None = None  # keep only these groups (None: all)
    per_group_limit: int | None = None  # cap training images per group (None: all)
    ceiling_seeds: int = 1  # LOGO studies in all (the truth's, then the noise ceiling's)
    # LOGO studies averaged into the ground truth (SPEC §2: when group effects are small, one study is
    # mostly training noise); the noise ceiling is then as many further studies, averaged the same way
    truth_seeds: int = added_knob(1)
    n_boot: int = 1000
    # per-method settings for this benchmark size (a user's --option overrides them), e.g. a smaller
    # TRAK projection on digits; recorded in every result row's settings
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the candidate groups when --targets is not given (UnlearnCanvas-shaped presets; the rest is background)
    targets: tuple[str, ...] | None = added_knob(None)
    # NDCG@k gain this board reports as "ndcg@3": "exp" (CIFAR-10 reference) or "linear" (UnlearnCanvas
    # reference, relevance K..1); results.json carries both variants
    ndcg_gain: str = added_knob("exp")


def to_jsonable(obj: Any, for_key: bool = False) -> Any:
    """Dataclasses/tuples/numpy scalars to plain JSON types, recursively. `for_key` leaves out added knobs at
    their default (see the module docstring)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name), for_key) for f in dataclasses.fields(obj)
                if not (for_key and f.metadata.get(ADDED) and getattr(obj, f.name) == f.default)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, for_key) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, for_key) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj


def canonical_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of obj: the identity of a configuration."""
    blob = json.dumps(to_jsonable(obj, for_key=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()
