"""Calibration recovers known coefficients from synthetic 'synthesis' data and reports its error."""
import itertools
import random

import pytest

from boards import get_board
from hw_models import DenseLayer, Design, estimate
from hw_models.calibrate import Calibrator, Sample, metrics, split
from hw_models.coefficients import calibration_document, coefficients_with, load_coefficients

BOARD = get_board("pynq-z2")
TRUE = {"finn.mvau.lut.const": 120.0, "finn.mvau.lut.logic": 0.7, "finn.mvau.lut.lutram": 1.4,
        "finn.mvau.ff.const": 60.0, "finn.mvau.ff.regs": 1.8}


def _samples(noise=0.02, seed=0):
    truth = coefficients_with(load_coefficients(), TRUE, name="truth")
    rng = random.Random(seed)
    out = []
    for n_in, n_out, w, a, pe, simd in itertools.product([16, 64, 128], [8, 32], [2, 4, 8], [1, 2, 4], [1, 4], [1, 8]):
        if n_out % pe or n_in % simd:
            continue
        design = Design(layers=(DenseLayer(n_in, n_out, w, a, pe=pe, simd=simd),))
        t = estimate(design, BOARD, truth).total
        measured = {"lut": round(t.lut * (1 + rng.gauss(0, noise))), "ff": round(t.ff * (1 + rng.gauss(0, noise))),
                    "bram18": t.bram18, "dsp": t.dsp}
        out.append(Sample(design, BOARD, measured, name=f"{n_in}x{n_out}"))
    return out


def test_fit_recovers_known_coefficients_and_beats_the_analytic_model():
    samples = _samples()
    train, val = split(samples, 0.25, seed=1)
    cal = Calibrator(ridge=0.001).fit(train)
    for path, value in TRUE.items():
        assert cal.fitted_[path] == pytest.approx(value, rel=0.15), path
    before, after = Calibrator().score(val), cal.score(val)
    assert after["lut"].mape < 0.05 < before["lut"].mape
    assert after["ff"].mape < 0.05 < before["ff"].mape
    assert after["bram18"].mape == 0 and after["lut"].r2 > 0.95  # BRAM is exact by construction


def test_outliers_do_not_drag_the_fit():
    samples = _samples(noise=0.0)
    bad = [Sample(s.design, s.board, {**s.measured, "lut": s.measured["lut"] * 5}, s.name) for s in samples[:3]]
    cal = Calibrator(ridge=0.001).fit(bad + samples[3:])
    assert cal.fitted_["finn.mvau.lut.logic"] == pytest.approx(TRUE["finn.mvau.lut.logic"], rel=0.1)


def test_metrics_on_known_values():
    m = metrics([110, 90, 100], [100, 100, 100])
    assert m.n == 3 and m.mape == pytest.approx(2 / 30) and m.max_error == pytest.approx(0.1)
    assert metrics([1, 2, 3], [1, 2, 3]).r2 == 1.0


def test_calibration_document_round_trips(tmp_path):
    text = calibration_document({"finn.mvau.lut.const": 123.0}, {"family": "xc7", "samples": 9})
    path = tmp_path / "c.json"
    path.write_text(text)
    c = load_coefficients(str(path))
    assert c.section("finn", "mvau", "lut")["const"] == 123.0
    assert c.section("finn", "mvau", "lut")["logic"] == load_coefficients().section("finn", "mvau", "lut")["logic"]
    assert c.provenance["family"] == "xc7"
    design = Design(layers=(DenseLayer(64, 10, 4, 32, pe=1, simd=1),))
    assert estimate(design, BOARD, c).total.lut == estimate(design, BOARD).total.lut - 300 + 123


def test_unknown_coefficients_are_a_clear_error():
    with pytest.raises(ValueError, match="valid names: \\['analytic'"):
        load_coefficients("nope")
