"""Where a number came from: versions, git commit and dirty flag, device, host facts."""

from __future__ import annotations

import os
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


def cpu_model() -> str:
    """The processor's model name and logical core count, e.g. "Intel(R) Xeon(R) Processor, 2 cores": times and
    costs differ 2x or more between machines, so every result names the one it was measured on."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine() or 'unknown CPU'}, {os.cpu_count()} cores"


def machine_name(device: str = "cpu") -> str:
    """What computes on `device`: the GPU's name on CUDA, else the CPU's model and core count."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    return cpu_model()


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
        "cpu": cpu_model(),
        "device": device,
        "cuda_available": torch.cuda.is_available(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    info["machine"] = info.get("gpu") or info["cpu"]  # what measured the run's costs (machine_name's answer)
    info.update(git_state())
    return info
