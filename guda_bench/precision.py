"""Numeric precision of the work a run does: fp32 everywhere (default), or bf16 autocast on CUDA.

bf16 changes every model and ELBO number, so its artefacts get their own cache keys (the precision is
added to the spec of everything a bf16 run builds); fp32 keys are the ones they always were.
"""

from __future__ import annotations

import contextlib

import torch

from guda_bench.errors import BenchError

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str, device: str) -> None:
    if precision not in PRECISIONS:
        raise BenchError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "bf16" and not device.startswith("cuda"):
        raise BenchError("--precision bf16 needs --device cuda (bf16 autocast is a GPU path; CPU runs use fp32)")


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """torch.autocast(cuda, bfloat16) for bf16, else a no-op: matmuls and convolutions run in bf16,
    reductions and the loss stay in fp32 (autocast's own op lists); weights and optimiser stay fp32."""
    if precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
