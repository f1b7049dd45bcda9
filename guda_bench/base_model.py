"""Fine-tuning from a pretrained text-to-image pipeline (SPEC §2, §7: UnlearnCanvas on Stable Diffusion 1.5).

A local diffusers pipeline folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) is read, never
downloaded. Training images are encoded once to VAE latents (the posterior mean times the VAE's scaling
factor: deterministic, so every model of a study sees the same data); the full model and every LOGO model
are the same fine-tune of the pipeline's UNet, LOGO leaving one style out; ELBOs are computed in latent
space with the pipeline's own noise schedule; queries are sampled in latent space and decoded for the
methods that compare pixels. The folder enters cache keys through a fingerprint of its weights and
configs, so an artefact can never be reused with other base weights.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

from guda_bench.errors import BenchError
from guda_bench.text import TextStack

PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
ENV_BASE_MODEL = "GUDA_BENCH_BASE_MODEL"


class BaseModel:
    """The parts of a local diffusers text-to-image pipeline that a fine-tune recipe uses."""

    def __init__(self, folder: Path | str, encode_batch: int = 8) -> None:
        self.folder = Path(folder).expanduser()
        self.encode_batch = encode_batch  # images per VAE encode / decode call
        if not self.folder.is_dir():
            raise BenchError(f"base model folder {self.folder} does not exist (a local diffusers pipeline folder, "
                             f"e.g. Stable Diffusion 1.5; nothing is downloaded)")
        missing = [f"{p}/" for p in PARTS if not (self.folder / p).is_dir()]
        if missing:
            raise BenchError(f"{self.folder} is not a diffusers pipeline folder: missing {', '.join(missing)}")

    def __getstate__(self) -> dict:
        """What travels to a Ray worker: the folder and the fingerprint if already computed (so a worker
        never re-hashes the weights), not the loaded VAE."""
        return {k: v for k, v in self.__dict__.items() if k in ("folder", "encode_batch", "fingerprint")}

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over every file of the used parts (relative path and bytes): the base's cache identity."""
        h = hashlib.sha256()
        for part in PARTS:
            for f in sorted(p for p in (self.folder / part).rglob("*") if p.is_file()):
                h.update(str(f.relative_to(self.folder)).encode() + b"\0")
                with f.open("rb") as fh:
                    while chunk := fh.read(1 << 22):
                        h.update(chunk)
        return h.hexdigest()

    def unet(self) -> UNet2DConditionModel:
        """A fresh copy of the pipeline's UNet (each fine-tune starts from the same base weights)."""
        return UNet2DConditionModel.from_pretrained(self.folder / "unet", local_files_only=True,
                                                    low_cpu_mem_usage=False)

    @cached_property
    def vae(self) -> AutoencoderKL:
        vae = AutoencoderKL.from_pretrained(self.folder / "vae", local_files_only=True, low_cpu_mem_usage=False)
        return vae.eval().requires_grad_(False)

    def scheduler(self) -> DDPMScheduler:
        """The pipeline's training noise schedule as a DDPM scheduler: no clipping (latents are not in
        [-1, 1]), posterior variance for sampling (as the ELBO assumes)."""
        config = DDPMScheduler.load_config(self.folder / "scheduler")
        return DDPMScheduler.from_config(config, clip_sample=False, variance_type="fixed_small",
                                         prediction_type="epsilon")

    def text_stack(self) -> TextStack:
        return TextStack.pretrained(self.folder)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, batch_size: int | None = None, device: str = "cpu") -> torch.Tensor:
        """Images in [-1, 1] [N, 3, H, W] -> scaled latents [N, 4, H/f, W/f] (posterior mean), float32 on CPU."""
        batch_size = batch_size or self.encode_batch
        vae = self.vae.to(device)
        out = [vae.encode(images[i:i + batch_size].to(device)).latent_dist.mean.float().cpu()
               for i in range(0, len(images), batch_size)]
        return torch.cat(out) * self.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, batch_size: int | None = None, device: str = "cpu") -> torch.Tensor:
        """Scaled latents -> images in [-1, 1], float32 on CPU."""
        batch_size = batch_size or self.encode_batch
        vae = self.vae.to(device)
        out = [vae.decode(latents[i:i + batch_size].to(device) / self.scaling_factor).sample.float().cpu()
               for i in range(0, len(latents), batch_size)]
        return torch.cat(out).clamp(-1, 1)
