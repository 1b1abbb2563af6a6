"""Saved forecast models are data: every kind comes back bit for bit, and nothing in a file runs."""

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.forecast import saved
from twin.forecast.base import Covariates, History
from twin.forecast.baselines import SeasonalNaive, StatsBaseline
from twin.forecast.calibrate import Recalibration
from twin.forecast.events import EventAdjusted
from twin.forecast.select import Ensemble, _EnsembleFit
from twin.spec import TwinError

TINY_LSTM = dict(horizon=24, lookback=48, hidden=8, epochs=2, batch_size=32, windows_per_epoch=64,
                 max_train_seconds=None, members=2)


def history_and_events(days=15):
    idx = pd.date_range("2026-03-02", periods=24 * days, freq="h", tz="UTC")
    rng = np.random.default_rng(3)
    flag = np.zeros(len(idx) + 24)
    flag[[30, 31, 200, 201, 370]] = 1.0
    y = 50 + 20 * np.sin(2 * np.pi * np.arange(len(idx)) / 24) + rng.normal(0, 2, len(idx))
    y *= 1 + flag[:len(idx)]
    full = pd.date_range(idx[0], periods=len(idx) + 24, freq="h", tz="UTC")
    cov = Covariates(pd.DataFrame({"event_campaign": flag}, index=full), known=("event_campaign",))
    return History(pd.DataFrame({"requests_per_s": y}, index=idx)), cov


@pytest.fixture(scope="module")
def fits():
    from twin.forecast.lstm import LSTMForecaster

    h, cov = history_and_events()
    naive = SeasonalNaive("daily").fit(h, cov)
    mstl = StatsBaseline().fit(h, cov)
    events = EventAdjusted(SeasonalNaive("longest")).fit(h, cov)
    lstm = LSTMForecaster(**TINY_LSTM).fit(h, cov, seed=4)
    members = (EventAdjusted(StatsBaseline()), LSTMForecaster(**TINY_LSTM), SeasonalNaive("longest"))
    ensemble = _EnsembleFit(Ensemble(members), (EventAdjusted(StatsBaseline()).fit(h, cov), lstm, events))
    return h, cov, {"seasonal_naive": naive, "statistical": mstl, "events": events, "lstm": lstm, "ensemble": ensemble}


def dump(fitted, h, recal=None):
    return saved.dumps(fitted, model=fitted.name, horizon=24, trained_until=h.values.index[-1], step=h.step,
                       targets=h.targets, recalibration=recal)


@pytest.mark.parametrize("kind", ["seasonal_naive", "statistical", "events", "lstm", "ensemble"])
def test_every_kind_of_model_comes_back_with_the_same_forecast_bit_for_bit(fits, kind):
    h, cov, fitted = fits
    before = fitted[kind].predict(h, 24, cov)
    back = saved.loads(dump(fitted[kind], h), "m.npz")
    after = back.fitted.predict(h, 24, cov)
    assert after.model == before.model and after.notes == before.notes and after.quantiles == before.quantiles
    for t in before.values:
        assert np.array_equal(after.values[t], before.values[t])
    assert back.model == fitted[kind].name and back.step == h.step and back.targets == h.targets


def test_the_recalibration_comes_back_and_a_file_round_trip(fits, tmp_path):
    h, cov, fitted = fits
    recal = Recalibration((0.05, 0.1, 0.5, 0.9, 0.95), {"requests_per_s": np.array([1.5, 1.2, 1.0, 0.8, 1.1])}, 6)
    saved.save(tmp_path / "m.npz", fitted["seasonal_naive"], model="seasonal_naive_daily", horizon=24,
               trained_until=h.values.index[-1], step=h.step, targets=h.targets, recalibration=recal)
    back = saved.load(tmp_path / "m.npz")
    fc = fitted["seasonal_naive"].predict(h, 24)
    assert np.array_equal(back.recalibration.apply(fc).values["requests_per_s"],
                          recal.apply(fc).values["requests_per_s"])
    assert back.recalibration.windows == 6 and back.horizon == 24 and back.trained_until == h.values.index[-1]


class Touch:
    """Unpickling it creates ``path``: the proof that code from a file ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (Path(self.path),)


def refused(data: bytes, match: str):
    with pytest.raises(TwinError, match=match) as e:
        saved.loads(data, "bad.npz")
    assert str(e.value).startswith("bad.npz: ") and "\n" not in str(e.value)


def test_a_pickle_random_bytes_a_truncated_or_foreign_file_is_refused_without_running_anything(fits, tmp_path):
    h, _, fitted = fits
    marker = tmp_path / "ran"
    refused(pickle.dumps({"model": "lstm", "fitted": Touch(marker)}), "not a forecast model written by")
    refused(np.random.default_rng(0).bytes(4000), "not an .npz archive")
    good = dump(fitted["events"], h)
    for cut in (len(good) // 2, len(good) - 30, 10):
        refused(good[:cut], "not a forecast model written by")
    refused(json.dumps({"format": saved.FORMAT, "version": 1}).encode(), "not an .npz archive")
    buf = io.BytesIO()
    np.savez(buf, data=np.arange(3.0))
    refused(buf.getvalue(), "no header")
    refused(rewritten_raw(good, b"[" * 100_000), "not a forecast model written by")  # nesting past recursion
    assert not marker.exists()


def test_an_array_header_claiming_more_than_its_data_is_refused_before_any_allocation(fits):
    h, _, fitted = fits
    good = dump(fitted["seasonal_naive"], h)
    with np.load(io.BytesIO(good), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, a in arrays.items():
            member = io.BytesIO()
            if k == "a0":  # claims 10**12 floats (8 TB), holds a few
                np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False,
                                                              "shape": (10**12,)})
                member.write(a.tobytes())
            else:
                np.lib.format.write_array(member, a)
            z.writestr(f"{k}.npy", member.getvalue())
    refused(buf.getvalue(), "a0.npy: its header claims more data than it holds")


def rewritten_raw(data: bytes, header: bytes) -> bytes:
    """The archive with its header bytes replaced."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    buf = io.BytesIO()
    np.savez(buf, **{**arrays, "header": np.frombuffer(header, np.uint8)})
    return buf.getvalue()


def rewritten(data: bytes, edit) -> bytes:
    """The archive with its header JSON edited by ``edit`` and its arrays kept."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("header").tobytes())
    edit(header)
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return buf.getvalue()


def test_another_format_version_or_an_unknown_kind_is_refused(fits):
    h, _, fitted = fits
    good = dump(fitted["seasonal_naive"], h)
    refused(rewritten(good, lambda d: d.update(version=2)), "format version 2; this twin reads version 1")
    refused(rewritten(good, lambda d: d["fitted"].update(kind="exec")), "unknown model kind 'exec'")
    refused(rewritten(good, lambda d: d["fitted"].update(m="7")), "m: expected a whole number")
    lstm = dump(fitted["lstm"], h)
    refused(rewritten(lstm, lambda d: d["fitted"]["nets"][0]["sizes"].update(hidden=10**6)),
            "weights do not match its sizes")


def test_an_object_array_is_refused_and_its_code_never_runs(fits, tmp_path):
    h, _, fitted = fits
    marker = tmp_path / "ran"
    with np.load(io.BytesIO(dump(fitted["seasonal_naive"], h)), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["a0"] = np.array([Touch(marker)], dtype=object)  # the errors the model reads first
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    crafted = buf.getvalue()
    refused(crafted, "a0.npy holds Python objects, which a saved model never has")
    assert not marker.exists()
    np.load(io.BytesIO(crafted), allow_pickle=True)["a0"]  # the control: a pickle loader would run it
    assert marker.exists()
