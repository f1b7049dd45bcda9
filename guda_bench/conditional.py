"""A class-conditional diffusion model over GROUP labels, and ESD-style negative-guidance unlearning (SPEC §4.2).

The conditional model is a diffusers UNet2DModel built from the preset's ModelConfig with one class
embedding per group plus a null label (index n_groups), trained with the preset's recipe and
classifier-free-guidance label dropout. It only supplies ESD targets: the model under attribution
stays the unconditional full model.

ESD (Gandikota et al. 2023) target for forgetting group k at (x_t, t), with guidance scale w:
    target = eps_c(x_t, t, null) - w * (eps_c(x_t, t, k) - eps_c(x_t, t, null))
The student (a copy of the unconditional full model) is fine-tuned with
    loss = ||eps_s(x_t^r, t) - eps^r||^2 + lambda * ||eps_s(x_t^f, t) - target||^2
on retain images r and forget images f (group k), with Adam and gradient clipping.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel

from guda_bench import progress
from guda_bench.config import ModelConfig, TrainRecipe
from guda_bench.models import build_unet, save_unet
from guda_bench.store import Artefact
from guda_bench.train import _seed_of, optimizer_step, train_model
from guda_bench.unlearn import paired_draws

if TYPE_CHECKING:
    from guda_bench.context import Context

LABEL_DROPOUT = 0.1  # classifier-free guidance training: share of labels replaced by the null label


def build_conditional_unet(cfg: ModelConfig, n_groups: int) -> UNet2DModel:
    """models.build_unet with a class embedding for labels 0..n_groups (n_groups = the null label)."""
    return build_unet(cfg, num_class_embeds=n_groups + 1)


def null_label(group_of: np.ndarray, n_groups: int) -> int:
    """The null label: n_groups, or n_groups + 1 when background images (group -1) take label n_groups."""
    return n_groups + int((np.asarray(group_of) < 0).any())


def train_conditional(images: torch.Tensor, group_of: np.ndarray, n_groups: int, model_cfg: ModelConfig,
                      recipe: TrainRecipe, seed: int, label_dropout: float = LABEL_DROPOUT, device: str = "cpu",
                      label: str = "train conditional") -> UNet2DModel:
    """train.train_model's recipe (coupled batches and draws, AdamW, cosine schedule, EMA) with group labels
    (background images, if any, share one label of their own), a seeded share `label_dropout` of them replaced
    by the null label. Returns the EMA weights."""
    group_of = np.asarray(group_of)
    labels = np.where(group_of < 0, n_groups, group_of)
    return train_model(images, np.arange(len(images)), model_cfg, recipe, seed, device, label,
                       class_labels=labels, null_label=null_label(group_of, n_groups), label_dropout=label_dropout)


def conditional_spec(ctx: Context, label_dropout: float) -> dict:
    return {"data": ctx.data_hash, "model": ctx.preset.model, "recipe": ctx.preset.recipe, "seed": ctx.seed,
            "label_dropout": float(label_dropout), "n_groups": ctx.bench.n_groups}


def conditional_model(ctx: Context, label_dropout: float = LABEL_DROPOUT) -> Artefact:
    """The group-conditional model of this run, trained once and cached (its cost goes to the calling stage)."""

    def build(folder: Path) -> dict:
        unet = train_conditional(ctx.bench.images, ctx.bench.group_of, ctx.bench.n_groups, ctx.preset.model,
                                 ctx.preset.recipe, ctx.seed, label_dropout, ctx.device,
                                 f"train conditional (seed {ctx.seed})")
        save_unet(unet.cpu(), folder)
        return {"n_train": int(len(ctx.bench.images))}

    return ctx.fetch("conditional-model", conditional_spec(ctx, label_dropout), build)


def load_conditional(art: Artefact, device: str = "cpu") -> UNet2DModel:
    unet = UNet2DModel.from_pretrained(art.path, use_safetensors=True, low_cpu_mem_usage=False)
    return unet.to(device).eval()


@torch.no_grad()
def esd_target(cond: torch.nn.Module, xt: torch.Tensor, t: torch.Tensor, k: int | torch.Tensor, null: int,
               guidance: float) -> torch.Tensor:
    """eps_c(x_t, t, null) - w * (eps_c(x_t, t, k) - eps_c(x_t, t, null)) in one batched forward."""
    b = len(xt)
    k_labels = torch.as_tensor(k, dtype=torch.long, device=xt.device).expand(b)
    labels = torch.cat([torch.full((b,), null, dtype=torch.long, device=xt.device), k_labels])
    out = cond(torch.cat([xt, xt]), torch.cat([t, t]), class_labels=labels).sample
    eps_null, eps_k = out[:b], out[b:]
    return eps_null - guidance * (eps_k - eps_null)


@dataclass(frozen=True)
class EsdConfig:
    """ESD unlearning fine-tune (reference: lambda 0.3, lr 3e-5, Adam, clip 1.0, w 7.5)."""

    steps: int = 40
    pair_batch: int = 64
    lr: float = 1e-3
    lambda_forget: float = 0.3
    guidance: float = 7.5
    grad_clip: float = 1.0
    label_dropout: float = LABEL_DROPOUT
    seed: int = 0


def esd_unlearn(full: torch.nn.Module, cond: torch.nn.Module, scheduler: DDPMScheduler, images: torch.Tensor,
                group_of: np.ndarray, k: int, null: int, cfg: EsdConfig, device: str = "cpu",
                label: str = "unlearn (esd)") -> torch.nn.Module:
    """Fine-tune a copy of the unconditional `full` towards ESD targets on group k (`null`: the conditional
    model's null label); return the raw weights."""
    forget = images[group_of == k]
    retain = images[group_of != k]
    student = copy.deepcopy(full).to(device).train()
    cond = cond.to(device).eval()
    abar = scheduler.alphas_cumprod.float()
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    with progress.bar(label, cfg.steps) as advance:
        for step in range(cfg.steps):
            d = paired_draws(retain, forget, cfg.pair_batch, abar, torch.Generator().manual_seed(
                _seed_of(cfg.seed, 9, k, step)))
            xt_f, t_f = d.xt_f.to(device), d.t_f.to(device)
            target = esd_target(cond, xt_f, t_f, k, null, cfg.guidance)
            loss = F.mse_loss(student(d.xt_r.to(device), d.t_r.to(device)).sample, d.eps_r.to(device))
            loss = loss + cfg.lambda_forget * F.mse_loss(student(xt_f, t_f).sample, target)
            optimizer_step(loss, student, opt, cfg.grad_clip)
            advance(1)
    return student.eval()


def esd_unlearned_terms(ctx: Context, k: int, cfg: EsdConfig, cond_art: Artefact,
                        cond_loader: Callable[[], torch.nn.Module]) -> np.ndarray:
    """ELBO terms of the full model after ESD unlearning of group k (the fine-tune cached as "unlearned-esd")."""
    cfg = replace(cfg, seed=cfg.seed + ctx.seed)
    spec = {"full": ctx.full.key, "data": ctx.data_hash, "conditional": cond_art.key, "group": k, "esd": cfg}
    label = f"unlearn -{ctx.bench.group_names[k]} (esd)"

    def build(folder: Path) -> None:
        unet = esd_unlearn(ctx.full_unet, cond_loader(), ctx.scheduler, ctx.bench.images, ctx.bench.group_of, k,
                           null_label(ctx.bench.group_of, ctx.bench.n_groups), cfg, ctx.device, label)
        save_unet(unet.cpu(), folder)

    art = ctx.fetch("unlearned-esd", spec, build)
    return ctx.terms(art, f"ELBO {label}")
