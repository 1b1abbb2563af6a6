"""Fuzzing the trace readers: access logs and LogFormat strings, OTLP and Jaeger JSON, CSV and
Parquet request logs with column mappings. Each case reads or fails with a TraceError."""

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.support import clean, fuzz, mutated, text_mutated
from twin.traces.accesslog import compile_format, read_access_log
from twin.traces.requestlog import read_request_log
from twin.traces.spans import read_jaeger_json, read_otlp_json

SPANS = Path(__file__).resolve().parent.parent / "fixtures" / "traces" / "spans"
OTLP = json.loads((SPANS / "otlp_lines.jsonl").read_text().splitlines()[0])
_JAEGER = json.loads((SPANS / "jaeger_shop.json").read_text())
JAEGER = {"data": [{**_JAEGER["data"][0], "spans": _JAEGER["data"][0]["spans"][:2]}]}
JSON_NOISE = list('[]{}:,"\\') + ["null", "1e999", "-0", "NaN", '"\\ud800"', "\x00", "\n", "[" * 3000, "{\"a\":" * 3000,
                                  "\xff", "\ufeff"]
SPAN_KEYS = ["traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano",
             "attributes", "status", "key", "value", "stringValue", "intValue", "traceID", "spanID", "references",
             "startTime", "duration", "tags", "processID", "processes", "serviceName", "code"]

# -- access logs: lines from the grammar of the Common / Combined formats, a few fields off ------
FIELDS = {  # the first value of each is valid
    "ip": ["127.0.0.1", "::1", "-", "", "300.1.1.1", "a b"],
    "user": ["-", "frank", "a b", ""],
    "day": ["10/Oct/2000", "31/Feb/2000", "00/Jan/0000", "99/Xyz/2000", "1/Oct/2000", "10/Oct/99999"],
    "clock": ["13:55:36", "24:00:00", "99:99:99", "13:55", "13:55:36.5"],
    "zone": ["-0700", "+0000", "+9999", "-2400", "Z", "", "+05:30"],
    "method": ["GET", "POST", "-", "", "G3T", "GET GET", "\x00"],
    "target": ["/a?b=c", "/", "/x y", "/%ZZ", "/" + "a" * 300, "/\"q\""],
    "status": ["200", "503", "-", "99999999999999999999", "0", "2OO", "-1"],
    "size": ["2326", "-", "0", "1e3", "99999999999999999999999", "-5"],
    "latency": [" 1234", "", " -1", " 1e400", " x", " 0", " 99999999999999999999999"],
    "tail": ["", ' "-" "curl/8"', ' "http://x" "Mozilla \\"q\\""', ' "unclosed'],
}


@st.composite
def line(draw):
    fields = {name: options[0] for name, options in FIELDS.items()}
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=2, unique=True)):
        fields[name] = draw(st.one_of(st.sampled_from(FIELDS[name]), st.text(max_size=4)))
    f = fields
    return (f"{f['ip']} - {f['user']} [{f['day']}:{f['clock']} {f['zone']}] \"{f['method']} {f['target']} HTTP/1.1\" "
            f"{f['status']} {f['size']}{f['latency']}{f['tail']}")


log_files = st.lists(st.one_of(line(), line(), line().flatmap(lambda s: text_mutated(s, noise=list('[]" -\\\t\x00\r'))),
                               st.sampled_from(["", "   ", "\x85", "\udcff"])), min_size=1, max_size=4)
formats = st.sampled_from(["common", "%h %l %u %t \"%r\" %>s %b %D", "combined",
                           '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                           '$request_time', "%h %{%Y-%m-%d %H:%M:%S}t \"%r\" %>s %T"])


@fuzz(700)
@given(log_files, formats, st.booleans(), st.sampled_from([None, "UTC", "Europe/Paris", "Nowhere/Land", ""]))
def test_access_logs(scratch, lines, format, keep_going, time_zone):
    path = scratch / "access.log"
    path.write_bytes("".join(x + "\n" for x in lines).encode("utf-8", "surrogateescape"))
    clean(read_access_log, path, format=format, keep_going=keep_going, time_zone=time_zone)


FORMAT_TOKENS = ["%h", "%l", "%u", "%t", "%r", "%>s", "%<s", "%s", "%b", "%B", "%D", "%T", "%{ms}T", "%{us}T",
                 "%{Referer}i", "%{User-agent}i", "%{%Y-%m-%d %H:%M:%S}t", "%{%d/%b/%Y:%H:%M:%S %z}t", "%{sec}t",
                 "%{msec_frac}t", "%{%f}t", "%{}t", "%{", "%", "%%", "%q", "%{x", "$remote_addr", "$time_local",
                 "$time_iso8601", "$msec", "$request", "$status", "$request_time", "$upstream_response_time",
                 "${request_time}", "${", "$", "$9", "\"", "[", "]", " ", "(", ")", "\\", ".*", "(?P<x>", "|"]


@fuzz(900)
@given(st.lists(st.one_of(st.sampled_from(FORMAT_TOKENS[:40]), st.sampled_from(FORMAT_TOKENS), st.text(max_size=3)),
                max_size=8).map(" ".join))
def test_log_format_strings(scratch, format):
    fmt = clean(compile_format, format)
    if fmt is not None:  # a format that compiles reads a Common Log line or refuses it cleanly
        path = scratch / "custom.log"
        path.write_text('127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 2326 1234\n')
        clean(read_access_log, path, format=format, keep_going=True)


# -- spans: valid OTLP and Jaeger documents with random edits, as documents and as JSON Lines -----
def _json_texts(base):
    return st.one_of(
        mutated(base, max_edits=4, keys=SPAN_KEYS).map(lambda d: json.dumps(d)),
        st.lists(mutated(base, max_edits=2, keys=SPAN_KEYS).map(lambda d: json.dumps(d)), min_size=1, max_size=3)
        .map("\n".join),
        text_mutated(json.dumps(base), noise=JSON_NOISE),
        text_mutated(json.dumps(base, indent=1), noise=JSON_NOISE))


@fuzz(700)
@given(_json_texts(OTLP), st.booleans())
def test_otlp_json(scratch, text, keep_going):
    path = scratch / "spans.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    clean(read_otlp_json, path, keep_going=keep_going)


@fuzz(700)
@given(_json_texts(JAEGER), st.booleans())
def test_jaeger_json(scratch, text, keep_going):
    path = scratch / "jaeger.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    clean(read_jaeger_json, path, keep_going=keep_going)


# -- request logs: CSV and Parquet with random columns, cells and mappings ------------------------
CELLS = {  # the first value of each is valid
    "timestamp": ["2024-01-01T10:00:01+01:00", "2024-01-01 10:00:00", "2024-13-01T00:00:00Z", "1700000000",
                  "1.7e9", "", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "2024-01-01T10:00:00+01:00[x]"],
    "class": ["GET /a", "", "x" * 300, "\x00"],
    "latency_s": ["12.5", "0", "-1", "1e400", "nan", "", "x", "99999999999999999999"],
    "status": ["200", "503", "", "2OO", "-1", "99999999999999999999"],
    "bytes_out": ["100", "", "-5", "1e400", "x"],
    "session": ["alice", "", "1"],
    "error": ["false", "true", "", "maybe", "1"],
}
FILE_NAMES = {"timestamp": "ts", "class": "endpoint", "latency_s": "duration_ms", "status": "status",
              "bytes_out": "size", "session": "user", "error": "failed"}


def _csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value


@st.composite
def request_csv(draw):
    """A request log's text and its column mapping: consistent, with a few cells, names or rows off."""
    fields = ["timestamp"] + draw(st.lists(st.sampled_from(sorted(set(CELLS) - {"timestamp"})), unique=True,
                                           max_size=4))
    header = [FILE_NAMES[f] for f in fields]
    mapping = {f: FILE_NAMES[f] for f in fields if f != FILE_NAMES[f]}
    if draw(st.integers(0, 3)) == 0:  # a mapping that names a column the file lacks, or a contract name twice
        mapping[draw(st.sampled_from(sorted(CELLS) + ["nosuch"]))] = draw(st.sampled_from(header + ["absent", ""]))
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        row = [CELLS[f][0] for f in fields]
        for i in draw(st.lists(st.integers(0, len(fields) - 1), max_size=1)):
            row[i] = draw(st.one_of(st.sampled_from(CELLS[fields[i]]), st.text(max_size=4)))
        if draw(st.integers(0, 9)) == 0:
            row = row[:-1] if draw(st.booleans()) else row + ["extra"]
        rows.append(row)
    text = ",".join(header) + "\n" + "".join(",".join(map(_csv_cell, row)) + "\n" for row in rows)
    return text, mapping


@fuzz(500)
@given(request_csv(), st.sampled_from(["ms", "s", "us", "ns", "min", "bogus"]),
       st.sampled_from([None, "s", "ms", "days"]), st.sampled_from(["UTC", None, "America/New_York", "Mars/Olympus"]),
       st.booleans())
def test_csv_request_logs(scratch, case, latency_unit, time_unit, time_zone, keep_going):
    text, columns = case
    path = scratch / "requests.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    clean(read_request_log, path, columns=columns or None, latency_unit=latency_unit, time_unit=time_unit,
          time_zone=time_zone, keep_going=keep_going)


mappings = st.dictionaries(st.sampled_from(["class", "latency_s", "status", "bytes_out", "nosuch"]),
                           st.sampled_from(["endpoint", "duration_ms", "status", "size", "absent"]), max_size=3)
parquet_columns = st.sampled_from(["int", "float", "str", "bool", "ts_utc", "ts_naive", "null", "list"])


@fuzz(150)
@given(st.dictionaries(st.sampled_from(["endpoint", "duration_ms", "status", "size"]), parquet_columns, max_size=3),
       st.sampled_from(["ts_utc", "ts_naive", "str", "int", "float", "null"]), st.integers(0, 3), mappings,
       st.booleans())
def test_parquet_request_logs(scratch, kinds, time_kind, n, columns, keep_going):
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {"int": pa.array(list(range(-1, n - 1)), pa.int64()),
              "float": pa.array([float("nan"), 1e300, -0.5, 3.0][:n]),
              "str": pa.array(["2024-01-01T10:00:01+01:00", "GET /a", "", "x"][:n]),
              "bool": pa.array([True, False, True][:n] + [None] * max(0, n - 3), pa.bool_()),
              "ts_utc": pa.array([1_700_000_000_000_000 + i for i in range(n)], pa.timestamp("us", tz="UTC")),
              "ts_naive": pa.array([1_700_000_000_000 + i for i in range(n)], pa.timestamp("ms")),
              "null": pa.array([None] * n, pa.null()),
              "list": pa.array([[1, 2]] * n, pa.list_(pa.int64()))}
    path = scratch / "requests.parquet"
    pq.write_table(pa.table({"ts": arrays[time_kind], **{name: arrays[kind] for name, kind in kinds.items()}}), path)
    clean(read_request_log, path, columns={"timestamp": "ts", **columns}, time_unit="s", time_zone="UTC",
          keep_going=keep_going)
