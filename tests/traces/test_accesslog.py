"""Access logs: the real Apache sample, the formats, exact times, and every kind of bad line."""

import gzip
from pathlib import Path

import pandas as pd
import pytest

from twin.spec import TwinError
from twin.traces.accesslog import compile_format, default_class, read_access_log
from twin.traces.schema import COLUMNS, TraceError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "traces"
APACHE = FIXTURES / "apache_access_2000.log"
NGINX = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
         '"$http_referer" "$http_user_agent" $request_time')


def utc(text):
    return pd.Timestamp(text, tz="UTC")


def clf(path="/", *, time="10/Oct/2000:13:55:36 -0700", status=200, size="2326", user="-", method="GET", tail=""):
    return f'127.0.0.1 - {user} [{time}] "{method} {path} HTTP/1.1" {status} {size}{tail}'


@pytest.fixture
def log(tmp_path):
    def write(lines, name="access.log"):
        path = tmp_path / name
        if isinstance(lines, bytes):
            path.write_bytes(lines)
        else:
            path.write_text("".join(line + "\n" for line in lines))
        return path
    return write


def test_real_apache_sample_reads_without_a_bad_line():
    frame, report = read_access_log(APACHE)
    assert len(frame) == report.rows == 2000 and report.malformed == 0
    assert list(frame.columns) == list(COLUMNS) and all(frame[c].dtype == t for c, t in COLUMNS.items())
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["timestamp"].iloc[0] == utc("2015-05-17 10:05:00")
    first_line = frame[frame["bytes_out"] == 203023]  # line 1: 10:05:03 +0000, kibana-search.png
    assert first_line["timestamp"].iloc[0] == utc("2015-05-17 10:05:03")
    assert first_line["class"].iloc[0] == "GET /presentations"
    assert {"GET /presentations", "GET /blog", "GET /favicon.ico"} <= set(frame["class"].cat.categories)
    assert (frame["service"] == "web").all()
    assert frame["latency_s"].isna().all()
    assert any("no latency field" in w for w in report.warnings)
    assert (frame["error"] == (frame["status"] >= 500)).all()
    assert frame["session"].isna().all() and frame["trace_id"].isna().all()


def test_chunks_do_not_change_the_result():
    whole, _ = read_access_log(APACHE)
    chunked, _ = read_access_log(APACHE, chunk_lines=333)
    pd.testing.assert_frame_equal(whole.astype({"class": str}), chunked.astype({"class": str}))


def test_common_format_keeps_the_offset_exact(log):
    frame, report = read_access_log(log([clf("/apache_pb.gif", user="frank"), clf("/x", size="-")]),
                                    format="common")
    assert list(frame["timestamp"]) == [utc("2000-10-10 20:55:36")] * 2
    assert list(frame["session"]) == ["frank", pd.NA]
    assert list(frame["bytes_out"]) == [2326.0, 0.0]  # '-' is an empty body
    assert frame["bytes_in"].isna().all() and report.malformed == 0


def test_nginx_request_time_gives_latency(log):
    tail = ' "-" "curl/8.0" {}'
    path = log([clf("/api/users/7", tail=tail.format("0.125")), clf("/api/users/8", status=502, tail=tail.format("1.5"))])
    frame, report = read_access_log(path, format=NGINX, service="front")
    # nginx logs at completion: the 1.5 s request arrived first
    assert list(frame["latency_s"]) == [1.5, 0.125]
    assert list(frame["error"]) == [True, False]
    assert set(frame["class"]) == {"GET /api"} and set(frame["service"]) == {"front"}
    assert not any("latency" in w for w in report.warnings)


@pytest.mark.parametrize("field,written,seconds", [
    ("%D", "12500", 0.0125), ("%T", "2", 2.0), ("%{ms}T", "250", 0.25), ("%{us}T", "40", 40e-6),
])
def test_apache_latency_fields_and_their_units(log, field, written, seconds):
    frame, _ = read_access_log(log([clf(tail=f" {written}")]), format=f'%h %l %u %t "%r" %>s %b {field}')
    assert frame["latency_s"].iloc[0] == pytest.approx(seconds)


def test_request_length_and_bytes_sent(log):
    fmt = '$remote_addr - $remote_user [$time_local] "$request" $status $bytes_sent $request_length'
    frame, _ = read_access_log(log([clf(size="512", tail=" 300")]), format=fmt)
    assert frame["bytes_out"].iloc[0] == 512 and frame["bytes_in"].iloc[0] == 300


def test_upstream_times_add_up_and_lines_without_upstream_are_skipped(log):
    fmt = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent $upstream_response_time'
    frame, report = read_access_log(log([clf(tail=" 0.010, 0.020 : 0.005"), clf(tail=" -"), clf(tail=" 0.5")]),
                                    format=fmt)
    assert sorted(frame["latency_s"]) == pytest.approx([0.035, 0.5])
    assert any("no upstream response time" in w and "line 2" in w for w in report.warnings)


def test_different_offsets_are_a_warning_and_stay_exact(log):
    path = log([clf(time="31/Mar/2024:01:59:00 +0100"), clf(time="31/Mar/2024:03:01:00 +0200")])
    frame, report = read_access_log(path, format="common")
    assert list(frame["timestamp"]) == [utc("2024-03-31 00:59:00"), utc("2024-03-31 01:01:00")]
    assert any("+0100" in w and "+0200" in w for w in report.warnings)


def test_iso_and_epoch_times(log):
    iso = log(['1.2.3.4 2024-01-01T10:00:00+01:00 "GET / HTTP/1.1" 200'], name="iso.log")
    frame, _ = read_access_log(iso, format='$remote_addr $time_iso8601 "$request" $status')
    assert frame["timestamp"].iloc[0] == utc("2024-01-01 09:00:00")
    msec = log(['1704099600.123 "GET / HTTP/1.1" 200'], name="msec.log")
    frame, _ = read_access_log(msec, format='$msec "$request" $status')
    assert frame["timestamp"].iloc[0] == utc("2024-01-01 09:00:00.123")


def test_a_time_without_offset_needs_a_time_zone(log):
    fmt = '%h %{%Y-%m-%d %H:%M:%S}t "%r" %>s'
    path = log(['1.2.3.4 2024-07-01 12:00:00 "GET / HTTP/1.1" 200'])
    with pytest.raises(TraceError, match="time_zone"):
        read_access_log(path, format=fmt)
    frame, _ = read_access_log(path, format=fmt, time_zone="Europe/Paris")
    assert frame["timestamp"].iloc[0] == utc("2024-07-01 10:00:00")
    with pytest.raises(TraceError, match="unknown time zone"):
        read_access_log(path, format=fmt, time_zone="Mars/Olympus")


def test_malformed_lines_stop_the_read_with_their_line_numbers(log):
    path = log([clf(), "garbage", clf(), "", 'also "garbage"', clf()])
    with pytest.raises(TraceError) as info:
        read_access_log(path, format="common")
    message = str(info.value)
    assert "2 malformed line(s) (lines 2, 5)" in message and "--keep-going" in message
    assert "\n" not in message and isinstance(info.value, TwinError)


def test_keep_going_skips_them_into_the_report(log):
    frame, report = read_access_log(log([clf(), "garbage", clf(), "", "more garbage", clf()]),
                                    format="common", keep_going=True)
    assert len(frame) == report.rows == 3
    assert report.malformed == 2 and report.first_malformed == [2, 5]


def test_only_the_first_five_line_numbers_are_kept(log):
    with pytest.raises(TraceError, match=r"7 malformed line\(s\) \(lines 1, 2, 3, 4, 5, \.\.\.\)"):
        read_access_log(log(["bad"] * 7 + [clf()]), format="common")


def test_a_line_that_is_not_utf8_is_malformed(log):
    good = clf().encode() + b"\n"
    path = log(good + b'127.0.0.1 - caf\xe9 [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1\n' + good)
    with pytest.raises(TraceError, match=r"lines 2\)"):
        read_access_log(path, format="common")
    frame, report = read_access_log(path, format="common", keep_going=True)
    assert len(frame) == 2 and report.first_malformed == [2]


def test_a_date_that_does_not_exist_is_malformed(log):
    frame, report = read_access_log(log([clf(), clf(time="31/Feb/2000:13:55:36 -0700")]), format="common",
                                    keep_going=True)
    assert len(frame) == 1 and report.first_malformed == [2]


def test_lines_without_a_request_are_skipped_with_a_warning(log):
    timeout = '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "-" 408 0'
    frame, report = read_access_log(log([clf(), timeout]), format="common")
    assert len(frame) == 1 and report.malformed == 0
    assert any("no request line" in w and "line 2" in w for w in report.warnings)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(log, content):
    with pytest.raises(TraceError, match="empty file"):
        read_access_log(log(content))


def test_nothing_readable_even_with_keep_going(log):
    with pytest.raises(TraceError, match="no requests"):
        read_access_log(log(["bad", "worse"]), keep_going=True)


def test_wrong_format_for_the_file_names_the_format():
    with pytest.raises(TraceError, match="malformed.*not in the common log format"):
        read_access_log(FIXTURES / "nab_nyc_taxi_500.csv", format="common")


def test_combined_reads_a_common_log_as_malformed(log):
    with pytest.raises(TraceError, match="combined log format"):
        read_access_log(log([clf()]))


@pytest.mark.parametrize("fmt,expected", [
    ("json", "use 'common', 'combined'"),
    ("%h %u %>s", "needs a time"),
    ('%h %{%Y/%j}t "%r"', "not supported"),
    ('%h %t "%r" %{min}T', "not a duration unit"),
])
def test_bad_format_strings(log, fmt, expected):
    with pytest.raises(TraceError, match=expected):
        read_access_log(log([clf()]), format=fmt)


def test_missing_file_and_bad_gzip(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        read_access_log(tmp_path / "nope.log")
    fake = tmp_path / "fake.log.gz"
    fake.write_text(clf())
    with pytest.raises(TraceError, match="cannot read"):
        read_access_log(fake, format="common")


def test_gzip_log(tmp_path):
    path = tmp_path / "access.log.gz"
    with gzip.open(path, "wt") as f:
        f.write(clf() + "\n")
    frame, _ = read_access_log(path, format="common")
    assert len(frame) == 1


@pytest.mark.parametrize("method,target,expected", [
    ("GET", "/presentations/logstash/kibana.png", "GET /presentations"),
    ("GET", "/users?id=3", "GET /users"),
    ("GET", "/", "GET /"),
    ("DELETE", "/42/items", "DELETE /:id"),
    ("PUT", "/3f2b8c1e-0a4d-4c7b-9a1e-2b3c4d5e6f70/x", "PUT /:id"),
    ("GET", "http://example.com/api/v1?x", "GET /api"),
    ("OPTIONS", "*", "OPTIONS *"),
])
def test_default_classes(method, target, expected):
    assert default_class(method, target) == expected


def test_a_classifier_of_ones_own(log):
    path = log([clf("/api/v1/orders/17?full=1"), clf("/api/v1/users", method="POST")])
    frame, _ = read_access_log(path, format="common", classify=lambda m, p: f"{m} {p.split('?')[0].split('/')[3]}")
    assert sorted(frame["class"]) == ["GET orders", "POST users"]


@pytest.mark.parametrize("classify,expected", [
    (lambda m, p: 1 / 0, "classify.*failed"),
    (lambda m, p: None, "classify.*returned None, not a class name"),
])
def test_a_broken_classifier_is_a_trace_error(log, classify, expected):
    with pytest.raises(TraceError, match=f"line 1: {expected}"):
        read_access_log(log([clf()]), format="common", classify=classify)


@pytest.mark.parametrize("early_lines,warned", [(1, False), (3, True)])
def test_much_disorder_is_a_warning_and_the_trace_is_sorted(log, early_lines, warned):
    stamp = pd.Timestamp("2000-10-10 12:00:00")
    times = [stamp + pd.Timedelta(seconds=10 * i) for i in range(200)]
    for i in range(early_lines):  # lines stamped 2 minutes before their neighbours: > 60 s back in time
        times[50 + 50 * i] -= pd.Timedelta(minutes=2)
    frame, report = read_access_log(log([clf(time=t.strftime("%d/%b/%Y:%H:%M:%S +0000")) for t in times]),
                                    format="common")
    assert frame["timestamp"].is_monotonic_increasing
    message = [w for w in report.warnings if "before an earlier one" in w]
    assert bool(message) == warned
    if warned:
        assert message[0].startswith("3 of 200 requests (1.5%)")


def test_compiled_format_is_one_regex():
    fmt = compile_format(NGINX)
    assert fmt.latency == "lat_s" and fmt.time == ("clf", None)
    assert fmt.pattern.fullmatch(clf(tail=' "-" "-" 0.1'))


def test_nginx_logs_completion_time_so_arrival_is_one_latency_earlier(tmp_path):
    log = tmp_path / "nginx.log"
    log.write_text('10.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "GET /a HTTP/1.1" 200 10 "-" "-" 1.500\n')
    nginx = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
             '"$http_referer" "$http_user_agent" $request_time')
    frame, _ = read_access_log(log, format=nginx)
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2025-10-10T13:55:34.5Z")
    apache = tmp_path / "apache.log"
    apache.write_text('10.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "GET /a HTTP/1.1" 200 10 1500000\n')
    frame, _ = read_access_log(apache, format='%h %l %u %t "%r" %>s %b %D')
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2025-10-10T13:55:36Z")  # %t: when it was received
    frame, _ = read_access_log(apache, format='%h %l %u [%{end:%d/%b/%Y:%H:%M:%S %z}t] "%r" %>s %b %D')
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2025-10-10T13:55:34.5Z")
