"""Histories: read load series, repair them (stating every repair), and say which seasons they carry.

``read_series_csv`` reads a file as it is written; ``regularize`` turns any frame of load into a
``History`` and returns, beside it, the ``Repairs`` it made: one line each, never a silent fix.

>>> import pandas as pd
>>> idx = pd.DatetimeIndex(["2026-01-01 00:00", "2026-01-01 02:00", "2026-01-01 01:00",
...                         "2026-01-01 04:00"], tz="UTC")
>>> history, repairs = regularize(pd.DataFrame({"requests_per_s": [1.0, 3.0, 2.0, 5.0]}, index=idx))
>>> history.values["requests_per_s"].tolist()
[1.0, 2.0, 3.0, 4.0, 5.0]
>>> print(repairs)
unsorted: 1 row(s) earlier than a row above them (first 2026-01-01 01:00:00 UTC): sorted by time
gaps: 1 missing step(s) of 1 h in 1 gap(s), longest 1 step(s) (1 h) from 2026-01-01 03:00:00 UTC: filled by linear interpolation
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..spec import TwinError
from ..traces.metrics import LABEL_NAMES, TIME_NAMES, read_csv_text
from ..traces.requestlog import TimestampParser
from ..traces.schema import TraceError
from .base import History

DAY, WEEK = pd.Timedelta(days=1), pd.Timedelta(days=7)
#: The seasons load usually carries; ``season_check`` checks these unless told others.
SEASONS = {"daily": DAY, "weekly": WEEK}
FILLS = ("interpolate", "seasonal")
_FILLED_BY = {"interpolate": "filled by linear interpolation",
              "seasonal": "filled with the value a day or a week before"}


class SeriesError(TwinError):
    """A load series that cannot become a history as asked; the message says where and why."""


@dataclass(frozen=True)
class Repairs:
    """What was changed to make a history: one human-readable line per repair, and counts.

    ``counts`` maps a repair (``unsorted``, ``duplicates``, ``irregular``, ``gap_steps``, ``nan``,
    ``negative``, ``trimmed``...) to how many rows or values it touched.  ``str()`` gives a line each.
    """

    lines: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return "\n".join(self.lines)

    def __bool__(self) -> bool:
        return bool(self.lines)

    def __add__(self, other: "Repairs") -> "Repairs":
        counts = dict(self.counts)
        for k, v in other.counts.items():
            counts[k] = counts.get(k, 0) + v
        return Repairs(self.lines + other.lines, counts)


def duration_text(td) -> str:
    """A duration the way people say it: '5 min', '1 h', '14 days', '9.5 days'.

    >>> duration_text(pd.Timedelta(minutes=30)), duration_text(pd.Timedelta(days=14)), duration_text("36h")
    ('30 min', '14 days', '1.5 days')
    """
    td = pd.Timedelta(td)
    if td >= DAY:
        n = td / DAY
        return f"{n:.0f} day{'s' if n != 1 else ''}" if td % DAY == pd.Timedelta(0) else f"{n:.1f} days"
    for unit, name in ((pd.Timedelta(hours=1), "h"), (pd.Timedelta(minutes=1), "min")):
        if td >= unit and td % unit == pd.Timedelta(0):
            return f"{td // unit} {name}"
    return f"{td.total_seconds():g} s"


def _at(t: pd.Timestamp) -> str:
    return f"{t.tz_convert('UTC'):%Y-%m-%d %H:%M:%S} UTC"


def positive_duration(value, what: str, error: type[Exception] | None = None) -> pd.Timedelta:
    """``value`` as a positive ``Timedelta``, or ``error`` (default ``SeriesError``) naming ``what``."""
    error = error or SeriesError
    try:
        td = pd.Timedelta(value)
    except (ValueError, TypeError):
        raise error(f"{what}={value!r} is not a duration (e.g. '5min', '1h', '1D')") from None
    if pd.isna(td) or td <= pd.Timedelta(0):
        raise error(f"{what}={value!r} must be a positive duration")
    return td


# -- reading -----------------------------------------------------------------------------------

def read_series_csv(path, *, time_column: str | None = None, value_columns: list[str] | None = None,
                    time_zone: str | None = None, target_names=None) -> pd.DataFrame:
    """Read load series from a CSV file, rows as written (``regularize`` repairs and reports).

    Formats: NAB (``timestamp,value``, UTC with no zone written: pass ``time_zone="UTC"``),
    Microsoft (``"TimeStamp","Value","Label"``, zone written; the anomaly Label is left out) and
    Prophet's examples (``ds,y``, dates: pass ``time_zone``).  ``time_column`` defaults to the first
    column named timestamp/time/ts/date/datetime/ds, else the first column; ``value_columns`` to all
    others but labels.  ``target_names`` renames value columns: a dict (``{"value":
    "requests_per_s"}``) or a list in the order of ``value_columns``.

    Why not ``twin.traces.metrics.read_metric_csv``: it already sorts and keeps the last of
    duplicated timestamps, so their count and the mean could not be reported here; its timestamp
    parser (zones, offsets, errors) is the one used.

    >>> frame = read_series_csv("nyc_taxi.csv", time_zone="UTC", target_names={"value": "passengers"})  # doctest: +SKIP
    >>> frame.index[0], list(frame.columns)  # doctest: +SKIP
    (Timestamp('2014-07-01 00:00:00+0000', tz='UTC'), ['passengers'])
    """
    path = Path(path)
    source = str(path)
    raw, columns = read_csv_text(path, SeriesError)
    if time_column is None:
        time_column = next((c for c in columns if c.strip().lower() in (*TIME_NAMES, "ds")), columns[0])
    if value_columns is None:
        value_columns = [c for c in columns if c != time_column and c.strip().lower() not in LABEL_NAMES]
    missing = [c for c in [time_column, *value_columns] if c not in columns]
    if missing:
        raise SeriesError(f"{source}: no column {', '.join(map(repr, missing))}; "
                          f"its columns are {', '.join(map(repr, columns))}")
    if not value_columns:
        raise SeriesError(f"{source}: no value columns besides {time_column!r}")
    try:
        stamps = TimestampParser(source, time_column, time_zone=time_zone)(raw[time_column], 2)
    except TraceError as exc:
        raise SeriesError(str(exc)) from None
    if stamps.isna().any():
        i = int(np.argmax(stamps.isna().to_numpy()))
        raise SeriesError(f"{source}: line {i + 2}: unreadable timestamp {raw[time_column].iloc[i]!r} "
                          f"in {time_column!r} (expected ISO 8601)")
    values = {}
    for name in value_columns:
        text = raw[name].str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        bad = text.notna() & (text != "") & numbers.isna() & (text.str.lower() != "nan")
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise SeriesError(f"{source}: line {i + 2}: {text.iloc[i]!r} in {name!r} is not a number")
        values[name] = numbers.to_numpy(dtype="float64", na_value=np.nan)
    frame = pd.DataFrame(values, index=pd.DatetimeIndex(stamps, name="timestamp"))
    return frame.rename(columns=_renames(target_names, value_columns, source))


def _renames(target_names, value_columns: list[str], source: str) -> dict[str, str]:
    if target_names is None:
        return {}
    if isinstance(target_names, str):
        target_names = [target_names]
    if isinstance(target_names, dict):
        unknown = [c for c in target_names if c not in value_columns]
        if unknown:
            raise SeriesError(f"{source}: target_names renames {', '.join(map(repr, unknown))}, not among the "
                              f"value columns {', '.join(map(repr, value_columns))}")
        return dict(target_names)
    names = list(target_names)
    if len(names) != len(value_columns):
        raise SeriesError(f"{source}: {len(names)} target name(s) for {len(value_columns)} value column(s) "
                          f"({', '.join(map(repr, value_columns))})")
    return dict(zip(value_columns, names))


# -- repairing ---------------------------------------------------------------------------------

def _checked(frame) -> pd.DataFrame:
    """The frame's numbers as float64 on a UTC index, or a ``SeriesError`` saying what is wrong."""
    if isinstance(frame, pd.Series):
        frame = frame.to_frame(frame.name if frame.name is not None else "value")
    if not isinstance(frame, pd.DataFrame):
        raise SeriesError(f"expected a DataFrame of load series, got {type(frame).__name__}")
    if not isinstance(frame.index, pd.DatetimeIndex) and "timestamp" in frame:
        frame = frame.set_index("timestamp")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise SeriesError("the series need a time index (a DatetimeIndex or a 'timestamp' column)")
    if frame.index.tz is None:
        raise SeriesError("the series' timestamps carry no time zone: localize them (index.tz_localize('UTC')) "
                          "or read the file with --time-zone")
    if frame.shape[1] == 0:
        raise SeriesError("no value columns")
    bad = [str(c) for c in frame.columns
           if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])]
    if bad:
        raise SeriesError(f"column(s) {', '.join(map(repr, bad))} hold no numbers")
    if frame.index.isna().any():
        raise SeriesError(f"{int(frame.index.isna().sum())} row(s) without a timestamp")
    out = frame.astype("float64")
    out.index = frame.index.tz_convert("UTC").as_unit("ns").rename("timestamp")
    for col in out.columns:
        inf = np.isinf(out[col].to_numpy())
        if inf.any():
            raise SeriesError(f"{col!r} is infinite at {_at(out.index[np.argmax(inf)])}")
    return out


class _Log:
    """Repairs as they are made: a line and a count each."""

    def __init__(self, *keys: str):
        self.lines: list[str] = []
        self.counts = dict.fromkeys(keys, 0)

    def add(self, key: str, n: int, line: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + n
        self.lines.append(line)

    def repairs(self) -> Repairs:
        return Repairs(tuple(self.lines), self.counts)


def _sorted(frame: pd.DataFrame, log: _Log) -> pd.DataFrame:
    ns = frame.index.asi8
    back = ns[1:] < np.maximum.accumulate(ns)[:-1]
    if not back.any():
        return frame
    log.add("unsorted", int(back.sum()), f"unsorted: {int(back.sum())} row(s) earlier than a row above them "
            f"(first {_at(frame.index[1:][back][0])}): sorted by time")
    return frame.sort_index(kind="stable")


def _negatives(frame: pd.DataFrame, clip: bool, log: _Log) -> pd.DataFrame:
    neg = frame.lt(0)
    if not neg.any().any():
        return frame
    if not clip:
        row = int(np.argmax(neg.any(axis=1).to_numpy()))
        col = next(c for c in frame.columns if neg[c].iloc[row])
        raise SeriesError(f"{col!r} is negative at {_at(frame.index[row])} ({frame[col].iloc[row]:g}): loads "
                          f"(counts and rates) cannot be; fix the source")
    for col in frame.columns[neg.any().to_numpy()]:
        n = int(neg[col].sum())
        log.add("negative", n, f"negative: {n} value(s) below 0 in {col!r} "
                f"(first {_at(frame.index[np.argmax(neg[col])])}): clipped to 0")
    return frame.clip(lower=0)


def _deduplicated(frame: pd.DataFrame, log: _Log) -> pd.DataFrame:
    dup = frame.index.duplicated(keep=False)
    if not dup.any():
        return frame
    times = frame.index[dup].unique()
    log.add("duplicates", int(dup.sum() - len(times)), f"duplicates: {len(times)} timestamp(s) written more than "
            f"once ({int(dup.sum())} rows; first {_at(times[0])}): kept the mean of each")
    return frame.groupby(level=0, sort=True).mean()


def infer_step(ns: np.ndarray) -> pd.Timedelta:
    """The most common spacing of nanosecond times (ties: the shortest)."""
    diffs, n = np.unique(np.diff(ns), return_counts=True)
    return pd.Timedelta(int(diffs[np.argmax(n)]), unit="ns")  # ties: the shortest


MAX_GRID_STEPS = 5_000_000  # about ten years of minutes


def _on_grid(frame: pd.DataFrame, step: pd.Timedelta, log: _Log) -> tuple[pd.DataFrame, np.ndarray]:
    """The frame on the grid first timestamp + k steps, and which grid steps had no row."""
    ns, step_ns = frame.index.asi8, step.value
    off = (ns - ns[0]) % step_ns != 0
    if off.any():
        log.add("irregular", int(off.sum()), f"irregular: {int(off.sum())} timestamp(s) off the "
                f"{duration_text(step)} grid from {_at(frame.index[0])} (first {_at(frame.index[off][0])}): "
                f"averaged within each {duration_text(step)} step")
        bins = ns[0] + (ns - ns[0]) // step_ns * step_ns
        frame = frame.groupby(pd.to_datetime(bins, unit="ns", utc=True)).mean()
        ns = frame.index.asi8
    steps = (int(ns[-1]) - int(ns[0])) // step_ns + 1
    if steps > MAX_GRID_STEPS:
        raise SeriesError(f"the history spans {steps} steps of {duration_text(step)} from {_at(frame.index[0])} to "
                          f"{_at(frame.index[-1])}; at most {MAX_GRID_STEPS} fit (a stray timestamp? a step too short?)")
    grid = pd.DatetimeIndex(pd.to_datetime(np.arange(ns[0], ns[-1] + 1, step_ns), unit="ns", utc=True),
                            name="timestamp")
    return frame.reindex(grid), ~grid.isin(frame.index)


def _trimmed(frame: pd.DataFrame, absent: np.ndarray, log: _Log) -> tuple[pd.DataFrame, np.ndarray]:
    """Without the steps at either end where a series has no value: nothing to fill them from."""
    valid = frame.notna().all(axis=1).to_numpy()
    if not valid.any():
        raise SeriesError("no time at which every series has a value")
    first, last = int(np.argmax(valid)), len(valid) - 1 - int(np.argmax(valid[::-1]))
    if first:
        log.add("trimmed", first, f"start: dropped {first} step(s) before {_at(frame.index[first])} "
                f"where a series has no value")
    if last < len(frame) - 1:
        log.add("trimmed", len(frame) - 1 - last, f"end: dropped {len(frame) - 1 - last} step(s) after "
                f"{_at(frame.index[last])} where a series has no value")
    return frame.iloc[first:last + 1], absent[first:last + 1]


def _runs(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of the runs of True in ``missing``."""
    edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return starts, ends - starts


def _check_gaps(col, missing: np.ndarray, index: pd.DatetimeIndex, step: pd.Timedelta, limit) -> None:
    if limit is None or not missing.any():
        return
    starts, lengths = _runs(missing)
    k = int(np.argmax(lengths))
    if lengths[k] > limit:
        raise SeriesError(f"{col!r} has a gap of {lengths[k]} steps ({duration_text(lengths[k] * step)}) from "
                          f"{_at(index[starts[k]])} to {_at(index[starts[k] + lengths[k] - 1])}, more than "
                          f"max_gap_steps={limit}: too long to fill without inventing load")


def _seasonal_fill(values: np.ndarray, missing: np.ndarray, step: pd.Timedelta) -> int:
    """Fill ``values`` in place from a day, else a week, earlier; returns how many were left."""
    lags = [p // step for p in (DAY, WEEK) if p > step and p % step == pd.Timedelta(0)]
    left = 0
    for i in np.flatnonzero(missing):
        source = next((i - lag for lag in lags if i - lag >= 0 and not np.isnan(values[i - lag])), None)
        if source is None:
            left += 1
        else:
            values[i] = values[source]
    return left


def _filled(frame: pd.DataFrame, absent: np.ndarray, step: pd.Timedelta, fill: str, limit, log: _Log) -> pd.DataFrame:
    """Missing steps and NaN values filled, each kind reported with its count and longest run."""
    how = _FILLED_BY[fill]
    values = {c: frame[c].to_numpy(copy=True) for c in frame.columns}
    for col, v in values.items():
        _check_gaps(col, np.isnan(v), frame.index, step, limit)
    if absent.any():
        starts, lengths = _runs(absent)
        k = int(np.argmax(lengths))
        log.add("gap_steps", int(absent.sum()), f"gaps: {int(absent.sum())} missing step(s) of {duration_text(step)} "
                f"in {len(starts)} gap(s), longest {lengths[k]} step(s) ({duration_text(lengths[k] * step)}) from "
                f"{_at(frame.index[starts[k]])}: {how}")
    for col, v in values.items():
        nan = np.isnan(v) & ~absent
        if nan.any():
            starts, lengths = _runs(nan)
            k = int(np.argmax(lengths))
            log.add("nan", int(nan.sum()), f"NaN: {int(nan.sum())} missing value(s) in {col!r} in {len(starts)} "
                    f"run(s), longest {lengths[k]} step(s) from {_at(frame.index[starts[k]])}: {how}")
    left = 0
    for col, v in values.items():
        if np.isnan(v).any():
            if fill == "seasonal":
                left += _seasonal_fill(v, np.isnan(v), step)
            values[col] = pd.Series(v).interpolate(method="linear", limit_area="inside").to_numpy()
    if left:
        log.add("seasonal_fallback", left, f"seasonal: {left} missing value(s) had no value a day or a week "
                f"before: filled by linear interpolation")
    return pd.DataFrame(values, index=frame.index)


def regularize(frame, *, step=None, fill: str = "interpolate", max_gap_steps: int | None = None,
               clip_negative: bool = False) -> tuple[History, Repairs]:
    """A ``History`` from load series at (nearly) regular times, and the ``Repairs`` that made it.

    In order: rows out of time order are sorted; negative values are an error (``clip_negative``
    clips them to 0); duplicated timestamps keep the mean of their rows; ``step`` defaults to the
    most common spacing; timestamps off the grid (first timestamp + k steps) are averaged within
    each step; steps with no value at the start or the end are dropped; missing steps (gaps) and
    NaN values are filled by linear interpolation, or with ``fill="seasonal"`` by the value a day
    (else a week) before where there is one.  A run of more than ``max_gap_steps`` missing steps
    is an error.  Values are levels or rates (per second), so resampling averages them.
    """
    if fill not in FILLS:
        raise SeriesError(f"fill={fill!r}: expected one of {', '.join(FILLS)}")
    if max_gap_steps is not None and (not isinstance(max_gap_steps, (int, np.integer)) or max_gap_steps < 0):
        raise SeriesError(f"max_gap_steps={max_gap_steps!r} must be a whole number of steps, 0 or more")
    log = _Log("unsorted", "negative", "duplicates", "irregular", "trimmed", "gap_steps", "nan", "seasonal_fallback")
    frame = _negatives(_sorted(_checked(frame), log), clip_negative, log)
    frame = _deduplicated(frame, log)
    if len(frame) < 2:
        raise SeriesError("a history needs at least two distinct timestamps")
    step = infer_step(frame.index.asi8) if step is None else positive_duration(step, "step")
    frame, absent = _trimmed(*_on_grid(frame, step, log), log)
    if len(frame) < 2:
        raise SeriesError("a history needs at least two steps with a value in every series")
    return History(_filled(frame, absent, step, fill, max_gap_steps, log)), log.repairs()


# -- from a request trace ----------------------------------------------------------------------

def history_from_trace(trace: pd.DataFrame, *, step) -> tuple[History, Repairs]:
    """Load series from a request trace (``twin.traces.schema``), one row per step of ``step``.

    ``requests_per_s``: requests starting in the step, per second; ``data_volume_bytes_per_s``:
    their ``bytes_in + bytes_out`` per second (an unknown size counts as 0, and is reported;
    left out when no request has one); ``user_concurrency``: distinct sessions with a request in
    the step (left out when the trace has no session ids).  Steps are aligned to the clock
    (multiples of ``step`` since 1970) and steps without requests are zero load, not gaps.

    >>> t = pd.DataFrame({"timestamp": pd.to_datetime([0, 10, 70, 130], unit="s", utc=True),
    ...                   "bytes_in": [100.0, 50.0, None, 10.0], "bytes_out": 0.0,
    ...                   "session": ["a", "b", "a", "a"]})
    >>> history, repairs = history_from_trace(t, step="1min")
    >>> history.values.to_dict("list")["user_concurrency"]
    [2.0, 1.0, 1.0]
    >>> print(repairs)
    bytes: 1 of 4 request(s) with an unknown bytes_in or bytes_out: counted as 0 bytes
    """
    step = positive_duration(step, "step")
    if not isinstance(trace, pd.DataFrame) or "timestamp" not in trace:
        raise SeriesError("a request trace needs a 'timestamp' column (see twin.traces.schema)")
    ts = trace["timestamp"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise SeriesError("the trace's timestamps are not time-zone-aware instants (twin.traces readers give UTC)")
    if ts.isna().any() or ts.empty:
        raise SeriesError("the trace is empty or has requests without a timestamp")
    bins = pd.DatetimeIndex(ts.dt.tz_convert("UTC").dt.floor(step))
    grid = pd.date_range(bins.min(), bins.max(), freq=step, name="timestamp")
    if len(grid) < 2:
        raise SeriesError(f"the trace spans less than two steps of {duration_text(step)}")
    seconds = step.total_seconds()
    lines, counts = [], {"bytes_unknown": 0, "sessions_unknown": 0}
    out = {"requests_per_s": bins.value_counts().reindex(grid, fill_value=0).to_numpy(float) / seconds}
    # a size column the trace does not have at all (or has only empty) is not counted; a missing
    # value in a column it has is an unknown size
    sizes = pd.DataFrame({c: pd.to_numeric(trace[c], errors="coerce") for c in ("bytes_in", "bytes_out")
                          if c in trace and trace[c].notna().any()}, index=trace.index)
    unknown = sizes.isna().any(axis=1) if sizes.shape[1] else pd.Series(True, index=trace.index)
    if unknown.all():
        lines.append("bytes: no request has bytes_in or bytes_out: data_volume_bytes_per_s left out")
    else:
        if unknown.any():
            counts["bytes_unknown"] = int(unknown.sum())
            lines.append(f"bytes: {counts['bytes_unknown']} of {len(trace)} request(s) with an unknown bytes_in or "
                         f"bytes_out: counted as 0 bytes")
        volume = sizes.fillna(0).sum(axis=1).set_axis(bins).groupby(level=0).sum()
        out["data_volume_bytes_per_s"] = volume.reindex(grid, fill_value=0).to_numpy(float) / seconds
    session = trace["session"] if "session" in trace else pd.Series(pd.NA, index=trace.index)
    if session.isna().all():
        lines.append("sessions: the trace has no session ids: user_concurrency left out")
    else:
        if session.isna().any():
            counts["sessions_unknown"] = int(session.isna().sum())
            lines.append(f"sessions: {counts['sessions_unknown']} of {len(trace)} request(s) without a session id: "
                         f"not counted in user_concurrency")
        active = pd.Series(session.to_numpy(), index=bins).dropna()
        users = active.groupby(level=0).nunique()
        out["user_concurrency"] = users.reindex(grid, fill_value=0).to_numpy(float)
    return History(pd.DataFrame(out, index=grid)), Repairs(tuple(lines), counts)


# -- what the history can tell ---------------------------------------------------------------

def season_check(history: History, seasons: dict | None = None) -> list[str]:
    """One line per season the history cannot carry: shorter than two cycles, or a season no
    longer than two steps.  Models leave those seasonal terms out (issue: data needs stated).

    >>> idx = pd.date_range("2026-01-01", periods=9 * 24, freq="h", tz="UTC")
    >>> season_check(History(pd.DataFrame({"requests_per_s": 1.0}, index=idx)))
    ['history covers 9 days: the weekly season needs at least 14 days; weekly terms are left out']
    """
    covers = len(history) * history.step
    notes = []
    for name, period in (SEASONS if seasons is None else seasons).items():
        period = positive_duration(period, f"season {name!r}")
        if period < 2 * history.step:
            notes.append(f"the {name} season ({duration_text(period)}) spans less than two steps of "
                         f"{duration_text(history.step)}; {name} terms are left out")
        elif covers < 2 * period:
            notes.append(f"history covers {duration_text(covers)}: the {name} season needs at least "
                         f"{duration_text(2 * period)}; {name} terms are left out")
    return notes
