"""`guda-bench` command line: a thin layer over the Python API (runner, registry, provenance)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

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


def lds_subsets(text: str) -> int | str:
    """--lds-subsets: a number of random subsets, or 'all' (every non-empty subset once)."""
    if text.strip().lower() == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number of subsets nor 'all'") from None


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


# the groupings of guda_bench.groupings (not imported here: it loads torch, and `--help` should be instant;
# tests/test_groupings.py checks the two agree)
GROUPING_NAMES = "class | owners | owners-sized | redundant | specialists | planted"


def add_benchmark_args(run: argparse.ArgumentParser) -> None:
    """What `run` and `tune` share: which benchmark, where its cache is, how per-group jobs run."""
    run.add_argument("--method", default="all", help="'all' or a comma-separated list of method names")
    run.add_argument("--dataset", default="digits")
    run.add_argument("--data-root", type=Path, default=None,
                     help="local data for datasets that read files (folder: ROOT/<group>/<images>)")
    run.add_argument("--base-model", type=Path, default=None,
                     help="local diffusers pipeline folder for fine-tune presets (unlearncanvas sd15; default: "
                          "$GUDA_BENCH_BASE_MODEL)")
    run.add_argument("--grouping", default="class",
                     help=f"{GROUPING_NAMES}, with NAME:key=value,... parameters (e.g. specialists:share=0.25)")
    run.add_argument("--targets", default=None, metavar="NAME,NAME,...",
                     help="score only these groups; the others stay in every model as background (e.g. 16 of "
                          "UnlearnCanvas's 60 styles, SPEC §7)")
    run.add_argument("--query-mode", default=None, metavar="MODE",
                     help="text-to-image queries: prompted (the preset's default) or two-style (harder: each "
                          "query's condition mixes its style with a second target style); its own board")
    run.add_argument("--preset", default="default", help="smoke (about a minute) or default (full benchmark)")
    run.add_argument("--cache", type=Path, default=None,
                     help="shared artefact cache (default: $GUDA_BENCH_CACHE or .guda-cache)")
    run.add_argument("--seed", type=non_negative_int, default=0)
    run.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    run.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                     help="bf16: CUDA bf16 autocast for training, unlearning and ELBO passes (needs --device cuda)")
    run.add_argument("--executor", default="local", choices=["local", "ray"],
                     help="where per-group jobs (LOGO trainings, unlearning runs) run: here, or on a Ray cluster")
    run.add_argument("--threads", type=positive_int, default=None,
                     help="torch CPU threads (here and in every Ray task); model bytes depend on it "
                          "(default: torch's own choice)")
    run.add_argument("--task-threads", type=positive_int, default=None, metavar="N",
                     help="torch CPU threads in each Ray task (default: --threads); with 1, a small machine runs "
                          "as many tasks as cores while this process keeps every core for its own work (a task's "
                          "entries are byte-identical to ones built here with --threads N)")
    run.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local instance)")
    run.add_argument("--quiet", action="store_true", help="no progress bars or table")
    run.add_argument("--truth-seeds", type=positive_int, default=None, metavar="N",
                     help="LOGO studies averaged into the ground truth (default: the preset's, 1); a noise "
                          "ceiling then takes N more (--ceiling-seeds 2N)")


def add_truth_bundle_arg(parser: argparse.ArgumentParser, effect: str) -> None:
    parser.add_argument("--truth-bundle", type=Path, default=None, metavar="FILE",
                        help="a published ground-truth bundle (leaderboards/<board>.truth.tar.gz): verified and put "
                             f"in the cache first, so {effect} without LOGO training")


def import_truth_bundle(args: argparse.Namespace) -> None:
    if args.truth_bundle is not None:
        from guda_bench.bundle import import_bundle

        board = {"dataset": args.dataset, "preset": args.preset, "grouping": args.grouping, "seed": args.seed}
        info = import_bundle(args.truth_bundle, cache_dir(args.cache), board=board)
        print(f"ground truth {info['truth_hash'][:12]} from {args.truth_bundle} ({info['data']})")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="guda-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    run = sub.add_parser("run", help="build the LOGO ground truth and score attribution methods")
    add_benchmark_args(run)
    run.add_argument("--out", type=Path, default=Path("runs/latest"), help="run folder to write")
    run.add_argument("--ceiling-seeds", type=positive_int, default=None,
                     help="LOGO studies in all; more than --truth-seeds (2x) adds a noise-ceiling row "
                          "(default: the preset's)")
    run.add_argument("--method-timeout", type=positive_float, default=None,
                     help="seconds a method may take (prepare + score) before its row is marked failed")
    run.add_argument("--option", action="append", default=[], type=method_option, metavar="METHOD.KEY=VALUE",
                     help="a method setting, e.g. clip.weights=/path/to/open_clip.bin (repeatable; "
                          "`guda-bench options METHOD` lists them)")
    run.add_argument("--tuned", action="store_true",
                     help="also score each tunable method at the setting `guda-bench tune` chose (rows NAME@tuned)")
    run.add_argument("--tuning-dir", type=Path, default=Path("tuning"), help="where tuning records are read")
    add_truth_bundle_arg(run, "the run scores against that board's truth")
    run.add_argument("--truth", default="logo", choices=["logo", "lds"],
                     help="lds: also the group LDS truth (random group subsets, one model each): every row gains "
                          "LDS columns; Top-1 and the rest stay LOGO's (SPEC §10)")
    run.add_argument("--lds-subsets", type=lds_subsets, default=None, metavar="M",
                     help="subset models of the LDS truth (default 32), or 'all': every non-empty subset of the "
                          "groups once (2^K - 1 models; for boards of at most 10 groups, where random draws repeat "
                          "subsets)")
    run.add_argument("--lds-alpha", type=float, default=None,
                     help="probability that a subset keeps a group (default 0.5)")
    run.add_argument("--lds-seed", type=non_negative_int, default=None, help="seed of the subset draws (default 0)")
    run.add_argument("--lds-ceiling", action="store_true",
                     help="a second, independently seeded set of subset models: the LDS noise ceiling "
                          "(in the noise-ceiling row; needs --ceiling-seeds 2)")
    tune = sub.add_parser("tune", help="tune every method with a search space, on the tuning split only")
    add_benchmark_args(tune)
    tune.add_argument("--budget", type=positive_int, default=8, help="settings per method (the same for all)")
    tune.add_argument("--tuning-dir", type=Path, default=Path("tuning"),
                      help="where tuning/<board>/<method>.json records are written")
    tune.add_argument("--candidate-seed", type=non_negative_int, default=None, metavar="N",
                      help="seed of the settings drawn from a search grid larger than --budget (default: --seed); "
                           "the same N on every draw of a board (another --seed) tries the same settings")
    add_truth_bundle_arg(tune, "the settings are tuned against that board's truth (its tuning split)")
    sub.add_parser("list", help="registered methods and datasets, and whether each can run here")
    chk = sub.add_parser("check", help="run the method contract on a tiny built-in benchmark (for plugin authors)")
    chk.add_argument("name", help="method name (a plugin's, once installed)")
    chk.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    opts = sub.add_parser("options", help="a method's options: types, defaults, ranges, search space")
    opts.add_argument("name", help="method name (see `guda-bench list`)")
    sub.add_parser("env", help="versions, device and git state (the provenance a run records)")
    bench = sub.add_parser("bench", help="speed ratios (ELBO vs raw forward, training vs bare diffusers loop)")
    bench.add_argument("--dataset", default="digits", help="whose preset's model, recipe and images to time")
    bench.add_argument("--preset", default="default")
    bench.add_argument("--run", type=Path, action="append", default=[],
                       help="run folder to read GUDA's speedup and wall seconds from (repeatable: cold, warm)")
    bench.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))

    board = sub.add_parser("leaderboard", help="publish, show and compare leaderboards").add_subparsers(
        dest="action", required=True, parser_class=OneLineParser)
    pub = board.add_parser("publish", help="write/update leaderboards/<dataset>[-<grouping>].csv and its plots")
    pub.add_argument("run_dir", type=Path)
    pub.add_argument("--dir", type=Path, default=Path("leaderboards"))
    pub.add_argument("--no-plots", action="store_true")
    pub.add_argument("--replace", action="store_true",
                     help="start the board afresh from this run (its old rows and derived files go; a truth bundle "
                          "of another truth is removed): for a board whose truth was rebuilt")
    show = board.add_parser("show", help="a leaderboard as a table (or markdown)")
    show.add_argument("name", help="board name (e.g. digits) or CSV path")
    show.add_argument("--dir", type=Path, default=Path("leaderboards"))
    show.add_argument("--format", choices=["table", "md"], default="table")
    site = board.add_parser("site", help="a static HTML site of the published boards (no server, no CDN)")
    site.add_argument("--dir", type=Path, default=Path("leaderboards"))
    site.add_argument("--out", type=Path, default=Path("site"))
    draws = board.add_parser("draws", help="a board's verdict over several draws of its models (other --seed or "
                                           "machine): pairs separated in every draw, Top-1 moves")
    draws.add_argument("sources", nargs="+", metavar="BOARD_OR_RUN",
                       help="a published board's name (it is one draw) and run folders of the same board; "
                            "runs of one draw joined by + (RUN+RUN_TUNED: a run and its --tuned rerun)")
    draws.add_argument("--dir", type=Path, default=Path("leaderboards"))
    draws.add_argument("--write", action="store_true",
                       help="write <board>-draws.json, -draws.csv, -draws-pairs.csv and -draws-per-query.csv.gz "
                            "(the other draws stored) beside the published board (which must be one of the draws); "
                            "`leaderboard show` then prints the draws line")
    draws.add_argument("--stored", action="store_true",
                       help="also the draws an earlier --write stored beside the board (its rows and per-query "
                            "metrics): a new draw joins them without their runs")
    draws.add_argument("--n-boot", type=positive_int, default=10_000)
    cmp_ = board.add_parser("compare", help="paired bootstrap: two runs (one method) or two methods (one run)")
    cmp_.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="one or two run folders")
    cmp_.add_argument("--method", required=True,
                      help="METHOD (two runs) or METHOD_A,METHOD_B (one run, or one method per run)")
    cmp_.add_argument("--n-boot", type=positive_int, default=10_000)
    cmp_.add_argument("--format", choices=["table", "json"], default="table")

    bundle = sub.add_parser("bundle", help="ground-truth bundles: LOGO scores, queries, full model, hashes")
    baction = bundle.add_subparsers(dest="action", required=True, parser_class=OneLineParser)
    exp = baction.add_parser("export", help="pack a run's ground truth into a .tar.gz")
    exp.add_argument("run_dir", type=Path)
    exp.add_argument("out", type=Path)
    exp.add_argument("--cache", type=Path, default=None)
    imp = baction.add_parser("import", help="verify a bundle and add it to the cache (no LOGO retraining)")
    imp.add_argument("bundle", type=Path)
    imp.add_argument("--cache", type=Path, default=None)
    return parser


def cache_dir(arg: Path | None) -> Path:
    import os

    return arg or Path(os.environ.get("GUDA_BENCH_CACHE", ".guda-cache"))


def collect_options(items: list[tuple[str, str, str]]) -> dict[str, dict[str, str]]:
    options: dict[str, dict[str, str]] = {}
    for name, key, value in items:
        options.setdefault(name, {})[key] = value
    return options


def run_spec(args: argparse.Namespace, **extra: Any) -> Any:
    """The RunSpec of the benchmark arguments `run` and `tune` share."""
    from guda_bench.registry import resolve_methods
    from guda_bench.runner import RunSpec
    from guda_bench.targets import parse_targets

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return RunSpec(methods=resolve_methods(args.method), dataset=args.dataset, preset=args.preset,
                   grouping=args.grouping, targets=parse_targets(args.targets), cache=cache_dir(args.cache),
                   seed=args.seed, device=args.device, quiet=args.quiet, data_root=args.data_root,
                   executor=args.executor, ray_address=args.ray_address, task_threads=args.task_threads,
                   precision=args.precision,
                   base_model=args.base_model, query_mode=args.query_mode, truth_seeds=args.truth_seeds, **extra)


def cmd_run(args: argparse.Namespace) -> int:
    from guda_bench.lds import LdsConfig
    from guda_bench.runner import run

    lds_flags = {"--lds-subsets": args.lds_subsets, "--lds-alpha": args.lds_alpha, "--lds-seed": args.lds_seed}
    if args.truth != "lds" and any(v is not None for v in lds_flags.values()):
        given = [flag for flag, v in lds_flags.items() if v is not None]
        raise BenchError(f"{' and '.join(given)} {'shapes' if len(given) == 1 else 'shape'} the group LDS truth, "
                         "which this run does not build: add --truth lds")
    exhaustive = args.lds_subsets == "all"
    design = {"subsets": 0 if exhaustive else args.lds_subsets, "alpha": args.lds_alpha, "seed": args.lds_seed}
    lds = LdsConfig(**{k: v for k, v in design.items() if v is not None}, exhaustive=exhaustive)  # unset: defaults
    import_truth_bundle(args)
    spec = run_spec(args, command=args.command_line, out=args.out, ceiling_seeds=args.ceiling_seeds,
                    method_timeout=args.method_timeout, method_options=collect_options(args.option), tuned=args.tuned,
                    tuning_dir=args.tuning_dir, truth=args.truth, lds=lds, lds_ceiling=args.lds_ceiling,
                    refuse_if_nothing_runs=True)
    run(spec)
    print(f"wrote {args.out / 'summary.csv'} and {args.out / 'results.json'}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from rich.console import Console

    from guda_bench.tuning import summary_table, tune

    import_truth_bundle(args)
    records = tune(run_spec(args), budget=args.budget, tuning_dir=args.tuning_dir, candidate_seed=args.candidate_seed)
    if not args.quiet:
        Console(width=160).print(summary_table(records))
    print(f"wrote {len(records)} tuning record(s) under {args.tuning_dir / records[0]['board']}")
    return 0


def cmd_list(_: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from guda_bench.extras import missing
    from guda_bench.registry import DATASETS, METHODS

    table = Table(title="attribution methods")
    for col in ("name", "runs here", "description", "source"):
        table.add_column(col)
    for e in METHODS.entries():
        requires = getattr(e.cls, "requires", frozenset())
        here = "no (needs CUDA)" if "cuda" in requires and not torch.cuda.is_available() else "yes"
        if "clip_weights" in requires:
            here = "with local CLIP weights (--option clip.weights=PATH or $GUDA_BENCH_CLIP_WEIGHTS)"
            if why := missing("clip"):
                here = f"no ({why})"
        table.add_row(e.name, escape(here), e.description, e.source)  # escape: "[clip]" is not rich markup
    for name, err in METHODS.load_errors.items():
        table.add_row(name, "no (plugin failed to load)", err, "entry point")
    datasets = Table(title="datasets")
    for col in ("name", "runs here", "presets", "description"):
        datasets.add_column(col)
    for e in DATASETS.entries():
        adapter = e.create()
        ok, why = adapter.available()
        here = "yes" if ok else escape(f"no ({why})")
        datasets.add_row(e.name, here, ", ".join(sorted(adapter.presets)), e.description)
    for name, err in DATASETS.load_errors.items():
        datasets.add_row(name, "no (plugin failed to load)", "-", err)
    from guda_bench.groupings import DEFAULTS, DESCRIPTIONS

    groupings = Table(title="groupings (--grouping NAME[:key=value,...], any dataset)")
    for col in ("name", "parameters (defaults)", "description"):
        groupings.add_column(col)
    for name, params in DEFAULTS.items():
        groupings.add_row(name, ", ".join(f"{k}={v}" for k, v in params.items()) or "-", DESCRIPTIONS[name])
    executors = Table(title="executors (--executor NAME)")
    for col in ("name", "runs here"):
        executors.add_column(col)
    executors.add_row("local", "yes")
    executors.add_row("ray", escape(f"no ({why})") if (why := missing("ray")) else "yes")
    console = Console()
    for part in (table, datasets, groupings, executors):
        console.print(part)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from guda_bench.testing import check_method

    report = check_method(args.name, device=args.device)
    print(report.text())
    return 0 if report.ok else 1


def cmd_options(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from guda_bench.registry import METHODS

    entry = METHODS.entry(args.name)
    declared, space = entry.declared_options, entry.space()
    console = Console(width=160)
    if declared is None:
        console.print(f"{entry.name}: declares no options (values of --option {entry.name}.KEY=VALUE pass unchecked)")
        return 0
    table = Table(title=f"{entry.name} options (--option {entry.name}.KEY=VALUE)")
    for col in ("key", "must be", "default", "search space", "description"):
        table.add_column(col)
    for key, opt in declared.items():
        default = entry.options.get(key, opt.default)
        shown = f"preset's {opt.preset}.{key}" if default is None and opt.preset else str(default)
        table.add_row(key, opt.requirement(), shown,
                      ", ".join(str(c) for c in space.get(key, [])) or "-", opt.help)
    console.print(table if declared else f"{entry.name} takes no options")
    console.print(f"search space: {', '.join(f'{k} x{len(v)}' for k, v in space.items())}" if space
                  else "nothing to tune (no search space)")
    return 0


def cmd_env(_: argparse.Namespace) -> int:
    from guda_bench.provenance import environment

    print(json.dumps(environment(), indent=1))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from guda_bench.bench import run_benchmarks

    result = run_benchmarks(args.preset, args.run, args.out, dataset=args.dataset)
    print(json.dumps({k: result[k] for k in ("elbo", "train", "trak", "projection", "runs")}, indent=1))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from guda_bench import leaderboard as lb

    if args.action == "publish":
        if not args.replace:
            print(f"published {lb.publish(args.run_dir, args.dir, plots=not args.no_plots)}")
            return 0
        path, removed = lb.replace_board(args.run_dir, args.dir, plots=not args.no_plots)
        print(f"replaced {path}")
        if removed is not None:
            print(f"removed {removed}: it holds the old truth; export this run's with "
                  f"`guda-bench bundle export {args.run_dir} {removed}`")
        return 0
    if args.action == "site":
        from guda_bench.site import build_site

        pages = build_site(args.dir, args.out)
        print(f"wrote {len(pages)} pages to {args.out} (open {args.out / 'index.html'})")
        return 0
    if args.action == "show":
        path, frame = lb.read_board(args.name, args.dir)
        if args.format == "md":
            print(lb.to_markdown(frame))
            print(f"\n{lb.board_power(path, frame)}")
            return 0
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        first = frame.iloc[0]
        table = Table(title=f"{first['dataset']} ({first['grouping']}, preset {first['preset']}), test n="
                            f"{first['n_test']}, truth {str(first['truth_hash'])[:12]}, "
                            f"commit {str(first['git_commit'])[:8]}")
        for h in lb.headers(frame):
            table.add_column(h, justify="left" if h in ("method", "status") else "right")
        for i, cells in enumerate(lb.show_rows(frame)):
            table.add_row(*map(escape, cells), end_section=frame.iloc[i]["kind"] == "ceiling")
        Console(width=160).print(table)
        print(lb.board_power(path, frame))
        return 0
    if args.action == "draws":
        return _draws(args)
    names = args.method.split(",")
    if len(args.runs) > 2 or len(names) > 2 or (len(args.runs) == 1 and len(names) != 2):
        raise BenchError("compare takes RUN --method A,B or RUN_A RUN_B --method M (or A,B)")
    run_b = args.runs[1] if len(args.runs) == 2 else None
    if run_b is None and names[0] == names[1]:
        raise BenchError(f"--method {args.method} names one method twice: compare two methods of a run, or one "
                         "method across two runs (RUN_A RUN_B --method M)")
    result = lb.compare(args.runs[0], run_b, names[0], names[-1], n_boot=args.n_boot)
    if args.format == "json":
        print(json.dumps(result, indent=1))
        return 0
    n = result["rows"][0]["n_queries"]
    print(f"A = {result['a']}\nB = {result['b']}  (paired bootstrap over {n} test queries)")
    print(f"{'metric':10s} {'A':>7s} {'B':>7s} {'A-B':>8s} {'95% CI':>18s} {'p':>7s}")
    for r in result["rows"]:
        print(f"{r['metric']:10s} {r['mean_a']:7.3f} {r['mean_b']:7.3f} {r['diff']:+8.3f} "
              f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] {r['p_value']:7.4f}")
    return 0


def _draws(args: argparse.Namespace) -> int:
    from guda_bench import draws as dr

    loaded = [dr.load_draw(s, args.dir) for s in args.sources]
    at = next((i for i, d in enumerate(loaded) if d.path is not None), None)  # the published board, if named
    board = None if at is None else loaded[at].path
    if args.stored:
        if board is None:
            raise BenchError("--stored adds the draws stored beside a published board: name the board among the "
                             "draws")
        loaded[at + 1:at + 1] = dr.stored_draws(board)
    result = dr.compare(loaded, n_boot=args.n_boot)
    print(dr.top1_table(result))
    print(result["summary"]["line"])
    if args.write:
        if board is None:
            raise BenchError(f"--write puts the draws beside the published board: name it among the draws "
                             f"(e.g. `{result['board']}`)")
        dropped = [] if args.stored else dr.stored_labels(board)
        if dropped:
            print(f"note: this replaces the draws stored beside {board.stem} ({', '.join(dropped)}); "
                  f"--stored keeps them", file=sys.stderr)
        for p in dr.write(result, loaded, board, args.command_line):
            print(f"wrote {p}")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from guda_bench.bundle import export_bundle, import_bundle

    if args.action == "export":
        path = export_bundle(args.run_dir, args.out, cache_dir(args.cache))
        print(f"wrote {path}")
        return 0
    info = import_bundle(args.bundle, cache_dir(args.cache))
    print(json.dumps(info, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import shlex

    # the command as a reader would retype it (recorded by runs, shown on boards): never an executable's path
    args.command_line = " ".join(["guda-bench", *(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))])
    handler = {"run": cmd_run, "tune": cmd_tune, "list": cmd_list, "options": cmd_options, "check": cmd_check,
               "env": cmd_env, "bench": cmd_bench, "leaderboard": cmd_leaderboard, "bundle": cmd_bundle}[args.command]
    try:
        return handler(args)
    except BenchError as exc:
        print(f"guda-bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a path the system refuses (not a folder, no space, no permission): one line
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        print(f"guda-bench: error: {exc.strerror or exc}{f': {where}' if where else ''}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("guda-bench: interrupted; finished rows and cached artefacts are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
