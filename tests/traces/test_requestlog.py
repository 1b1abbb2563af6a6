"""Request logs (CSV, Parquet): column mapping, exact times, units, bad rows, and chunked memory."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twin.traces.requestlog import read_request_log
from twin.traces.schema import COLUMNS, TraceError

MAPPING = {"timestamp": "ts", "class": "endpoint", "latency_s": "duration_ms"}


def utc(text):
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def csv(tmp_path):
    def write(text, name="requests.csv"):
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


GOOD = """\
ts,endpoint,duration_ms,status,size
2024-01-01T10:00:01+01:00,GET /a,12.5,200,100
2024-01-01T10:00:00+01:00,GET /b,3,503,
2024-01-01T10:00:02+01:00,GET /a,7,,20
"""


def test_csv_with_a_mapping(csv):
    frame, report = read_request_log(csv(GOOD), columns={**MAPPING, "status": "status", "bytes_out": "size"},
                                     latency_unit="ms")
    assert list(frame.columns) == list(COLUMNS) and all(frame[c].dtype == t for c, t in COLUMNS.items())
    assert list(frame["timestamp"]) == [utc("2024-01-01 09:00:00"), utc("2024-01-01 09:00:01"),
                                        utc("2024-01-01 09:00:02")]
    assert list(frame["latency_s"]) == pytest.approx([0.003, 0.0125, 0.007])
    assert list(frame["class"]) == ["GET /b", "GET /a", "GET /a"] and set(frame["service"]) == {"app"}
    assert list(frame["error"]) == [True, False, False]
    assert frame["status"].isna().sum() == 1 and np.isnan(frame["bytes_out"].iloc[0])
    assert report.rows == 3 and report.malformed == 0 and report.warnings == []


def test_contract_names_need_no_mapping(csv):
    path = csv("timestamp,class,service,latency_s,session,error\n"
               "2024-01-01T00:00:00Z,GET /a,api,0.5,007,true\n2024-01-01T00:00:01Z,GET /b,db,0.25,,0\n")
    frame, _ = read_request_log(path)
    assert list(frame["service"]) == ["api", "db"] and list(frame["session"]) == ["007", pd.NA]
    assert list(frame["error"]) == [True, False]


def test_parquet_reads_like_csv_in_any_chunk_size(csv, tmp_path):
    path = csv(GOOD)
    from_csv, _ = read_request_log(path, columns=MAPPING, latency_unit="ms", chunk_rows=1)
    parquet = tmp_path / "requests.parquet"
    pd.read_csv(path).to_parquet(parquet)
    from_parquet, report = read_request_log(parquet, columns=MAPPING, latency_unit="ms", chunk_rows=2)
    pd.testing.assert_frame_equal(from_csv.astype({"class": str}), from_parquet.astype({"class": str}))
    assert report.rows == 3


def test_parquet_timestamps_with_and_without_zone(tmp_path):
    stamps = pd.to_datetime(["2024-06-01 12:00:00", "2024-06-01 12:00:01"])
    for tz, time_zone, expected in [("Europe/Paris", None, "2024-06-01 10:00:00"),
                                    (None, "America/New_York", "2024-06-01 16:00:00")]:
        path = tmp_path / f"t{tz is None}.parquet"
        ts = stamps.tz_localize(tz) if tz else stamps
        pd.DataFrame({"ts": ts, "endpoint": ["a", "b"], "duration_ms": [1.0, 2.0]}).to_parquet(path)
        frame, _ = read_request_log(path, columns=MAPPING, time_zone=time_zone)
        assert frame["timestamp"].iloc[0] == utc(expected)
    with pytest.raises(TraceError, match="no time zone"):
        read_request_log(path, columns=MAPPING)


def test_naive_times_need_a_time_zone(csv):
    path = csv("ts,endpoint,duration_ms\n2024-07-01 12:00:00,a,1\n")
    with pytest.raises(TraceError, match=r"line 2: '2024-07-01 12:00:00'.*pass --time-zone"):
        read_request_log(path, columns=MAPPING)
    frame, _ = read_request_log(path, columns=MAPPING, time_zone="Europe/Paris")
    assert frame["timestamp"].iloc[0] == utc("2024-07-01 10:00:00")


def test_a_local_time_skipped_by_daylight_saving_is_refused(csv):
    path = csv("ts,endpoint,duration_ms\n2024-03-31 02:30:00,a,1\n")
    with pytest.raises(TraceError, match="daylight-saving"):
        read_request_log(path, columns=MAPPING, time_zone="Europe/Paris")


@pytest.mark.parametrize("unit,value", [("s", "1704067200.5"), ("ms", "1704067200500"),
                                        ("us", "1704067200500000"), ("ns", "1704067200500000000")])
def test_epoch_units(csv, unit, value):
    frame, report = read_request_log(csv(f"ts,endpoint,duration_ms\n{value},a,1\n"), columns=MAPPING, time_unit=unit)
    assert frame["timestamp"].iloc[0] == utc("2024-01-01 00:00:00.5") and report.warnings == []


def test_epoch_numbers_need_a_unit_and_a_sane_one(csv):
    path = csv("ts,endpoint,duration_ms\n1704067200,a,1\n")
    with pytest.raises(TraceError, match="holds numbers.*pass --time-unit"):
        read_request_log(path, columns=MAPPING)
    with pytest.raises(TraceError, match="--time-unit 'min' is not one of"):
        read_request_log(path, columns=MAPPING, time_unit="min")
    _, report = read_request_log(path, columns=MAPPING, time_unit="ms")  # seconds read as ms: 1970
    assert any("before the year 2000" in w for w in report.warnings)
    with pytest.raises(TraceError, match="do not fit --time-unit"):
        read_request_log(csv("ts,endpoint,duration_ms\n1704067200000000000,a,1\n", "ns.csv"),
                         columns=MAPPING, time_unit="s")


@pytest.mark.parametrize("chunk_rows", [1, 100])
def test_mixed_time_zones_name_both_offsets_and_the_line(csv, chunk_rows):
    path = csv("ts,endpoint,duration_ms\n2024-03-31T01:00:00+01:00,a,1\n2024-03-31T01:30:00+01:00,a,1\n"
               "2024-03-31T03:00:00+02:00,a,1\n")
    with pytest.raises(TraceError, match=r"mixes time zones: offset \+01:00 \(line 2\) and offset \+02:00 \(line 4\)"):
        read_request_log(path, columns=MAPPING, chunk_rows=chunk_rows)


def test_zoned_and_naive_times_mixed(csv):
    path = csv("ts,endpoint,duration_ms\n2024-01-01T00:00:00Z,a,1\n2024-01-01 00:00:01,a,1\n")
    with pytest.raises(TraceError, match=r"offset \+00:00 \(line 2\) and no offset \(line 3\)"):
        read_request_log(path, columns=MAPPING, time_zone="UTC")


def test_mapping_errors_list_the_file_columns(csv):
    path = csv(GOOD)
    with pytest.raises(TraceError, match=r"no column 'latency'.*its columns are 'ts', 'endpoint', 'duration_ms'"):
        read_request_log(path, columns={**MAPPING, "latency_s": "latency"})
    with pytest.raises(TraceError, match="'endpoint_name' in the column mapping are not trace columns"):
        read_request_log(path, columns={**MAPPING, "endpoint_name": "endpoint"})
    with pytest.raises(TraceError, match="map the file's columns onto 'timestamp' .*--columns timestamp=COLUMN"):
        read_request_log(path, columns={"class": "endpoint"})
    # without class and latency: arrivals only, said so
    frame, report = read_request_log(path, columns={"timestamp": "ts"})
    assert set(frame["class"]) == {"request"} and frame["latency_s"].isna().all()
    assert any("no latency column" in w for w in report.warnings)


@pytest.mark.parametrize("latency,reason", [("", "missing or negative latency"), ("-1", "missing or negative latency"),
                                            ("slow", "missing or negative latency")])
def test_bad_latencies_name_count_and_first_line(csv, latency, reason):
    path = csv(f"ts,endpoint,duration_ms\n2024-01-01T00:00:00Z,a,1\n2024-01-01T00:00:01Z,a,{latency}\n"
               f"2024-01-01T00:00:02Z,a,{latency}\n")
    with pytest.raises(TraceError, match=rf"2 line\(s\) with a {reason} \(first at line 3\).*--keep-going"):
        read_request_log(path, columns=MAPPING)
    frame, report = read_request_log(path, columns=MAPPING, keep_going=True)
    assert len(frame) == 1 and report.malformed == 2 and report.first_malformed == [3, 4]


def test_parquet_mapping_errors(tmp_path):
    path = tmp_path / "r.parquet"
    pd.DataFrame({"ts": ["2024-01-01T00:00:00Z"], "endpoint": "a", "duration_ms": [1.0]}).to_parquet(path)
    with pytest.raises(TraceError, match=r"no column 'latency' in the file; its columns are 'ts', 'endpoint', 'duration_ms'"):
        read_request_log(path, columns={**MAPPING, "latency_s": "latency"})


def test_parquet_rows_are_counted_from_one(tmp_path):
    path = tmp_path / "r.parquet"
    pd.DataFrame({"ts": ["2024-01-01T00:00:00Z"] * 3, "endpoint": "a", "duration_ms": [1.0, -2.0, 3.0]}).to_parquet(path)
    with pytest.raises(TraceError, match=r"1 row\(s\) with a missing or negative latency \(first at row 2\)"):
        read_request_log(path, columns=MAPPING)


def test_unreadable_timestamps_and_values(csv):
    path = csv("ts,endpoint,duration_ms,status\n2024-01-01T00:00:00Z,a,1,200\nyesterday,a,1,200\n"
               "2024-01-01T00:00:01Z,a,1,OK\n2024-01-01T00:00:02Z,,1,200\n")
    with pytest.raises(TraceError) as info:
        read_request_log(path, columns={**MAPPING, "status": "status"}, time_zone="UTC")
    message = str(info.value)
    assert "unreadable or missing timestamp (first at line 3)" in message
    assert "unreadable status (first at line 4)" in message and "no class (first at line 5)" in message


@pytest.mark.parametrize("text,expected", [("", "empty file"), ("ts,endpoint,duration_ms\n", "no requests")])
def test_empty_files(csv, text, expected):
    with pytest.raises(TraceError, match=expected):
        read_request_log(csv(text), columns=MAPPING)


def test_files_that_are_not_request_logs(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        read_request_log(tmp_path / "missing.csv", columns=MAPPING)
    (tmp_path / "r.json").write_text("{}")
    with pytest.raises(TraceError, match=".csv, .csv.gz, .parquet"):
        read_request_log(tmp_path / "r.json", columns=MAPPING)
    (tmp_path / "r.parquet").write_text("ts,endpoint\n")
    with pytest.raises(TraceError, match="not a readable Parquet file"):
        read_request_log(tmp_path / "r.parquet", columns=MAPPING)
    (tmp_path / "r.csv").write_bytes(b"ts,endpoint,duration_ms\n\xff\xfe,a,1\n")
    with pytest.raises(TraceError, match="not a readable CSV"):
        read_request_log(tmp_path / "r.csv", columns=MAPPING)


def test_bad_units_and_zones_are_trace_errors(csv):
    path = csv(GOOD)
    with pytest.raises(TraceError, match="--latency-unit 'minutes' is not one of s, ms, us, ns"):
        read_request_log(path, columns=MAPPING, latency_unit="minutes")
    with pytest.raises(TraceError, match="unknown time zone"):
        read_request_log(path, columns=MAPPING, time_zone="Europe/Nowhere")


def test_unsorted_rows_are_sorted_with_a_warning(csv):
    rows = "".join(f"2024-01-01T00:{59 - 2 * m:02d}:00Z,a,1\n" for m in range(10))
    frame, report = read_request_log(csv("ts,endpoint,duration_ms\n" + rows), columns=MAPPING)
    assert frame["timestamp"].is_monotonic_increasing
    assert report.warnings == ["9 of 10 requests (90.0%) are logged more than 60 s before an earlier one; "
                               "sorted by timestamp"]


# Memory: chunks are converted as they are read, so the peak follows the contract frame, not the file.
MEMORY_PROBE = """
import json, sys
from twin.traces.requestlog import read_request_log

def high_water_bytes():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmHWM:")[1].split()[0]) * 1024

kw = dict(columns={"timestamp": "ts", "class": "endpoint", "service": "service", "latency_s": "duration_ms",
                   "status": "status", "bytes_out": "bytes_out", "session": "user"}, latency_unit="ms", time_unit="ms")
read_request_log(sys.argv[1], **kw)  # warm up: imports and allocator pools are not the reader's cost
base = high_water_bytes()
frame, report = read_request_log(sys.argv[2], **kw)
print(json.dumps({"growth": high_water_bytes() - base, "frame": int(frame.memory_usage(deep=True).sum()),
                  "rows": report.rows}))
"""


def _request_parquet(path, n, seed=0):
    rng = np.random.default_rng(seed)
    pq.write_table(pa.table({
        "ts": 1714521600000 + np.cumsum(rng.exponential(1.0, n)).astype("int64"),
        "endpoint": pa.array(np.array(["GET /a", "GET /b", "POST /c", "GET /d"])[rng.integers(0, 4, n)]),
        "service": pa.array(np.array(["api", "db"])[rng.integers(0, 2, n)]),
        "duration_ms": rng.exponential(20.0, n).round(3),
        "status": rng.choice([200, 200, 200, 404, 500], n).astype("int16"),
        "bytes_out": rng.integers(100, 100_000, n),
        "user": pa.array(np.char.add("u", rng.integers(0, 100_000, n).astype(str))),
        "unused": rng.random(n),  # not mapped, so never read
    }), path, row_group_size=200_000)  # Parquet streams a row group at a time, no finer
    return path


@pytest.fixture(scope="module")
def million_row_read(tmp_path_factory):
    if not Path("/proc/self/status").exists():
        pytest.skip("peak memory is read from /proc (Linux)")
    folder = tmp_path_factory.mktemp("memory")
    small, big = _request_parquet(folder / "small.parquet", 1000), _request_parquet(folder / "big.parquet", 1_000_000)
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(small), str(big)], capture_output=True, text=True,
                         check=True, timeout=120)
    return {**json.loads(out.stdout), "file": big.stat().st_size}


def test_a_million_row_parquet_costs_a_small_multiple_of_its_frame(million_row_read):
    m = million_row_read
    assert m["rows"] == 1_000_000
    assert m["growth"] < 4 * m["frame"], f"peak growth {m['growth'] / 1e6:.0f} MB for a {m['frame'] / 1e6:.0f} MB frame"


def test_a_million_row_parquet_needs_less_than_ten_times_its_size(million_row_read):
    m = million_row_read
    assert m["growth"] < 10 * m["file"], f"peak growth {m['growth'] / 1e6:.0f} MB for a {m['file'] / 1e6:.0f} MB file"
