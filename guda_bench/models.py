"""diffusers models and schedulers built from config, saved and loaded with safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel, UNet2DModel

from guda_bench.config import ModelConfig, TextConfig, TrainRecipe


def build_unet(cfg: ModelConfig, num_class_embeds: int | None = None, text: TextConfig | None = None,
               cross_attention_dim: int | None = None) -> UNet2DModel | UNet2DConditionModel:
    """The configured UNet2DModel; with num_class_embeds, a class-conditional one (labels 0..num-1);
    with `text`, a UNet2DConditionModel attending to text hidden states of width cross_attention_dim
    (the encoder's hidden size, which may differ from text.hidden_size for a pretrained encoder)."""
    if text is not None:
        return UNet2DConditionModel(
            sample_size=cfg.sample_size, in_channels=cfg.in_channels, out_channels=cfg.in_channels,
            block_out_channels=tuple(cfg.block_out_channels), layers_per_block=cfg.layers_per_block,
            down_block_types=tuple(cfg.down_block_types), up_block_types=tuple(cfg.up_block_types),
            norm_num_groups=cfg.norm_num_groups, dropout=cfg.dropout,
            cross_attention_dim=cross_attention_dim or text.hidden_size, attention_head_dim=text.attention_head_dim,
        )
    return UNet2DModel(
        sample_size=cfg.sample_size,
        in_channels=cfg.in_channels,
        out_channels=cfg.in_channels,
        block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block,
        down_block_types=tuple(cfg.down_block_types),
        up_block_types=tuple(cfg.up_block_types),
        norm_num_groups=cfg.norm_num_groups,
        dropout=cfg.dropout,
        num_class_embeds=num_class_embeds,
    )


def build_scheduler(recipe: TrainRecipe) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=recipe.num_train_timesteps, beta_schedule=recipe.beta_schedule,
                         clip_sample=True, variance_type="fixed_small")


def save_unet(unet: UNet2DModel, folder: Path) -> None:
    unet.save_pretrained(folder, safe_serialization=True)


def load_unet(folder: Path, device: str = "cpu") -> UNet2DModel | UNet2DConditionModel:
    """Either UNet class, as recorded in the folder's config.json."""
    name = json.loads((folder / "config.json").read_text()).get("_class_name")
    cls = UNet2DConditionModel if name == "UNet2DConditionModel" else UNet2DModel
    unet = cls.from_pretrained(folder, use_safetensors=True, low_cpu_mem_usage=False)
    return unet.to(device).eval()


PREDICTION_TYPES = ("epsilon", "v_prediction")
_V_ABAR = "guda_v_prediction_abar"  # attribute of a v-predicting UNet: its schedule's alpha_bar (models.as_eps)


def set_prediction(unet: torch.nn.Module, recipe: TrainRecipe, scheduler: DDPMScheduler) -> torch.nn.Module:
    """Mark a UNet trained with recipe.prediction_type "v_prediction", so that `denoise` returns eps."""
    if recipe.prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, not {recipe.prediction_type!r}")
    if recipe.prediction_type == "v_prediction":
        setattr(unet, _V_ABAR, scheduler.alphas_cumprod.float())
    return unet


def as_eps(unet: torch.nn.Module, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
    """The UNet's output as eps: unchanged for an eps-model; eps = sqrt(abar) v + sqrt(1 - abar) x_t for a
    v-model (set_prediction)."""
    abar = getattr(unet, _V_ABAR, None)
    if abar is None:
        return out
    a = abar.to(x.device)[torch.as_tensor(t, device=x.device).long()]
    a = a.reshape(-1, *([1] * (x.dim() - 1))) if a.dim() else a
    return a.sqrt() * out + (1 - a).sqrt() * x


def predict(unet: torch.nn.Module, x: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None = None,
            **kwargs: object) -> torch.Tensor:
    """The UNet's own output (eps or v) of either UNet class: `cond` (text hidden states) when text-conditional."""
    if cond is None:
        return unet(x, t, **kwargs).sample
    return unet(x, t, encoder_hidden_states=cond, **kwargs).sample


def denoise(unet: torch.nn.Module, x: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None = None,
            **kwargs: object) -> torch.Tensor:
    """eps prediction of either UNet class and either prediction type (what every ELBO, loss and gradient reads)."""
    return as_eps(unet, predict(unet, x, t, cond, **kwargs), x, t)
