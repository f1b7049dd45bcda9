"""Does a CPU recipe of style-canvas follow its prompts? (issue 16; the board is not published until it does)

For each recipe variant (prediction type, training steps, prompt dropout; a variant may also set
`guidance`) this trains the full model of the `default` preset (cache: --cache), samples prompted
queries in the target styles, and measures:
- `style_agreement`: share of queries whose style a logistic-regression classifier (trained on the
  training images, all 24 styles) names as the prompted one (chance 1/24; on the training images a
  held-out split reaches ~0.85);
- `prompt_gain[t]`: relative increase of the eps-MSE on training images of one target style when each
  image is conditioned on another style's prompt (0: the model ignores the prompt at that noise level).
Writes a JSON (machine and wall times included) and a PNG of the queries; with --variant, only those rows
are rerun and replaced in an existing JSON (their queries go to `<out>-rerun.png`).

    python benchmarks/style_canvas_probe.py --out benchmarks/style_canvas_probe.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

SHOWN = 16
# each variant names its steps: the preset's default changed from 600 to 1,500 steps after these were measured
VARIANTS = {
    "v-prediction, 600 steps (the second recipe)": {"steps": 600},
    "epsilon, 600 steps (the first recipe)": {"prediction_type": "epsilon", "steps": 600},
    "v-prediction, 1500 steps (default)": {"steps": 1500},
    # classifier-free guidance (SPEC §4.3 samples SD 1.5's queries with it): the prompt is dropped for 10% of
    # training images, and sampling extrapolates away from the empty prompt
    "v-prediction, 600 steps, prompt dropout 0.1, guidance 3": {"steps": 600, "prompt_dropout": 0.1, "guidance": 3.0},
    "v-prediction, 600 steps, prompt dropout 0.1, guidance 6": {"steps": 600, "prompt_dropout": 0.1, "guidance": 6.0},
    # UnlearnCanvas's shape (SPEC §7): a base first trained on the 20 background styles alone (1,500 steps, once),
    # then every model a short fine-tune of it on all the data; `train_s` is the fine-tune's (the base's: first row)
    "pretrained on the background (1500 steps), fine-tuned 300 steps": {"pretrain_steps": 1500, "steps": 300},
    "pretrained on the background (1500 steps), fine-tuned 600 steps": {"pretrain_steps": 1500, "steps": 600},
}


def probe(name: str, change: dict, cache: Path, n_queries: int, preset_name: str = "default") -> dict:
    from sklearn.linear_model import LogisticRegression

    from guda_bench.executor import make_executor
    from guda_bench.models import denoise
    from guda_bench.runner import RunSpec, open_benchmark
    from guda_bench.sampling import sample_prompted

    spec = RunSpec(methods=["random"], dataset="style-canvas", preset=preset_name, cache=cache, quiet=True)
    opened = open_benchmark(spec)
    change = dict(change)
    guidance = change.pop("guidance", 1.0)
    pretrain_steps = change.pop("pretrain_steps", None)
    preset = replace(opened.preset, recipe=replace(opened.preset.recipe, **change))
    if pretrain_steps is not None:
        preset = replace(preset, pretrain=replace(opened.preset.recipe, steps=pretrain_steps))
    opened.bench.preset = preset
    opened = replace(opened, preset=preset)
    ctx = opened.context(spec, make_executor("local", None))
    start = time.perf_counter()
    pretrain_s = None
    if pretrain_steps is not None:
        ctx.pretrained  # noqa: B018 (built, or read from the cache, before the fine-tune is timed)
        pretrain_s = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
    unet = ctx.full_unet
    train_s = time.perf_counter() - start
    bench = ctx.bench
    start = time.perf_counter()
    queries = sample_prompted(unet, ctx.scheduler, ctx.query_cond[:n_queries], tuple(bench.images.shape[1:]),
                              1234, preset.queries.inference_steps, n_queries, "cpu", guidance, ctx.null_cond)
    sample_s = time.perf_counter() - start
    clf = LogisticRegression(max_iter=3000).fit(bench.images.flatten(1).numpy(), bench.labels)
    _, prompted = bench.text.query_pairs(n_queries)
    agreement = float((clf.predict(queries.flatten(1).numpy()) == prompted).mean())
    own = np.flatnonzero(bench.text.style_of == 0)[:64]
    other = np.flatnonzero(bench.text.style_of == 1)[:64]
    x0, abar = bench.images[own], ctx.scheduler.alphas_cumprod
    gains = {}
    for t in (200, 400, 600, 800):
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t))
        xt = abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * noise
        steps = torch.full((len(own),), t)
        with torch.no_grad():
            right = (denoise(unet, xt, steps, ctx.image_cond[own]) - noise).pow(2).mean()
            wrong = (denoise(unet, xt, steps, ctx.image_cond[other]) - noise).pow(2).mean()
        gains[str(t)] = float(wrong / right - 1)
    shown = np.linspace(0, n_queries - 1, SHOWN).astype(int)  # queries across the target styles
    reference = [int(np.flatnonzero(bench.text.style_of == prompted[i])[0]) for i in shown]
    if pretrain_steps is not None:
        change["pretrain_steps"] = pretrain_steps
    return {"variant": name, "change": {**change, "guidance": guidance}, "train_s": round(train_s, 1),
            **({"pretrain_s": pretrain_s} if pretrain_s is not None else {}),
            "sample_s": round(sample_s, 1), "n_queries": n_queries, "style_agreement": agreement,
            "prompt_gain": gains, "_shown": queries[shown], "_reference": bench.images[reference]}


def draw(rows: list[dict], path: Path) -> None:
    """One row of queries per variant, and a training image of each query's prompted style below them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = [(r["variant"], r["_shown"]) for r in rows] + [("a training image of the prompted style",
                                                            rows[0]["_reference"])]
    fig, axes = plt.subplots(len(grids), SHOWN, figsize=(SHOWN * 0.8, len(grids) * 1.0), squeeze=False)
    for (label, images), axs in zip(grids, axes, strict=True):
        for img, ax in zip(images, axs, strict=True):
            ax.imshow(((img.permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1))
            ax.axis("off")
        axs[0].set_title(label, fontsize=7, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/style_canvas_probe.json"))
    parser.add_argument("--cache", type=Path, default=Path(".guda-cache"))
    parser.add_argument("--queries", type=int, default=160)
    parser.add_argument("--preset", default="default", help="smoke: a quick check of this script")
    parser.add_argument("--variant", action="append", choices=list(VARIANTS), help="default: all")
    args = parser.parse_args()
    rows = [probe(name, VARIANTS[name], args.cache, args.queries, args.preset) for name in (args.variant or VARIANTS)]
    # --variant reruns some rows: the other rows of an existing report are kept (their train_s was measured
    # on a cold cache; a rerun would find their models cached)
    kept = json.loads(args.out.read_text())["rows"] if args.variant and args.out.exists() else []
    new = {r["variant"] for r in rows}
    for r in rows:
        print(f"{r['variant']}: style agreement {r['style_agreement']:.3f}; prompt gain "
              + ", ".join(f"t={t} {g:+.3f}" for t, g in r["prompt_gain"].items()) + f"; train {r['train_s']} s")
    draw(rows, args.out.with_suffix(".png") if not kept else args.out.with_name(args.out.stem + "-rerun.png"))
    for r in rows:
        r.pop("_shown"), r.pop("_reference")
    rows = [r for r in kept if r["variant"] not in new] + rows
    report = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
              "torch": torch.__version__, "rows": rows}
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
