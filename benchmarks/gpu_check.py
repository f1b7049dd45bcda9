"""GPU check (issue 6): run the CUDA path end to end and record its throughput.

    python benchmarks/gpu_check.py [--out benchmarks/gpu.json] [--quick]

On a machine with a CUDA device this
1. measures, in fp32 and in bf16 autocast, training throughput (images/s, guda_bench.train vs a bare
   diffusers loop) and ELBO throughput (image-timesteps/s vs the raw batched diffusers forward) for the
   digits default model and for the CIFAR-10 `reduced` and `paper` models (32x32 RGB, random images: the
   data does not change the speed);
2. runs `guda-bench run` end to end on CUDA: digits smoke (fp32 and bf16) with LOGO, GUDA, TRAK, D-TRAK
   and the pixel baselines, styled-digits smoke (text-to-image) with GUDA-C, and UnlearnCanvas's sd15-smoke
   fine-tune recipe on a tiny SD-shaped pipeline and canvas written on the spot (tests/tiny_pipeline.py),
   recording exit codes, wall seconds and Top-1 per method;
and writes everything to one JSON (atomically). Every ratio is measured in this one process/run.
Exits 2 with one line when torch sees no CUDA device.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from guda_bench.bench import bench_elbo, bench_train
from guda_bench.provenance import environment
from guda_bench.registry import DATASETS
from guda_bench.store import atomic_write_text


def throughput(quick: bool) -> list[dict]:
    rows = []
    digits = DATASETS.entry("digits").cls.presets["default"]
    cifar = DATASETS.entry("cifar10").cls.presets
    models = [("digits-default", digits, None)]
    for name in ("reduced", "paper"):
        p = cifar[name]
        shape = (2048 if quick else 8192, p.model.in_channels, p.model.sample_size, p.model.sample_size)
        models.append((f"cifar10-{name}", p, torch.rand(shape) * 2 - 1))
    for label, preset, images in models:
        for precision in ("fp32", "bf16"):
            t0 = time.perf_counter()
            row = {"model": label, "precision": precision}
            try:
                row["train"] = bench_train(preset, steps=10 if quick else 40, device="cuda", precision=precision,
                                           images=images)
                row["elbo"] = bench_elbo(preset, n_queries=64 if quick else 256, device="cuda", precision=precision)
            except Exception as exc:  # keep measuring the others; the row says what failed
                row["error"] = f"{type(exc).__name__}: {exc}"
            row["seconds"] = time.perf_counter() - t0
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def end_to_end(workdir: Path) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests/ helpers
    from tests.tiny_pipeline import write_tiny_canvas, write_tiny_pipeline

    # 4 styles, 3 targets: the paper's split in small (one background style), with guided queries (sd15-smoke)
    canvas = write_tiny_canvas(workdir / "canvas", styles=("Van_Gogh", "Ukiyoe", "Pixel_Art", "Crayon"))
    pipeline = write_tiny_pipeline(workdir / "tiny-sd")
    runs = [
        ("digits-smoke-fp32", ["--dataset", "digits", "--preset", "smoke", "--method",
                               "logo,guda,trak,d-trak,pixel-cosine,pixel-nn,random"]),
        ("digits-smoke-bf16", ["--dataset", "digits", "--preset", "smoke", "--precision", "bf16", "--method",
                               "logo,guda,trak,d-trak,pixel-cosine,random"]),
        ("styled-digits-smoke", ["--dataset", "styled-digits", "--preset", "smoke", "--method",
                                 "logo,guda-c,guda-c-uniform,d-trak,pixel-cosine,random"]),
        ("unlearncanvas-sd15-smoke-tiny-pipeline", ["--dataset", "unlearncanvas", "--data-root", str(canvas),
                                                    "--preset", "sd15-smoke", "--base-model", str(pipeline),
                                                    "--targets", "Van_Gogh,Ukiyoe,Pixel_Art",
                                                    "--method", "logo,guda-c,d-trak,pixel-cosine,random"]),
    ]
    out = []
    for label, args in runs:
        run_dir = workdir / label
        cmd = ["guda-bench", "run", *args, "--device", "cuda", "--out", str(run_dir), "--cache",
               str(workdir / "cache"), "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        row = {"run": label, "command": " ".join(cmd), "exit": proc.returncode, "wall_s": time.perf_counter() - t0}
        if proc.returncode != 0:
            row["stderr_tail"] = proc.stderr[-2000:]
        results = run_dir / "results.json"
        if results.exists():
            res = json.loads(results.read_text())
            row["methods"] = {r["method"]: {"status": r["status"], "reason": r.get("reason"),
                                            "top1": r.get("metrics", {}).get("top1", {}).get("mean"),
                                            "cost_s": r.get("cost_s")} for r in res["rows"]}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/gpu.json"))
    parser.add_argument("--quick", action="store_true", help="fewer steps and images (a smoke of the check)")
    parser.add_argument("--skip-runs", action="store_true", help="throughput only")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device here; run this on a GPU machine", file=sys.stderr)
        sys.exit(2)
    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment(),
              "gpu": torch.cuda.get_device_name(0), "throughput": throughput(args.quick)}
    atomic_write_text(args.out, json.dumps(result, indent=1))  # keep what is measured so far
    if not args.skip_runs:
        with tempfile.TemporaryDirectory() as tmp:
            result["end_to_end"] = end_to_end(Path(tmp))
    atomic_write_text(args.out, json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
