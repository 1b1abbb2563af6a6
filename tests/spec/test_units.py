import pytest

from twin.spec.units import format_bytes, parse_bytes, parse_seconds


@pytest.mark.parametrize("text,expected", [
    ("512MiB", 512 * 2**20), ("1GiB", 2**30), ("1.5GB", 1_500_000_000), ("64KiB", 65536), ("100", 100),
    ("2k", 2048), (4096, 4096),
])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text,expected", [("250ms", 0.25), ("2s", 2.0), ("1.5", 1.5), ("3min", 180.0),
                                           ("10us", 1e-5), (0.5, 0.5)])
def test_parse_seconds(text, expected):
    assert parse_seconds(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["12 parsecs", "MiB", "1.5B", "", "--3"])
def test_parse_bytes_rejects(bad):
    with pytest.raises(ValueError, match="expected"):
        parse_bytes(bad)


def test_format_bytes_round_trip():
    for n in (512 * 2**20, 2**30, 1000, 65536):
        assert parse_bytes(format_bytes(n)) == n
