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
