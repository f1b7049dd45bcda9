"""`guda-bench` command line: a thin layer over the Python API (runner, registry, provenance)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from guda_bench.errors import BenchError

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad input in one line (no usage dump) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"guda-bench: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def method_option(text: str) -> tuple[str, str, str]:
    head, sep, value = text.partition("=")
    name, dot, key = head.rpartition(".")
    if not sep or not dot or not name or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not METHOD.KEY=VALUE")
    return name, key, value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="guda-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    run = sub.add_parser("run", help="build the LOGO ground truth and score attribution methods")
    run.add_argument("--method", default="all", help="'all' or a comma-separated list of method names")
    run.add_argument("--dataset", default="digits")
    run.add_argument("--grouping", default="class")
    run.add_argument("--preset", default="default", help="smoke (about a minute) or default (full benchmark)")
    run.add_argument("--out", type=Path, default=Path("runs/latest"), help="run folder to write")
    run.add_argument("--cache", type=Path, default=None,
                     help="shared artefact cache (default: $GUDA_BENCH_CACHE or .guda-cache)")
    run.add_argument("--seed", type=non_negative_int, default=0)
    run.add_argument("--ceiling-seeds", type=positive_int, default=None,
                     help="LOGO studies in all; >= 2 adds a noise-ceiling row (default: the preset's)")
    run.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    run.add_argument("--method-timeout", type=positive_float, default=None,
                     help="seconds a method may take (prepare + score) before its row is marked failed")
    run.add_argument("--option", action="append", default=[], type=method_option, metavar="METHOD.KEY=VALUE",
                     help="a method setting, e.g. clip.weights=/path/to/open_clip.bin (repeatable)")
    run.add_argument("--quiet", action="store_true", help="no progress bars or table")
    sub.add_parser("list", help="registered methods and datasets, and whether each can run here")
    sub.add_parser("env", help="versions, device and git state (the provenance a run records)")
    bench = sub.add_parser("bench", help="speed ratios (ELBO vs raw forward, training vs bare diffusers loop)")
    bench.add_argument("--preset", default="default")
    bench.add_argument("--run", type=Path, action="append", default=[],
                       help="run folder to read GUDA's speedup and wall seconds from (repeatable: cold, warm)")
    bench.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    return parser


def collect_options(items: list[tuple[str, str, str]]) -> dict[str, dict[str, str]]:
    options: dict[str, dict[str, str]] = {}
    for name, key, value in items:
        options.setdefault(name, {})[key] = value
    return options


def cmd_run(args: argparse.Namespace) -> int:
    import os

    from guda_bench.registry import resolve_methods
    from guda_bench.runner import RunSpec, run

    cache = args.cache or Path(os.environ.get("GUDA_BENCH_CACHE", ".guda-cache"))
    spec = RunSpec(methods=resolve_methods(args.method), dataset=args.dataset, preset=args.preset,
                   grouping=args.grouping, out=args.out, cache=cache, seed=args.seed,
                   ceiling_seeds=args.ceiling_seeds, device=args.device, quiet=args.quiet,
                   method_timeout=args.method_timeout, method_options=collect_options(args.option))
    run(spec)
    print(f"wrote {args.out / 'summary.csv'} and {args.out / 'results.json'}")
    return 0


def cmd_list(_: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.table import Table

    from guda_bench.registry import DATASETS, METHODS

    table = Table(title="attribution methods")
    for col in ("name", "runs here", "description", "source"):
        table.add_column(col)
    for e in METHODS.entries():
        requires = getattr(e.cls, "requires", frozenset())
        here = "no (needs CUDA)" if "cuda" in requires and not torch.cuda.is_available() else "yes"
        if "clip_weights" in requires:
            here = "with local CLIP weights (--option clip.weights=PATH or $GUDA_BENCH_CLIP_WEIGHTS)"
        table.add_row(e.name, here, e.description, e.source)
    for name, err in METHODS.load_errors.items():
        table.add_row(name, "no (plugin failed to load)", err, "entry point")
    datasets = Table(title="datasets")
    for col in ("name", "runs here", "presets", "description"):
        datasets.add_column(col)
    for e in DATASETS.entries():
        adapter = e.create()
        ok, why = adapter.available()
        datasets.add_row(e.name, "yes" if ok else f"no ({why})", ", ".join(sorted(adapter.presets)), e.description)
    console = Console()
    console.print(table)
    console.print(datasets)
    return 0


def cmd_env(_: argparse.Namespace) -> int:
    from guda_bench.provenance import environment

    print(json.dumps(environment(), indent=1))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from guda_bench.bench import run_benchmarks

    result = run_benchmarks(args.preset, args.run, args.out)
    print(json.dumps({k: result[k] for k in ("elbo", "train", "trak", "runs")}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"run": cmd_run, "list": cmd_list, "env": cmd_env, "bench": cmd_bench}[args.command]
    try:
        return handler(args)
    except BenchError as exc:
        print(f"guda-bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("guda-bench: interrupted; finished rows and cached artefacts are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
