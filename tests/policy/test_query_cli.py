"""`twin policy query` as the report met it: an M/M/c database with regimes at 100 and 200 req/s.
Above the busiest it refuses (exit 1, saying which and what to do); between them it answers with
at least the quieter regime's capacity and the twin's check of the answer, printed and in JSON; a
failed check is exit 1 with its reason."""

import json

import pytest

from tests.conftest import mmc_model
from twin.cli import main
from twin.policy.store import PolicyStore
from twin.sweep.regimes import load_vector

MMC = mmc_model(1, 80).replace("targets: services.server.workers}", "targets: services.server.workers, "
                                                                      "monotone: increasing}")


@pytest.fixture
def db(tmp_path):
    (tmp_path / "mmc.yaml").write_text(MMC)

    def make(regimes=((100.0, 24), (200.0, 44))):
        url = f"sqlite:///{tmp_path / 'policy.db'}"
        with PolicyStore(url) as store:
            for rate, workers in regimes:
                load = {"requests_per_s": rate}
                store.record(model="mmc_sized", experiment="exp", regime=f"at-{rate:g}", load=load,
                             vector=load_vector(load), params={"workers": workers}, confidence=1.0, runs=[],
                             constraints={"latency_mean_s": 0.25})
        return url
    return make


def query(capsys, tmp_path, url, rate, *extra):
    code = main(["policy", "query", "--db", url, "--model-file", str(tmp_path / "mmc.yaml"), "--rate", str(rate),
                 "--check-window", "30", *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out


def test_a_query_above_the_busiest_regime_is_refused(db, tmp_path, capsys):
    code, out = query(capsys, tmp_path, db(), 400, "--max-distance", "3")
    assert code == 1 and "above the busiest stored regime, exp/at-200 (200 req/s)" in out and "--sweep" in out
    code, out = query(capsys, tmp_path, db(), 400, "--max-distance", "3", "--json")
    answer = json.loads(out)
    assert code == 1 and answer["params"] is None and answer["out_of_range"] == "above" and answer["check"] is None


def test_a_query_between_regimes_answers_with_a_passed_check(db, tmp_path, capsys):
    url = db()
    code, out = query(capsys, tmp_path, url, 150, "--json")
    answer = json.loads(out)
    assert code == 0 and answer["params"]["workers"] >= 44  # never below the busier regime's capacity
    check = answer["check"]
    assert check["passed"] and check["stable"] and check["rate"] == 150
    latency = check["constraints"]["latency_mean_s"]
    assert latency["met"] and latency["bound"] == 0.25 and latency["ci_high"] < 0.25
    code, out = query(capsys, tmp_path, url, 150)
    assert code == 0 and "check on the twin at 150 req/s (3 x 30 s): passed; stable by model arithmetic" in out
    assert "latency_mean_s" in out and "<= 0.25: met" in out


def test_a_failed_check_is_refused_with_its_reason(db, tmp_path, capsys):
    # a stored regime whose settings saturate the server at its own load (an old or hand-edited database)
    code, out = query(capsys, tmp_path, db(((100.0, 18), (200.0, 44))), 100)
    assert code == 1 and "refused: the check on the twin failed: unstable: server would be 1.11 busy" in out


def test_one_replication_gives_strict_json_without_an_interval(db, tmp_path, capsys):
    def no_nan(name):
        raise AssertionError(f"{name} is not JSON")

    code, out = query(capsys, tmp_path, db(), 150, "--check-replications", "1", "--json")
    latency = json.loads(out, parse_constant=no_nan)["check"]["constraints"]["latency_mean_s"]
    assert code == 0 and latency["met"] and latency["ci_low"] is None and latency["mean"] < 0.25
    code, out = query(capsys, tmp_path, db(), 150, "--check-replications", "1")
    assert code == 0 and "latency_mean_s" in out and "<= 0.25: met" in out and "95% CI" not in out
