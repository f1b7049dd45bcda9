"""Projected per-sample gradient features and the TRAK kernel (SPEC §5): shared by TRAK, D-TRAK and DAS.

Implementation choice: traker's *projector* (``trak.projectors.BasicProjector``, float32, on any device)
applied to per-sample gradients computed here with ``torch.func`` (functional_call + vmap + grad); the
kernel algebra is done here in float64. traker's TRAKer pipeline is not used: its scorer stores
features in half precision memmaps and multiplies by an out-to-loss term, which fits neither a fixed,
config-set lambda nor the two diffusion output functions cleanly.

Output functions of one image x0 (averaged over the timesteps, K = 10 by default: 0, 100, ..., 900):
- ``"loss"`` (TRAK):          f(x0) = mean_t ||eps_theta(x_t, t) - eps_t||^2
- ``"output_norm"`` (D-TRAK): f(x0) = mean_t ||eps_theta(x_t, t)||^2
with x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps_t and eps_t ONE fixed draw per (sample id, t, seed)
(the ELBO scorer's keying), so features are reproducible and do not depend on the batch size. The
gradient of f with respect to every parameter is projected to ``proj_dim`` dimensions (the projection
is linear, so projecting the timestep-averaged gradient equals averaging projected gradients).

Projection: traker's BasicProjector matrix R (one block of grad_dim x proj_dim when it fits in
``MAX_MATRIX_BYTES``, generated once per process and reused), applied parameter by parameter:
R^T g = sum_k R_k^T g_k. The per-sample gradients therefore never get concatenated into an
[n, grad_dim] matrix: on 2 CPU cores that copy cost as much as the projection itself. The projection is
Gaussian (``ProjectionType.normal``): on the CPU it generates about twice as fast as Rademacher and is an
equally valid JL sketch. Per-sample gradients run under the math SDPA backend (the diffusers UNet's
mid-block has attention, whose fused CPU kernels have no vmap batching rule).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from diffusers import DDPMScheduler
from torch.func import functional_call, grad, vmap

from guda_bench import progress
from guda_bench.elbo import keyed_noise, noise_seed
from guda_bench.method import Method
from guda_bench.models import as_eps, denoise
from guda_bench.options import Option

if TYPE_CHECKING:
    from guda_bench.context import Context

OUTPUTS = ("loss", "output_norm")
DEFAULT_TIMESTEPS = tuple(range(0, 1000, 100))


def parse_timesteps(spec: str | Sequence[int]) -> tuple[int, ...]:
    """"0,100,200" (CLI string) or a sequence of ints -> a tuple of diffusers timestep indices."""
    if isinstance(spec, str):
        out = tuple(int(s) for s in spec.replace(" ", "").split(",") if s)
    else:
        out = tuple(int(t) for t in spec)
    if not out:
        raise ValueError("at least one timestep is needed")
    return out


def fixed_noise(ids: Sequence[str], timesteps: Sequence[int], seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """[n, K, *shape] float32 noise, each slice drawn from its own (sample id, t, seed) key."""
    return keyed_noise(ids, timesteps, lambda sid, t: noise_seed(sid, t, seed), shape)


def _math_attention():
    """Per-sample gradients through attention need the math SDPA backend under torch.func."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - older torch
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


MAX_MATRIX_BYTES = 4 << 30  # one projection block up to 4 GiB; larger projections are generated in blocks


@functools.lru_cache(maxsize=2)
def _projector(grad_dim: int, proj_dim: int, seed: int, device: str):
    """traker's projector; cached so train and query features share one generated matrix."""
    from trak.projectors import BasicProjector, ProjectionType

    fits = grad_dim * proj_dim * 4 <= MAX_MATRIX_BYTES
    return BasicProjector(grad_dim=grad_dim, proj_dim=proj_dim, seed=seed, proj_type=ProjectionType.normal,
                          device=torch.device(device), block_size=proj_dim if fits else min(proj_dim, 512),
                          dtype=torch.float32)


def project_parts(projector, parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """R^T g for per-sample gradients g given as consecutive parameter slices [B, n_k], with traker's R.

    Equals ``projector.project(torch.cat(parts, 1))`` (tested) without building the concatenation.
    """
    n = parts[0].shape[0]
    sketch = torch.zeros((n, projector.proj_dim), dtype=projector.dtype, device=parts[0].device)
    for block in range(projector.num_blocks):
        if projector.num_blocks > 1:
            projector.generate_sketch_matrix(projector.generator_states[block])
        start = block * projector.block_size
        stop = min(start + projector.block_size, projector.proj_dim)
        offset = 0
        for g in parts:
            width = g.shape[1]
            sketch[:, start:stop].addmm_(g.to(projector.dtype), projector.proj_matrix[offset:offset + width,
                                                                                        :stop - start])
            offset += width
    return sketch


def gradient_features(unet: torch.nn.Module, scheduler: DDPMScheduler, images: torch.Tensor, ids: Sequence[str],
                      output: str = "loss", timesteps: Sequence[int] = DEFAULT_TIMESTEPS, proj_dim: int = 2048,
                      seed: int = 0, batch_size: int = 128, device: str = "cpu",
                      label: str = "gradient features", cond: torch.Tensor | None = None) -> np.ndarray:
    """[n, proj_dim] float32 projected gradients of the output function of each image (see module doc).

    `batch_size` images go through one vmapped gradient call; it does not change the result beyond float
    rounding. `cond` ([n, L, D] text hidden states) conditions each image on its prompt (text-to-image).
    Raises if a feature is non-finite or zero.
    """
    if output not in OUTPUTS:
        raise ValueError(f"unknown output function {output!r} (use one of {OUTPUTS})")
    if len(ids) != len(images):
        raise ValueError("one id per image is needed")
    timesteps = parse_timesteps(timesteps)
    unet = unet.to(device).eval()
    params = {k: v.detach() for k, v in unet.named_parameters()}
    buffers = {k: v.detach() for k, v in unet.named_buffers()}
    names = list(params)
    grad_dim = sum(p.numel() for p in params.values())
    abar = scheduler.alphas_cumprod.double()[torch.tensor(timesteps)]
    a = abar.sqrt().float().to(device)[:, None, None, None]
    s = (1 - abar).sqrt().float().to(device)[:, None, None, None]
    t_values = torch.tensor(timesteps, device=device)

    def out_fn(p: dict, x0: torch.Tensor, eps: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        xt = a * x0[None] + s * eps  # [K, C, H, W]
        kwargs = {} if c is None else {"encoder_hidden_states": c[None].expand(len(t_values), *c.shape)}
        pred = as_eps(unet, functional_call(unet, (p, buffers), (xt, t_values), kwargs).sample, xt, t_values)
        target = pred - eps if output == "loss" else pred
        return target.pow(2).flatten(1).sum(1).mean()

    per_sample = vmap(grad(out_fn), in_dims=(None, 0, 0) if cond is None else (None, 0, 0, 0))
    projector = _projector(grad_dim, proj_dim, seed, device)
    images = images.float()
    shape = tuple(images.shape[1:])
    n = len(images)
    out = np.empty((n, proj_dim), dtype=np.float32)
    with _math_attention(), progress.bar(label, n) as advance:
        for start in range(0, n, batch_size):
            end = min(n, start + batch_size)
            eps = fixed_noise(ids[start:end], timesteps, seed, shape).to(device)
            extra = () if cond is None else (cond[start:end].to(device),)
            g = per_sample(params, images[start:end].to(device), eps, *extra)
            out[start:end] = project_parts(projector, [g[k].flatten(1) for k in names]).cpu().numpy()
            del g
            advance(end - start)
    check_features(out)
    return out


def residual_norms(unet: torch.nn.Module, scheduler: DDPMScheduler, images: torch.Tensor, ids: Sequence[str],
                   timesteps: Sequence[int] = DEFAULT_TIMESTEPS, seed: int = 0, batch_size: int = 256,
                   device: str = "cpu", cond: torch.Tensor | None = None) -> np.ndarray:
    """[n] float64: mean over the timesteps of ||eps_theta(x_t, t) - eps_t|| (same noise as the features)."""
    timesteps = parse_timesteps(timesteps)
    abar = scheduler.alphas_cumprod.double()[torch.tensor(timesteps)]
    a = abar.sqrt().float()[None, :, None, None, None]
    s = (1 - abar).sqrt().float()[None, :, None, None, None]
    k = len(timesteps)
    t_values = torch.tensor(timesteps)
    shape = tuple(images.shape[1:])
    out = np.empty(len(images), dtype=np.float64)
    unet = unet.to(device).eval()
    with torch.no_grad(), _math_attention():
        for start in range(0, len(images), batch_size):
            x0 = images[start:start + batch_size].float()
            eps = fixed_noise(ids[start:start + batch_size], timesteps, seed, shape)
            xt = (a * x0[:, None] + s * eps).flatten(0, 1)
            c = None if cond is None else cond[start:start + batch_size].repeat_interleave(k, 0).to(device)
            pred = denoise(unet, xt.to(device), t_values.repeat(len(x0)).to(device), c).float().cpu()
            err = (pred - eps.flatten(0, 1)).flatten(1).norm(dim=1).double().reshape(len(x0), k)
            out[start:start + len(x0)] = err.mean(1).numpy()
    return out


def check_features(phi: np.ndarray) -> None:
    """Features must be finite and no row may be all zeros."""
    if not np.isfinite(phi).all():
        raise FloatingPointError("non-finite gradient features")
    zero = ~np.any(phi != 0, axis=1)
    if zero.any():
        raise FloatingPointError(f"{int(zero.sum())} all-zero gradient feature rows")


def regularised_gram(phi_train: np.ndarray, lam: float) -> np.ndarray:
    """Phi^T Phi + lam I in float64."""
    phi = np.asarray(phi_train, dtype=np.float64)
    return phi.T @ phi + lam * np.eye(phi.shape[1])


def relative_lambda(phi_train: np.ndarray, rel: float) -> float:
    """rel * mean diagonal of Phi^T Phi (a scale-free lambda: = rel * sum_i ||phi_i||^2 / d)."""
    phi = np.asarray(phi_train, dtype=np.float64)
    return float(rel * np.square(phi).sum() / phi.shape[1])


def kernel_scores(phi_train: np.ndarray, phi_query: np.ndarray, lam: float) -> np.ndarray:
    """[n_query, n_train] float64: phi_q (Phi^T Phi + lam I)^-1 phi_i^T."""
    phi = np.asarray(phi_train, dtype=np.float64)
    q = np.asarray(phi_query, dtype=np.float64)
    solved = np.linalg.solve(regularised_gram(phi, lam), q.T)  # [d, n_query]
    return solved.T @ phi.T


def leverages(phi_train: np.ndarray, lam: float) -> np.ndarray:
    """[n_train] float64: h_i = phi_i (Phi^T Phi + lam I)^-1 phi_i^T (in [0, 1) for lam > 0)."""
    phi = np.asarray(phi_train, dtype=np.float64)
    solved = np.linalg.solve(regularised_gram(phi, lam), phi.T)  # [d, n_train]
    return np.einsum("id,di->i", phi, solved)


def group_aggregate(instance_scores: np.ndarray, group_of: np.ndarray, n_groups: int, how: str = "sum") -> np.ndarray:
    """[n_query, n_train] -> [n_query, n_groups]: sum (or mean) of the instance scores of each group
    (background images, group -1, belong to none)."""
    if how not in ("sum", "mean"):
        raise ValueError(f"unknown aggregate {how!r} (use 'sum' or 'mean')")
    scores = np.asarray(instance_scores, dtype=np.float64)
    group_of = np.asarray(group_of)
    onehot = np.zeros((len(group_of), n_groups))
    member = group_of >= 0
    onehot[np.flatnonzero(member), group_of[member]] = 1.0
    out = scores @ onehot
    if how == "mean":
        out = out / np.maximum(onehot.sum(0), 1.0)
    return out


# ---- method plumbing shared by TRAK, D-TRAK and DAS (no method imports another method) ----------------
DEFAULT_TIMESTEPS_STR = ",".join(str(t) for t in DEFAULT_TIMESTEPS)


def cached_features(ctx: Context, which: str, output: str, timesteps: tuple[int, ...], proj_dim: int,
                    batch_size: int) -> np.ndarray:
    """Cached projected gradient features of the training images ("train") or the queries ("query")."""
    spec = {"full": ctx.full.key, "output": output, "timesteps": list(timesteps), "proj_dim": proj_dim,
            "seed": ctx.seed, "projector": "trak.BasicProjector/normal/float32"}
    if which == "train":
        spec["data"] = ctx.bench.full_model_hash()  # train features do not depend on the grouping
        images, ids = ctx.train_data, [f"{ctx.bench.dataset}/train/{i}" for i in range(len(ctx.train_data))]
        cond = ctx.image_cond
    else:
        spec["queries"] = ctx.queries_artefact.key
        images, ids, cond = ctx.queries, list(ctx.query_ids), ctx.query_cond

    def build(folder: Path) -> dict:
        phi = gradient_features(ctx.full_unet, ctx.scheduler, images, ids, output, timesteps, proj_dim,
                                ctx.seed, batch_size, ctx.device, f"{output} features ({which})", cond)
        np.save(folder / "features.npy", phi)
        return {"n": int(len(phi))}

    art = ctx.fetch(f"features-{which}", spec, build)
    phi = np.load(art.path / "features.npy")
    check_features(phi)
    return phi


class GradientFeatureMethod(Method):
    """Shared options and feature access for the gradient-feature methods."""

    requires = frozenset({"full_model", "train_images"})
    OPTIONS = {
        "output": Option("str", "loss", "output function: eps-MSE loss (TRAK) or ||eps_theta||^2 (D-TRAK)",
                         choices=OUTPUTS),
        "proj_dim": Option("int", 2048, "projected gradient dimensions", low=1),
        "lam": Option("float", 1e-2, "kernel ridge lambda (relative to mean diag of Phi^T Phi, or absolute)",
                      low=0, low_open=True),
        "lam_scale": Option("str", "relative", "how lam is read", choices=("relative", "absolute")),
        "timesteps": Option("timesteps", DEFAULT_TIMESTEPS_STR, "timesteps the gradients are averaged over"),
        "aggregate": Option("str", "sum", "instance scores to group score", choices=("sum", "mean")),
        "batch_size": Option("int", 128, "per-sample gradients per vmapped batch", low=1),
    }
    SEARCH_SPACE = {"lam": (1e-3, 1e-2, 1e-1, 1.0), "aggregate": ("sum", "mean")}

    def __init__(self, output: str = "loss", proj_dim: int | str = 2048, lam: float | str = 1e-2,
                 lam_scale: str = "relative", timesteps: str | tuple[int, ...] = DEFAULT_TIMESTEPS_STR,
                 aggregate: str = "sum", batch_size: int | str = 128) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}")
        if lam_scale not in ("relative", "absolute"):
            raise ValueError(f"lam_scale must be 'relative' or 'absolute', not {lam_scale!r}")
        if aggregate not in ("sum", "mean"):
            raise ValueError(f"aggregate must be 'sum' or 'mean', not {aggregate!r}")
        self.output = output
        self.proj_dim = int(proj_dim)
        self.lam = float(lam)
        self.lam_scale = lam_scale
        self.timesteps = parse_timesteps(timesteps)
        self.aggregate = aggregate
        self.batch_size = int(batch_size)
        self._phi_train: np.ndarray | None = None

    def features(self, ctx: Context, which: str) -> np.ndarray:
        return cached_features(ctx, which, self.output, self.timesteps, self.proj_dim, self.batch_size)

    def prepare(self, ctx: Context) -> None:
        self._phi_train = self.features(ctx, "train")

    def train_features(self, ctx: Context) -> np.ndarray:
        if self._phi_train is None:
            self.prepare(ctx)
        return self._phi_train  # type: ignore[return-value]

    def lambda_value(self, phi_train: np.ndarray) -> float:
        return relative_lambda(phi_train, self.lam) if self.lam_scale == "relative" else self.lam

    def describe_settings(self) -> dict:
        return {"output": self.output, "proj_dim": self.proj_dim, "lam": self.lam, "lam_scale": self.lam_scale,
                "timesteps": list(self.timesteps), "aggregate": self.aggregate}
