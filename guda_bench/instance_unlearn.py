"""Instance unlearning attribution (AbU, Wang et al. 2024), the core math.

Unlearn the query x_q from the full model by gradient ascent on its eps-MSE, preconditioned by the
diagonal empirical Fisher F of the training loss (a Newton step with F as the Hessian):
    theta <- theta + lr * g / (F * N),    g = grad_theta L_eps(x_q),  N = number of training images,
where F (plus a damping) is estimated once on the training set with a fixed seed. A training image's
score is its eps-MSE after minus before that update, with fixed noise per (image index, t, seed) on a
strided timestep grid, so before and after see the same draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from guda_bench import progress
from guda_bench.elbo import keyed_noise
from guda_bench.models import denoise
from guda_bench.train import _seed_of

NOISE_TAG_TRAIN = 11  # stream of the training images' evaluation noise
NOISE_TAG_QUERY = 12  # stream of the query's ascent noise
FISHER_TAG = 13


@dataclass(frozen=True)
class InstanceConfig:
    """AbU settings. Reference (text-to-image, cross-attention K/V only): lr 0.01 x 1 step or lr 0.1 x 100."""

    lr: float = 0.01
    steps: int = 1
    n_timesteps: int = 20  # strided grid for the query's ascent loss and the training images' losses
    fisher_samples: int = 2048  # (image, t, noise) draws of the empirical Fisher, one per image (digits: all)
    damping: float = 0.01  # F + damping * mean(F): keeps g / F finite where the Fisher is ~ 0
    # seeded subsample of training images scored per group (None: all). Cost per query = n_groups * 20 * 20
    # forwards: 4,000 on digits (10 groups), 1,600 on style-canvas (4 target styles)
    max_train_per_group: int | None = 20
    aggregate: str = "mean"  # "mean" or "sum" of the image scores within a group
    # image-timesteps per forward: 256 keeps the activations in cache, 1.2-2.4x faster than 2,048 on 2 CPU cores
    # and the same losses bit for bit (benchmarks/iu_batch.json)
    batch_size: int = 256
    seed: int = 0


def grid_timesteps(n: int, n_train_timesteps: int) -> list[int]:
    """n strided timesteps, centred in their strides: 25, 75, ..., 975 for n = 20 of 1000."""
    stride = n_train_timesteps / n
    return sorted({int((j + 0.5) * stride) for j in range(n)})


def fixed_noise(keys: Sequence[int], timesteps: Sequence[int], seed: int, shape: tuple[int, ...],
                tag: int) -> torch.Tensor:
    """[len(keys), len(timesteps), *shape] noise, each slice from its own (tag, key, t, seed) generator."""
    return keyed_noise(keys, timesteps, lambda key, t: _seed_of(seed, tag, int(key), t), shape)


def _noisy(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    a = abar[t].sqrt().view(-1, *([1] * (x0.ndim - 1)))
    s = (1 - abar[t]).sqrt().view(-1, *([1] * (x0.ndim - 1)))
    return a * x0 + s * noise


@torch.no_grad()
def per_image_losses(unet: torch.nn.Module, x0: torch.Tensor, noise: torch.Tensor, timesteps: Sequence[int],
                     abar: torch.Tensor, batch_size: int = 256, device: str = "cpu",
                     cond: torch.Tensor | None = None) -> np.ndarray:
    """[n] eps-MSE of each image, averaged over the timestep grid (noise: [n, n_t, C, H, W]), float64.
    cond: [n, L, D] text hidden states of each image's prompt (text-to-image models)."""
    n, nt = noise.shape[:2]
    ii, jj = np.divmod(np.arange(n * nt), nt)
    t_all = torch.as_tensor(list(timesteps), dtype=torch.long)
    out = np.empty(n * nt, dtype=np.float64)
    for start in range(0, n * nt, batch_size):
        i = torch.from_numpy(ii[start:start + batch_size])
        j = torch.from_numpy(jj[start:start + batch_size])
        t = t_all[j]
        eps = noise[i, j]
        c = None if cond is None else cond[i].to(device)
        pred = denoise(unet, _noisy(x0[i], eps, t, abar).to(device), t.to(device), c).float().cpu()
        out[start:start + batch_size] = (pred - eps).pow(2).flatten(1).mean(1).double().numpy()
    return out.reshape(n, nt).mean(1)


def query_loss(unet: torch.nn.Module, x_q: torch.Tensor, noise: torch.Tensor, timesteps: Sequence[int],
               abar: torch.Tensor, device: str = "cpu", cond: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable eps-MSE of one image x_q [C, H, W] over the grid (noise: [n_t, C, H, W]);
    cond: its prompt's [L, D] text hidden states (text-to-image models)."""
    t = torch.as_tensor(list(timesteps), dtype=torch.long)
    xt = _noisy(x_q.expand_as(noise), noise, t, abar)
    c = None if cond is None else cond[None].expand(len(t), *cond.shape).to(device)
    return F.mse_loss(denoise(unet, xt.to(device), t.to(device), c), noise.to(device))


def cross_attention_kv(unet: torch.nn.Module) -> list[str] | None:
    """Names of the cross-attention key/value weights (the reference's unlearned parameters for text-to-image
    models), or None for a model without cross-attention (then every weight is unlearned)."""
    names = [n for n, _ in unet.named_parameters() if ".attn2.to_k." in n or ".attn2.to_v." in n]
    return names or None


def _selected(unet: torch.nn.Module, names: list[str] | None) -> dict[str, torch.nn.Parameter]:
    params = dict(unet.named_parameters())
    return params if names is None else {n: params[n] for n in names}


def diagonal_fisher(unet: torch.nn.Module, images: torch.Tensor, abar: torch.Tensor, n_samples: int, seed: int,
                    device: str = "cpu", label: str = "Fisher", cond: torch.Tensor | None = None,
                    names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of the training loss: mean over per-sample eps-MSE gradients squared.

    One sample per image of a seeded subset of min(n_samples, N) images, each with a seeded t and noise
    (and its prompt's condition `cond[i]`), over the parameters `names` (all with None).
    """
    n = min(int(n_samples), len(images))
    rng = np.random.default_rng(_seed_of(seed, FISHER_TAG))
    idx = np.sort(rng.choice(len(images), size=n, replace=False))
    params = _selected(unet, names)
    fisher = {name: torch.zeros_like(p, device="cpu") for name, p in params.items()}
    shape = tuple(images.shape[1:])
    was_training = unet.training
    unet.eval()
    with progress.bar(label, n) as advance:
        for i in idx:
            g = torch.Generator().manual_seed(_seed_of(seed, FISHER_TAG, int(i)))
            t = torch.randint(0, len(abar), (1,), generator=g)
            eps = torch.randn((1, *shape), generator=g)
            xt = _noisy(images[int(i)][None], eps, t, abar)
            c = None if cond is None else cond[int(i)][None].to(device)
            loss = F.mse_loss(denoise(unet, xt.to(device), t.to(device), c), eps.to(device))
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            for name, gr in zip(params, grads, strict=True):
                if gr is not None:
                    fisher[name] += gr.detach().cpu().double().pow(2).float()
            advance(1)
    unet.train(was_training)
    return {name: f / n for name, f in fisher.items()}


def damped(fisher: dict[str, torch.Tensor], damping: float) -> dict[str, torch.Tensor]:
    """F + damping * mean(F) (the mean over every parameter entry): a scale-free damping."""
    total = sum(float(f.double().sum()) for f in fisher.values())
    count = sum(f.numel() for f in fisher.values())
    eps = damping * total / max(count, 1)
    if eps <= 0:
        eps = 1e-12
    return {name: f + eps for name, f in fisher.items()}


@torch.no_grad()
def fisher_step(unet: torch.nn.Module, grads: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor], lr: float,
                n_train: int) -> None:
    """Ascent step in place: theta <- theta + lr * g / (F * N) (fisher already damped)."""
    for name, p in unet.named_parameters():
        g = grads.get(name)
        if g is not None:
            p.add_(lr * g / (fisher[name].to(p.device) * n_train))


def unlearn_query(unet: torch.nn.Module, x_q: torch.Tensor, noise: torch.Tensor, timesteps: Sequence[int],
                  abar: torch.Tensor, fisher: dict[str, torch.Tensor], lr: float, steps: int, n_train: int,
                  device: str = "cpu", cond: torch.Tensor | None = None) -> None:
    """`steps` Fisher-preconditioned ascent steps on the query's eps-MSE, in place on `unet`, over the
    parameters the Fisher covers (all weights, or the cross-attention K/V of a text-to-image model)."""
    params = _selected(unet, list(fisher))
    for _ in range(steps):
        loss = query_loss(unet, x_q, noise, timesteps, abar, device, cond)
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        fisher_step(unet, {n: g for n, g in zip(params, grads, strict=True) if g is not None}, fisher, lr, n_train)


def subsample_per_group(group_of: np.ndarray, n_groups: int, max_per_group: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most max_per_group seeded images of every group (all with None)."""
    rng = np.random.default_rng(_seed_of(seed, 14))
    keep = []
    for k in range(n_groups):
        members = np.flatnonzero(group_of == k)
        if max_per_group is not None and len(members) > max_per_group:
            members = rng.choice(members, size=max_per_group, replace=False)
        keep.append(members)
    return np.sort(np.concatenate(keep))


def aggregate_groups(image_scores: np.ndarray, groups: np.ndarray, n_groups: int, how: str = "mean") -> np.ndarray:
    """[Q, n_images] -> [Q, n_groups] by mean or sum within each group."""
    if how not in ("mean", "sum"):
        raise ValueError(f"aggregate must be 'mean' or 'sum', not {how!r}")
    out = np.zeros((image_scores.shape[0], n_groups), dtype=np.float64)
    for k in range(n_groups):
        cols = image_scores[:, groups == k]
        out[:, k] = cols.mean(1) if how == "mean" else cols.sum(1)
    return out
