"""GUDA-C: anchor-redirection group unlearning + conditional ELBO difference (SPEC §4.3), with its two
ablations (uniform anchor styles; style description removed)."""

from __future__ import annotations

from dataclasses import fields, replace
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
from guda_bench.registry import register_method

if TYPE_CHECKING:
    from guda_bench.context import Context


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
@register_method("guda-c-uniform", anchors="uniform", description="GUDA-C ablation: anchor styles sampled uniformly")
@register_method("guda-c-nostyle", anchors="no-style",
                 description="GUDA-C ablation: anchor prompt with the style description removed")
class GudaC(Method):
    """GUDA-C_k = ELBO(x0 | c; full) - ELBO(x0 | c; full after anchor-redirection unlearning of style k)."""

    requires = frozenset({"full_model", "train_images", "text_conditional"})

    def __init__(self, anchors: str, **options: Any) -> None:
        known = {f.name: f.type for f in fields(AnchorConfig)}
        bad = sorted(set(options) - set(known) - {"anchors"})
        if bad:
            raise ValueError(f"unknown options {bad} (known: {', '.join(sorted(known))})")
        defaults = AnchorConfig()
        self.overrides = {k: type(getattr(defaults, k))(v) for k, v in options.items()}
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
