"""Queries: DDPM samples of the full model through diffusers' DDPMPipeline, one seeded generator per query
(so a query does not depend on the batch it was drawn in)."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMPipeline, DDPMScheduler

from guda_bench import progress
from guda_bench.models import denoise
from guda_bench.train import _seed_of


def sample_queries(unet: torch.nn.Module, scheduler: DDPMScheduler, n: int, seed: int, inference_steps: int,
                   batch_size: int, device: str = "cpu") -> torch.Tensor:
    """n samples in [-1, 1], shape [n, C, H, W]."""
    pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler.from_config(scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    out = []
    with progress.bar("sampling queries", n) as advance:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            gens = [torch.Generator(device=device).manual_seed(_seed_of(seed, 4, start + i)) for i in range(count)]
            with torch.no_grad():
                imgs = pipe(batch_size=count, generator=gens, num_inference_steps=inference_steps,
                            output_type="np").images
            x = torch.from_numpy(np.asarray(imgs, dtype=np.float32)).permute(0, 3, 1, 2) * 2 - 1
            out.append(x)
            advance(count)
    return torch.cat(out)


def sample_near(unet: torch.nn.Module, scheduler: DDPMScheduler, anchors: torch.Tensor, n: int, seed: int,
                inference_steps: int, start_t: int, batch_size: int, device: str = "cpu") -> torch.Tensor:
    """n samples generated near anchor images (SDEdit): query i noises anchor i % A to the last inference
    timestep <= start_t, then runs the DDPM reverse steps from there. One seeded generator per query."""
    sched = DDPMScheduler.from_config(scheduler.config)
    sched.set_timesteps(inference_steps)
    steps = [int(t) for t in sched.timesteps if int(t) <= start_t]
    if not steps:
        raise ValueError(f"no inference timestep <= {start_t}")
    unet = unet.to(device).eval()
    out = []
    with progress.bar("sampling queries near anchors", n) as advance:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            gens = [torch.Generator(device=device).manual_seed(_seed_of(seed, 5, start + i)) for i in range(count)]
            x0 = anchors[[(start + i) % len(anchors) for i in range(count)]].to(device)
            noise = torch.stack([torch.randn(x0.shape[1:], generator=g, device=device) for g in gens])
            x = sched.add_noise(x0, noise, torch.tensor([steps[0]] * count))
            out.append(_reverse(unet, sched, x, steps, gens))
            advance(count)
    return torch.cat(out)


@torch.no_grad()
def _reverse(unet: torch.nn.Module, sched: DDPMScheduler, x: torch.Tensor, steps: list[int],
             gens: list[torch.Generator], cond: torch.Tensor | None = None, guidance: float = 1.0,
             null_cond: torch.Tensor | None = None) -> torch.Tensor:
    """DDPM reverse steps from x at steps[0] down to 0, on CPU; clamped to [-1, 1] when the scheduler clips
    (pixel space; latents are left as they are). With guidance != 1, classifier-free guidance:
    eps = eps(x, null) + guidance * (eps(x, cond) - eps(x, null)), both in one batched forward."""
    for t in steps:
        if guidance == 1.0:
            eps = denoise(unet, x, t, cond)
        else:
            both = denoise(unet, torch.cat([x, x]), t, torch.cat([null_cond.expand_as(cond), cond]))
            eps_null, eps_cond = both.chunk(2)
            eps = eps_null + guidance * (eps_cond - eps_null)
        x = sched.step(eps, t, x, generator=gens).prev_sample
    return (x.clamp(-1, 1) if sched.config.clip_sample else x).cpu()


def sample_prompted(unet: torch.nn.Module, scheduler: DDPMScheduler, cond: torch.Tensor, shape: tuple[int, ...],
                    seed: int, inference_steps: int, batch_size: int, device: str = "cpu", guidance: float = 1.0,
                    null_cond: torch.Tensor | None = None) -> torch.Tensor:
    """One DDPM sample per row of `cond` ([n, L, D] text hidden states) from a text-conditional UNet, one
    seeded generator per query; classifier-free guidance with `guidance` != 1 (`null_cond`: the empty
    prompt's [L, D] hidden states)."""
    if guidance != 1.0 and null_cond is None:
        raise ValueError("classifier-free guidance needs the empty prompt's hidden states (null_cond)")
    sched = DDPMScheduler.from_config(scheduler.config)
    sched.set_timesteps(inference_steps)
    steps = [int(t) for t in sched.timesteps]
    unet = unet.to(device).eval()
    out = []
    n = len(cond)
    with progress.bar("sampling queries from prompts", n) as advance:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            gens = [torch.Generator(device=device).manual_seed(_seed_of(seed, 4, start + i)) for i in range(count)]
            x = torch.stack([torch.randn(shape, generator=g, device=device) for g in gens])
            out.append(_reverse(unet, sched, x, steps, gens, cond[start:start + count].to(device), guidance,
                                None if null_cond is None else null_cond.to(device)))
            advance(count)
    return torch.cat(out)
