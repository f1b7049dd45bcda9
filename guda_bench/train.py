"""Diffusion training with coupled randomness (SPEC §2).

The full model and every leave-one-group-out model of a seed start from the same initial weights and
consume the same stream of random draws: epoch permutations are drawn over the FULL dataset and then
filtered to the images that are kept, and each step's timesteps and noise come from a generator keyed
by (seed, step). So the data is the only difference between them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel

from guda_bench import progress
from guda_bench.config import ModelConfig, TextConfig, TrainRecipe
from guda_bench.models import build_scheduler, build_unet, predict, set_prediction


def _seed_of(*parts: int) -> int:
    """A 63-bit seed from integers, stable across platforms and Python runs."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


def optimizer_step(loss: torch.Tensor, model: torch.nn.Module, opt: torch.optim.Optimizer, grad_clip: float,
                   lr_schedule: torch.optim.lr_scheduler.LRScheduler | None = None) -> None:
    """Backward, clip the gradient norm, step the optimiser (and its learning-rate schedule)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    if lr_schedule is not None:
        lr_schedule.step()


def coupled_batches(n_total: int, keep: np.ndarray, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Batches of kept indices from per-epoch permutations of all n_total indices (shared order)."""
    keep_mask = np.zeros(n_total, dtype=bool)
    keep_mask[keep] = True
    buf: list[int] = []
    epoch = 0
    while True:
        perm = np.random.default_rng(_seed_of(seed, 1, epoch)).permutation(n_total)
        buf.extend(int(i) for i in perm if keep_mask[i])
        epoch += 1
        while len(buf) >= batch_size:
            yield np.asarray(buf[:batch_size])
            del buf[:batch_size]


def step_draws(step: int, seed: int, batch: int, shape: tuple[int, ...], n_timesteps: int,
               device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Timesteps and noise of one training step, identical for every model of a seed."""
    g = torch.Generator().manual_seed(_seed_of(seed, 2, step))
    t = torch.randint(0, n_timesteps, (batch,), generator=g)
    noise = torch.randn((batch, *shape), generator=g)
    return t.to(device), noise.to(device)


def drop_prompts(cond: torch.Tensor, null_cond: torch.Tensor, share: float, seed: int) -> torch.Tensor:
    """cond ([B, L, D]) with a seeded share of its rows replaced by null_cond ([L, D]); the same rows for
    every model trained with this seed (the full and LOGO models keep their coupled draws)."""
    drop = torch.rand(len(cond), generator=torch.Generator().manual_seed(seed)) < share
    return torch.where(drop.to(cond.device)[:, None, None], null_cond.expand_as(cond), cond)


def train_model(images: torch.Tensor, keep: np.ndarray, model_cfg: ModelConfig, recipe: TrainRecipe, seed: int,
                device: str = "cpu", label: str = "train", class_labels: np.ndarray | None = None,
                null_label: int | None = None, label_dropout: float = 0.0, text: TextConfig | None = None,
                cond: torch.Tensor | None = None, init: torch.nn.Module | None = None,
                scheduler: DDPMScheduler | None = None, null_cond: torch.Tensor | None = None) -> torch.nn.Module:
    """Train a UNet2DModel on images[keep]; return the EMA weights (used for sampling and scoring).

    With `class_labels` (one per image) the model is class-conditional (labels 0..null_label, the last one
    the null label) and a seeded share `label_dropout` of each batch's labels is replaced by the null label
    (classifier-free guidance training). Its initial weights are drawn from their own seed. With `init` (a
    pretrained UNet: a fine-tune recipe) training starts from those weights instead, and `scheduler` (the
    pretrained pipeline's noise schedule) replaces the recipe's. With text conditions `cond` ([N, L, D]) and
    recipe.prompt_dropout > 0, a seeded share of each batch's conditions is replaced by `null_cond` ([L, D],
    the empty prompt), so that the model also learns the unconditional prediction guidance needs.
    """
    conditional = class_labels is not None
    if conditional and null_label is None:
        raise ValueError("a class-conditional model needs its null label")
    if recipe.prompt_dropout > 0 and (cond is None or null_cond is None):
        raise ValueError("prompt_dropout needs text conditions and the empty prompt's (null_cond)")
    torch.manual_seed(_seed_of(seed, 0, 1) if conditional else _seed_of(seed, 0))  # same init within a kind
    if init is None:
        init = build_unet(model_cfg, num_class_embeds=null_label + 1 if conditional else None, text=text,
                          cross_attention_dim=None if cond is None else cond.shape[-1])
    unet = init.to(device).train()
    scheduler = scheduler or build_scheduler(recipe)
    v_model = recipe.prediction_type == "v_prediction"
    abar = scheduler.alphas_cumprod.to(device)
    opt = torch.optim.AdamW(unet.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, recipe.warmup_steps, recipe.steps)
    ema = EMAModel(unet.parameters(), decay=recipe.ema_decay)
    data = images.to(device)
    all_labels = torch.as_tensor(np.asarray(class_labels), dtype=torch.long) if conditional else None
    batches = coupled_batches(len(images), keep, recipe.batch_size, seed)
    shape = tuple(images.shape[1:])
    with progress.bar(label, recipe.steps) as advance:
        for step in range(recipe.steps):
            idx = torch.from_numpy(next(batches))
            x0 = data[idx.to(device)]
            t, noise = step_draws(step, seed, len(idx), shape, recipe.num_train_timesteps, device)
            if recipe.hflip:
                flip = torch.rand(len(idx), generator=torch.Generator().manual_seed(_seed_of(seed, 3, step))) < 0.5
                x0 = torch.where(flip.to(device)[:, None, None, None], x0.flip(-1), x0)
            labels = None
            if all_labels is not None:
                drop = torch.rand(len(idx), generator=torch.Generator().manual_seed(_seed_of(seed, 6, step)))
                batch_labels = all_labels[idx]
                labels = torch.where(drop < label_dropout, torch.full_like(batch_labels, null_label),
                                     batch_labels).to(device)
            a = abar[t].sqrt()[:, None, None, None]
            s = (1 - abar[t]).sqrt()[:, None, None, None]
            c = None if cond is None else cond[idx].to(device)
            if c is not None and recipe.prompt_dropout > 0:
                c = drop_prompts(c, null_cond.to(device), recipe.prompt_dropout, _seed_of(seed, 16, step))
            pred = predict(unet, a * x0 + s * noise, t, c, class_labels=labels)
            loss = F.mse_loss(pred, a * noise - s * x0 if v_model else noise)  # the v or the eps loss
            optimizer_step(loss, unet, opt, recipe.grad_clip, sched)
            ema.step(unet.parameters())
            advance(1)
    ema.copy_to(unet.parameters())
    return set_prediction(unet.eval(), recipe, scheduler)
