"""Covariates: what besides its own past tells the load.  Calendar and scheduled events are known
in advance; social signals (mention volume, sentiment) are only observed up to the forecast origin.

A time step ``t`` of an index stands for the interval ``[t, t + step)``: an event counts at every
step it overlaps, a post in the step it falls in.

>>> import pandas as pd
>>> idx = pd.date_range("2014-11-26", periods=3, freq="D", tz="UTC")
>>> events = pd.DataFrame({"type": ["holiday"], "start": [pd.Timestamp("2014-11-27", tz="UTC")],
...                        "end": [pd.Timestamp("2014-11-28", tz="UTC")]})
>>> cov = build_covariates(idx, events=events, holidays_country="US")
>>> cov.frame[["weekend", "holiday", "event_holiday"]].to_dict("list")
{'weekend': [0.0, 0.0, 0.0], 'holiday': [0.0, 1.0, 0.0], 'event_holiday': [0.0, 1.0, 0.0]}
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..spec import TwinError
from ..spec.safeyaml import parse_yaml
from ..traces.metrics import TIME_NAMES
from ..traces.requestlog import TimestampParser, check_zone
from ..traces.schema import TraceError
from .base import Covariates
from .series import Repairs, infer_step, positive_duration

PERIODS = {"daily": pd.Timedelta(days=1), "weekly": pd.Timedelta(days=7), "yearly": pd.Timedelta(days=365.2425)}
#: Fourier orders by default; yearly terms (order 2) join when the index spans a year.
FOURIER = {"daily": 3, "weekly": 2}
YEARLY_ORDER = 2
EVENT_TYPES = ("campaign", "launch", "holiday", "release", "sport", "weather", "outage", "other")
EVENT_FIELDS = ("type", "start", "end", "intensity", "name")
_MONDAY = pd.Timestamp("2000-01-03")  # weekly phase 0: a Monday's midnight


class CovariateError(TwinError):
    """A calendar, events or posts input that cannot be used as asked; the message says where."""


def _index(index) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex) or len(index) == 0:
        raise CovariateError("covariates need a non-empty DatetimeIndex")
    if index.tz is None:
        raise CovariateError("the covariates' index carries no time zone (use UTC instants)")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise CovariateError("the covariates' index must be strictly increasing")
    return index.tz_convert("UTC")


def _step(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The most common spacing of the index; zero for a single instant."""
    return infer_step(index.asi8) if len(index) >= 2 else pd.Timedelta(0)


def _duration(value, what: str) -> pd.Timedelta:
    return positive_duration(value, what, CovariateError)


def _overlap(index: pd.DatetimeIndex, step: pd.Timedelta, start, end) -> slice:
    """The steps ``[t, t + step)`` of ``index`` that overlap ``[start, end)``."""
    lo = index.searchsorted(start - step, side="right") if step > pd.Timedelta(0) else index.searchsorted(start)
    return slice(lo, index.searchsorted(end, side="left"))


# -- calendar ----------------------------------------------------------------------------------

def calendar_features(index, *, fourier: dict | None = None, holidays_country: str | None = None,
                      time_zone: str = "UTC") -> pd.DataFrame:
    """Known-in-advance calendar columns: Fourier terms, a weekend flag and a holiday flag.

    ``<season>_sin<k>``/``<season>_cos<k>`` for the orders in ``fourier`` (default: daily 3,
    weekly 2, and yearly 2 when the index spans a year: build the features once on the whole
    index, history and horizon, so that both get the same columns); seasons no longer than two
    steps are left out (their terms would be constant).  ``weekend`` and ``holiday`` (a public
    holiday of ``holidays_country``, e.g. "US", from the ``holidays`` package) are 0/1 on the
    local dates of ``time_zone``, which also sets the clock of the phases.

    >>> idx = pd.date_range("2026-01-01", periods=4, freq="6h", tz="UTC")
    >>> calendar_features(idx, fourier={"daily": 1})["daily_sin1"].round(6).tolist()
    [0.0, 1.0, 0.0, -1.0]
    """
    index = _index(index)
    try:
        zone = check_zone(time_zone, "calendar")
    except TraceError as exc:
        raise CovariateError(str(exc)) from None
    step = _step(index)
    orders = dict(FOURIER) if fourier is None else dict(fourier)
    if fourier is None and index[-1] - index[0] + step >= pd.Timedelta(days=365):
        orders["yearly"] = YEARLY_ORDER
    unknown = [s for s in orders if s not in PERIODS]
    if unknown:
        raise CovariateError(f"fourier: unknown season(s) {', '.join(map(repr, unknown))}; "
                             f"known ones are {', '.join(PERIODS)}")
    local = index.tz_convert(zone).tz_localize(None)
    elapsed_s = (local.asi8 - _MONDAY.value) / 1e9
    out = {}
    for name, order in orders.items():
        if not isinstance(order, (int, np.integer)) or order < 0:
            raise CovariateError(f"fourier[{name!r}]={order!r} must be a whole number, 0 or more")
        period = PERIODS[name]
        if period < 2 * step:
            continue
        phase = 2 * np.pi * elapsed_s / period.total_seconds()
        for k in range(1, order + 1):
            out[f"{name}_sin{k}"] = np.sin(k * phase)
            out[f"{name}_cos{k}"] = np.cos(k * phase)
    out["weekend"] = (local.dayofweek >= 5).astype("float64")
    if holidays_country is not None:
        out["holiday"] = _holidays(local, holidays_country)
    return pd.DataFrame(out, index=index)


def _holidays(local: pd.DatetimeIndex, country: str) -> np.ndarray:
    import holidays

    try:
        days = holidays.country_holidays(str(country), years=range(local.year.min(), local.year.max() + 1))
    except NotImplementedError:
        raise CovariateError(f"--holidays {country} (history.holidays in an experiment): not a country the "
                             f"holidays package knows "
                             f"(use an ISO 3166 code such as 'US', 'GB' or 'FR')") from None
    return pd.Index(local.date).isin(list(days.keys())).astype("float64")


# -- events ------------------------------------------------------------------------------------

def read_events(path, *, time_zone: str | None = None) -> pd.DataFrame:
    """An events calendar from CSV (columns) or YAML (a list of events, or ``events:`` and an
    optional ``time_zone:``): type, start, end, and optional intensity (default 1) and name.

    Types are campaign, launch, holiday, release, sport, weather, outage, other.  ``end`` is the
    first instant after the event: a one-day holiday on 2014-11-27 ends 2014-11-28.  Times with an
    offset are kept exact; times without one (bare dates too) are read in ``time_zone`` (the
    argument or the file's).  Events of one type may overlap.  Returns one row per event, sorted
    by start, with UTC times.

    >>> events = read_events("events.yaml")  # doctest: +SKIP
    >>> list(events.columns)  # doctest: +SKIP
    ['type', 'start', 'end', 'intensity', 'name']
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise CovariateError(f"{source}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows, zone = _csv_events(path, source), None
        places = [f"line {i + 2}" for i in range(len(rows))]
    elif suffix in (".yaml", ".yml"):
        rows, zone = _yaml_events(path, source)
        places = [f"event {i + 1}" + (f" ({r['name']!r})" if r.get("name") else "") for i, r in enumerate(rows)]
    else:
        raise CovariateError(f"{source}: an events file is .csv, .yaml or .yml")
    if zone is not None and time_zone is not None and str(zone) != str(time_zone):
        raise CovariateError(f"{source}: the file says time_zone {zone!r}, the argument {time_zone!r}")
    try:
        zone = check_zone(time_zone if time_zone is not None else zone, source)
    except TraceError as exc:
        raise CovariateError(str(exc)) from None
    events = [_event(row, f"{source}: {place}", zone) for row, place in zip(rows, places)]
    frame = pd.DataFrame(events, columns=list(EVENT_FIELDS))
    frame["start"] = pd.to_datetime(frame["start"], utc=True).astype("datetime64[ns, UTC]")
    frame["end"] = pd.to_datetime(frame["end"], utc=True).astype("datetime64[ns, UTC]")
    frame["intensity"] = frame["intensity"].astype("float64")
    return frame.sort_values("start", kind="stable", ignore_index=True)


def _csv_events(path: Path, source: str) -> list[dict]:
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise CovariateError(f"{source}: empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise CovariateError(f"{source}: not a readable CSV file ({exc})") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    _fields(set(raw.columns), source)
    return raw.to_dict("records")


def _yaml_events(path: Path, source: str) -> tuple[list[dict], str | None]:
    try:
        doc, _ = parse_yaml(path.read_text(encoding="utf-8"), source, plain_times=True)  # times stay text
    except UnicodeDecodeError as exc:
        raise CovariateError(f"{source}: cannot read as UTF-8 text ({exc})") from None
    except TwinError as exc:  # bad YAML, or too big, deep or alias-heavy to read safely
        raise CovariateError(str(exc)) from None
    zone = None
    if isinstance(doc, dict):
        extra = set(doc) - {"events", "time_zone"}
        if extra or "events" not in doc:
            raise CovariateError(f"{source}: expected a list of events, or the keys 'events' and 'time_zone'"
                                 + (f" (not {', '.join(map(repr, sorted(map(str, extra))))})" if extra else ""))
        doc, zone = doc["events"] or [], doc.get("time_zone")
    if doc is None:
        raise CovariateError(f"{source}: empty file")
    if not isinstance(doc, list):
        raise CovariateError(f"{source}: expected a list of events, got {type(doc).__name__}")
    for i, row in enumerate(doc):
        if not isinstance(row, dict):
            raise CovariateError(f"{source}: event {i + 1} is not a mapping of type, start, end...")
        _fields({str(k) for k in row}, f"{source}: event {i + 1}")
    return [{str(k): v for k, v in row.items()} for row in doc], zone


def _fields(names: set[str], where: str) -> None:
    unknown = sorted(names - set(EVENT_FIELDS))
    missing = [f for f in EVENT_FIELDS[:3] if f not in names]
    if unknown or missing:
        what = [f"unknown field(s) {', '.join(map(repr, unknown))}"] if unknown else []
        what += [f"no {', '.join(map(repr, missing))}"] if missing else []
        raise CovariateError(f"{where}: {'; '.join(what)}; an event has type, start, end and optionally "
                             f"intensity and name")


def _event(row: dict, where: str, zone: str | None) -> dict:
    kind = str(row.get("type") or "").strip().lower()
    if kind not in EVENT_TYPES:
        raise CovariateError(f"{where}: unknown event type {row.get('type')!r}; the types are "
                             f"{', '.join(EVENT_TYPES)}")
    start, end = _instant(row.get("start"), "start", where, zone), _instant(row.get("end"), "end", where, zone)
    if end <= start:
        verb = "when" if end == start else "before"
        raise CovariateError(f"{where}: the event ends ({end}) {verb} it starts ({start}); end is the first "
                             f"instant after it (a one-day event on 2014-11-27 ends 2014-11-28)")
    intensity = row.get("intensity")
    if intensity is None or str(intensity).strip() == "":
        intensity = 1.0
    try:
        intensity = float(intensity)
    except (TypeError, ValueError):
        raise CovariateError(f"{where}: intensity {intensity!r} is not a number") from None
    if not math.isfinite(intensity) or intensity <= 0:
        raise CovariateError(f"{where}: intensity {intensity!r} must be a positive number")
    name = str(row.get("name") or "").strip() or kind
    return {"type": kind, "start": start, "end": end, "intensity": intensity, "name": name}


def _instant(value, what: str, where: str, zone: str | None) -> pd.Timestamp:
    text = "" if value is None else str(value).strip()
    try:
        t = pd.Timestamp(text).as_unit("ns") if text else pd.NaT
    except pd.errors.OutOfBoundsDatetime:
        raise CovariateError(f"{where}: {what} {text!r} is outside the years 1678-2261") from None
    except (ValueError, TypeError):
        t = pd.NaT
    if t is pd.NaT:
        raise CovariateError(f"{where}: {what} {text!r} is not a time (ISO 8601: 2014-11-27 or "
                             f"2014-11-27T09:00:00-05:00)")
    if t.tz is not None:
        return t.tz_convert("UTC")
    if zone is None:
        raise CovariateError(f"{where}: {what} {text!r} carries no time zone; write an offset "
                             f"(2014-11-27T00:00:00-05:00), or a time_zone key in a YAML events file")
    local = t.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    if local is pd.NaT:
        raise CovariateError(f"{where}: {what} {text!r} is skipped or repeated in {zone} (a daylight-saving "
                             f"change): write it with an offset")
    return local.tz_convert("UTC")


def _windows(value, what: str) -> dict[str, pd.Timedelta]:
    if value is None:
        return {}
    if isinstance(value, dict):
        unknown = [k for k in value if k not in EVENT_TYPES]
        if unknown:
            raise CovariateError(f"{what}: unknown event type(s) {', '.join(map(repr, unknown))}; the types are "
                                 f"{', '.join(EVENT_TYPES)}")
        return {k: _duration(v, f"{what}[{k!r}]") for k, v in value.items()}
    td = _duration(value, what)
    return dict.fromkeys(EVENT_TYPES, td)


def event_features(events: pd.DataFrame, index, *, lead=None, lag=None) -> pd.DataFrame:
    """Known-in-advance event columns: ``event_<type>`` for each type in ``events``, the summed
    intensity of that type's events at each step they overlap, 0 elsewhere.

    ``lead``/``lag`` (a duration, or one per type: ``{"launch": "2h"}``) add ``event_<type>_lead``
    over the ``lead`` before each start and ``event_<type>_lag`` over the ``lag`` after each end.

    >>> idx = pd.date_range("2026-03-01 08:00", periods=6, freq="h", tz="UTC")
    >>> launch = pd.DataFrame({"type": ["launch"], "start": [pd.Timestamp("2026-03-01 11:00", tz="UTC")],
    ...                        "end": [pd.Timestamp("2026-03-01 12:00", tz="UTC")], "intensity": [2.0]})
    >>> event_features(launch, idx, lead={"launch": "2h"}).to_dict("list")
    {'event_launch': [0.0, 0.0, 0.0, 2.0, 0.0, 0.0], 'event_launch_lead': [0.0, 2.0, 2.0, 0.0, 0.0, 0.0]}
    """
    index = _index(index)
    if not isinstance(events, pd.DataFrame) or any(c not in events for c in EVENT_FIELDS[:3]):
        raise CovariateError("events need the columns type, start and end (read them with read_events)")
    unknown = sorted(set(events["type"]) - set(EVENT_TYPES))
    if unknown:
        raise CovariateError(f"unknown event type(s) {', '.join(map(repr, unknown))}; the types are "
                             f"{', '.join(EVENT_TYPES)}")
    starts, ends = pd.DatetimeIndex(events["start"]), pd.DatetimeIndex(events["end"])
    if len(events) and (starts.tz is None or ends.tz is None):
        raise CovariateError("event times carry no time zone (read_events gives UTC instants)")
    if (ends <= starts).any():
        raise CovariateError(f"event {int(np.argmax(ends <= starts)) + 1} ends before it starts")
    intensity = events["intensity"].to_numpy(float) if "intensity" in events else np.ones(len(events))
    leads, lags = _windows(lead, "lead"), _windows(lag, "lag")
    step = _step(index)
    out = {}
    for kind in (k for k in EVENT_TYPES if k in set(events["type"])):
        rows = np.flatnonzero((events["type"] == kind).to_numpy())
        windows = {"": (starts, ends)}
        if kind in leads:
            windows["_lead"] = (starts - leads[kind], starts)
        if kind in lags:
            windows["_lag"] = (ends, ends + lags[kind])
        for suffix, (begin, finish) in windows.items():
            values = np.zeros(len(index))
            for i in rows:
                values[_overlap(index, step, begin[i], finish[i])] += intensity[i]
            out[f"event_{kind}{suffix}"] = values
    return pd.DataFrame(out, index=index)


# -- social signals ----------------------------------------------------------------------------

def sentiment_scores(texts) -> np.ndarray:
    """VADER's compound sentiment of each text, from -1 (negative) to 1 (positive).

    >>> sentiment_scores(["I love this, great service!", "Terrible outage, worst app ever"]).round(2).tolist()
    [0.89, -0.8]
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return np.array([analyzer.polarity_scores(str(t))["compound"] for t in texts], dtype="float64")


def read_posts(path, *, time_zone: str | None = None, drop_empty: bool = False) -> tuple[pd.DataFrame, Repairs]:
    """Posts (timestamp, text) from a CSV file, sorted by time, and what was dropped.

    The time column is the first named timestamp/time/ts/date/datetime; times without an offset
    need ``time_zone``.  Posts with empty text are an error, or with ``drop_empty`` dropped and
    reported.  Texts may span lines (quoted); line numbers are those of the file.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise CovariateError(f"{source}: no such file")
    stamps, texts, lines = [], [], []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip().lower() for h in next(reader, [])]
            if not header:
                raise CovariateError(f"{source}: empty file")
            t_col = next((i for i, h in enumerate(header) if h in TIME_NAMES), None)
            if t_col is None or "text" not in header:
                raise CovariateError(f"{source}: a posts file has a timestamp and a text column; its columns "
                                     f"are {', '.join(map(repr, header))}")
            x_col, line = header.index("text"), reader.line_num + 1
            for row in reader:
                if row and len(row) != len(header):
                    raise CovariateError(f"{source}: line {line}: {len(row)} field(s), the header has {len(header)}")
                if row:
                    stamps.append(row[t_col])
                    texts.append(row[x_col])
                    lines.append(line)
                line = reader.line_num + 1
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CovariateError(f"{source}: not a readable CSV file ({exc})") from None
    if not stamps:
        raise CovariateError(f"{source}: no posts under the header")
    try:
        parsed = TimestampParser(source, header[t_col], time_zone=time_zone, place="post")(
            pd.Series(stamps, dtype="string"), 1)
    except TraceError as exc:
        raise CovariateError(str(exc)) from None
    if parsed.isna().any():
        i = int(np.argmax(parsed.isna().to_numpy()))
        raise CovariateError(f"{source}: line {lines[i]}: unreadable timestamp {stamps[i]!r} (expected ISO 8601)")
    empty = np.array([not t.strip() for t in texts])
    repairs = Repairs((), {"empty": 0})
    if empty.any():
        n, first = int(empty.sum()), lines[int(np.argmax(empty))]
        if not drop_empty:
            raise CovariateError(f"{source}: {n} post(s) with empty text (first at line {first}); "
                                 f"drop them with drop_empty=True")
        repairs = Repairs((f"empty: dropped {n} post(s) with empty text (first at line {first})",), {"empty": n})
    posts = pd.DataFrame({"timestamp": parsed, "text": pd.Series(texts, dtype="string")})[~empty]
    return posts.sort_values("timestamp", kind="stable", ignore_index=True), repairs


def _bins(times: pd.DatetimeIndex, index: pd.DatetimeIndex, step: pd.Timedelta) -> tuple[np.ndarray, np.ndarray]:
    """For each time, the position of its step ``[t, t + step)`` in ``index``, and whether it has one."""
    pos = index.searchsorted(times, side="right") - 1
    inside = pos >= 0
    inside[inside] = times[inside] < index[pos[inside]] + step
    return pos, inside


def social_features(posts: pd.DataFrame, index, *, step=None) -> pd.DataFrame:
    """Observed social columns: ``social_mentions`` (posts in each step ``[t, t + step)``) and
    ``social_sentiment`` (their mean VADER compound; 0 where there are none).  ``step`` defaults
    to the index's; posts outside every step are not counted.
    """
    index = _index(index)
    step = _step(index) if step is None else _duration(step, "step")
    if step <= pd.Timedelta(0):
        raise CovariateError("a single-instant index needs step")
    if not isinstance(posts, pd.DataFrame) or "timestamp" not in posts or "text" not in posts:
        raise CovariateError("posts need the columns timestamp and text (read them with read_posts)")
    times = pd.DatetimeIndex(posts["timestamp"])
    if len(times) and times.tz is None:
        raise CovariateError("post times carry no time zone (read_posts gives UTC instants)")
    pos, inside = _bins(times, index, step)
    scores = sentiment_scores(posts["text"].to_numpy()[inside])
    mentions = np.bincount(pos[inside], minlength=len(index)).astype("float64")
    total = np.bincount(pos[inside], weights=scores, minlength=len(index))
    sentiment = np.divide(total, mentions, out=np.zeros(len(index)), where=mentions > 0)
    return pd.DataFrame({"social_mentions": mentions, "social_sentiment": sentiment}, index=index)


def social_from_series(frame, index, *, column: str | None = None) -> pd.DataFrame:
    """``social_mentions`` from a series of mention counts (e.g. NAB's Twitter_volume_AAPL.csv read
    with ``read_series_csv``): the counts summed within each step of ``index``; NaN at steps the
    series does not reach (unknown, not zero).
    """
    index = _index(index)
    if isinstance(frame, pd.DataFrame):
        if column is None and frame.shape[1] != 1:
            raise CovariateError(f"the mention series has columns {', '.join(map(repr, map(str, frame.columns)))}: "
                                 f"say which with column")
        if column is not None and column not in frame:
            raise CovariateError(f"no column {column!r} in the mention series")
        frame = frame[column] if column is not None else frame.iloc[:, 0]
    if not isinstance(frame, pd.Series) or not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise CovariateError("a mention series needs a time-zone-aware DatetimeIndex")
    if len(frame) == 0:
        raise CovariateError("the mention series is empty")
    series = frame.sort_index()
    values = pd.to_numeric(series, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        raise CovariateError(f"the mention series has a missing, negative or infinite count at "
                             f"{series.index[np.argmax(bad)]}")
    step = _step(index)
    if step <= pd.Timedelta(0):
        raise CovariateError("the index needs at least two steps")
    times = series.index.tz_convert("UTC")
    pos, inside = _bins(times, index, step)
    mentions = np.bincount(pos[inside], weights=values[inside], minlength=len(index))
    spacing = _step(times)
    reach_end = times[-1] + (spacing if spacing > pd.Timedelta(0) else step)
    mentions[(index + step <= times[0]) | (index >= reach_end)] = np.nan
    return pd.DataFrame({"social_mentions": mentions}, index=index)


# -- all together ------------------------------------------------------------------------------

def build_covariates(index, *, calendar: bool = True, events=None, social=None,
                     holidays_country: str | None = None, time_zone: str | None = None,
                     lead=None, lag=None) -> Covariates:
    """Calendar and events (known) and social signals (observed) on ``index``, which may run past
    the history into the horizon.  ``events``: a frame from ``read_events`` or a file to read;
    ``social``: posts (a frame with text, from ``read_posts``) or a mention-count series.
    ``time_zone`` is the local clock of the calendar (UTC unless given) and of event times
    written without an offset (which are an error without one).
    """
    index = _index(index)
    parts, known, observed = [], [], []
    if calendar:
        parts.append(calendar_features(index, holidays_country=holidays_country, time_zone=time_zone or "UTC"))
        known += list(parts[-1].columns)
    elif holidays_country is not None:
        raise CovariateError("holidays_country needs calendar=True")
    if events is not None:
        if isinstance(events, (str, Path)):
            events = read_events(events, time_zone=time_zone)
        parts.append(event_features(events, index, lead=lead, lag=lag))
        known += list(parts[-1].columns)
    if social is not None:
        if isinstance(social, pd.DataFrame) and "text" in social:
            parts.append(social_features(social, index))
        else:
            parts.append(social_from_series(social, index))
        observed += list(parts[-1].columns)
    frame = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=index)
    return Covariates(frame, known=tuple(known), observed=tuple(observed))
