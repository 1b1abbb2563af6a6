"""The ``twin`` command: a thin table of subcommands over the library."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from pathlib import Path

from .rundir import write_atomically as _write_atomically
from .rundir import write_frame_atomically
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
            self.tasks[label] = self.bar.add_task(_m(label), total=total)  # a study's name is text, not markup
        self.bar.update(self.tasks[label], completed=done)


def _console(min_width: int = 120):
    """Rich console; when output is not a terminal, wide enough that tables do not wrap."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=min_width)


def _m(value) -> str:
    """A user's value (a path, a name, a note from a file) for ``console.print``: its brackets
    are text, not rich markup (an unmatched ``[/x]`` would stop the command)."""
    from rich.markup import escape

    return escape(str(value))


def cmd_simulate(args) -> int:
    from rich.table import Table

    from .report.simulation import (INTERVAL_HEADER, INTERVAL_NOTE, SERVICE_HEADER, class_rows, fmt, overview_rows,
                                    service_rows, write_simulation)
    from .rundir import atomic_directory
    from .sim import PoissonArrivals, default_jobs, read_workload, run_replications, summarize
    from .spec import load_model, parse_assignments

    params = parse_assignments(args.param or [], source="--param")
    model = load_model(args.model, sets=args.set or [], params=params)
    if args.out:  # every output checked before any work: a run must not die at its last step
        _check_out_folder(args.out, "--out")
    if args.trace:
        if args.trace.suffix.lower() not in (".parquet", ".json", ".jsonl", ".gz"):
            raise TwinError(f"--trace {args.trace}: expected a .parquet, .json or .jsonl file")
        _check_writable(args.trace, "--trace")
    if args.workload:
        _check_input(args.workload, "--workload")
    d = model.defaults
    if args.workload and args.rate:
        raise TwinError("--rate and --workload exclude each other: a replayed table brings its own arrivals")
    if args.workload:
        source = read_workload(args.workload, model, duration_s=args.duration)
        if not source.duration_s > 0:
            raise TwinError(f"--workload {args.workload}: every arrival is at time 0, so the table spans no time; "
                            f"give the window to simulate with --duration")
        rate, duration = len(source) / source.duration_s, source.duration_s
    else:
        rate = args.rate or d.rate_per_s
        duration = args.duration or d.duration_s
        source = PoissonArrivals(rate, duration)
    # the model's warm-up, unless the user shortened the run below it
    warmup = min(d.warmup_s, duration / 5) if args.warmup is None else args.warmup
    if warmup >= duration:
        raise SpecError([Problem("--warmup", f"expected a warm-up shorter than the duration ({duration:g} s), "
                                             f"got {warmup:g}")])
    replications = args.replications or d.replications
    jobs = args.jobs or min(default_jobs(), replications)
    with _Progress(not args.json) as bar:
        results = run_replications(model, source, replications=replications, seed=args.seed, jobs=jobs,
                                   warmup_s=warmup, record_spans=args.spans or bool(args.trace),
                                   progress=lambda k: bar.update(f"simulating {model.name}", k, replications))
    summary = summarize(results)
    meta = {"model_file": str(args.model), "workload_file": str(args.workload) if args.workload else None,
            "rate_per_s": rate, "duration_s": duration, "seed": args.seed,
            "overrides": args.set or [], "params": params}
    if args.out:
        with atomic_directory(args.out) as scratch:
            write_simulation(scratch, model=model, results=results, summary=summary, meta=meta)
    if args.trace:
        _write_trace(args.trace, results[0], source, model, args.seed)
    # a stalled service (work held, nothing done) makes the numbers meaningless: said, and exit 1
    for w in summary.warnings:
        print(f"twin simulate: warning: {w}", file=sys.stderr)
    for w in summary.cautions:
        print(f"twin simulate: note: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps({**meta, **summary.to_dict()}, indent=2, allow_nan=False))
        return 1 if summary.warnings else 0
    console = _console()
    load = f"replaying {_m(args.workload)} ({rate:.4g} req/s)" if args.workload else f"at {rate:g} req/s"
    console.print(f"[bold]{model.name}[/bold]: {replications} replications × {duration:g} s {load} "
                  f"(warm-up {warmup:g} s, seed {args.seed}); {_m(INTERVAL_NOTE)}")
    t = Table(show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column(INTERVAL_HEADER, justify="right")
    # cells through _m: "[low, high]" and a service's name are text, not rich markup
    for row in overview_rows(summary):
        t.add_row(*map(_m, row))
    console.print(t)
    t = Table(*SERVICE_HEADER, header_style="bold")
    for row in service_rows(summary, model):
        t.add_row(*map(_m, row))
    console.print(t)
    if model.caches:
        t = Table("cache", "hit ratio", header_style="bold")
        for c in model.caches:
            t.add_row(_m(c), _m(fmt(summary.metrics[f"cache.{c}.hit_ratio"])))
        console.print(t)
    rows = class_rows(summary, model)
    if rows:
        t = Table("class", "p50 (ms)", "p99 (ms)", "throughput/s", "error rate", header_style="bold")
        for row in rows:
            t.add_row(*map(_m, row))
        console.print(t)
    if args.out:
        console.print(f"results written to {_m(args.out)}/ (open {_m(Path(args.out) / 'report.html')} in a browser)")
    return 1 if summary.warnings else 0


def _write_trace(path: Path, result, source, model, seed: int) -> None:
    """The first replication's spans as a production trace would hold them (Parquet or OTLP JSON)."""
    import pandas as pd

    from .sim import Workload, replication_seeds
    from .sim.streams import substream
    from .traces.export import twin_spans_to_frame, twin_spans_to_otlp, write_otlp_json

    epoch = pd.Timestamp("2026-01-05T10:00:00Z")  # fixed: the same run gives the same file
    # the first replication's arrival table, drawn again from its own stream (sizes and keys)
    work = source if isinstance(source, Workload) else source.generate(
        model, substream(replication_seeds(seed, 1)[0], "workload"))
    name = path.name.lower()
    if name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")):
        write_otlp_json(twin_spans_to_otlp(result, epoch=epoch, workload=work), path)
    else:
        twin_spans_to_frame(result, epoch=epoch, workload=work).to_parquet(path)


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
                  header_style="bold", title=f"twin validate {_m(directory)}: {len(outcomes)} checks")
        for o in outcomes:
            e = o.estimate
            rel = e.half_width / abs(o.check.expected) if o.check.expected else e.half_width
            t.add_row(_m(o.model), o.check.metric, o.check.formula, f"{o.check.expected:.5g}", f"{e.mean:.5g}",
                      f"[{e.low:.5g}, {e.high:.5g}]", f"{rel:.1%}",
                      "[green]pass[/green]" if o.passed else f"[red]FAIL[/red] {_m(o.reason)}")
        console = _console(160)
        console.print(t)
        console.print(f"Intervals are Student-t over replications at {level:.4%} each (Bonferroni: 95% for the "
                      f"whole suite); a check passes when the analytic value lies inside and the interval is "
                      f"within ±7.5% of it.")
        console.print(f"[bold]{len(outcomes) - len(failed)} passed, {len(failed)} failed[/bold]")
    return 1 if failed else 0


def _mapping(text):
    """'timestamp=ts,class=endpoint' -> {'timestamp': 'ts', 'class': 'endpoint'}"""
    out = {}
    for part in text.split(","):
        name, sep, column = part.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE[,NAME=VALUE...], got {text!r}")
        if name.strip() in out:
            raise argparse.ArgumentTypeError(f"{name.strip()!r} is given twice in {text!r}")
        out[name.strip()] = column.strip()
    return out


def _fraction(text):
    try:
        value = _positive(text)
    except argparse.ArgumentTypeError:
        value = math.nan
    if not value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def _instant(text):
    """An argparse type: a time with its zone (ISO 8601)."""
    import pandas as pd

    try:
        value = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        value = None
    if value is None or pd.isna(value) or value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"expected a time with its zone, e.g. 2026-03-02T08:00:00Z or "
                                         f"2026-03-02T09:00:00+01:00, got {text!r}")
    return value


def cmd_calibrate(args) -> int:
    import yaml
    from rich.table import Table

    from .calibrate.calibrate import assess, calibrate
    from .calibrate.fidelity import Thresholds
    from .calibrate.skeleton import load_skeleton
    from .report.calibration import render
    from .sim import default_jobs
    from .traces import read_series, read_traces

    from .calibrate.requests import model_name

    out = Path(args.output)
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise TwinError(f"-o {out}: expected a .yaml file for the calibrated model")
    report_path = Path(args.report) if args.report else out.with_suffix(".calibration.html")
    for path, flag in ((out, "-o"), (report_path, "--report")):  # before any work: a run must not die at its end
        _check_writable(path, flag)
    for path in args.traces:
        _check_input(path, "TRACE")
    if args.name is not None:
        from pydantic import TypeAdapter, ValidationError

        from .spec.model import Name

        try:
            TypeAdapter(Name).validate_python(args.name)
        except ValidationError:
            raise TwinError(f"--name {args.name}: expected a model name of at most 64 ASCII letters, digits, '_' or "
                            f"'-' that starts with a letter or '_'") from None
    skeleton = load_skeleton(args.model)
    # logs name no service: by default they describe the skeleton's entry point
    entry = next(iter(skeleton.model.classes.values())).entry
    trace, inputs = read_traces(args.traces, format=args.format, log_format=args.log_format, columns=args.columns,
                                service=args.service or entry, keep_going=args.keep_going, time_zone=args.time_zone,
                                latency_unit=args.latency_unit, time_unit=args.time_unit)
    console = _console()
    for item in inputs:
        for w in item.get("warnings", []):
            console.print(f"[yellow]warning[/yellow]: {_m(item['file'])}: {_m(w)}")
        if item.get("time_resolution_s"):
            console.print(f"[yellow]warning[/yellow]: {_m(item['file'])}: times are written to the second: arrivals "
                          f"are spread within their second when replayed")
    utilisation = {}
    for service, path in (args.utilisation or {}).items():
        utilisation[service] = read_series(path, time_zone=args.time_zone, fraction=True)
    cal = calibrate(trace, skeleton, holdout=args.holdout, seed=args.seed, max_classes=args.max_classes,
                    name=args.name or model_name(out.name.split(".")[0], set()), inputs=inputs,
                    utilisation=utilisation)
    thresholds = Thresholds(max_ks=args.max_ks, max_p50_error=args.max_p50_error,
                            max_p95_error=args.max_p95_error, max_p99_error=args.max_p99_error,
                            max_throughput_error=args.max_throughput_error)
    fid = None
    if trace["latency_s"].notna().all():
        with _Progress(True) as bar:
            fid, _ = assess(cal, replications=args.replications, seed=args.seed, thresholds=thresholds,
                            jobs=args.jobs or min(default_jobs(), args.replications),
                            progress=lambda k: bar.update("replaying held-out requests", k, args.replications))
        cal = cal.with_fidelity(fid)
    text = yaml.safe_dump(cal.model.model_dump(by_alias=True, exclude_defaults=True), sort_keys=False, width=110)
    page = render(cal, fid)
    _write_atomically(out, "# calibrated by `twin calibrate`; see the provenance block at the end\n" + text)
    _write_atomically(report_path, page)
    for w in cal.warnings:
        console.print(f"[yellow]warning[/yellow]: {_m(w)}")
    t = Table("service", "source", "family", "mean (ms)", "n", "per class", header_style="bold",
              title="service times")
    for name, f in cal.services.items():
        t.add_row(name, f.source, f.pooled.family, f"{f.pooled.dist.mean() * 1e3:.4g}", f"{f.pooled.n:,}",
                  ", ".join(f.by_class) or "–")
    console.print(t)
    if fid is not None:
        t = Table("scope", "metric", "trace", "twin", "error", "±noise", "limit", "verdict", header_style="bold",
                  title=f"fidelity on held-out requests ({fid.replications} replays)")
        for r in fid.rows:
            if r.metric in ("error rate", "throughput (req/s)") and r.scope != "all":
                continue
            pct = r.metric.startswith(("latency p", "throughput"))
            err = f"{r.error:.1%}" if pct else f"{r.error:.3f}"
            noise = "" if r.noise != r.noise else (f"{r.noise:.1%}" if pct else f"{r.noise:.3f}")
            verdict = ("–" if r.threshold is None else "too noisy") if r.passed is None else (
                "[green]pass[/green]" if r.passed else "[red]FAIL[/red]")
            t.add_row(r.scope, r.metric, "" if r.trace != r.trace else f"{r.trace:.4g}",
                      "" if r.twin != r.twin else f"{r.twin:.4g}", err, noise,
                      "" if r.threshold is None else f"{r.threshold:g}", verdict)
        console.print(t)
        colour = {"faithful": "green", "not faithful": "red", "undetermined": "yellow"}[fid.verdict]
        console.print(f"[bold]verdict: [{colour}]{fid.verdict}[/{colour}][/bold]" + (
            " (the held-out part is too small to judge the overall KS and p95 within their thresholds; hold "
            "out more with --holdout or bring a longer trace)" if fid.verdict == "undetermined" else ""))
    console.print(f"model written to {_m(out)}; report: {_m(report_path)}")
    if fid is not None and fid.verdict != "faithful" and args.strict:
        return 1
    return 0


def _check_writable(path: Path, flag: str | None = None) -> None:
    import tempfile

    where = f"{flag} {path}" if flag else f"{path}"
    blocker = next((a for a in path.absolute().parents if a.exists() and not a.is_dir()), None)
    if blocker is not None:  # mkdir would say only "File exists"
        raise TwinError(f"{where}: cannot write here ({blocker} is not a folder)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as e:
        raise TwinError(f"{where}: cannot write here ({e.strerror or e})") from None
    if path.is_dir():
        raise TwinError(f"{where}: is a folder, expected a file name")


def _check_out_folder(path: Path, flag: str) -> None:
    """Before any work: ``flag`` names a folder twin may fill (new, empty or a run folder) in a
    place it can write.  Nothing is created."""
    import tempfile

    from .rundir import check_output_folder

    try:
        check_output_folder(path)
    except TwinError as e:
        raise TwinError(f"{flag} {e}") from None
    parent = Path(path).absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        if not parent.is_dir():
            raise NotADirectoryError(20, f"{parent} is not a folder")
        Path(tempfile.mkdtemp(dir=parent, prefix=f".{Path(path).name}.")).rmdir()
    except OSError as e:
        raise TwinError(f"{flag} {path}: cannot write here ({e.strerror or e})") from None


def _check_input(path: Path, flag: str) -> None:
    """Before any work: an input file given by ``flag`` (or the positional argument it names) is
    a file that can be read."""
    path = Path(path)
    if not path.exists():
        raise TwinError(f"{flag} {path}: no such file")
    if path.is_dir():
        raise TwinError(f"{flag} {path}: is a folder, expected a file")
    try:
        path.open("rb").close()
    except OSError as e:
        raise TwinError(f"{flag} {path}: cannot read it ({e.strerror or e})") from None


def _check_data_file(path: Path, flag: str, what: str) -> None:
    """``_check_input``, and the file holds something: an empty one is a mistake, never "no data"."""
    _check_input(path, flag)
    if Path(path).stat().st_size == 0:
        raise TwinError(f"{flag} {path}: is empty, expected {what}")


def _outputs_spare_inputs(args, outputs) -> None:
    """Before any work: no output of ``outputs`` ((path, flag, is a folder)) is an input file of
    the command, nor (a folder, replaced whole) holds one: writing it would destroy what is read."""
    inputs = [(getattr(args, name, None), flag) for name, flag in
              (("series", "SERIES"), ("events", "--events"), ("social", "--social"), ("fitted", "--fitted"))]
    for out, flag, folder in outputs:
        if out is None:
            continue
        target = Path(out).resolve()
        for path, name in inputs:
            if path is not None and (Path(path).resolve() == target or
                                     folder and Path(path).resolve().is_relative_to(target)):
                raise TwinError(f"{flag} {out}: {'holds' if folder else 'is'} the input {name} {path}; writing it "
                                f"would destroy it: name another {'folder' if folder else 'file'}")


def _forecast_inputs(args, *, extend=True):
    """The history and covariates; each input file is checked first, named by its flag."""
    from .forecast.run import load_inputs

    for path, flag, what in ((args.series, "SERIES", "a history or a trace"),
                             (args.events, "--events", "an events calendar"),
                             (args.social, "--social", "posts or a mention-count series")):
        if path is not None:
            _check_data_file(path, flag, what)
    return load_inputs(args.series, value_column=args.value_column, target=args.target, time_zone=args.time_zone,
                       events=args.events, holidays=args.holidays, horizon=args.horizon, extend=extend,
                       social=args.social, trace_step=args.trace_step, counts=args.counts)


def cmd_forecast_backtest(args) -> int:
    import pandas as pd
    from rich.table import Table

    from .forecast.run import DEFAULT_MODELS, run_backtest, selection, steps, write_backtest
    from .rundir import atomic_directory

    if args.out:
        _check_out_folder(args.out, "--out")
        _outputs_spare_inputs(args, [(args.out, "--out", True)])
    inputs = _forecast_inputs(args)
    horizon = steps(args.horizon, inputs.history, "--horizon")
    step = steps(args.step, inputs.history, "--step") if args.step else None
    names = args.models.split(",") if args.models else list(DEFAULT_MODELS)
    with _Progress(not args.json) as bar:
        result = run_backtest(inputs, names, horizon=horizon, windows=args.windows, seed=args.seed, step=step,
                              refit_every=args.refit_every,
                              progress=lambda done, total: bar.update("backtesting", done, total))
    chosen = selection(result, args.target)
    if args.out:
        with atomic_directory(args.out) as folder:
            write_backtest(folder, result, inputs, chosen)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return 0
    console = _console()
    for line in [*inputs.repairs.lines, *inputs.notes]:
        console.print(f"[yellow]note[/yellow]: {_m(line)}")
    base = "seasonal_naive_daily" if "seasonal_naive_daily" in result.forecasters else result.forecasters[0]
    ratios = result.relative_to(base).set_index(["forecaster", "target"])["mase_ratio"]
    t = Table("model", "MASE", f"vs {base}", "sMAPE", "pinball", "80% cov.", "90% cov.", header_style="bold",
              title=f"{len(result.origins)} windows x {horizon} steps ahead, {_m(args.target)}")
    for r in result.summary().itertuples():
        t.add_row(r.forecaster, f"{r.mase:.3f}", f"{ratios.get((r.forecaster, r.target), float('nan')):.3f}",
                  f"{r.smape:.2f}", f"{r.pinball:.4g}", f"{r.coverage_80:.3f}", f"{r.coverage_90:.3f}")
    console.print(t)
    if result.event_windows:
        t = Table("model", "window", "n", "MASE", "80% cov.", header_style="bold", title="inside / outside events")
        for r in result.by_event().itertuples():
            t.add_row(r.forecaster, _m(r.window), str(r.n), f"{r.mase:.3f}", f"{r.coverage_80:.3f}")
        console.print(t)
    if chosen is not None:
        sel, cal, srv = chosen.selection, chosen.scores, chosen.online_scores
        console.print(f"selected on the first {len(sel.selection_origins)} windows: [bold]{sel.chosen}[/bold]; on the "
                      f"last {len(sel.evaluation_origins)}: MASE {sel.score(sel.chosen):.3f}, 80% coverage "
                      f"{sel.score(sel.chosen, 'coverage_80'):.3f}, recalibrated online from earlier windows "
                      f"{cal['coverage_80']:.3f} (90%: {cal['coverage_90']:.3f})")
        picks = pd.Series([chosen.choices[o] for o in sel.evaluation_origins]).value_counts()
        console.print(f"chosen in service (re-chosen at each origin from the windows ended by then): MASE "
                      f"{srv['mase']:.3f}, 80% coverage {srv['coverage_80']:.3f} on the same windows; chose "
                      + ", ".join(f"{n} {k}x" for n, k in picks.items()))
    for note in result.notes:
        console.print(f"[yellow]note[/yellow]: {_m(note)}")
    if args.out:
        console.print(f"written to {_m(args.out)}/ (report.html)", highlight=False)
    return 0


def _fit_chosen(args, inputs, horizon):
    """(name, recalibration, notes, fitted) from ``twin.forecast.run.fit_chosen``, with a progress bar."""
    from .forecast.run import fit_chosen

    with _Progress(True) as bar:
        return fit_chosen(inputs, args.model, horizon=horizon, windows=args.calibration_windows, seed=args.seed,
                          progress=lambda done, total: bar.update("backtesting", done, total))


def cmd_forecast_fit(args) -> int:
    from .forecast import saved
    from .forecast.run import steps

    out = Path(args.output)
    _check_writable(out, "-o")  # before the fit, which may take minutes
    _outputs_spare_inputs(args, [(out, "-o", False)])
    inputs = _forecast_inputs(args)
    horizon = steps(args.horizon, inputs.history, "--horizon")
    name, recal, notes, fitted = _fit_chosen(args, inputs, horizon)
    history = inputs.history
    saved.save(out, fitted, model=name, recalibration=recal, horizon=horizon, trained_until=history.values.index[-1],
               step=history.step, targets=history.targets)
    for note in notes:
        print(f"note: {note}")
    print(f"{name} fitted on {len(inputs.history)} steps up to {inputs.history.values.index[-1]}; written to {out}")
    return 0


def cmd_forecast_predict(args) -> int:
    from .forecast import saved
    from .forecast.run import predict_profile, steps
    from .rundir import atomic_directory

    if not (args.output or args.out):
        raise TwinError("forecast predict: say where the load profile goes: -o FILE.csv|.parquet or --out DIR")
    out = Path(args.output) if args.output else None
    if out is not None:
        if out.suffix.lower() not in (".csv", ".parquet"):
            raise TwinError(f"-o {out}: expected a .csv or .parquet file for the load profile")
        _check_writable(out, "-o")
    if args.out:
        _check_out_folder(args.out, "--out")
    _outputs_spare_inputs(args, [(out, "-o", False), (args.out, "--out", True)])
    if args.fitted:
        _check_data_file(args.fitted, "--fitted", "a model saved by twin forecast fit")
    inputs = _forecast_inputs(args)
    horizon = steps(args.horizon, inputs.history, "--horizon")
    if args.fitted:
        model = saved.load(args.fitted)  # data only: no code from the file runs
        history = inputs.history
        if model.step != history.step or model.targets != history.targets:
            raise TwinError(f"--fitted {args.fitted}: fitted on {', '.join(model.targets)} every {model.step}, but "
                            f"{args.series} gives {', '.join(history.targets)} every {history.step}")
        fitted, recal = model.fitted, model.recalibration
        notes = []
    else:
        name, recal, notes, fitted = _fit_chosen(args, inputs, horizon)
    frame, fc = predict_profile(fitted, recal, inputs, horizon, what=args.fitted)
    notes = [*inputs.repairs.lines, *inputs.notes, *notes, *fc.notes]
    written = []
    if out is not None:
        if out.suffix.lower() == ".csv":
            _write_atomically(out, frame.to_csv())
        else:
            frame.to_parquet(out)
        written.append(str(out))
    if args.out:
        from .report.forecast import render_profile

        with atomic_directory(args.out) as folder:
            frame.to_parquet(folder / "profile.parquet")
            frame.to_csv(folder / "profile.csv")
            meta = {"model": fc.model, "series": str(args.series), "trained_until": str(inputs.history.values.index[-1]),
                    "step": str(inputs.history.step), "horizon_steps": horizon, "quantiles": list(fc.quantiles),
                    "seed": args.seed, "notes": notes,
                    "recalibration": None if recal is None else {t: dict(zip(map(str, recal.quantiles), f.tolist()))
                                                                 for t, f in recal.factors.items()}}
            (folder / "profile.json").write_text(json.dumps(meta, indent=2))
            (folder / "report.html").write_text(render_profile(inputs.history, frame, notes, fc.model))
        written.append(f"{args.out}/ (profile.parquet, profile.csv, profile.json, report.html)")
    for note in notes:
        print(f"note: {note}")
    print(f"load profile ({fc.model}) for {horizon} steps after {inputs.history.values.index[-1]} written to "
          + " and ".join(written))
    return 0


def cmd_synth(args) -> int:
    import numpy as np
    from rich.table import Table

    from .load.profile_workload import read_profile, summary, workload
    from .spec import load_model

    out = Path(args.output)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise TwinError(f"-o {out}: expected a .csv or .parquet file for the arrival table")
    _check_writable(out, "-o")
    if args.start is not None and args.end is not None and args.start >= args.end:
        raise TwinError(f"--start {args.start} is not before --end {args.end}")
    for path, flag in ((args.profile, "PROFILE"), (args.sessions_from, "--sessions-from"),
                       (args.bursts_from, "--bursts-from")):
        if path is not None:
            _check_input(path, flag)
    model = load_model(args.model)
    cases = []
    if args.scenario:
        from .load import scenarios
        from .spec.loader import read_yaml

        data, _ = read_yaml(args.scenario)
        data = data.get("scenarios") if isinstance(data, dict) else data
        cases = scenarios.parse(data, source=str(args.scenario))
    profile = read_profile(args.profile)
    graph = None
    if args.sessions_from:
        from .load.sessions import fit_sessions
        from .traces import read_traces

        trace, _ = read_traces([args.sessions_from], columns=args.columns, time_zone=args.time_zone)
        graph = fit_sessions(trace[trace["parent_id"].isna()] if "parent_id" in trace else trace)
    bursts = None
    if args.bursts_from:
        from .load.fit import fit_mmpp
        from .traces import read_traces

        trace, _ = read_traces([args.bursts_from], columns=args.columns, time_zone=args.time_zone)
        roots = trace[trace["parent_id"].isna()] if "parent_id" in trace else trace
        stamps = roots["timestamp"]
        t = np.sort((stamps - stamps.min()).dt.total_seconds().to_numpy())
        if len(t) < 10 * args.burst_states or not t[-1] > 0:
            raise TwinError(f"--bursts-from {args.bursts_from}: {len(t)} request(s) over {t[-1] if len(t) else 0:g} s; "
                            f"fitting {args.burst_states} burst states (--burst-states) needs at least "
                            f"{10 * args.burst_states} requests spread over time")
        bursts = fit_mmpp(t, float(t[-1]), states=args.burst_states)
    load_rng, edit_rng = np.random.default_rng(args.seed).spawn(2)
    w = workload(profile, model, load_rng, quantile=args.quantile, start=args.start, end=args.end, sessions=graph,
                 bursts=bursts)
    edited = None
    if cases:
        edited, w = scenarios.apply(cases, model, w, edit_rng)
        if not any(c.acts_on == "model" for c in cases):
            edited = None
    frame = w.to_frame()
    if out.suffix.lower() == ".csv":
        _write_atomically(out, frame.to_csv(index=False))
    else:
        write_frame_atomically(out, frame, index=False)
    model_out = None
    if edited is not None:
        import yaml

        model_out = out.with_name(out.stem + ".model.yaml")
        # the file names quoted on one line: a name is never YAML of the model
        _write_atomically(model_out, f"# {json.dumps(str(args.model))} with the model edits of "
                                     f"{json.dumps(str(args.scenario))}\n"
                          + yaml.safe_dump(edited.model_dump(by_alias=True, exclude_none=True), sort_keys=False))
    s = summary(w)
    console = _console()
    t = Table("", "value", header_style="bold", title=f"workload from {_m(args.profile)}")
    t.add_row("arrivals", f"{s['arrivals']:,}")
    t.add_row("duration", f"{s['duration_s']:,.0f} s")
    t.add_row("mean rate", f"{s['mean_rate_per_s']:.4g} req/s")
    t.add_row("peak minute", f"{s['peak_minute_rate_per_s']:.4g} req/s")
    t.add_row("class mix", ", ".join(f"{n} {m:.1%}" for n, m in s["class_mix"].items()))
    t.add_row("size mean / p99", f"{s['size_bytes_mean']:,.0f} / {s['size_bytes_p99']:,.0f} bytes")
    t.add_row("distinct keys", f"{s['distinct_keys']:,}")
    if graph is not None:
        t.add_row("sessions", f"{len(np.unique(w.session)):,} (graph fitted from {graph.sessions:,}: "
                              f"{graph.mean_requests():.2f} requests, {graph.mean_session_s():.0f} s each)")
    if bursts is not None:
        levels = bursts.rates / bursts.rate_per_s
        stays = ", ".join(f"{1 / v:.3g} s" if v > 0 else "forever" for v in bursts.leave)
        t.add_row("bursts", f"MMPP from {_m(args.bursts_from)}: levels {', '.join(f'{x:.2f}x' for x in levels)} of the "
                            f"rate, mean stays {stays}")
    console.print(t)
    for case in cases:
        console.print(f"edge case: {case.kind} ({case.acts_on})")
    run_model = model_out or args.model
    console.print(f"written to {_m(out)}" + (f" and {_m(model_out)}" if model_out else "")
                  + f" (twin simulate {_m(run_model)} --workload {_m(out)})")
    return 0


def cmd_run(args) -> int:
    from rich.table import Table

    from .pipeline import run

    if args.out:  # before any work
        _check_out_folder(args.out, "--out")
    console = _console(150)
    with _Progress(True) as bar:
        summary = run(args.experiment, out=args.out, progress=bar.update,
                      say=lambda text: console.print(text, highlight=False, markup=False))
    if summary.skipped:
        console.print(f"resumed: {_m(', '.join(summary.skipped))} already done", highlight=False)
    from .spec import load_model

    tunables = load_model(summary.folder / "model.yaml").tunables
    t = Table("apply at", "from", "until", "nearest regime", "parameters", "confidence", header_style="bold",
              title="schedule")
    for e in summary.schedule:
        params = "\n".join(f"{k}={_param(tunables.get(k), v)}" for k, v in (e["params"] or {}).items())
        t.add_row(e["apply_at"][:16].replace("T", " "), e["from"][:16].replace("T", " "),
                  e["until"][:16].replace("T", " "), _m(e["anchor"] or "-"), _m(params or "none: sweep needed"),
                  f"{e['confidence']:.2f}")
    console.print(t)
    local = [f for f in ("policy.db", "studies.db") if (summary.folder / f).exists()]
    console.print(f"run folder: {_m(summary.folder)} (report.html, schedule.csv{''.join(', ' + f for f in local)})",
                  highlight=False)
    return 0


def cmd_verify(args) -> int:
    from rich.table import Table

    from .pipeline import load_experiment
    from .rundir import write_atomically
    from .verify import verify

    exp = load_experiment(args.experiment)
    folder = args.out if args.out is not None else Path("runs") / exp.name
    if not folder.is_dir():
        raise TwinError(f"{folder}: no run folder; run `twin run {args.experiment}` first (or give --out RUN)")
    console = _console(150)
    with _Progress(True) as bar:
        verdicts = verify(exp, folder, windows=args.windows, window_s=args.window, require=args.require,
                          jobs=args.jobs, progress=bar.update)
    if not verdicts:
        raise TwinError(f"{folder}: no regime has a recommended setting to verify (no sweep found a winner)")
    t = Table("regime", "setting", "constraint", "bound", "windows met", "worst window", "holds",
              header_style="bold", title=f"each recommended setting on {args.windows} hold-out windows of "
                                         f"{args.window:g} s (met in at least {args.require:.0%} to hold)")
    for v in verdicts:
        params = "\n".join(f"{k}={val}" for k, val in v.params.items())
        for i, (m, bound) in enumerate(v.constraints.items()):
            finite = [x for x in v.values[m] if math.isfinite(x)]
            worst = f"{max(finite):.4g}" if finite else "undefined"
            t.add_row(_m(v.regime) if i == 0 else "", _m(params) if i == 0 else "", _m(m), f"{bound:g}",
                      f"{v.met(m)}/{v.windows}", worst, ("yes" if v.holds else "NO") if i == 0 else "")
    console.print(t)
    write_atomically(folder / "verify.json", json.dumps({"windows": args.windows, "window_s": args.window,
                                                         "require": args.require,
                                                         "regimes": [v.to_dict() for v in verdicts]}, indent=2))
    console.print(f"wrote {_m(folder / 'verify.json')}", highlight=False)
    return 0 if all(v.holds for v in verdicts) else 1


def _param(tunable, value) -> str:
    """A parameter as a person reads it: bytes in MiB, floats to 4 digits."""
    if tunable is not None and tunable.unit == "bytes" and isinstance(value, (int, float)) and value >= 2**20:
        return f"{value / 2**20:.1f}MiB"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _database_file(url, flag: str, table: str, kind: str, *, create: bool = False) -> None:
    """Before any work: a SQLite ``url`` given by ``flag`` names a database file, not a folder nor
    an empty file (SQLite would make one a database); unless ``create``, one that exists.  One
    that exists holds ``table``: a database of another ``kind`` would get twin's tables added."""
    import sqlite3

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from .dburl import database_url, existing_database, redact

    database_url(url, flag, "runs/x/studies.db" if flag == "--storage" else "runs/x/policy.db")  # a scheme twin opens
    if not create:
        existing_database(url, flag)
    if not url.startswith("sqlite"):
        return
    try:
        path = make_url(url).database
    except ArgumentError:
        return  # malformed: the store's own check says how
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    if Path(path).is_dir():
        raise TwinError(f"{flag} {redact(url)}: {path} is a folder, expected a database file")
    if Path(path).is_file() and Path(path).stat().st_size == 0 and not create:
        raise TwinError(f"{flag} {redact(url)}: {path} is empty, not a database; twin run creates it")
    if not Path(path).is_file() or Path(path).stat().st_size == 0:
        return
    try:  # read only: looking must not change it
        with contextlib.closing(sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)) as db:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    except sqlite3.Error:
        return  # not a database at all: the store's own message says so
    if found is None:
        raise TwinError(f"{flag} {redact(url)}: {path} is not a {kind} (it has no {table} table); twin run makes one")


def _query_load(args, model) -> dict:
    """The load a ``policy query`` matches: --rate, --mix (as shares) and --burstiness."""
    load = {"requests_per_s": args.rate}
    for item in args.mix or []:
        name, _, share = item.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = math.nan
        if name not in model.classes or not math.isfinite(value) or value < 0:
            raise TwinError(f"--mix {item}: expected CLASS=SHARE with a class of {model.name} "
                            f"({', '.join(model.classes)}) and a share >= 0, e.g. {next(iter(model.classes))}=0.7")
        load[f"mix_{name}"] = value
    total = sum(v for k, v in load.items() if k.startswith("mix_"))
    if args.mix and total <= 0:
        raise TwinError("--mix: the shares add up to 0")
    load.update({k: v / total for k, v in load.items() if k.startswith("mix_")})  # shares, as profiles hold them
    if args.burstiness is not None:
        load["burstiness"] = args.burstiness
    return load


def cmd_policy(args) -> int:
    import json

    from rich.table import Table

    from .dburl import redact
    from .policy.store import PolicyStore

    console = _console()
    if args.action == "query":  # everything a query needs, before the database is opened
        if not args.model_file:
            raise TwinError("policy query: give the system model (--model-file MODEL.yaml): its tunables' domains "
                            "shape the blend")
        if args.rate is None:
            raise TwinError("policy query: give the load to match with --rate (requests per second)")
        if args.all:
            raise TwinError("policy query: --all is for show and export; a query blends the newest version of "
                            "each regime")
        _check_data_file(args.model_file, "--model-file", "a system model (YAML)")
        if args.sweep:
            _check_data_file(args.sweep, "--sweep", "an experiment config (YAML)")
            if args.out:
                _check_out_folder(args.out, "--out")
        from .spec import load_model

        model = load_model(args.model_file)
        load = _query_load(args, model)
    if args.output and args.action != "export":
        raise TwinError(f"-o {args.output}: only export writes a file; {args.action} prints")
    if args.out and not (args.action == "query" and args.sweep):
        raise TwinError(f"--out {args.out}: the run folder of a query --sweep; without --sweep nothing is written")
    if args.action == "export" and args.output:
        _check_writable(Path(args.output), "-o")
        db_file = args.db[len("sqlite:///"):].partition("?")[0] if args.db.startswith("sqlite:///") else ""
        if db_file and Path(args.output).resolve() == Path(db_file).resolve():
            raise TwinError(f"-o {args.output}: is the database --db reads; name another file")
    # only a sweep writes; the others must not create the database
    _database_file(args.db, "--db", "twin_policies", "twin policy database",
                   create=args.action == "query" and bool(args.sweep))
    with PolicyStore(args.db) as store:
        policies = store.policies(model=args.model, latest=not args.all)
        if args.action == "show":
            t = Table("model", "experiment", "regime", "version", "confidence", "requests/s", "parameters", "stored",
                      header_style="bold", title=f"policies in {_m(redact(args.db))}")
            for p in policies:
                t.add_row(_m(p.model), _m(p.experiment), _m(p.regime), str(p.version), f"{p.confidence:.2f}",
                          f"{p.load.get('requests_per_s', float('nan')):.4g}",
                          _m(", ".join(f"{k}={v}" for k, v in p.params.items())),
                          p.created_at.strftime("%Y-%m-%d %H:%M"))
            console.print(t)
            return 0
        if args.action == "export":
            doc = {"policies": [p.to_dict() for p in policies], "runs": store.runs(model=args.model)}
            text = json.dumps(doc, indent=2, default=str)
            if args.output:
                _write_atomically(Path(args.output), text)
                console.print(f"{len(policies)} policies and {len(doc['runs'])} runs written to {_m(args.output)}",
                              highlight=False)
            else:
                print(text)
            return 0
    # query
    from .policy.engine import policy_for

    d = policy_for(load, [p for p in policies if p.model == model.name], model, k=args.neighbours,
                   max_distance=args.max_distance)
    if d.params is None and args.sweep:
        from .pipeline import load_experiment, sweep_load

        exp = load_experiment(args.sweep)
        if exp.model is None or load_model(exp.model).name != model.name:
            raise TwinError(f"--sweep {args.sweep}: its model is not {model.name} (from --model-file); the policy "
                            f"it stores would not answer this query")

        print(f"{d.reason}: sweeping it with {args.sweep}", file=sys.stderr if args.json else sys.stdout)
        with _Progress(True) as bar:
            stored = sweep_load(args.sweep, load, db=args.db, out=args.out, progress=bar.update)
        if not stored["stored"]:
            raise TwinError(f"the sweep found no settings for this load: {stored['reason']}")
        with PolicyStore(args.db) as store:
            policies = store.policies(model=model.name)
        d = policy_for(load, policies, model, k=args.neighbours, max_distance=args.max_distance)
    if d.params is not None:  # every answer is run on the twin at the load asked before it is given
        from .policy.check import check_answer

        d.check = check_answer(model, load, d.params, d.constraints, replications=args.check_replications,
                               window_s=args.check_window)
    ok = d.params is not None and d.check["passed"]
    if args.json:
        print(json.dumps(d.to_dict(), indent=2, default=str))
        return 0 if ok else 1
    if d.params is None:
        console.print(f"no recommendation: {_m(d.reason)}", highlight=False, soft_wrap=True)  # one line to grep
        return 1
    console.print(f"parameters: {_m(', '.join(f'{k}={v}' for k, v in d.params.items()))}", highlight=False)
    console.print(f"confidence: {d.confidence:.2f} ({_m(d.reason)})", highlight=False, soft_wrap=True)
    for n in d.neighbours:
        console.print(f"  {_m(n['experiment'])}/{_m(n['regime'])} v{n['version']}: distance {n['distance']:.3f}, "
                      f"weight {n['weight']:.2f}, confidence {n['confidence']:.2f}", highlight=False)
    _print_check(console, d.check)
    if not ok:
        console.print(f"refused: the check on the twin failed: {_m(d.check['reason'])}", highlight=False)
        return 1
    return 0


def _print_check(console, check: dict) -> None:
    """The twin's check of a policy answer, as a person reads it."""
    c = check
    known = {s: u for s, u in c["utilisation"].items() if u is not None}
    busiest = max(known, key=known.get, default=None)
    busy = f", busiest {_m(busiest)} at {known[busiest]:.2f}" if busiest else ""
    runs = f"{c['replications']} x {c['window_s']:g} s" if c["replications"] else "no simulation needed"
    console.print(f"check on the twin at {c['rate']:.4g} req/s ({runs}): {'passed' if c['passed'] else 'FAILED'}; "
                  f"{'stable' if c['stable'] else 'not stable'} by {c['how'] or '-'}{busy}", highlight=False)
    for metric, m in c["constraints"].items():
        mean = "undefined" if m["mean"] is None else f"{m['mean']:.4g}"
        ci = f" (95% CI {m['ci_low']:.4g} to {m['ci_high']:.4g})" if m["ci_low"] is not None else ""
        console.print(f"  {_m(metric)} {mean}{ci} {'<=' if m['met'] else '>'} {m['bound']:g}: "
                      f"{'met' if m['met'] else 'missed'}", highlight=False)
    if c["passed"]:
        console.print(f"  {_m(c['reason'])}", highlight=False)


def cmd_sweep(args) -> int:
    from rich.table import Table

    from .dburl import redact
    from .sweep.study import join_or_show

    console = _console()
    _database_file(args.storage, "--storage", "studies", "study storage")  # a worker or a listing must not create it
    if args.worker:
        if not args.study:
            raise TwinError("--worker: name the study to join with --study (twin sweep --storage URL lists them)")
        with _Progress(True) as bar:
            index = args.worker_index if args.worker_index is not None else os.getpid()
            ran = join_or_show(args.storage, args.study, worker=True, worker_index=index,
                               progress=lambda d, n: bar.update(f"study {args.study}", d, n))
        console.print(f"worker done: ran {ran} trial(s) of study {_m(args.study)}", highlight=False)
        return 0
    rows = join_or_show(args.storage, args.study)
    t = Table("study", "trials (complete/pruned/running/failed)", "objectives", "best feasible", "params",
              header_style="bold", title=f"studies in {_m(redact(args.storage))}")
    for r in rows:
        states = "/".join(str(r["states"].get(k, 0)) for k in ("complete", "pruned", "running", "fail"))
        t.add_row(_m(r["study"]), states,
                  _m(", ".join(f"{d} {m}" for m, d in r["objectives"])), _m(r["best"]), _m(r["params"]))
    console.print(t)
    return 0


def cmd_loadshape(args) -> int:
    from .load.export import k6_script, locust_shape
    from .load.profile_workload import read_profile

    if not (args.k6 or args.locust):
        raise TwinError("loadshape: say what to write: --k6 FILE.js and/or --locust FILE.py")
    for path, flag in ((args.k6, "--k6"), (args.locust, "--locust")):
        if path:
            _check_writable(Path(path), flag)
    _check_input(args.profile, "PROFILE")
    profile = read_profile(args.profile)
    written = []
    if args.k6:
        _write_atomically(Path(args.k6), k6_script(profile, url=args.url, quantile=args.quantile,
                                                   source=str(args.profile)))
        written.append(f"k6 scenario {args.k6} (k6 run {args.k6})")
    if args.locust:
        _write_atomically(Path(args.locust), locust_shape(profile, pacing_s=args.pacing, host=args.url,
                                                          quantile=args.quantile, source=str(args.profile)))
        written.append(f"Locust shape {args.locust} (locust -f {args.locust})")
    print("wrote " + "; ".join(written))
    return 0


def _column_name(text):
    """An argparse type: a name for the forecast's values, as the load profile's column heads it."""
    import re

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", text):
        raise argparse.ArgumentTypeError(f"expected a name of letters, digits and _ (at most 64), such as "
                                         f"requests_per_s, got {text!r}")
    return text


def _series_arguments(p):
    p.add_argument("series", type=Path, metavar="SERIES.csv",
                   help="history: a time column and one value column (NAB, Microsoft or Prophet layout), or "
                        "a request trace with --trace-step")
    p.add_argument("--trace-step", metavar="STEP",
                   help="SERIES is a request trace (log, spans, CSV/Parquet): forecast requests/s, data volume and "
                        "concurrency per STEP (e.g. 5min), and give the profile its class mix and burstiness")
    p.add_argument("--value-column", help="which column to forecast when there are several")
    p.add_argument("--target", type=_column_name, default="requests_per_s",
                   help="what the values are (default requests_per_s)")
    p.add_argument("--counts", action="store_true",
                   help="the values are counts per step (e.g. requests per 5 minutes): forecast them as per-second "
                        "rates")
    p.add_argument("--time-zone", help="zone of timestamps written without one (e.g. UTC)")
    p.add_argument("--events", type=Path, metavar="EVENTS", help="events calendar (CSV or YAML), known in advance")
    p.add_argument("--holidays", metavar="COUNTRY", help="add a public-holiday flag for this country (e.g. US)")
    p.add_argument("--social", type=Path, metavar="FILE",
                   help="social signal, observed up to each origin: posts (timestamp,text: volume and VADER "
                        "sentiment) or a mention-count series")
    p.add_argument("--horizon", default="1d", help="how far ahead: 1d, 6h, 90min or a number of steps")
    p.add_argument("--seed", type=_seed, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin", description="Shadow twin lab: simulate, validate, tune.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="run a system model under Poisson load and report metrics with 95%% CIs",
                       description="Simulate MODEL under a Poisson stream (rate and class mix from the model's "
                                   "defaults unless given) or a replayed arrival table, and print metrics with "
                                   "95% confidence intervals.")
    p.add_argument("model", type=Path, metavar="MODEL", help="system model YAML file")
    p.add_argument("--rate", type=_positive, help="Poisson arrival rate, requests per second")
    p.add_argument("--workload", type=Path, metavar="FILE",
                   help="replay an arrival table (CSV or Parquet: time_s, class[, size_bytes, key, session]) "
                        "instead of a Poisson stream; every replication sees the same arrivals")
    p.add_argument("--duration", type=_positive, help="simulated seconds per replication")
    p.add_argument("--warmup", type=_nonneg, help="seconds discarded at the start of each replication "
                                                   "(default: the model's, at most a fifth of the duration)")
    p.add_argument("--seed", type=_seed, default=0, help="root seed (default 0)")
    p.add_argument("--replications", type=_count, help="independent replications")
    p.add_argument("--jobs", type=_count, help="processes to run replications in (default: CPUs)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override any model field, e.g. services.api.workers=8 (repeatable)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="set a tunable by name, e.g. memory_size=512MiB (repeatable)")
    p.add_argument("--spans", action="store_true", help="also record one span per visit (spans.parquet)")
    p.add_argument("--trace", type=Path, metavar="FILE",
                   help="write the first replication's spans as a production trace: Parquet (the trace "
                        "contract), or OTLP JSON for .json/.jsonl; what `twin calibrate` reads")
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

    p = sub.add_parser("calibrate", help="fit a model skeleton to production traces and check its fidelity",
                       description="Calibrate the skeleton MODEL from TRACE files (OpenTelemetry or Jaeger JSON, "
                                   "access logs, CSV/Parquet request logs), replay the held-out part of the trace "
                                   "through the calibrated twin, and write the model and an HTML report.")
    p.add_argument("traces", nargs="+", type=Path, metavar="TRACE")
    p.add_argument("--model", required=True, type=Path, metavar="SKELETON",
                   help="a model with the structure (instances, workers, caches...); service times may be left out")
    p.add_argument("-o", "--output", required=True, metavar="OUT.yaml", help="where to write the calibrated model")
    p.add_argument("--report", metavar="FILE.html", help="report path (default: OUT.calibration.html)")
    p.add_argument("--name", help="model name (default: from OUT)")
    p.add_argument("--format", default="auto",
                   choices=["auto", "otlp", "jaeger", "combined", "common", "csv", "parquet"],
                   help="trace format (default: from the file's suffix and content)")
    p.add_argument("--log-format", metavar="FMT",
                   help="access-log format string, Apache (%%h %%t \"%%r\" %%>s %%b %%D) or nginx ($request_time)")
    p.add_argument("--columns", type=_mapping, metavar="NAME=COLUMN,...",
                   help="column mapping for CSV/Parquet request logs, e.g. timestamp=ts,class=endpoint,"
                        "latency_s=duration_ms")
    p.add_argument("--service", help="service name for logs that do not name one (default: the skeleton's entry)")
    p.add_argument("--latency-unit", default="s", choices=["s", "ms", "us", "ns"])
    p.add_argument("--time-unit", choices=["s", "ms", "us", "ns"], help="unit of numeric (epoch) timestamps")
    p.add_argument("--time-zone", help="zone of timestamps written without one, e.g. UTC or Europe/Paris")
    p.add_argument("--keep-going", action="store_true", help="skip malformed lines (they are counted and reported)")
    p.add_argument("--utilisation", type=_mapping, metavar="SERVICE=FILE,...",
                   help="utilisation series (metric CSV or Prometheus JSON) to check service times by the "
                        "utilisation law")
    p.add_argument("--holdout", type=_fraction, default=0.3,
                   help="fraction of the time range held out for the fidelity check (default 0.3)")
    p.add_argument("--max-classes", type=_count, default=12, help="request classes kept; rarer ones become 'other'")
    p.add_argument("--replications", type=_count, default=5, help="replays of the held-out part (default 5)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--jobs", type=_count)
    p.add_argument("--max-ks", type=_positive, default=0.05, help="latency KS statistic limit (default 0.05)")
    p.add_argument("--max-p50-error", type=_positive, default=0.05)
    p.add_argument("--max-p95-error", type=_positive, default=0.05)
    p.add_argument("--max-p99-error", type=_positive, default=0.10)
    p.add_argument("--max-throughput-error", type=_positive, default=0.05)
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 unless the verdict is 'faithful'")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("forecast", help="forecast the load: backtest models, fit one, predict a load profile")
    fsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = fsub.add_parser("backtest", help="rolling-origin backtest of the models on a history",
                        description="Backtest forecasting models on SERIES with rolling origins and no look-ahead; "
                                    "print MASE, sMAPE, pinball loss and interval coverage, and choose a model on "
                                    "the earlier windows, scored on the later ones.")
    _series_arguments(q)
    q.add_argument("--windows", type=_count, default=8, help="rolling origins (default 8)")
    q.add_argument("--step", help="between origins: 1d, 12h or a number of steps (default: the horizon)")
    q.add_argument("--refit-every", type=_count, metavar="N",
                   help="refit a global model (lstm) every N origins (default: once, before the first)")
    q.add_argument("--models", help="comma-separated, among seasonal_naive_daily, seasonal_naive_weekly, mstl, "
                                    "lstm, ensemble (default: all)")
    q.add_argument("--out", type=Path, metavar="DIR", help="write summary.json, forecasts.parquet, report.html")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_forecast_backtest)
    for action, text in (("fit", "fit a model on the whole history and save it"),
                         ("predict", "write the load profile for the next horizon (median and quantiles)")):
        q = fsub.add_parser(action, help=text)
        _series_arguments(q)
        q.add_argument("--model", default="auto",
                       help="a model name, or auto (default): the one with the lowest MASE in a backtest")
        q.add_argument("--calibration-windows", type=_count, default=8, metavar="N",
                       help="latest backtest windows that choose the model and recalibrate its intervals "
                            "(default 8, fewer if the history is short)")
        if action == "fit":
            q.add_argument("-o", "--output", required=True, metavar="FITTED.npz",
                           help="the fitted model, saved as data (arrays and JSON; see twin.forecast.saved)")
            q.set_defaults(func=cmd_forecast_fit)
        else:
            q.add_argument("--fitted", type=Path, metavar="FITTED.npz",
                           help="use a model saved by `twin forecast fit` (and its recalibration)")
            q.add_argument("-o", "--output", metavar="PROFILE.csv|.parquet", help="write the load profile here")
            q.add_argument("--out", type=Path, metavar="DIR",
                           help="run folder: profile.parquet/.csv, profile.json (model, notes) and report.html")
            q.set_defaults(func=cmd_forecast_predict)
    p = sub.add_parser("synth", help="turn a load profile into the arrival table the twin consumes",
                       description="Generate arrivals from a load profile (twin forecast predict): a Poisson "
                                   "process with the profile's rate at a chosen quantile, classes by the profile's "
                                   "mix or the model's shares, sizes and keys from the model.")
    p.add_argument("profile", type=Path, metavar="PROFILE", help="load profile, CSV or Parquet")
    p.add_argument("--model", type=Path, required=True, metavar="MODEL", help="system model YAML file")
    p.add_argument("--quantile", type=_fraction,
                   help="drive the rate at this forecast quantile (default: the median)")
    p.add_argument("--start", type=_instant,
                   help="first step to generate (a time with its zone, e.g. 2026-03-02T08:00:00Z; default: the "
                        "profile's start)")
    p.add_argument("--end", type=_instant, help="end of the window (a time with its zone; default: the profile's end)")
    p.add_argument("--sessions-from", type=Path, metavar="TRACE",
                   help="user sessions: fit the session graph (entry class, next class, think time) from a trace "
                        "with session ids, and drive it with the profile's user_concurrency")
    p.add_argument("--bursts-from", type=Path, metavar="TRACE",
                   help="bursts: fit a Markov-modulated Poisson process to a trace's arrivals and modulate the "
                        "profile's rate by its levels (mean 1), keeping the trace's sub-minute burstiness")
    p.add_argument("--burst-states", type=int, choices=range(2, 6), default=3, metavar="{2..5}",
                   help="hidden states of the burst process (default 3)")
    p.add_argument("--columns", type=_mapping, metavar="NAME=COLUMN,...",
                   help="column mapping for a CSV/Parquet trace, e.g. timestamp=TIMESTAMP")
    p.add_argument("--time-zone", help="zone of the trace's timestamps written without one, e.g. UTC")
    p.add_argument("--scenario", type=Path, metavar="FILE",
                   help="edge cases (YAML: a list, or scenarios: [...]): flash_crowd, ramp, large_uploads, "
                        "heavy_queries act on the load; retry_storm, slow_dependency, instance_failure on the model, "
                        "written beside the workload as WORKLOAD.model.yaml")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("-o", "--output", required=True, metavar="WORKLOAD.parquet|.csv")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("run", help="run an experiment: forecast, regimes, sweeps on the twin, policy, schedule",
                       description="Run an experiment config end to end into a run folder (default runs/NAME): "
                                   "the model, a forecast, load regimes, an Optuna sweep per regime on the twin, "
                                   "the policy database, a schedule of settings and an HTML report. A rerun resumes "
                                   "from the stages already done.")
    p.add_argument("experiment", type=Path, metavar="EXPERIMENT", help="experiment config (YAML)")
    p.add_argument("--out", type=Path, metavar="DIR", help="run folder (default: runs/<experiment name>)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("verify", help="re-run a run's recommended settings on hold-out windows, SLO by SLO",
                       description="Re-run each regime's recommended setting from `twin run EXPERIMENT` on "
                                   "independent windows the sweep never saw (the regime's load and edge cases, other "
                                   "seeds), and count per constraint the windows that met it, as an SLO is judged. "
                                   "Writes verify.json to the run folder; exits 1 when a setting misses a "
                                   "constraint in more windows than --require allows.")
    p.add_argument("experiment", type=Path, metavar="EXPERIMENT", help="the experiment config `twin run` ran")
    p.add_argument("--out", type=Path, metavar="DIR", help="run folder (default: runs/<experiment name>)")
    p.add_argument("--windows", type=_count, default=8, help="hold-out windows per setting (default 8)")
    p.add_argument("--window", type=_positive, default=900.0, help="seconds per window after its warm-up "
                                                                   "(default 900: a 15-minute SLO window)")
    p.add_argument("--require", type=_fraction, default=7 / 8,
                   help="share of windows each constraint must be met in (default 0.875: 7 of 8)")
    p.add_argument("--jobs", type=_count, default=1, help="processes (default 1)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("policy", help="show, query or export the policy database",
                       description="show: the policies stored (newest version of each regime; --all for every "
                                   "version). query: the parameters the policy engine gives a load. export: "
                                   "policies and runs as JSON.")
    p.add_argument("action", choices=["show", "query", "export"])
    p.add_argument("--db", required=True, metavar="URL", help="policy database: sqlite:///RUN/policy.db or "
                                                               "postgresql://user@host:5432/db")
    p.add_argument("--model", metavar="NAME", help="only this model's policies")
    p.add_argument("--all", action="store_true", help="every version, not only the newest")
    p.add_argument("--model-file", type=Path, metavar="MODEL.yaml", help="query: the system model")
    p.add_argument("--rate", type=_nonneg, help="query: requests per second")
    p.add_argument("--mix", action="append", metavar="CLASS=SHARE", help="query: class mix (repeat the flag)")
    p.add_argument("--burstiness", type=_nonneg, help="query: index of dispersion")
    p.add_argument("--neighbours", type=_count, default=3)
    p.add_argument("--max-distance", type=_positive, default=1.0)
    p.add_argument("--sweep", type=Path, metavar="EXPERIMENT",
                   help="query: with no close neighbour, sweep this load with the experiment's model and sweep "
                        "settings, store the outcome in --db, and answer from it")
    p.add_argument("--out", type=Path, metavar="DIR", help="query --sweep: run folder (default runs/<experiment>)")
    p.add_argument("--check-replications", type=_count, default=3,
                   help="query: replications of the check of the answer on the twin at the load asked")
    p.add_argument("--check-window", type=_positive, default=120.0, metavar="SECONDS",
                   help="query: simulated seconds per replication of that check (the first 20 s, at most half, "
                        "are warm-up)")
    p.add_argument("--json", action="store_true")
    p.add_argument("-o", "--output", metavar="FILE.json", help="export: write here instead of stdout")
    p.set_defaults(func=cmd_policy)

    p = sub.add_parser("sweep", help="list the studies in a storage, or join one as a worker",
                       description="Sweeps are made by twin run; their Optuna studies live at a storage URL. "
                                   "Without --worker: list the studies there (or show one with --study). With "
                                   "--worker: join the study and run its trials until it has them all; any number "
                                   "of workers on any number of machines can join one PostgreSQL storage.")
    p.add_argument("--storage", required=True, metavar="URL",
                   help="study storage: sqlite:///RUN/studies.db or postgresql://user@host:5432/db")
    p.add_argument("--study", metavar="NAME",
                   help="the study (twin run names them EXPERIMENT.regime-N.DIGEST; the digest is of what shapes "
                        "its trials)")
    p.add_argument("--worker", action="store_true", help="run trials of the study until it is done")
    p.add_argument("--worker-index", type=_seed,
                   help="this worker's number, which seeds its sampler (default: its process id)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("loadshape", help="a k6 scenario or a Locust load shape from a load profile",
                       description="Write a k6 ramping-arrival-rate scenario and/or a Locust LoadTestShape that "
                                   "drive a real system with the profile's rate (at a chosen quantile).")
    p.add_argument("profile", type=Path, metavar="PROFILE", help="load profile, CSV or Parquet")
    p.add_argument("--k6", type=Path, metavar="FILE.js")
    p.add_argument("--locust", type=Path, metavar="FILE.py")
    p.add_argument("--quantile", type=_fraction, help="the forecast quantile to follow (default: the median)")
    p.add_argument("--url", default="http://localhost:8080/", help="what the requests hit")
    p.add_argument("--pacing", type=_positive, default=1.0,
                   help="Locust: seconds between a user's requests (users = rate x pacing; default 1)")
    p.set_defaults(func=cmd_loadshape)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TwinError as e:
        for line in str(e).splitlines():
            print(f"twin {args.command}: error: {line}", file=sys.stderr)
        return e.exit_status
    except OSError as e:  # a file the system refused (permissions, a full disk): one line, no traceback
        where = f"{e.filename}: " if e.filename else ""
        print(f"twin {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("twin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
