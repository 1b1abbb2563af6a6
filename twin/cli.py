"""The ``twin`` command: a thin table of subcommands over the library."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .spec import Problem, SpecError, TwinError


def _number(kind: type, minimum: float, *, strict: bool = False):
    """An argparse type: a finite ``kind`` (int or float) at least (or, if strict, above) ``minimum``."""
    what = ("a whole number" if kind is int else "a number") + (" > " if strict else " >= ") + f"{minimum:g}"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


_positive = _number(float, 0, strict=True)
_nonneg = _number(float, 0)
_count = _number(int, 1)
_seed = _number(int, 0)


class _Progress:
    """A progress bar on stderr when it is a terminal; silence otherwise (logs stay clean)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None
        self.tasks = {}

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def update(self, label: str, done: int, total: int):
        if self.bar is None:
            return
        if label not in self.tasks:
            self.tasks[label] = self.bar.add_task(label, total=total)
        self.bar.update(self.tasks[label], completed=done)


def _console(min_width: int = 120):
    """Rich console; when output is not a terminal, wide enough that tables do not wrap."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=min_width)


def cmd_simulate(args) -> int:
    from rich.table import Table

    from .report.simulation import SERVICE_HEADER, class_rows, fmt, overview_rows, service_rows, write_simulation
    from .rundir import atomic_directory, check_output_folder
    from .sim import PoissonArrivals, default_jobs, read_workload, run_replications, summarize
    from .spec import load_model, parse_assignments

    params = parse_assignments(args.param or [], source="--param")
    model = load_model(args.model, sets=args.set or [], params=params)
    if args.out:
        check_output_folder(args.out)
    d = model.defaults
    if args.workload and args.rate:
        raise TwinError("--rate and --workload exclude each other: a replayed table brings its own arrivals")
    if args.workload:
        source = read_workload(args.workload, model, duration_s=args.duration)
        rate, duration = len(source) / source.duration_s, source.duration_s
    else:
        rate = args.rate or d.rate_per_s
        duration = args.duration or d.duration_s
        source = PoissonArrivals(rate, duration)
    warmup = d.warmup_s if args.warmup is None else args.warmup
    if warmup >= duration:
        raise SpecError([Problem("--warmup", f"expected a warm-up shorter than the duration ({duration:g} s), "
                                             f"got {warmup:g}")])
    replications = args.replications or d.replications
    jobs = args.jobs or min(default_jobs(), replications)
    with _Progress(not args.json) as bar:
        results = run_replications(model, source, replications=replications, seed=args.seed, jobs=jobs,
                                   warmup_s=warmup, record_spans=args.spans,
                                   progress=lambda k: bar.update(f"simulating {model.name}", k, replications))
    summary = summarize(results)
    meta = {"model_file": str(args.model), "workload_file": str(args.workload) if args.workload else None,
            "rate_per_s": rate, "duration_s": duration, "seed": args.seed,
            "overrides": args.set or [], "params": params}
    if args.out:
        with atomic_directory(args.out) as scratch:
            write_simulation(scratch, model=model, results=results, summary=summary, meta=meta)
    if args.json:
        print(json.dumps({**meta, **summary.to_dict()}, indent=2, allow_nan=False))
        return 0
    console = _console()
    load = f"replaying {args.workload} ({rate:.4g} req/s)" if args.workload else f"at {rate:g} req/s"
    console.print(f"[bold]{model.name}[/bold]: {replications} replications × {duration:g} s {load} "
                  f"(warm-up {warmup:g} s, seed {args.seed}); ± is a 95% confidence interval")
    t = Table(show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("mean ± 95% CI", justify="right")
    for row in overview_rows(summary):
        t.add_row(*row)
    console.print(t)
    t = Table(*SERVICE_HEADER, header_style="bold")
    for row in service_rows(summary, model):
        t.add_row(*row)
    console.print(t)
    if model.caches:
        t = Table("cache", "hit ratio", header_style="bold")
        for c in model.caches:
            t.add_row(c, fmt(summary.metrics[f"cache.{c}.hit_ratio"]))
        console.print(t)
    rows = class_rows(summary, model)
    if rows:
        t = Table("class", "p50 (ms)", "p99 (ms)", "throughput/s", "error rate", header_style="bold")
        for row in rows:
            t.add_row(*row)
        console.print(t)
    if args.out:
        console.print(f"results written to {args.out}/ (open {Path(args.out) / 'report.html'} in a browser)")
    return 0


def default_validation_dir() -> Path:
    here = Path("models/validation")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "models" / "validation"


def cmd_validate(args) -> int:
    from rich.table import Table

    from .sim import default_jobs
    from .validation import run_suite

    directory = Path(args.directory) if args.directory else default_validation_dir()
    with _Progress(not args.json) as bar:
        outcomes = run_suite(directory, seed=args.seed, replications=args.replications,
                             jobs=args.jobs or default_jobs(), progress=bar.update)
    failed = [o for o in outcomes if not o.passed]
    if args.json:
        print(json.dumps([{"model": o.model, "metric": o.check.metric, "theory": o.check.formula,
                           "analytic": o.check.expected, "simulated": o.estimate.to_dict(), "passed": o.passed,
                           "reason": o.reason} for o in outcomes], indent=2))
    else:
        level = outcomes[0].estimate.level if outcomes else 0.95
        t = Table("model", "metric", "theory", "analytic", "simulated", "CI", "±rel", "verdict",
                  header_style="bold", title=f"twin validate {directory}: {len(outcomes)} checks")
        for o in outcomes:
            e = o.estimate
            rel = e.half_width / abs(o.check.expected) if o.check.expected else e.half_width
            t.add_row(o.model, o.check.metric, o.check.formula, f"{o.check.expected:.5g}", f"{e.mean:.5g}",
                      f"[{e.low:.5g}, {e.high:.5g}]", f"{rel:.1%}",
                      "[green]pass[/green]" if o.passed else f"[red]FAIL[/red] {o.reason}")
        console = _console(160)
        console.print(t)
        console.print(f"Intervals are Student-t over replications at {level:.4%} each (Bonferroni: 95% for the "
                      f"whole suite); a check passes when the analytic value lies inside and the interval is "
                      f"within ±7.5% of it.")
        console.print(f"[bold]{len(outcomes) - len(failed)} passed, {len(failed)} failed[/bold]")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin", description="Shadow twin lab: simulate, validate, tune.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="run a system model under Poisson load and report metrics with 95% CIs",
                       description="Simulate MODEL under a Poisson stream (rate and class mix from the model's "
                                   "defaults unless given) or a replayed arrival table, and print metrics with "
                                   "95% confidence intervals.")
    p.add_argument("model", type=Path, metavar="MODEL", help="system model YAML file")
    p.add_argument("--rate", type=_positive, help="Poisson arrival rate, requests per second")
    p.add_argument("--workload", type=Path, metavar="FILE",
                   help="replay an arrival table (CSV or Parquet: time_s, class[, size_bytes, key, session]) "
                        "instead of a Poisson stream; every replication sees the same arrivals")
    p.add_argument("--duration", type=_positive, help="simulated seconds per replication")
    p.add_argument("--warmup", type=_nonneg, help="seconds discarded at the start of each replication")
    p.add_argument("--seed", type=_seed, default=0, help="root seed (default 0)")
    p.add_argument("--replications", type=_count, help="independent replications")
    p.add_argument("--jobs", type=_count, help="processes to run replications in (default: CPUs)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override any model field, e.g. services.api.workers=8 (repeatable)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="set a tunable by name, e.g. memory_size=512MiB (repeatable)")
    p.add_argument("--spans", action="store_true", help="also record one span per visit (spans.parquet)")
    p.add_argument("--out", type=Path, metavar="DIR", help="write summary, records and report.html here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("validate", help="check the twin against closed-form queueing theory",
                       description="Simulate every model in DIR (default models/validation) and compare with "
                                   "M/M/1, M/M/c, M/G/1, M/M/c/K, Jackson and Che closed forms.")
    p.add_argument("directory", nargs="?", metavar="DIR")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--replications", type=_count, help="override each model's replication count")
    p.add_argument("--jobs", type=_count, help="processes (default: CPUs)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TwinError as e:
        for line in str(e).splitlines():
            print(f"twin {args.command}: error: {line}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print("twin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
