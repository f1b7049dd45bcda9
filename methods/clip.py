"""CLIP image-embedding similarity (the CLIPA baseline): "looks like the group" in a semantic feature space.

Score[q, k] = cosine similarity between the open_clip image embedding of query q and those of group k's
training images, aggregated by mean (default) or max. The reference uses ViT-B/32 and the first 1,000
images of each class.

Choices where the spec is silent:
- "first N images" = the first `max_per_group` members of the group in dataset order.
- Preprocessing: images in [-1, 1] are mapped to [0, 1], grey images repeated to 3 channels, resized
  with bicubic interpolation (antialiased; it only acts when downsampling) to the model's image size,
  clamped to [0, 1] (as an 8-bit image pipeline would) and normalised with the model's mean/std.
- Weights: the `weights` option, else $GUDA_BENCH_CLIP_WEIGHTS, else open_clip's own download cache,
  which (with huggingface_hub installed, open_clip's default route) is the Hugging Face hub cache: we look
  for the model's "openai" tag (or its first listed tag) with `huggingface_hub.try_to_load_from_cache`,
  which reads the disk only. Nothing is ever downloaded. The legacy URL cache (~/.cache/clip) is not
  searched: its OpenAI files are TorchScript archives that open_clip's file loader does not take. A file
  from the cache is loaded with that tag's QuickGELU flag and mean/std; a file passed by the user is loaded
  into `model_name` as is (OpenAI ViT-B/32 weights need model_name=ViT-B-32-quickgelu).
- No weights -> `Unavailable`, naming every place looked at; never random weights or another model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from guda_bench.errors import Unavailable
from guda_bench.method import Method
from guda_bench.options import Option
from guda_bench.registry import register_method

if TYPE_CHECKING:
    import torch

    from guda_bench.context import Context

ENV_VAR = "GUDA_BENCH_CLIP_WEIGHTS"
AGGREGATES = ("mean", "max")
PREFERRED_TAG = "openai"


def _hf_cache_dir() -> str | None:
    try:
        from huggingface_hub import constants
    except ImportError:
        return None
    return str(constants.HF_HUB_CACHE)


def open_clip_cache_lookup(model_name: str) -> tuple[str | None, dict, list[str]]:
    """Look (on disk only) for a cached open_clip checkpoint of `model_name`.

    Returns (path or None, the tag's pretrained cfg, the places looked at).
    """
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
    from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

    tags = list_pretrained_tags_by_model(model_name)
    if not tags:
        return None, {}, [f"open_clip cache: no pretrained tag for {model_name!r}"]
    tag = PREFERRED_TAG if PREFERRED_TAG in tags else tags[0]
    cfg = dict(get_pretrained_cfg(model_name, tag))
    hub = cfg.get("hf_hub", "")
    cache = _hf_cache_dir()
    if not hub or cache is None:
        why = "huggingface_hub is not installed" if cache is None else "it has no hub entry"
        return None, cfg, [f"open_clip cache for {model_name}/{tag}: not searched ({why})"]
    from huggingface_hub import try_to_load_from_cache

    repo_id, filename = os.path.split(hub)
    filename = filename or HF_WEIGHTS_NAME
    # open_clip's own order (pretrained._get_safe_alternatives): safetensors first, then the named file
    if filename == HF_WEIGHTS_NAME:
        names = [HF_SAFE_WEIGHTS_NAME, filename]
    elif filename.endswith((".bin", ".pth")):
        names = [filename[:-4] + ".safetensors", filename]
    else:
        names = [filename]
    looked = []
    for name in names:
        looked.append(str(Path(cache) / f"models--{repo_id.replace('/', '--')}" / "snapshots" / "*" / name))
        found = try_to_load_from_cache(repo_id, name, cache_dir=cache)
        if isinstance(found, str) and os.path.isfile(found):
            return found, cfg, looked
    return None, cfg, looked


@register_method("clip", description="CLIP (open_clip ViT-B/32) image-embedding cosine similarity to the group")
class ClipSimilarity(Method):
    """CLIPA: cosine similarity of open_clip image embeddings, mean (or max) over the group's images."""

    requires = frozenset({"train_images", "clip_weights"})
    family = "similarity"
    OPTIONS = {
        "weights": Option("str", None, "path of an open_clip checkpoint (else $GUDA_BENCH_CLIP_WEIGHTS, open_clip's "
                                       "cache)"),
        "model_name": Option("str", "ViT-B-32", "open_clip architecture"),
        "aggregate": Option("str", "mean", "similarities to group score", choices=AGGREGATES),
        "max_per_group": Option("int", 1000, "training images embedded per group", low=1),
        "batch_size": Option("int", 64, "images per embedding batch", low=1),
    }
    SEARCH_SPACE = {"aggregate": AGGREGATES}

    def __init__(self, weights: str | None = None, model_name: str = "ViT-B-32", aggregate: str = "mean",
                 max_per_group: int | str = 1000, batch_size: int | str = 64) -> None:
        if aggregate not in AGGREGATES:
            raise ValueError(f"clip: aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        self.weights = str(weights) if weights else None
        self.model_name = str(model_name)
        self.aggregate = aggregate
        self.max_per_group = int(max_per_group)
        self.batch_size = int(batch_size)
        if self.max_per_group < 1 or self.batch_size < 1:
            raise ValueError("clip: max_per_group and batch_size must be >= 1")
        self.weights_used: str | None = None
        self.weights_source: str | None = None
        self._model: Any = None
        self._device = "cpu"
        self._group_emb: list[np.ndarray] | None = None

    # ---- weights and model -------------------------------------------------------------------------
    def resolve_weights(self) -> tuple[str, str, dict]:
        """(path, source, tag cfg) of the checkpoint to load; Unavailable when there is none."""
        if self.weights:
            if not os.path.isfile(self.weights):
                raise Unavailable(f"CLIP weights not found: --option clip.weights={self.weights} is not a file")
            return self.weights, "option clip.weights", {}
        env = os.environ.get(ENV_VAR)
        if env:
            if not os.path.isfile(env):
                raise Unavailable(f"CLIP weights not found: {ENV_VAR}={env} is not a file")
            return env, ENV_VAR, {}
        path, cfg, looked = open_clip_cache_lookup(self.model_name)
        if path is None:
            raise Unavailable(f"no CLIP weights: --option clip.weights=PATH not given and {ENV_VAR} not set; "
                              f"looked at {'; '.join(looked)}")
        return path, "open_clip cache", cfg

    def check_available(self) -> None:
        """open_clip importable and weights found: what `prepare` needs before it reads any image."""
        self._open_clip()
        self.resolve_weights()

    @staticmethod
    def _open_clip() -> Any:
        try:
            import open_clip
        except ImportError as exc:
            raise Unavailable(f"open_clip cannot be imported ({exc}): pip install 'guda-bench[clip]'") from None
        return open_clip

    def _load_model(self, device: str) -> None:
        open_clip = self._open_clip()
        path, source, tag_cfg = self.resolve_weights()
        kwargs: dict[str, Any] = {}
        if tag_cfg.get("quick_gelu"):
            kwargs["force_quick_gelu"] = True
        if "mean" in tag_cfg and "std" in tag_cfg:
            kwargs["force_preprocess_cfg"] = {"mean": tag_cfg["mean"], "std": tag_cfg["std"]}
        model = open_clip.create_model(self.model_name, pretrained=path, device=device, **kwargs)
        self._model = model.eval()
        self._device = device
        self.weights_used, self.weights_source = path, source

    def _preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in [-1, 1] -> the model's normalised 3-channel input."""
        import torch
        import torch.nn.functional as F
        from open_clip import get_model_preprocess_cfg

        cfg = get_model_preprocess_cfg(self._model)
        size = cfg.get("size", self._model.visual.image_size)
        size = (size, size) if isinstance(size, int) else tuple(size)
        x = ((x.float() + 1) / 2).clamp(0, 1)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        mean = torch.tensor(cfg["mean"], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(cfg["std"], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def embed(self, images: torch.Tensor) -> np.ndarray:
        """L2-normalised image embeddings [N, D] (float64) of images in [-1, 1]."""
        import torch
        import torch.nn.functional as F

        out = []
        with torch.no_grad():
            for i in range(0, len(images), self.batch_size):
                x = self._preprocess(images[i:i + self.batch_size].to(self._device))
                out.append(F.normalize(self._model.encode_image(x).float(), dim=-1).cpu().double())
        return torch.cat(out).numpy()

    # ---- the method --------------------------------------------------------------------------------
    def prepare(self, ctx: Context) -> None:
        self._load_model(ctx.device)
        members = [np.asarray(ctx.bench.members(k))[:self.max_per_group] for k in range(ctx.bench.n_groups)]
        idx = np.unique(np.concatenate(members))
        emb = self.embed(ctx.bench.images[idx])
        row = {int(i): r for r, i in enumerate(idx)}
        self._group_emb = [emb[[row[int(i)] for i in m]] for m in members]

    def score(self, ctx: Context) -> np.ndarray:
        if self._group_emb is None:
            self.prepare(ctx)
        assert self._group_emb is not None
        q = self.embed(ctx.query_images)
        out = np.empty((len(q), len(self._group_emb)), dtype=np.float64)
        for k, g in enumerate(self._group_emb):
            sims = q @ g.T
            out[:, k] = sims.mean(1) if self.aggregate == "mean" else sims.max(1)
        return out

    def describe_settings(self) -> dict:
        return {"model_name": self.model_name, "aggregate": self.aggregate, "weights": self.weights_used,
                "weights_source": self.weights_source, "max_per_group": self.max_per_group}
