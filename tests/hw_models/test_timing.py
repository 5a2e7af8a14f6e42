"""The Fmax model: features of a fully parallel design, the least-squares fit, where it applies, and the
analytic estimate at the estimated Fmax on place-and-route families."""
import math

import pytest

import hw_models.timing as timing
from boards import get_board
from hw_models import estimate
from hw_models.design import Design, DenseLayer
from hw_models.timing import TimingModel, adder_levels, estimate_fmax, fit_timing, predict_fmax, timing_features


def mlp(style="hls4ml", rf=1, wbits=2, csd=None):
    rf = rf if style == "hls4ml" else None
    return Design(layers=(DenseLayer(64, 16, wbits, 2, reuse_factor=rf, csd_digits=csd),
                          DenseLayer(16, 10, wbits, 32, reuse_factor=rf)), style=style, input_bits=8)


def test_features_of_a_two_layer_mlp():
    f = timing_features(mlp(wbits=1))
    assert f["intercept"] == 1.0
    assert f["stage_levels"] == 5  # 64 one-digit terms: 6 levels, da4ml cuts a stage every 5
    assert f["acc_bits"] == 8 + 1 + 6  # input bits + weight bits + log2(64)
    assert f["log2_terms"] == pytest.approx(math.log2(64 * 16 + 16 * 10))
    assert f["log2_bit_terms"] == pytest.approx(math.log2(64 * 16 * 8 + 16 * 10 * 2))  # layer 2 reads 2-bit ReLUs
    assert f["layers"] == 2 and f["weight_bits"] == 1
    assert adder_levels(16, None, 1) == 4 and adder_levels(64, 0.5, 2) == 5


def test_fit_recovers_a_linear_period():
    truth = {"intercept": 4.0, "acc_bits": 0.2, "log2_terms": 0.3}
    rows = []
    for terms in (8, 9, 11, 12):
        for acc in (10, 14, 18):
            f = {"intercept": 1.0, "stage_levels": 5, "acc_bits": acc, "log2_terms": terms + acc % 5}
            rows.append((f, 1000 / sum(truth[k] * f[k] for k in truth)))
    model = fit_timing("ecp5", rows, features=tuple(truth))
    assert model.coefficients == pytest.approx(truth, abs=1e-3)
    assert set(fit_timing("ecp5", rows, features=("intercept", "acc_bits")).coefficients) == {"intercept", "acc_bits"}
    assert model.max_mhz == pytest.approx(max(m for _, m in rows), abs=0.1) and model.samples == 12
    assert predict_fmax(model, rows[0][0]) == pytest.approx(rows[0][1], rel=1e-3)


def test_fmax_applies_to_place_and_route_families_and_fully_parallel_designs(monkeypatch):
    model = TimingModel("ecp5", {"intercept": 10.0, "acc_bits": 0.1, "log2_terms": 0.0}, 150.0)
    monkeypatch.setattr(timing, "timing_models", lambda: {"ecp5": model})
    assert estimate_fmax(mlp(), "xc7") == (None, None)  # Xilinx: the board clock is assumed
    fmax, why = estimate_fmax(mlp(), "ecp5")
    assert why is None and fmax == pytest.approx(1000 / (5 + 5 + 0.1 * 16), abs=0.1)
    assert estimate_fmax(mlp(style="finn"), "ecp5")[1].startswith("the Fmax model covers fully parallel")
    assert "reuse factor 1" in estimate_fmax(mlp(rf=4), "ecp5")[1]
    est = estimate(mlp(), get_board("ulx3s-85f"))
    assert est.fmax_mhz == fmax and est.clock_mhz == fmax and est.fps == pytest.approx(fmax * 1e6)
    xilinx = estimate(mlp(), get_board("pynq-z2"))
    assert xilinx.fmax_mhz is None and xilinx.clock_mhz == 100
    finn = estimate(mlp(style="finn"), get_board("ulx3s-85f"))
    assert finn.fmax_mhz is None and finn.clock_mhz == 100 and any("board clock is assumed" in n for n in finn.notes)


def test_shipped_models_cover_place_and_route_families_only():
    from boards import FAMILIES
    for family, model in timing.timing_models().items():
        assert FAMILIES[family].fmax == "place-and-route"
        assert model.samples >= 4 and 10 < model.max_mhz < 1000
