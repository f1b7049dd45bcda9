"""Where a number came from: versions, git commit and dirty flag, device, host facts."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import guda_bench


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the package's source checkout (None when not a git checkout)."""
    root = Path(cwd or Path(guda_bench.__file__).resolve().parent.parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, timeout=10, check=True).stdout.strip())
        return {"git_commit": commit, "git_dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def environment(device: str = "cpu") -> dict[str, Any]:
    import diffusers
    import numpy
    import torch

    info: dict[str, Any] = {
        "guda_bench": guda_bench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "device": device,
        "cuda_available": torch.cuda.is_available(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    info.update(git_state())
    return info
