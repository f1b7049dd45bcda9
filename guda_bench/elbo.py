"""Per-(query, t) ELBO terms with common random numbers (SPEC §3).

For each query x0 and grid timestep t (diffusers index, 0-based) the term is the KL between the true
posterior q(x_{t-1} | x_t, x0) and the model's p(x_{t-1} | x_t) whose variance is set to the posterior
variance. Both are Gaussians with the same variance, so the KL is ||mu_q - mu_p||^2 / (2 sigma_post^2),
and mu_q - mu_p = beta_t / (sqrt(alpha_t) sqrt(1 - abar_t)) (eps_hat - eps), giving
    KL_t = w_t ||eps_hat - eps||^2,   w_t = beta_t^2 / (2 sigma_post_t^2 alpha_t (1 - abar_t)),
summed over pixels, in nats. `weighting="eps"` drops w_t (a plain epsilon-error sum).

Noise is ONE fixed draw per (query id, t, seed), independent of batch position, so every model sees
the same noise and scores do not depend on the batch size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import torch
from diffusers import DDPMScheduler

from guda_bench import progress
from guda_bench.config import ElboConfig
from guda_bench.models import denoise


def kl_weights(scheduler: DDPMScheduler, timesteps: list[int], weighting: str) -> torch.Tensor:
    """w_t per grid timestep (ones for the "eps" weighting)."""
    if weighting == "eps":
        return torch.ones(len(timesteps), dtype=torch.float64)
    if weighting != "kl":
        raise ValueError(f"unknown ELBO weighting {weighting!r} (use 'kl' or 'eps')")
    if min(timesteps) < 1:
        raise ValueError("the KL weighting needs t >= 1 (the t = 0 term is the decoder term)")
    betas = scheduler.betas.double()
    abar = torch.cumprod(1 - betas, 0)  # in float64: 1 - abar at small t loses digits in float32
    t = torch.tensor(timesteps)
    beta, alpha, ab, ab_prev = betas[t], 1 - betas[t], abar[t], abar[t - 1]
    var_post = beta * (1 - ab_prev) / (1 - ab)
    return beta**2 / (2 * var_post * alpha * (1 - ab))


def noise_seed(query_id: str, t: int, seed: int) -> int:
    digest = hashlib.sha256(f"{query_id}|{t}|{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def keyed_noise(keys: Sequence[Hashable], timesteps: Sequence[int], seed_of: Callable[[Hashable, int], int],
                shape: tuple[int, ...]) -> torch.Tensor:
    """[len(keys), len(timesteps), *shape] noise, each slice drawn from its own generator seeded by
    seed_of(key, t): independent of batch position, so every consumer can share one draw per (key, t)."""
    out = torch.empty((len(keys), len(timesteps), *shape))
    g = torch.Generator()
    for i, key in enumerate(keys):
        for j, t in enumerate(timesteps):
            g.manual_seed(seed_of(key, int(t)))
            out[i, j] = torch.randn(shape, generator=g)
    return out


class ElboScorer:
    """Computes [n_queries, n_grid] ELBO terms of any model on fixed queries with shared noise."""

    def __init__(self, scheduler: DDPMScheduler, cfg: ElboConfig, queries: torch.Tensor, query_ids: list[str],
                 device: str = "cpu", query_cond: torch.Tensor | None = None) -> None:
        if len(query_ids) != len(queries):
            raise ValueError("one query id per query is needed")
        self.cfg = cfg
        self.device = device
        self.timesteps = cfg.timesteps()
        self.queries = queries.float()
        self.query_ids = list(query_ids)
        self.query_cond = query_cond  # [n_queries, L, D] text hidden states: ELBO(x0 | c) when set
        self.weights = kl_weights(scheduler, self.timesteps, cfg.weighting)
        abar = scheduler.alphas_cumprod.double()[torch.tensor(self.timesteps)]
        self._sqrt_ab = abar.sqrt().float()
        self._sqrt_1mab = (1 - abar).sqrt().float()
        self._noise: torch.Tensor | None = None

    def noise(self) -> torch.Tensor:
        """[n_queries, n_grid, C, H, W] noise, each slice drawn from its own (query id, t, seed) key."""
        if self._noise is None:
            self._noise = keyed_noise(self.query_ids, self.timesteps,
                                      lambda qid, t: noise_seed(qid, t, self.cfg.seed), tuple(self.queries.shape[1:]))
        return self._noise

    @torch.no_grad()
    def terms(self, unet: torch.nn.Module, label: str = "ELBO", batch_size: int | None = None) -> np.ndarray:
        """Per-(query, t) terms in float64: KL in nats (weighting "kl") or squared eps error ("eps")."""
        bs = batch_size or self.cfg.batch_size
        noise = self.noise()
        nq, nt = noise.shape[:2]
        qi, ti = np.divmod(np.arange(nq * nt), nt)
        out = np.empty(nq * nt, dtype=np.float64)
        unet.eval()
        t_values = torch.tensor(self.timesteps)
        with progress.bar(label, nq * nt) as advance:
            for start in range(0, nq * nt, bs):
                q = torch.from_numpy(qi[start:start + bs])
                j = torch.from_numpy(ti[start:start + bs])
                x0 = self.queries[q]
                eps = noise[q, j]
                a = self._sqrt_ab[j][:, None, None, None]
                s = self._sqrt_1mab[j][:, None, None, None]
                xt = (a * x0 + s * eps).to(self.device)
                c = None if self.query_cond is None else self.query_cond[q].to(self.device)
                pred = denoise(unet, xt, t_values[j].to(self.device), c).float().cpu()
                err = (pred - eps).pow(2).flatten(1).sum(1).double()
                out[start:start + bs] = (err * self.weights[j]).numpy()
                advance(len(q))
        return out.reshape(nq, nt)
