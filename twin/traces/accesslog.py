"""Web access logs (NCSA Common, Combined, or an Apache LogFormat / nginx log_format string).

A format compiles to one regular expression; the log streams through it in chunks of lines, and
each chunk becomes a compact contract frame before the next is read.

>>> frame, report = read_access_log("access.log", format=(
...     '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
...     '"$http_referer" "$http_user_agent" $request_time'))  # doctest: +SKIP
>>> frame["class"].iloc[0]  # doctest: +SKIP
'GET /presentations'
"""

from __future__ import annotations

import functools
import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .requestlog import KEEP_GOING_HINT, Disorder, TimestampParser, category, finish
from .schema import ReadReport, TraceError

PRESETS = {
    "common": '%h %l %u %t "%r" %>s %b',
    "combined": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
}
_MONTHS = {m: f"{i:02d}" for i, m in enumerate(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}
_CLF_TIME = r"\d{2}/(?:" + "|".join(_MONTHS) + r")/\d{4}:\d{2}:\d{2}:\d{2} (?P<tz>[+-]\d{4})"
_ISO_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?P<tz>Z|[+-]\d{2}:?\d{2})"
_STRFTIME = {"Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "e": r" ?\d{1,2}", "H": r"\d{2}",
             "M": r"\d{2}", "S": r"\d{2}", "f": r"\d{1,9}", "b": r"[A-Za-z]{3}", "z": r"(?P<tz>[+-]\d{4})",
             "%": "%"}
_EPOCH = {"sec": "s", "msec": "ms", "usec": "us", "msec_frac": None, "usec_frac": None}
_TOKEN = re.compile(r"%%|%[<>]?(?:\{([^}]*)\})?([a-zA-Z])|\$\{?([a-z_][a-z0-9_]*)\}?")
_NUMBER, _SECONDS = r"\d+", r"\d+(?:\.\d+)?"
_UPSTREAM = r"(?:-|\d+(?:\.\d+)?)(?:\s*[,:]\s*(?:-|\d+(?:\.\d+)?))*"
# Latency fields and their unit; a format with several uses the first here (the handler's own time).
_LATENCY_S = {"lat_us": 1e-6, "lat_ms": 1e-3, "lat_s": 1.0, "upstream_s": 1.0}
MAX_LATENCY_S = 1e6
_ID = re.compile(r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                 r"|[0-9a-fA-F]{16,}")
_METHOD = re.compile(r"[A-Za-z][A-Za-z_-]*")


@dataclass(frozen=True)
class LogFormat:
    """A compiled log format: the line regex and what its named groups hold."""

    pattern: re.Pattern
    time: tuple[str, str | None]  # ('clf' | 'iso' | 'epoch' | 'strftime', unit or strftime format)
    latency: str | None  # the group the latency comes from
    name: str
    at_end: bool = False  # the written time is when the request finished (nginx), not when it came


def _field(kind: str, arg: str | None) -> tuple[str | None, str | None, tuple | None]:
    """(group, regex, time kind) for one Apache %-directive or nginx variable; regex None: free text."""
    if kind in ("h", "$remote_addr"):
        return "host", r"\S+", None
    if kind in ("u", "$remote_user"):
        return "user", r"\S+", None
    if kind == "l":
        return None, r"\S+", None
    if kind in ("t", "$time_local") and not arg:  # %t adds the brackets, $time_local does not
        return "time", _CLF_TIME, ("clf", None)
    if kind == "$time_iso8601":
        return "time", _ISO_TIME, ("iso", None)
    if kind == "$msec":
        return "time", _SECONDS, ("epoch", "s")
    if kind == "t":
        if arg.startswith(("begin:", "end:")):  # Apache: when the time was taken; see _compile
            arg = arg.split(":", 1)[1]
        if arg in _EPOCH and _EPOCH[arg]:
            return "time", _NUMBER, ("epoch", _EPOCH[arg])
        return "time", _strftime_regex(arg), ("strftime", arg)
    if kind in ("r", "$request"):
        return "request", None, None
    if kind in ("s", "$status"):
        return "status", r"\d{3}", None
    if kind == "b":
        return "bytes_out", r"\d+|-", None
    if kind in ("B", "$body_bytes_sent"):
        return "bytes_out", _NUMBER, None
    if kind in ("O", "$bytes_sent"):
        return "bytes_sent", _NUMBER, None
    if kind in ("I", "$request_length"):
        return "bytes_in", _NUMBER, None
    if kind == "D":
        return "lat_us", _NUMBER, None
    if kind == "T":
        group = {None: "lat_s", "": "lat_s", "s": "lat_s", "ms": "lat_ms", "us": "lat_us"}.get(arg)
        if group is None:
            raise TraceError(f"log format: %{{{arg}}}T is not a duration unit (s, ms or us)")
        return group, _SECONDS, None
    if kind == "$request_time":
        return "lat_s", _SECONDS, None
    if kind == "$upstream_response_time":
        return "upstream_s", _UPSTREAM, None
    return None, None, None  # a field we do not use: referer, user agent, other headers


def _strftime_regex(fmt: str) -> str:
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            if fmt[i + 1] not in _STRFTIME:
                raise TraceError(f"log format: %{fmt[i + 1]} in %{{{fmt}}}t is not supported "
                                 f"(use %Y %y %m %d %e %H %M %S %f %b %z)")
            out.append(_STRFTIME[fmt[i + 1]])
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return "".join(out)


def compile_format(format: str) -> LogFormat:
    """A ``LogFormat`` from a preset name ('common', 'combined') or a LogFormat/log_format string.

    >>> compile_format("common").time
    ('clf', None)
    """
    if not isinstance(format, str):
        raise TraceError(f"log format {format!r}: a format is a string")
    return _compile(format)


@functools.lru_cache(maxsize=32)
def _compile(format: str) -> LogFormat:
    text = PRESETS.get(format, format)
    if not _TOKEN.search(text):
        raise TraceError(f"log format {format!r}: use 'common', 'combined', or an Apache LogFormat "
                         f"(%h %t \"%r\" ...) or nginx log_format ($remote_addr [$time_local] ...) string")
    parts, used, time, pos, at_end = [], set(), None, 0, False
    for m in _TOKEN.finditer(text):
        literal = text[pos:m.start()]
        parts.append(re.escape(literal))
        pos = m.end()
        if m.group(0) == "%%":
            parts.append("%")
            continue
        kind = "$" + m.group(3) if m.group(3) else m.group(2)
        group, regex, time_kind = _field(kind, m.group(1))
        if regex is None:  # free text: inside quotes anything but an unescaped quote, else one word
            regex = r'[^"\\]*(?:\\.[^"\\]*)*' if literal.endswith('"') else r"\S+"
        if time_kind and time is None:
            time = time_kind
            # nginx writes the time a request was logged (its end); Apache %t the time it was
            # received, unless the format says %{end:...}t
            at_end = kind.startswith("$") or (m.group(1) or "").startswith("end:")
        if group and group not in used:
            used.add(group)
            regex = f"(?P<{group}>{regex})"
        else:
            regex = f"(?:{re.sub(r'[(][?]P<[a-z_]+>', '(?:', regex)})"
        parts.append(r"\[" + regex + r"\]" if kind == "t" and not m.group(1) else regex)
    parts.append(re.escape(text[pos:]))
    if time is None or "request" not in used:
        raise TraceError(f"log format {format!r} needs a time (%t, $time_local) and a request (%r, $request) field")
    latency = next((g for g in _LATENCY_S if g in used), None)
    name = f"{format} log format" if format in PRESETS else f"log format {text!r}"
    return LogFormat(re.compile("".join(parts)), time, latency, name, at_end)


def default_class(method: str, target: str) -> str:
    """'METHOD /first-segment': query dropped, numeric or uuid-like segments as ':id'.

    >>> default_class("GET", "/presentations/logstash/kibana.png?x=1")
    'GET /presentations'
    >>> default_class("DELETE", "/42/items")
    'DELETE /:id'
    """
    path = target.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:  # absolute form, as sent to a proxy
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    if not path.startswith("/"):  # OPTIONS *, CONNECT host:port
        return f"{method} *"
    segment = path[1:].split("/", 1)[0]
    return f"{method} /{':id' if _ID.fullmatch(segment) else segment}"


def _classifier(classify: Callable[[str, str], str] | None, source: str) -> Callable[[str, str, int], str]:
    if classify is None:
        cached_default = functools.lru_cache(maxsize=1 << 16)(default_class)
        return lambda method, target, number: cached_default(method, target)

    @functools.lru_cache(maxsize=1 << 16)
    def cached(method: str, target: str) -> str:
        return classify(method, target)

    def call(method: str, target: str, number: int) -> str:
        try:
            out = cached(method, target)
        except Exception as exc:  # the user's code: report where it failed, not a traceback
            raise TraceError(f"{source}: line {number}: classify({method!r}, {target!r}) failed: {exc!r}") from None
        if not isinstance(out, str) or not out:
            raise TraceError(f"{source}: line {number}: classify({method!r}, {target!r}) returned {out!r}, "
                             f"not a class name")
        return out
    return call


def _open(path: Path, source: str):
    if not path.is_file():
        raise TraceError(f"{source}: no such file")
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    except OSError as exc:
        raise TraceError(f"{source}: cannot open ({exc.strerror})") from None


class _Chunk:
    """One chunk's well-formed lines (their number, class and text fields) and malformed line numbers."""

    def __init__(self):
        self.numbers, self.classes, self.rows, self.upstream_s = [], [], [], []
        self.bad: list[int] = []
        self.whole_seconds = True


def _times(fmt: LogFormat, values: tuple[str, ...], parser: TimestampParser, first: int) -> pd.Series:
    """UTC instants (NaT where the written time does not exist), parsing each distinct text once."""
    codes, unique = pd.factorize(pd.Series(values, dtype=object))
    text = pd.Series(unique, dtype=object)
    kind, arg = fmt.time
    if kind == "clf":  # 10/Oct/2000:13:55:36 -0700 -> 2000-10-10T13:55:36-0700
        iso = (text.str[7:11] + "-" + text.str[3:6].map(_MONTHS) + "-" + text.str[:2] + "T"
               + text.str[12:20] + text.str[21:])
        parsed = pd.to_datetime(iso, format="%Y-%m-%dT%H:%M:%S%z", utc=True, errors="coerce")
    elif kind == "iso":
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    elif kind == "epoch":
        micros = (pd.to_numeric(text, errors="coerce") * (1e6 * {"s": 1, "ms": 1e-3, "us": 1e-6}[arg])).round()
        parsed = pd.to_datetime(micros, unit="us", utc=True)
    elif "%z" in arg:
        parsed = pd.to_datetime(text, format=arg, errors="coerce", utc=True)
    else:
        parsed = parser.localize(pd.to_datetime(text, format=arg, errors="coerce"), first, text)
    return pd.Series(parsed.dt.as_unit("ns").array.take(codes))


def _convert(chunk: _Chunk, fmt: LogFormat, names: list[str], parser: TimestampParser
             ) -> tuple[pd.DataFrame, list[int]]:
    """A contract chunk from the text fields, and the lines whose time turned out not to exist."""
    f = dict(zip(names, zip(*chunk.rows)))
    if chunk.upstream_s:
        f["upstream_s"] = chunk.upstream_s
    ts = _times(fmt, f["time"], parser, chunk.numbers[0])
    n = len(ts)

    def number(group):
        if group not in f:
            return np.full(n, np.nan)
        text = np.array(f[group], dtype=object)
        text[text == "-"] = "0"  # %b writes '-' for an empty body
        return pd.to_numeric(text, errors="coerce").astype(float)
    status = pd.array(number("status"), dtype="Int64")
    latency = number(fmt.latency) * _LATENCY_S[fmt.latency] if fmt.latency else np.full(n, np.nan)
    # written to the second only? (Common Log Format, $time_local): then arrivals are that coarse
    chunk.whole_seconds = bool((ts.dropna().astype("int64") % 10**9 == 0).all())
    if fmt.latency:  # a latency of MAX_LATENCY_S (11 days) or more is no request's: the line is malformed
        absurd = ~(np.nan_to_num(latency) < MAX_LATENCY_S)
        ts, latency = ts.mask(absurd), np.where(absurd, np.nan, latency)
    if fmt.at_end and fmt.latency:  # logged at the end: the request arrived one latency earlier
        ts = ts - pd.to_timedelta(np.nan_to_num(latency), unit="s")
    users = f.get("user", ())
    frame = pd.DataFrame({
        "timestamp": ts, "class": pd.Categorical(chunk.classes), "latency_s": latency,
        "bytes_in": number("bytes_in"), "bytes_out": number("bytes_out" if "bytes_out" in f else "bytes_sent"),
        "status": status, "error": (status >= 500).fillna(False).to_numpy(dtype=bool),
        "session": pd.array([None if u in ("-", "") else u for u in users] if users else [pd.NA] * n,
                            dtype="string[pyarrow]"),
    })
    bad = ts.isna().to_numpy()
    if not bad.any():
        return frame, []
    return frame[~bad].reset_index(drop=True), [chunk.numbers[i] for i in np.flatnonzero(bad)]


class _Scan:
    """One pass over a log: lines into chunks, chunks into contract frames, and what was skipped."""

    def __init__(self, fmt: LogFormat, report: ReadReport, parser: TimestampParser, service: str,
                 name_class: Callable[[str, str, int], str]):
        self.fmt, self.report, self.parser, self.service, self.name_class = fmt, report, parser, service, name_class
        groups = fmt.pattern.groupindex
        self.names = ["time", "request"] + [g for g in ("tz", "user", "status", "bytes_out", "bytes_sent",
                                                        "bytes_in") if g in groups]
        self.names += [fmt.latency] if fmt.latency and fmt.latency != "upstream_s" else []
        self.disorder, self.offsets, self.frames = Disorder(), set(), []
        self.whole_seconds = True  # every written time fell on a whole second
        self.nonblank = False
        self.methods: dict[str, bool] = {}
        self.skipped = {"no request line (such as '-' for a timed-out connection)": [0, 0],
                        "no upstream response time ('-')": [0, 0]}  # [count, first line]
        self.chunk = _Chunk()

    def line(self, number: int, raw: bytes) -> None:
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            self.nonblank = True
            self.chunk.bad.append(number)
            return
        if not line.strip():
            return
        self.nonblank = True
        m = self.fmt.pattern.fullmatch(line)
        if m is None:
            self.chunk.bad.append(number)
            return
        fields = m.group(*self.names)
        request = fields[1].split()
        if len(request) not in (2, 3) or not self._method(request[0]):
            return self._skip("no request line (such as '-' for a timed-out connection)", number)
        c = self.chunk
        if self.fmt.latency == "upstream_s":  # '0.010, 0.020 : 0.005' when nginx tried several
            times = [float(t) for t in re.split(r"\s*[,:]\s*", m.group("upstream_s")) if t != "-"]
            if not times:
                return self._skip("no upstream response time ('-')", number)
            c.upstream_s.append(str(sum(times)))
        c.numbers.append(number)
        c.classes.append(self.name_class(request[0], request[1], number))
        c.rows.append(fields)

    def _method(self, word: str) -> bool:
        if word not in self.methods:
            self.methods[word] = _METHOD.fullmatch(word) is not None
        return self.methods[word]

    def _skip(self, why: str, number: int) -> None:
        entry = self.skipped[why]
        entry[0] += 1
        entry[1] = entry[1] or number

    def flush(self) -> None:
        c, self.chunk = self.chunk, _Chunk()
        frame, bad_times = _convert(c, self.fmt, self.names, self.parser) if c.numbers else (None, [])
        for number in sorted(c.bad + bad_times):
            self.report.bad_line(number)
        self.whole_seconds &= c.whole_seconds
        if frame is not None and len(frame):
            frame["service"] = category(self.service, len(frame))
            self.disorder.update(frame["timestamp"])
            self.frames.append(frame)
        if "tz" in self.names and c.rows:
            at = self.names.index("tz")
            self.offsets.update({r[at] for r in c.rows})

    def warnings(self) -> list[str]:
        out = [f"{n} line(s) with {why} skipped (first at line {first})" for why, (n, first) in self.skipped.items() if n]
        if len(self.offsets) > 1:
            out.append(f"lines carry different UTC offsets ({', '.join(sorted(self.offsets))}); "
                       f"kept as exact instants in UTC")
        if self.fmt.latency is None:
            out.append("the log format has no latency field (%D, %T, $request_time): latency_s is NaN")
        return out + self.disorder.warnings()


def read_access_log(path, *, format: str = "combined", service: str = "web",
                    classify: Callable[[str, str], str] | None = None, keep_going: bool = False,
                    time_zone: str | None = None, chunk_lines: int = 100_000) -> tuple[pd.DataFrame, ReadReport]:
    """Read a web access log into the trace contract, streaming it in chunks of ``chunk_lines``.

    ``format`` is 'common', 'combined', or a LogFormat / log_format string; a latency field
    (%D microseconds, %T or %{ms}T, $request_time, $upstream_response_time) fills ``latency_s``,
    otherwise ``latency_s`` is NaN and the report says so.  Times keep their offsets exactly and
    come out in UTC; ``time_zone`` is only for formats whose time has no offset (%{%Y-%m-%d %H:%M:%S}t).
    ``classify(method, target)`` names each request's class (``target`` as logged, query included);
    the default is ``default_class``.  Lines that do not match the format (or are not UTF-8) stop
    the read with a ``TraceError`` naming the count and first line numbers, unless ``keep_going``.
    Lines whose request line is not a request (such as '-' for a timed-out connection) are skipped
    with a warning.

    >>> frame, report = read_access_log("tests/fixtures/traces/apache_access_2000.log")  # doctest: +SKIP
    >>> str(frame["timestamp"].iloc[0])  # doctest: +SKIP
    '2015-05-17 10:05:00+00:00'
    """
    path = Path(path)
    source = str(path)
    fmt = compile_format(format)
    chunk_lines = max(1, int(chunk_lines))
    report = ReadReport(source)
    scan = _Scan(fmt, report, TimestampParser(source, "time", time_zone=time_zone), service,
                 _classifier(classify, source))
    try:
        with _open(path, source) as lines:
            for number, raw in enumerate(lines, start=1):
                scan.line(number, raw)
                if number % chunk_lines == 0:
                    scan.flush()
    except (OSError, EOFError) as exc:  # a truncated or fake .gz
        raise TraceError(f"{source}: cannot read ({exc})") from None
    scan.flush()
    if not scan.nonblank:
        raise TraceError(f"{source}: empty file")
    if report.malformed and not keep_going:
        raise TraceError(f"{report.malformed_message()} not in the {fmt.name} {KEEP_GOING_HINT}")
    report.warnings += scan.warnings()
    if scan.whole_seconds:
        report.time_resolution_s = 1.0
    return finish(scan.frames, report, require_latency=fmt.latency is not None), report
