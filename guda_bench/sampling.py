"""Queries: DDPM samples of the full model through diffusers' DDPMPipeline, one seeded generator per query
(so a query does not depend on the batch it was drawn in)."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMPipeline, DDPMScheduler

from guda_bench import progress
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
            with torch.no_grad():
                for t in steps:
                    eps = unet(x, t).sample
                    x = sched.step(eps, t, x, generator=gens).prev_sample
            out.append(x.clamp(-1, 1).cpu())
            advance(count)
    return torch.cat(out)
