"""diffusers models and schedulers built from config, saved and loaded with safetensors."""

from __future__ import annotations

from pathlib import Path

from diffusers import DDPMScheduler, UNet2DModel

from guda_bench.config import ModelConfig, TrainRecipe


def build_unet(cfg: ModelConfig, num_class_embeds: int | None = None) -> UNet2DModel:
    """The configured UNet2DModel; with num_class_embeds, a class-conditional one (labels 0..num-1)."""
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


def load_unet(folder: Path, device: str = "cpu") -> UNet2DModel:
    unet = UNet2DModel.from_pretrained(folder, use_safetensors=True, low_cpu_mem_usage=False)
    return unet.to(device).eval()
