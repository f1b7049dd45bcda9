"""GUDA-C: anchor-redirection group unlearning + conditional ELBO difference (SPEC §4.3), with its two
ablations (uniform anchor styles; style description removed)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from guda_bench.anchor_unlearn import anchor_distribution, anchor_unlearn
from guda_bench.config import AnchorConfig
from guda_bench.errors import Unavailable
from guda_bench.executor import prebuild
from guda_bench.method import Method
from guda_bench.models import save_unet
from guda_bench.options import POSITIVE, Option, preset_option, typed
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context

A = preset_option("anchor")  # options whose default is the preset's anchor config


def anchored_terms(cfg: AnchorConfig, ctx: Context, k: int) -> np.ndarray:
    """ELBO terms of the full model after anchor-redirection unlearning of style k (both cached)."""
    cfg = replace(cfg, seed=cfg.seed + ctx.seed)
    text = ctx.bench.text
    hidden, pooled = ctx.prompt_states
    prototypes = pooled[torch.from_numpy(text.style_description_index(np.arange(len(text.styles))))]
    pi = anchor_distribution(prototypes, ctx.bench.style_of_group(k), cfg)  # over every style, targets or not
    spec = {"full": ctx.full.key, "data": ctx.data_hash, "group": k, "anchor": cfg}
    label = f"guda-c -{ctx.bench.group_names[k]} ({cfg.anchors})"

    def build(folder: Path) -> dict:
        unet = anchor_unlearn(ctx.full_unet, ctx.scheduler, ctx.train_data, ctx.bench.group_of, text, hidden,
                              k, pi, cfg, ctx.device, label)
        save_unet(unet.cpu(), folder)
        return {"anchor_pi": pi.tolist()}

    art = ctx.fetch("anchor-unlearned", spec, build)
    return ctx.terms(art, f"ELBO {label}")


@register_method("guda-c", anchors="clip",
                 description="GUDA-C: anchor prompts with retain styles sampled by text-prototype similarity")
@register_method("guda-c-uniform", anchors="uniform", description="GUDA-C ablation: anchor styles sampled uniformly",
                 search_space={"lambda_pres": (1.0, 2.0, 4.0), "lr": (1e-4, 3e-4, 1e-3)})  # beta, eta unused
@register_method("guda-c-nostyle", anchors="no-style",
                 search_space={"lambda_pres": (1.0, 2.0, 4.0), "lr": (1e-4, 3e-4, 1e-3)},
                 description="GUDA-C ablation: anchor prompt with the style description removed")
class GudaC(Method):
    """GUDA-C_k = ELBO(x0 | c; full) - ELBO(x0 | c; full after anchor-redirection unlearning of style k)."""

    requires = frozenset({"full_model", "train_images", "text_conditional"})
    OPTIONS = {  # defaults None: the preset's AnchorConfig
        "anchors": Option("str", "clip", "how anchor styles are drawn (SPEC §4.3)", choices=("clip", "uniform",
                                                                                             "no-style")),
        "beta": A("float", "inverse temperature of the style-similarity softmax", low=0),
        "eta": A("float", "uniform share of the anchor distribution", low=0, high=1),
        "lambda_pres": A("float", "weight of the retain (preservation) loss", low=0),
        "steps": A("int", "fine-tune steps", low=1),
        "pair_batch": A("int", "images per retain batch and per forget batch", low=1),
        "lr": A("float", "AdamW learning rate", **POSITIVE),
        "weight_decay": A("float", "AdamW weight decay", low=0),
        "grad_clip": A("float", "gradient-norm clip", **POSITIVE),
        "seed": A("int", "seed of the fine-tune's draws (added to the run seed)"),
    }
    SEARCH_SPACE = {"beta": (1.0, 2.0, 4.0), "eta": (0.1, 0.3, 0.5), "lambda_pres": (1.0, 2.0, 4.0)}

    def __init__(self, anchors: str, **options: Any) -> None:
        self.overrides = typed({k: o for k, o in self.OPTIONS.items() if k != "anchors"}, options)
        self.anchors = anchors
        self.cfg: AnchorConfig | None = None

    def prepare(self, ctx: Context) -> None:
        if ctx.bench.grouping != "class" or ctx.bench.text is None or ctx.prompt_states is None:
            raise Unavailable("needs style groups (the class grouping of a text-to-image benchmark)")
        self.cfg = replace(ctx.preset.anchor, anchors=self.anchors, **self.overrides)
        groups = range(ctx.bench.n_groups)
        prebuild(ctx, partial(anchored_terms, self.cfg), groups)  # fanned out with --executor ray
        self._terms = [anchored_terms(self.cfg, ctx, k) for k in groups]

    def score(self, ctx: Context) -> np.ndarray:
        return ctx.elbo_difference(self._terms)

    def describe_settings(self) -> dict:
        from guda_bench.config import to_jsonable

        return to_jsonable(self.cfg) if self.cfg is not None else {"anchors": self.anchors, **self.overrides}
