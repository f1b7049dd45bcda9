"""Text conditioning for text-to-image benchmarks (SPEC §4.3, §7 UnlearnCanvas).

A text benchmark knows, for every training image, its content (object, digit) and its style; its prompt
is ``template.format(content=..., style=...)``. Groups are styles. Queries are generated from the prompts
of every (style, content) pair in turn.

The text encoder is frozen (as in Stable Diffusion fine-tunes), so each distinct prompt is encoded once
and images are conditioned on their prompt's hidden states. ``TextStack.tiny`` builds a small
transformers CLIPTextModel in code, seeded, with a word-level tokenizer (tokenizers' WordLevel) over the
benchmark's own words: no download. ``TextStack.pretrained`` reads a local diffusers folder
(``tokenizer/`` and ``text_encoder/``), e.g. Stable Diffusion 1.5's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from guda_bench.config import TextConfig
from guda_bench.errors import BenchError

SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>"]
# how queries are prompted (QueryConfig.mode): "prompted", the i-th (style, content) prompt; "two-style", a
# harder mode whose condition averages that prompt's hidden states with those of the same content in a
# second query style (seeded): two styles are plausible for every query, as in a two-style prompt
QUERY_MODES = ("prompted", "two-style")


@dataclass
class TextData:
    """Content and style of every training image, and how prompts are written."""

    contents: list[str]
    styles: list[str]
    content_of: np.ndarray  # [N] index into contents
    style_of: np.ndarray  # [N] index into styles
    template: str = "a {content} in {style} style"
    no_style_template: str = "a {content}"  # GUDA-C's "style description removed" ablation
    style_template: str = "{style} style"  # the style's own description (text prototype)
    query_styles: tuple[int, ...] | None = None  # styles queries are written in (None: all; guda_bench.targets)

    def prompt(self, content: int, style: int | None) -> str:
        if style is None:
            return self.no_style_template.format(content=self.contents[content])
        return self.template.format(content=self.contents[content], style=self.styles[style])

    def style_prompt(self, style: int) -> str:
        return self.style_template.format(style=self.styles[style])

    def prompt_index(self, content: np.ndarray, style: np.ndarray) -> np.ndarray:
        """Index of (content, style) pairs in all_prompts()."""
        return np.asarray(style) * len(self.contents) + np.asarray(content)

    def all_prompts(self) -> list[str]:
        """Every styled prompt (style-major), then every style-less prompt, then every style description."""
        styled = [self.prompt(c, s) for s in range(len(self.styles)) for c in range(len(self.contents))]
        return (styled + [self.prompt(c, None) for c in range(len(self.contents))]
                + [self.style_prompt(s) for s in range(len(self.styles))])

    def no_style_index(self, content: np.ndarray) -> np.ndarray:
        return len(self.styles) * len(self.contents) + np.asarray(content)

    def style_description_index(self, style: np.ndarray) -> np.ndarray:
        return len(self.styles) * len(self.contents) + len(self.contents) + np.asarray(style)

    def query_pairs(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(content, style) of query i: the (query style, content) grid in style-major order, repeated."""
        styles = np.asarray(self.query_styles if self.query_styles is not None else range(len(self.styles)))
        combo = np.arange(n) % (len(styles) * len(self.contents))
        return combo % len(self.contents), styles[combo // len(self.contents)]

    def second_styles(self, n: int, seed: int) -> np.ndarray:
        """Two-style mode: query i's second style, uniform over the query styles other than its first."""
        styles = np.asarray(self.query_styles if self.query_styles is not None else range(len(self.styles)))
        if len(styles) < 2:
            raise BenchError("two-style queries need at least two query styles")
        position = {int(st): i for i, st in enumerate(styles)}
        first = np.array([position[int(st)] for st in self.query_pairs(n)[1]])
        draw = np.random.default_rng(seed).integers(0, len(styles) - 1, size=n)  # skips the first style
        return styles[np.where(draw >= first, draw + 1, draw)]

    def image_prompt_index(self) -> np.ndarray:
        return self.prompt_index(self.content_of, self.style_of)

    def words(self) -> list[str]:
        return sorted({w for p in self.all_prompts() for w in p.split()})

    def hash_parts(self) -> list[bytes]:
        head = "|".join([self.template, self.no_style_template, self.style_template, *self.contents, "#",
                         *self.styles])
        parts = [head.encode(), np.asarray(self.content_of, np.int64).tobytes(),
                 np.asarray(self.style_of, np.int64).tobytes()]
        if self.query_styles is not None:  # keys without targets stay as they were
            parts.append(("query styles " + ",".join(map(str, self.query_styles))).encode())
        return parts


class TextStack:
    """A tokenizer and a frozen text encoder; ``encode`` gives per-prompt hidden states and pooled output."""

    def __init__(self, tokenizer: Any, encoder: torch.nn.Module, max_length: int, closed_vocab: bool = False) -> None:
        self.tokenizer = tokenizer
        self.closed_vocab = closed_vocab  # the tiny word-level vocabulary: an unknown word is an error
        self.encoder = encoder.eval().requires_grad_(False)
        self.max_length = max_length

    @classmethod
    def tiny(cls, words: list[str], cfg: TextConfig) -> TextStack:
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        from tokenizers.pre_tokenizers import WhitespaceSplit
        from tokenizers.processors import TemplateProcessing
        from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

        vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + sorted(set(words) - set(SPECIAL_TOKENS)))}
        tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
        tok.pre_tokenizer = WhitespaceSplit()
        tok.post_processor = TemplateProcessing(single="<bos> $A <eos>",
                                                special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])])
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                            bos_token="<bos>", eos_token="<eos>")
        config = CLIPTextConfig(vocab_size=len(vocab), hidden_size=cfg.hidden_size,
                                intermediate_size=4 * cfg.hidden_size, num_hidden_layers=cfg.layers,
                                num_attention_heads=cfg.heads, max_position_embeddings=cfg.max_length,
                                pad_token_id=vocab["<pad>"], bos_token_id=vocab["<bos>"],
                                eos_token_id=vocab["<eos>"], projection_dim=cfg.hidden_size)
        torch.manual_seed(cfg.seed)
        return cls(tokenizer, CLIPTextModel(config), cfg.max_length, closed_vocab=True)

    @classmethod
    def pretrained(cls, folder: Path) -> TextStack:
        """A diffusers pipeline folder's ``tokenizer/`` and ``text_encoder/`` (read locally, never downloaded)."""
        from transformers import CLIPTextModel, CLIPTokenizer

        missing = [f"{d}/" for d in ("tokenizer", "text_encoder") if not (folder / d).is_dir()]
        if missing:
            raise BenchError(f"{folder} is not a diffusers pipeline folder: missing {', '.join(missing)}")
        tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
        encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True)
        return cls(tokenizer, encoder, tokenizer.model_max_length)

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.hidden_size)

    @torch.no_grad()
    def encode(self, prompts: list[str], batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """([P, max_length, D] last hidden states, [P, D] pooled output) in float32 on CPU."""
        hidden, pooled = [], []
        for start in range(0, len(prompts), batch_size):
            ids = self.tokenizer(prompts[start:start + batch_size], padding="max_length", truncation=True,
                                 max_length=self.max_length, return_tensors="pt").input_ids
            if self.closed_vocab and (ids == self.tokenizer.unk_token_id).any():
                raise BenchError("a prompt has words outside the tiny text encoder's vocabulary")
            out = self.encoder(input_ids=ids.to(self.encoder.device))
            hidden.append(out.last_hidden_state.float().cpu())
            pooled.append(out.pooler_output.float().cpu())
        return torch.cat(hidden), torch.cat(pooled)

