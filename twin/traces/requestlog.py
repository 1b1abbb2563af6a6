"""Request logs as CSV or Parquet, one row per request, mapped onto the trace contract.

The file's columns are mapped onto the contract's names; timestamps become exact UTC instants.
Files are read in chunks (CSV) or record batches (Parquet, mapped columns only), and each chunk
is brought to the contract's compact dtypes before the next one is read, so a large trace costs
about what its frame costs, not what its text costs.

>>> frame, report = read_request_log("requests.parquet", columns={"timestamp": "ts",
...     "class": "endpoint", "latency_s": "duration_ms"}, latency_unit="ms")  # doctest: +SKIP

This module also owns the timestamp and chunk helpers the other readers share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from .schema import COLUMNS, ReadReport, TraceError, conform, missing

UNIT_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
REQUIRED = ("timestamp",)  # a log without class or latency still tells arrivals, mix and sizes
KEEP_GOING_HINT = "(use --keep-going to skip them)"

# An offset written after a time of day: Z, +01:00, +0100, +01, or a UTC/GMT suffix.
_ZONE_RX = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)\s*$"


def check_zone(time_zone: str | None, source: str) -> str | None:
    """``time_zone`` if it names a zone (IANA name or 'UTC'), else a ``TraceError``."""
    if time_zone is None:
        return None
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(str(time_zone))
    except (ValueError, KeyError, OSError):
        raise TraceError(f"{source}: unknown time zone {time_zone!r} (use an IANA name such as "
                         f"'UTC' or 'Europe/Paris')") from None
    return str(time_zone)


def check_unit(unit: str | None, what: str, source: str) -> str | None:
    if unit is not None and unit not in UNIT_S:
        raise TraceError(f"{source}: {what} {unit!r} is not one of {', '.join(UNIT_S)}")
    return unit


def _offset(zone: str) -> str:
    """A written offset in one spelling: '+01:00'."""
    if zone.upper() in ("Z", "UTC", "GMT"):
        return "+00:00"
    digits = zone[1:].replace(":", "")
    return f"{zone[0]}{digits[:2]}:{(digits[2:] or '00')}"


class TimestampParser:
    """Turns a timestamp column, chunk by chunk, into exact UTC instants (NaT where unreadable).

    ``first`` is the number of the chunk's first row as the user sees it (a file line or a row),
    ``place`` the word for it.  A column mixing written offsets is refused: the first offset seen
    is remembered across chunks.
    """

    def __init__(self, source: str, column: str, *, time_unit=None, time_zone=None, place="line"):
        self.source, self.column, self.place = source, column, place
        self.time_unit = check_unit(time_unit, "--time-unit", source)
        self.time_zone = check_zone(time_zone, source)
        self.first_zone: tuple[str, str] | None = None  # (offset or 'none', where)
        self.early = False  # an instant before 2000: probably the wrong time_unit

    def __call__(self, values: pd.Series, first: int) -> pd.Series:
        values = values.reset_index(drop=True)
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            out = values.dt.tz_convert("UTC")
        elif pd.api.types.is_datetime64_dtype(values.dtype):
            out = self.localize(values, first)
        elif pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
            out = self._epoch(values, first)
        else:
            text = values.astype("string[pyarrow]")
            numbers = pd.to_numeric(text, errors="coerce") if self.time_unit else None
            if numbers is not None and numbers.notna().sum() == text.notna().sum():
                out = self._epoch(numbers, first)
            else:
                out = self._text(text, first)
        out = out.dt.as_unit("ns")
        if not self.early and (out < pd.Timestamp("2000-01-01", tz="UTC")).any():
            self.early = True
        return out

    def warnings(self) -> list[str]:
        if self.early:
            return [f"{self.column!r} has instants before the year 2000: is --time-unit {self.time_unit} right?"]
        return []

    def _where(self, first: int, i: int) -> str:
        return f"{self.place} {first + i}"

    def _epoch(self, numbers: pd.Series, first: int) -> pd.Series:
        if self.time_unit is None:
            raise TraceError(f"{self.source}: {self.column!r} holds numbers ({self._where(first, 0)}: "
                             f"{numbers.iloc[0]!r}); pass --time-unit (s, ms, us or ns) to read them as epoch times")
        try:
            return pd.to_datetime(numbers, unit=self.time_unit, utc=True)
        except (ValueError, OverflowError) as exc:
            raise TraceError(f"{self.source}: epoch times in {self.column!r} do not fit --time-unit "
                             f"{self.time_unit} ({exc})") from None

    def _text(self, text: pd.Series, first: int) -> pd.Series:
        fixed = text.str.replace(r"\s*(?:UTC|GMT)\s*$", "+00:00", regex=True)
        parsed = pd.to_datetime(fixed, format="ISO8601", utc=True, errors="coerce")  # naive ones as if UTC
        zones = text.str.extract(_ZONE_RX, expand=False)
        spelled = {z: _offset(z) for z in zones.dropna().unique()}
        labels = np.full(len(text), "none", dtype=object)
        zoned = zones.notna().to_numpy()
        if zoned.any():
            labels[zoned] = zones[zoned].map(spelled).to_numpy(dtype=object)
        rows = np.flatnonzero(parsed.notna().to_numpy())  # what is not a time has no zone to compare
        labels = labels[rows]
        for zone in pd.unique(labels):  # in order of first appearance
            self._check_zone(zone, first, int(rows[np.argmax(labels == zone)]))
        if self.first_zone is None or self.first_zone[0] != "none":
            return parsed
        naive = text.mask(zones.notna())  # a zoned time that did not parse (year 2263?) stays unparsed
        return self.localize(pd.to_datetime(naive, format="ISO8601", errors="coerce"), first, text)

    def _check_zone(self, zone: str, first: int, i: int) -> None:
        where = self._where(first, i)
        if self.first_zone is None:
            self.first_zone = (zone, where)
        elif zone != self.first_zone[0]:
            def name(z):
                return "no offset" if z == "none" else f"offset {z}"
            raise TraceError(f"{self.source}: {self.column!r} mixes time zones: {name(self.first_zone[0])} "
                             f"({self.first_zone[1]}) and {name(zone)} ({where}); write one zone (UTC is best)")

    def localize(self, naive: pd.Series, first: int, text: pd.Series | None = None) -> pd.Series:
        """Naive local times read in ``time_zone`` (required), as UTC; ``text`` is what was written."""
        if self.time_zone is None:
            shown = (text if text is not None else naive).dropna()
            example = f" ({self._where(first, int(shown.index[0]))}: {str(shown.iloc[0])!r})" if len(shown) else ""
            raise TraceError(f"{self.source}: timestamps in {self.column!r} carry no time zone{example}; "
                             f"pass --time-zone (e.g. UTC or Europe/Paris; time_zone in an experiment) to say "
                             f"where they were written")
        try:
            return naive.dt.tz_localize(self.time_zone).dt.tz_convert("UTC")
        except _LOCAL_TIME_ERRORS as exc:
            raise TraceError(f"{self.source}: {exc} in {self.time_zone}; local times around a daylight-saving "
                             f"change are not exact instants: write timestamps with an offset or in UTC") from None


def _local_time_errors() -> tuple[type[Exception], ...]:
    """What pandas raises for a local time that does not exist or exists twice (pandas 2 uses
    pytz's exceptions where pytz is installed, which are not ValueErrors)."""
    try:
        import pytz

        return ValueError, pytz.exceptions.InvalidTimeError
    except ImportError:
        return (ValueError,)


_LOCAL_TIME_ERRORS = _local_time_errors()


class Disorder:
    """Counts rows, in file order, logged more than ``tolerance_s`` before an earlier one.

    Logs written at completion are a little out of order; a lot of disorder hints at merged or
    mislabelled files, so past ``share`` of the rows it becomes a warning.
    """

    def __init__(self, tolerance_s: float = 60.0, share: float = 0.01):
        self.tolerance_ns, self.share = int(tolerance_s * 1e9), share
        self.latest: int | None = None
        self.back = self.total = 0

    def update(self, utc: pd.Series) -> None:
        ns = utc.dropna().dt.as_unit("ns").array.asi8
        if not len(ns):
            return
        start = ns[0] if self.latest is None else self.latest
        running = np.maximum.accumulate(np.concatenate([[start], ns]))
        self.back += int(((running[:-1] - ns) > self.tolerance_ns).sum())
        self.total += len(ns)
        self.latest = int(running[-1])

    def warnings(self) -> list[str]:
        if self.total and self.back > self.share * self.total:
            return [f"{self.back} of {self.total} requests ({100 * self.back / self.total:.1f}%) are logged more "
                    f"than {self.tolerance_ns / 1e9:g} s before an earlier one; sorted by timestamp"]
        return []


class Problems:
    """Bad rows by reason (count, first place), fed into a ``ReadReport`` in row order."""

    def __init__(self, report: ReadReport, place: str = "line"):
        self.report, self.place = report, place
        self.reasons: dict[str, list] = {}

    def add(self, masks: dict[str, np.ndarray], first: int) -> np.ndarray:
        """Record each reason's rows; return the union of the masks."""
        n = len(next(iter(masks.values()))) if masks else 0
        union = np.zeros(n, dtype=bool)
        for reason, mask in masks.items():
            mask = np.asarray(mask, dtype=bool)
            if mask.any():
                entry = self.reasons.setdefault(reason, [0, first + int(np.argmax(mask))])
                entry[0] += int(mask.sum())
                union |= mask
        for i in np.flatnonzero(union):
            self.report.bad_line(first + int(i))
        return union

    def raise_unless(self, keep_going: bool) -> None:
        if self.reasons and not keep_going:
            parts = "; ".join(f"{n} {self.place}(s) with {reason} (first at {self.place} {at})"
                              for reason, (n, at) in self.reasons.items())
            raise TraceError(f"{self.report.source}: {parts} {KEEP_GOING_HINT}")


def concat_chunks(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame from per-chunk frames, column by column, without consolidating numeric columns
    into one block (which would copy them all once more); the chunks are emptied on the way."""
    if len(chunks) == 1:
        return chunks.pop().reset_index(drop=True)
    out = {}
    for name in list(chunks[0].columns):
        parts = [c[name] for c in chunks]
        if isinstance(parts[0].dtype, pd.CategoricalDtype):
            out[name] = pd.Series(union_categoricals(parts, ignore_order=True))
        else:
            out[name] = pd.concat(parts, ignore_index=True)
        del parts
    chunks.clear()
    return pd.DataFrame(out, copy=False)


def finish(chunks: list[pd.DataFrame], report: ReadReport, *, require_latency: bool = True) -> pd.DataFrame:
    """The contract frame from the chunks; the report learns how many rows it holds."""
    if not chunks or sum(map(len, chunks)) == 0:
        why = f" ({report.malformed} unreadable row(s) skipped)" if report.malformed else ""
        raise TraceError(f"{report.source}: no requests in the trace{why}")
    frame = concat_chunks(chunks)
    columns = {}
    for name, dtype in COLUMNS.items():  # what the source cannot fill, made here: schema.empty() is slow
        columns[name] = frame[name] if name in frame else pd.Series(missing(dtype, len(frame)), index=frame.index)
    frame = pd.DataFrame(columns, copy=False)  # in contract order, so conform checks without copying
    if not frame["timestamp"].is_monotonic_increasing:  # sorted here, conform's sort costs no copy
        frame = frame.sort_values("timestamp", kind="stable", ignore_index=True)
    frame = conform(frame, report.source, require_latency=require_latency)
    report.rows = len(frame)
    return frame


def category(value: str, n: int) -> pd.Categorical:
    """``n`` times the same category, at a byte a row."""
    return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[value])


_BOOL = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False, "t": True, "f": False}


def _to_bool(values: pd.Series) -> pd.Series:
    """True/False, 1/0, yes/no (any case) to booleans; anything else to <NA>."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean")
    return values.astype("string").str.strip().str.lower().map(_BOOL, na_action="ignore").astype("boolean")


def _chunk_to_contract(raw: pd.DataFrame, mapping: dict[str, str], *, first: int, service: str,
                       latency_factor: float, parse_time: TimestampParser, problems: Problems) -> pd.DataFrame:
    raw = raw.reset_index(drop=True)
    out: dict[str, object] = {"timestamp": parse_time(raw[mapping["timestamp"]], first)}
    masks = {"an unreadable or missing timestamp": out["timestamp"].isna().to_numpy()}
    if "latency_s" in mapping:
        lat = pd.to_numeric(raw[mapping["latency_s"]], errors="coerce").astype("float64") * latency_factor
        masks["a missing or negative latency"] = (lat.isna() | (lat < 0) | ~np.isfinite(lat.fillna(0))).to_numpy()
    else:
        lat = pd.Series(np.nan, index=raw.index)
    out["latency_s"] = lat
    for name in ("class", "service"):
        if name in mapping:
            text = raw[mapping[name]].astype("string[pyarrow]")
            masks[f"no {name}"] = (text.isna() | (text.str.strip() == "")).to_numpy()
            out[name] = text
    for name in ("bytes_in", "bytes_out", "exclusive_s", "status"):
        if name in mapping:
            col = raw[mapping[name]]
            num = pd.to_numeric(col, errors="coerce").astype("float64")
            if name == "exclusive_s":
                num = num * latency_factor
            bad = col.notna() & num.isna()
            if name == "status":
                bad |= num.notna() & ((num != num.round()) | (num < 0) | (num > 999))
            masks[f"an unreadable {name}"] = bad.to_numpy()
            out[name] = num
    if "error" in mapping:
        col = raw[mapping["error"]]
        err = _to_bool(col)
        masks["an unreadable error flag"] = (col.notna() & err.isna()).to_numpy()
        out["error"] = err
    for name in ("trace_id", "span_id", "parent_id", "session", "key"):
        if name in mapping:
            out[name] = raw[mapping[name]].astype("string[pyarrow]")
    bad = problems.add(masks, first)
    keep = ~bad
    frame = pd.DataFrame({k: (v[keep] if bad.any() else v) for k, v in out.items()}).reset_index(drop=True)
    if "status" in frame:
        frame["status"] = frame["status"].astype("Int64")
    if "error" in frame:
        frame["error"] = frame["error"].fillna(False).astype(bool)
    elif "status" in frame:
        frame["error"] = (frame["status"] >= 500).fillna(False).astype(bool)
    for name in ("class", "service"):
        if name in frame:
            frame[name] = frame[name].astype("category")
    if "service" not in frame:
        frame["service"] = category(service, len(frame))
    if "class" not in frame:
        frame["class"] = category("request", len(frame))
    return frame


def _mapping(columns: dict[str, str] | None, file_columns: list[str], source: str) -> dict[str, str]:
    mapping = {name: name for name in COLUMNS if name in file_columns}
    if columns is not None:
        if not isinstance(columns, dict):
            raise TraceError(f"{source}: columns must map contract names to the file's column names")
        unknown = [k for k in columns if k not in COLUMNS]
        if unknown:
            raise TraceError(f"{source}: {', '.join(map(repr, unknown))} in the column mapping are not trace "
                             f"columns; use {', '.join(COLUMNS)}")
        mapping.update({k: str(v) for k, v in columns.items()})
    missing = [v for v in mapping.values() if v not in file_columns]
    if missing:
        raise TraceError(f"{source}: no column {', '.join(map(repr, missing))} in the file; "
                         f"its columns are {', '.join(map(repr, file_columns))}")
    absent = [k for k in REQUIRED if k not in mapping]
    if absent:
        raise TraceError(f"{source}: map the file's columns onto {', '.join(map(repr, absent))} "
                         f"(--columns timestamp=COLUMN,class=COLUMN,latency_s=COLUMN; calibrate.columns in an "
                         f"experiment); "
                         f"its columns are {', '.join(map(repr, file_columns))}")
    return mapping


def _string_columns(mapping: dict[str, str]) -> dict[str, str]:
    """File columns read as text, so ids such as '007' keep their zeros."""
    text = ("class", "service", "trace_id", "span_id", "parent_id", "session", "key")
    return {v: "string" for k, v in mapping.items() if k in text}


def _batches(path: Path, source: str, columns, chunk_rows: int):
    """(mapping, iterator of (raw chunk, number of its first row), place word) for a file."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path, pre_buffer=False)  # buffering whole row groups costs memory
        except (pa.ArrowException, OSError) as exc:
            raise TraceError(f"{source}: not a readable Parquet file ({exc})") from None
        try:
            mapping = _mapping(columns, list(pf.schema_arrow.names), source)
        except TraceError:
            pf.close()
            raise

        def parquet():
            first = 1
            try:
                for batch in pf.iter_batches(batch_size=chunk_rows, columns=sorted(set(mapping.values())),
                                             use_threads=False):
                    yield batch.to_pandas(), first
                    first += batch.num_rows
            except (pa.ArrowException, OSError) as exc:
                raise TraceError(f"{source}: {exc}") from None
            finally:
                pf.close()
        return mapping, parquet(), "row"
    if name.endswith((".csv", ".csv.gz")):
        try:
            file_columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
        except pd.errors.EmptyDataError:
            raise TraceError(f"{source}: empty file") from None
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
            raise TraceError(f"{source}: not a readable CSV file ({exc})") from None
        mapping = _mapping(columns, file_columns, source)

        def csv():
            first = 2  # line 1 is the header
            try:
                with pd.read_csv(path, usecols=sorted(set(mapping.values())), chunksize=chunk_rows,
                                 dtype=_string_columns(mapping)) as reader:
                    for raw in reader:
                        yield raw, first
                        first += len(raw)
            except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
                raise TraceError(f"{source}: not a readable CSV file near line {first} ({exc})") from None
        return mapping, csv(), "line"
    raise TraceError(f"{source}: a request log must be .csv, .csv.gz, .parquet or .pq")


def read_request_log(path, *, columns: dict[str, str] | None = None, time_unit: str | None = None,
                     latency_unit: str = "s", time_zone: str | None = None, keep_going: bool = False,
                     service: str = "app", chunk_rows: int = 50_000) -> tuple[pd.DataFrame, ReadReport]:
    """Read a CSV or Parquet request log (chosen by suffix) into the trace contract.

    ``columns`` maps contract names to the file's column names; contract names the file already
    uses map to themselves.  Only ``timestamp`` is required: without ``class`` every request is of
    one class, 'request'; without ``latency_s`` latencies are NaN (the report says so); ``service``
    is the constant service name when no column is mapped to it.  Timestamps may be ISO strings
    with an offset (kept exact; one offset per column), naive strings (read in ``time_zone``, which
    is then required), or epoch numbers in ``time_unit`` ('s', 'ms', 'us', 'ns').  Latencies (and
    ``exclusive_s``) are in ``latency_unit``.  Rows with a missing or negative latency or an
    unreadable value stop the read with a ``TraceError`` naming the count and the first line
    (CSV: file line; Parquet: 1-based row), unless ``keep_going`` skips them into the report.

    >>> frame, report = read_request_log("requests.csv",
    ...     columns={"timestamp": "ts", "class": "endpoint", "latency_s": "duration_ms"},
    ...     latency_unit="ms")  # doctest: +SKIP
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise TraceError(f"{source}: no such file")
    latency_factor = UNIT_S[check_unit(latency_unit, "--latency-unit", source) or "s"]
    check_unit(time_unit, "--time-unit", source), check_zone(time_zone, source)  # before a file is opened
    mapping, batches, place = _batches(path, source, columns, max(1, int(chunk_rows)))
    report = ReadReport(source)
    parse_time = TimestampParser(source, mapping["timestamp"], time_unit=time_unit, time_zone=time_zone,
                                 place=place)
    problems, disorder = Problems(report, place), Disorder()
    chunks = []
    try:
        for raw, first in batches:
            if raw.empty:
                continue
            chunk = _chunk_to_contract(raw, mapping, first=first, service=service, latency_factor=latency_factor,
                                       parse_time=parse_time, problems=problems)
            disorder.update(chunk["timestamp"])
            chunks.append(chunk)
    finally:
        batches.close()  # closes the file now, even when a chunk was refused
    problems.raise_unless(keep_going)
    report.warnings += parse_time.warnings() + disorder.warnings()
    if "class" not in mapping:
        report.warnings.append("no class column mapped: every request is of one class, 'request'")
    if "latency_s" not in mapping:
        report.warnings.append("no latency column mapped: arrivals, mix and sizes only")
    return finish(chunks, report, require_latency="latency_s" in mapping), report
