"""GUDA-C's anchor-redirection unlearning for text-to-image models (SPEC §4.3).

Removing style k puts prompts with style k out of support, so ReTrack's target is undefined. Instead a
forget pair (x_f, c_f) is redirected to what the full model predicts for an ANCHOR prompt c_a that keeps
the content and swaps the style for a retain style s ~ pi(s):
    pi(s) = (1 - eta) softmax_s(beta cos(e_f, p_s)) + eta Uniform(retain styles)
(e_f: the forget style's text embedding, p_s: each retain style's text prototype, both the pooled output
of the benchmark's own text encoder). The fine-tune minimises
    ||eps_theta(x_t, t, c_f) - eps_full(x_t, t, c_a)||^2
      + lambda_pres ||eps_theta(x_t', t', c) - eps_full(x_t', t', c)||^2
on paired forget / retain minibatches (same noised x_t on both sides of each term).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.optimization import get_constant_schedule

from guda_bench import progress
from guda_bench.config import AnchorConfig
from guda_bench.models import denoise
from guda_bench.text import TextData
from guda_bench.train import _seed_of, optimizer_step
from guda_bench.unlearn import paired_draws

ANCHOR_MODES = ("clip", "uniform", "no-style")


def anchor_distribution(prototypes: torch.Tensor, k: int, cfg: AnchorConfig) -> np.ndarray:
    """pi over styles for forgetting style k (zero at k). prototypes: [S, D] pooled style embeddings."""
    n = len(prototypes)
    retain = np.array([s for s in range(n) if s != k])
    uniform = np.zeros(n)
    uniform[retain] = 1.0 / len(retain)
    if cfg.anchors != "clip":
        return uniform
    p = F.normalize(prototypes.double(), dim=1)
    cos = (p[retain] @ p[k]).numpy()
    soft = np.zeros(n)
    soft[retain] = np.exp(cfg.beta * (cos - cos.max()))
    soft /= soft.sum()
    return (1 - cfg.eta) * soft + cfg.eta * uniform


def anchor_unlearn(full: torch.nn.Module, scheduler: DDPMScheduler, images: torch.Tensor, group_of: np.ndarray,
                   text: TextData, prompt_hidden: torch.Tensor, k: int, pi: np.ndarray, cfg: AnchorConfig,
                   device: str = "cpu", label: str = "anchor unlearn") -> torch.nn.Module:
    """A copy of the text-conditional `full` fine-tuned to forget style group k; raw weights returned.

    prompt_hidden: [P, L, D] hidden states of text.all_prompts(); group k must be one style (pi's zero).
    """
    if cfg.anchors not in ANCHOR_MODES:
        raise ValueError(f"unknown anchors {cfg.anchors!r} (known: {', '.join(ANCHOR_MODES)})")
    forget_idx, retain_idx = np.flatnonzero(group_of == k), np.flatnonzero(group_of != k)
    prompts = text.image_prompt_index()
    f_prompt = torch.from_numpy(prompts[forget_idx])
    r_prompt = torch.from_numpy(prompts[retain_idx])
    f_content = text.content_of[forget_idx]
    student = copy.deepcopy(full).to(device).train()
    teacher = full.to(device).eval()
    abar = scheduler.alphas_cumprod.float()
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = get_constant_schedule(opt)
    pi_t = torch.as_tensor(pi, dtype=torch.float64)
    with progress.bar(label, cfg.steps) as advance:
        for step in range(cfg.steps):
            g = torch.Generator().manual_seed(_seed_of(cfg.seed, 8, k, step))
            d = paired_draws(images[retain_idx], images[forget_idx], cfg.pair_batch, abar, g)
            content = f_content[d.forget_index.numpy()]
            if cfg.anchors == "no-style":
                anchor = text.no_style_index(content)
            else:
                styles = torch.multinomial(pi_t, cfg.pair_batch, replacement=True, generator=g).numpy()
                anchor = text.prompt_index(content, styles)
            c_f = prompt_hidden[f_prompt[d.forget_index]].to(device)
            c_a = prompt_hidden[torch.from_numpy(anchor)].to(device)
            c_r = prompt_hidden[r_prompt[d.retain_index]].to(device)
            xt_f, t_f = d.xt_f.to(device), d.t_f.to(device)
            xt_r, t_r = d.xt_r.to(device), d.t_r.to(device)
            with torch.no_grad():
                target = denoise(teacher, torch.cat([xt_f, xt_r]), torch.cat([t_f, t_r]), torch.cat([c_a, c_r]))
            pred = denoise(student, torch.cat([xt_f, xt_r]), torch.cat([t_f, t_r]), torch.cat([c_f, c_r]))
            n = cfg.pair_batch
            loss = F.mse_loss(pred[:n], target[:n]) + cfg.lambda_pres * F.mse_loss(pred[n:], target[n:])
            optimizer_step(loss, student, opt, cfg.grad_clip, sched)
            advance(1)
    return student.eval()
