"""Group unlearning fine-tunes (SPEC §4.1): GUDA-U's ReTrack and the reference unlearners.

One loop serves every variant; they differ only in the forget target:
- "retrack": posterior-weighted epsilon implied by the K nearest RETAIN neighbours (stable softmax);
- "retrack-clipped": each neighbour shift delta_j rescaled to L2 norm <= sqrt(2 * kl_cap);
- "reference": what the public reference code computes (weights underflow, target = 0);
- "none": retain-only fine-tune (no forget term);
- "ascent": gradient ascent on the forget images' denoising loss.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.optimization import get_constant_schedule_with_warmup
from sklearn.neighbors import NearestNeighbors

from guda_bench import progress
from guda_bench.config import UnlearnConfig
from guda_bench.train import _seed_of, optimizer_step

FORGET_TARGETS = ("retrack", "retrack-clipped", "reference", "none", "ascent")


def retain_neighbours(forget: torch.Tensor, retain: torch.Tensor, k: int) -> np.ndarray:
    """Indices [n_forget, k] of each forget image's k nearest retain images in pixel space."""
    k = min(k, len(retain))
    nn = NearestNeighbors(n_neighbors=k).fit(retain.flatten(1).numpy())
    return nn.kneighbors(forget.flatten(1).numpy(), return_distance=False)


def retrack_target(x_f: torch.Tensor, eps: torch.Tensor, anchors: torch.Tensor, sqrt_ab: torch.Tensor,
                   sigma: torch.Tensor, kl_cap: float | None = None) -> torch.Tensor:
    """eps + sum_j w_j delta_j with w = softmax_j(-||x_t - sqrt(abar) a_j||^2 / (2 sigma^2)).

    x_f, eps: [B, C, H, W]; anchors: [B, K, C, H, W]; sqrt_ab, sigma: [B]. With kl_cap, every
    delta_j = (sqrt(abar)/sigma)(x_f - a_j) is rescaled to norm <= sqrt(2 kl_cap) (the paper's KL cap).
    """
    b = x_f.shape[0]
    sa = sqrt_ab.view(b, 1, 1)
    sg = sigma.view(b, 1, 1)
    xf = x_f.flatten(1)[:, None]  # [B, 1, D]
    a = anchors.flatten(2)  # [B, K, D]
    e = eps.flatten(1)[:, None]
    delta = sa / sg * (xf - a)  # [B, K, D]
    logits = -(e + delta).pow(2).sum(-1) / 2  # -||x_t - sqrt(abar) a_j||^2 / (2 sigma^2)
    w = torch.softmax(logits, dim=1)  # log-sum-exp stable
    if kl_cap is not None:
        norm = delta.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        delta = delta * (np.sqrt(2 * kl_cap) / norm).clamp(max=1.0)
    return (e[:, 0] + (w[..., None] * delta).sum(1)).view_as(eps)


class PairDraw(NamedTuple):
    """One step's paired minibatch: noised retain and forget images with their own uniform t."""

    xt_r: torch.Tensor
    t_r: torch.Tensor
    eps_r: torch.Tensor
    forget_index: torch.Tensor
    x_f: torch.Tensor
    xt_f: torch.Tensor
    t_f: torch.Tensor
    eps_f: torch.Tensor
    sqrt_ab_f: torch.Tensor
    sigma_f: torch.Tensor
    retain_index: torch.Tensor


def paired_draws(retain: torch.Tensor, forget: torch.Tensor, pair_batch: int, alphas_cumprod: torch.Tensor,
                 g: torch.Generator) -> PairDraw:
    """Draw (retain idx, forget idx, t_r, t_f, eps_r, eps_f) from `g`, in that order, and noise both halves."""
    n_t = len(alphas_cumprod)
    shape = tuple(retain.shape[1:])
    ri = torch.randint(0, len(retain), (pair_batch,), generator=g)
    fi = torch.randint(0, len(forget), (pair_batch,), generator=g)
    t_r = torch.randint(0, n_t, (pair_batch,), generator=g)
    t_f = torch.randint(0, n_t, (pair_batch,), generator=g)
    eps_r = torch.randn((pair_batch, *shape), generator=g)
    eps_f = torch.randn((pair_batch, *shape), generator=g)
    sa_r, sg_r = alphas_cumprod[t_r].sqrt(), (1 - alphas_cumprod[t_r]).sqrt()
    sa_f, sg_f = alphas_cumprod[t_f].sqrt(), (1 - alphas_cumprod[t_f]).sqrt()
    x_f = forget[fi]
    xt_r = sa_r.view(-1, 1, 1, 1) * retain[ri] + sg_r.view(-1, 1, 1, 1) * eps_r
    xt_f = sa_f.view(-1, 1, 1, 1) * x_f + sg_f.view(-1, 1, 1, 1) * eps_f
    return PairDraw(xt_r, t_r, eps_r, fi, x_f, xt_f, t_f, eps_f, sa_f, sg_f, ri)


def unlearn_group(full: torch.nn.Module, scheduler: DDPMScheduler, images: torch.Tensor, group_of: np.ndarray,
                  k: int, cfg: UnlearnConfig, device: str = "cpu", label: str = "unlearn") -> torch.nn.Module:
    """Fine-tune a copy of `full` to remove group k; return the raw (non-EMA) weights, as the reference."""
    if cfg.forget_target not in FORGET_TARGETS:
        raise ValueError(f"unknown forget_target {cfg.forget_target!r} (known: {', '.join(FORGET_TARGETS)})")
    forget = images[group_of == k]
    retain = images[group_of != k]
    student = copy.deepcopy(full).to(device).train()
    teacher = full.to(device).eval() if cfg.retain_loss == "distill" else None
    neighbours = None
    if cfg.forget_target in ("retrack", "retrack-clipped"):
        neighbours = torch.from_numpy(retain_neighbours(forget, retain, cfg.k_neighbours))
    abar = scheduler.alphas_cumprod.float()
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = get_constant_schedule_with_warmup(opt, cfg.warmup_steps)
    with progress.bar(label, cfg.steps) as advance:
        for step in range(cfg.steps):
            d = paired_draws(retain, forget, cfg.pair_batch, abar, torch.Generator().manual_seed(
                _seed_of(cfg.seed, 5, k, step)))
            xt_r, t_r = d.xt_r.to(device), d.t_r.to(device)
            if cfg.forget_target == "none":
                pred_r = student(xt_r, t_r).sample
            else:  # one forward for both halves (GroupNorm is per sample: same as two forwards)
                pred = student(torch.cat([xt_r, d.xt_f.to(device)]), torch.cat([t_r, d.t_f.to(device)])).sample
                pred_r, pred_f = pred[:cfg.pair_batch], pred[cfg.pair_batch:]
            if teacher is not None:
                with torch.no_grad():
                    target_r = teacher(xt_r, t_r).sample
            else:
                target_r = d.eps_r.to(device)
            loss = F.mse_loss(pred_r, target_r)
            if cfg.forget_target != "none":
                if cfg.forget_target == "ascent":
                    loss = loss - cfg.lambda_forget * F.mse_loss(pred_f, d.eps_f.to(device))
                else:
                    if cfg.forget_target == "reference":
                        target = torch.zeros_like(d.eps_f)
                    else:
                        cap = cfg.kl_cap if cfg.forget_target == "retrack-clipped" else None
                        target = retrack_target(d.x_f, d.eps_f, retain[neighbours[d.forget_index]], d.sqrt_ab_f,
                                                d.sigma_f, cap)
                    loss = loss + cfg.lambda_forget * F.mse_loss(pred_f, target.to(device))
            optimizer_step(loss, student, opt, cfg.grad_clip, sched)
            advance(1)
    if teacher is not None:
        teacher.train(False)
    return student.eval()
