"""Hostile YAML: every file twin reads gets one clear line naming the file, never a hang or a traceback."""

import pytest

from tests.conftest import MINIMAL, MODELS
from twin.spec import SpecError, TwinError, load_model
from twin.spec.safeyaml import MAX_ALIAS_EXPANSION, MAX_BYTES, MAX_DEPTH

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))


def error(path, **kw) -> str:
    with pytest.raises(TwinError) as info:
        load_model(path, **kw)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_billion_laughs_is_refused_at_once(write_yaml):
    assert len(LAUGHS) < 400
    path = write_yaml(LAUGHS)
    text = error(path)
    assert text.startswith(f"{path}:") and f"aliases expand to more than {MAX_ALIAS_EXPANSION} values" in text


def test_billion_laughs_in_experiment_scenario_and_override(write_yaml, tmp_path, capsys):
    from twin.cli import main
    from twin.pipeline import load_experiment

    path = write_yaml(LAUGHS, "experiment.yaml")
    with pytest.raises(TwinError, match="aliases expand"):
        load_experiment(path)
    profile = tmp_path / "profile.csv"
    profile.write_text("timestamp,requests_per_s\n2026-01-01T00:00:00Z,1\n2026-01-01T00:05:00Z,1\n")
    assert main(["synth", str(profile), "--model", str(MODELS / "validation" / "mm1.yaml"),
                 "--scenario", str(path), "-o", str(tmp_path / "w.parquet")]) == 2
    assert f"{path}:" in capsys.readouterr().err
    laughs_inline = "{" + LAUGHS.strip().replace("\n", ", ") + "}"
    with pytest.raises(SpecError, match="--set: services.server.workers: expected a YAML value"):
        load_model(MODELS / "validation" / "mm1.yaml", sets=[f"services.server.workers={laughs_inline}"])


def test_aliases_that_stay_small_still_work(write_yaml):
    text = MINIMAL.replace("services:", "x-time: &t {dist: exponential, mean: 0.01}\nservices:")
    text = text.replace("service_time_s: {dist: exponential, mean: 0.01}", "service_time_s: *t")
    with pytest.raises(SpecError, match="x-time"):  # the anchor's home is an unknown field, but the alias is read
        load_model(write_yaml(text))
    model = load_model(write_yaml(text.replace("x-time: &t {dist: exponential, mean: 0.01}\n", "").replace(
        "service_time_s: *t", "service_time_s: &t {dist: exponential, mean: 0.01}")))
    assert model.services["api"].service_time_s.mean() == pytest.approx(0.01)


def test_an_alias_cycle_is_refused(write_yaml):
    assert "refers to its own anchor" in error(write_yaml("name: &a [*a]\n"))


def test_nul_byte_names_file_and_line(write_yaml):
    path = write_yaml("name: tiny\nclasses:\x00\n")
    assert error(path) == f"{path}:2: not valid YAML: the character #x0000 is not allowed in YAML"


@pytest.mark.parametrize("opening,closing", [("[", "]"), ("{a: ", "}")])
def test_ten_thousand_nested_brackets(write_yaml, opening, closing):
    path = write_yaml("name: " + opening * 10_000 + closing * 10_000 + "\n")
    assert error(path) == f"{path}:1: not valid YAML: nested deeper than {MAX_DEPTH} levels"


@pytest.mark.parametrize("value,expected", [
    ("2020-13-45", "month must be in 1..12"),
    ("1" * 5000, "integer string conversion"),
])
def test_values_the_constructor_cannot_build(write_yaml, value, expected):
    path = write_yaml(f"name: tiny\nbuilt: {value}\n")
    text = error(path)
    assert text.startswith(f"{path}:2: not valid YAML: cannot read this value") and expected in text


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.truncate(MAX_BYTES + 1)
    assert error(path) == f"{path}: {MAX_BYTES + 1} bytes; the most a YAML file may hold is {MAX_BYTES}"


def test_python_tags_are_never_constructed(write_yaml):
    path = write_yaml("name: !!python/object/apply:os.system ['echo hi']\n")
    assert "not valid YAML" in error(path)


def test_events_calendar_yaml_is_bounded_too(tmp_path):
    from twin.forecast.covariates import CovariateError, read_events

    rows = ['  - {type: campaign, start: 2020-01-01, end: 2020-01-02, name: &a ["lol","lol","lol","lol","lol"]}']
    rows += [f"  - {{type: campaign, start: 2020-01-01, end: 2020-01-02, name: &{n} [{','.join([f'*{p}'] * 9)}]}}"
             for p, n in zip("abcdefgh", "bcdefghi")]
    path = tmp_path / "events.yaml"
    path.write_text("events:\n" + "\n".join(rows) + "\n")
    with pytest.raises(CovariateError, match=f"{path}:\\d+: not valid YAML: aliases expand"):
        read_events(path)
    path.write_text("events: " + "[" * 10_000 + "]" * 10_000 + "\n")
    with pytest.raises(CovariateError, match=f"{path}:1: not valid YAML: nested deeper"):
        read_events(path)
    path.write_text("- {type: launch, start: 2026-01-01, end: 2026-01-02}\n")  # dates stay text, read in the zone
    assert str(read_events(path, time_zone="UTC")["start"].iloc[0]) == "2026-01-01 00:00:00+00:00"
