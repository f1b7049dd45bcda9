"""A tiny Stable-Diffusion-shaped diffusers pipeline folder, written by the tests (no download).

Same layout and interfaces as SD 1.5 (unet/ vae/ text_encoder/ tokenizer/ scheduler/; a VAE that shrinks
8x to 4 latent channels, a byte-level CLIP BPE tokenizer, a PNDM scheduler config with SD's scaled-linear
betas), with a few thousand parameters instead of a billion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def _clip_tokenizer(folder: Path, max_length: int) -> None:
    """A byte-level CLIP BPE tokenizer without merges: one token per character (plus the end-of-word ones)."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    chars = sorted(ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>"] + chars + [c + "</w>" for c in chars]
    tok = CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=max_length)
    tok.save_pretrained(folder / "tokenizer")


def write_tiny_pipeline(folder: Path, seed: int = 0, max_length: int = 24) -> Path:
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    _clip_tokenizer(folder, max_length)
    CLIPTextModel(CLIPTextConfig(vocab_size=514, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, max_position_embeddings=max_length, bos_token_id=0,
                                 eos_token_id=1, pad_token_id=1, projection_dim=16)
                  ).save_pretrained(folder / "text_encoder")
    AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(4, 4, 4, 4),
                  down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                  layers_per_block=1, norm_num_groups=2, sample_size=64).save_pretrained(folder / "vae")
    UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16),
                         layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                         norm_num_groups=4, attention_head_dim=4).save_pretrained(folder / "unet")
    PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                  skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1).save_pretrained(folder / "scheduler")
    return folder


def write_tiny_canvas(root: Path, styles: tuple[str, ...] = ("Van_Gogh", "Ukiyoe", "Pixel_Art"),
                      objects: tuple[str, ...] = ("Dogs", "Cats"), n: int = 2,
                      skip: tuple[str, str] | None = None) -> Path:
    """An UnlearnCanvas-shaped folder ROOT/<style>/<object>/<n jpgs> of random colour images (skip one pair)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for s in styles:
        for o in objects:
            if (s, o) == skip:
                continue
            (root / s / o).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / s / o / f"{i}.jpg")
    return root
