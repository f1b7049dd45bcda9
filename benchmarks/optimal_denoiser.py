"""How close is a board's full model to its training set's optimal denoiser (the memorising one)?

A diffusion model trained to its optimum on N images denoises like the Gaussian mixture over them:
    x0_hat(x_t) = sum_i w_i x_i,  w = softmax(-|x_t - sqrt(abar) x_i|^2 / (2 (1 - abar))),
    eps_opt = (x_t - sqrt(abar) x0_hat) / sqrt(1 - abar),
and for that model LOGO has a closed form (`pixel-kde`). This script measures, on a board's queries noised at
the ELBO grid's timesteps (fixed seeded noise), how far the trained model's eps prediction is from eps_opt:

    distance(t) = E |eps_model - eps_opt|^2 / E |eps_model|^2   (0: the model IS the optimal denoiser)

beside the same distance between the optimal denoisers of two random halves of the training set (what
memorising a *different* sample of the same data would change). A model far below the halves' figure is
pinned to its own training images' kernel density; one near or above it generalises beyond them. For a
text-to-image board the optimum is conditional: the mixture over the training images with the query's prompt.

    python benchmarks/optimal_denoiser.py --bundle leaderboards/digits.truth.tar.gz [--queries 300] [--out F]

Reads only what the bundle holds (the full model, the queries) and the adapter's training images; trains
nothing. The bundle is imported into `--cache` (default: the CLI's cache).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from guda_bench.methods.pixel_kde import kernel_log_weights

from guda_bench import cli
from guda_bench.bundle import import_bundle
from guda_bench.context import Context
from guda_bench.models import denoise
from guda_bench.runner import benchmark_of
from guda_bench.store import Store, atomic_write_text


def optimal_eps(xt: torch.Tensor, images: torch.Tensor, a: float, s: float) -> torch.Tensor:
    """[B, D] eps of the optimal denoiser of `images` [N, D] at x_t [B, D] (x_t = a x0 + s eps)."""
    x0 = torch.softmax(kernel_log_weights(xt, images, a, s), 1) @ images
    return (xt - a * x0) / s


def halves_eps(xt: torch.Tensor, images: torch.Tensor, a: float, s: float, seed: int) -> tuple[torch.Tensor, ...]:
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    half = len(images) // 2
    return optimal_eps(xt, images[order[:half]], a, s), optimal_eps(xt, images[order[half:]], a, s)


def measure(bundle: Path, cache: Path, n_queries: int, seed: int = 0) -> dict:
    run = import_bundle(bundle, cache)["run"]  # verified against its hashes; entries already there are kept
    bench = benchmark_of(run)
    ctx = Context(bench, Store(cache), seed=int(run.get("seed", 0)))
    with ctx.probe():
        unet = ctx.full_unet
        queries = ctx.queries.double()
        query_cond = ctx.query_cond
    pick = np.sort(np.random.default_rng(seed).choice(len(queries), size=min(n_queries, len(queries)), replace=False))
    q = queries[pick].flatten(1)
    x = bench.images.flatten(1).double()
    conditional = query_cond is not None
    # the optimum of a conditional model is the mixture over the query's own prompt's images; an unconditional
    # model's is over all images (one "prompt" for everything)
    image_prompt = np.asarray(bench.text.image_prompt_index()) if conditional else np.zeros(len(x), dtype=int)
    query_prompt = np.asarray(ctx.query_prompts)[pick] if conditional else np.zeros(len(q), dtype=int)
    cond = query_cond[torch.from_numpy(pick)] if conditional else None
    abar = ctx.scheduler.alphas_cumprod.double()
    shape = tuple(queries.shape[1:])
    rows = []
    for t in ctx.preset.elbo.timesteps():
        a, s = float(abar[t].sqrt()), float((1 - abar[t]).sqrt())
        eps = torch.randn(q.shape, generator=torch.Generator().manual_seed(seed * 1000 + t), dtype=torch.float64)
        xt = a * q + s * eps
        with torch.no_grad():
            model = denoise(unet, xt.float().view(-1, *shape), torch.full((len(q),), t), cond).double().flatten(1)
        opt, h1, h2 = torch.empty_like(xt), torch.empty_like(xt), torch.empty_like(xt)
        for p in np.unique(query_prompt):
            rows_p = torch.from_numpy(np.flatnonzero(query_prompt == p))
            members = x[torch.from_numpy(np.flatnonzero(image_prompt == p))]
            opt[rows_p] = optimal_eps(xt[rows_p], members, a, s)
            h1[rows_p], h2[rows_p] = halves_eps(xt[rows_p], members, a, s, seed)
        energy = float(model.square().sum(1).mean())
        rows.append({"t": t, "sigma": round(s / a, 4),
                     "model_vs_optimal": round(float((model - opt).square().sum(1).mean()) / energy, 4),
                     "half_vs_half": round(float((h1 - h2).square().sum(1).mean()) / energy, 4),
                     "model_vs_noise": round(float((model - eps).square().sum(1).mean()) / energy, 4)})
    mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in ("model_vs_optimal", "half_vs_half")}
    return {"bundle": bundle.as_posix(), "dataset": run["dataset"], "grouping": run.get("grouping"),
            "n_train": len(x), "n_queries": len(q), "conditional": conditional, "mean_over_grid": mean,
            "per_timestep": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, action="append", required=True, help="a board's truth bundle (repeatable)")
    ap.add_argument("--cache", type=Path, default=None, help="cache to import into (default: the CLI's)")
    ap.add_argument("--queries", type=int, default=300, help="seeded sample of the board's queries")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cache = args.cache or cli.cache_dir(None)
    results = []
    for bundle in args.bundle:
        res = measure(bundle, cache, args.queries)
        m = res["mean_over_grid"]
        print(f"{bundle.name:40s} n_train {res['n_train']:5d}  model vs optimal {m['model_vs_optimal']:.4f}  "
              f"half vs half {m['half_vs_half']:.4f}{'  (conditional)' if res['conditional'] else ''}", flush=True)
        results.append(res)
    if args.out:
        atomic_write_text(args.out, json.dumps({"boards": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
