"""The memoised estimator gives the numbers of the uncached one, per coefficient set, with bounded memory."""
import itertools

import pytest

from boards import get_board
from hw_models import DenseLayer, Design, estimate
import importlib
from hw_models.coefficients import load_coefficients
from hw_models.design import ConvLayer, MaxPoolLayer
from hw_models.estimate import clear_caches
from hw_models.folding import allowed_reuse_factors
from hw_models import hls4ml

BOARD = get_board("pynq-z2")


def _designs():
    for style, w, a, fps in itertools.product(("finn", "hls4ml"), (1, 2, 4, 8), (1, 3), (None, 1e4, 1e6)):
        yield Design(style=style, input_bits=8, target_fps=fps, layers=(
            ConvLayer(in_ch=1, out_ch=8, kernel=3, in_dim=8, weight_bits=w, act_bits=a),
            MaxPoolLayer(channels=8, pool=2, in_dim=6),
            DenseLayer(in_features=72, out_features=32, weight_bits=w, act_bits=a),
            DenseLayer(in_features=32, out_features=10, weight_bits=w, act_bits=32)))


@pytest.mark.parametrize("coefficients", ["analytic", "yosys-xc7"])
def test_memoised_estimates_equal_cold_ones(coefficients):
    coeffs = load_coefficients(coefficients)
    designs = list(_designs())
    cold = []
    for d in designs:
        clear_caches(coeffs)
        cold.append(estimate(d, BOARD, coeffs).as_dict())
    clear_caches(coeffs)
    warm = [estimate(d, BOARD, coeffs).as_dict() for d in designs + designs][len(designs):]
    assert warm == cold
    assert len(coeffs.memo) > 0


def test_memo_is_per_coefficient_set():
    design = next(d for d in _designs() if d.style == "hls4ml")  # what yosys-xc7 calibrates
    analytic = estimate(design, BOARD, "analytic")
    calibrated = estimate(design, BOARD, "yosys-xc7")
    assert analytic.total.lut != calibrated.total.lut
    assert estimate(design, BOARD, "analytic").total == analytic.total


def test_memo_is_bounded(monkeypatch):
    coeffs = load_coefficients("analytic")
    clear_caches(coeffs)
    # hw_models re-exports the function estimate under the module's name
    monkeypatch.setattr(importlib.import_module("hw_models.estimate"), "MEMO_LIMIT", 5)
    for d in _designs():
        estimate(d, BOARD, coeffs)
        assert len(coeffs.memo) <= 5


def test_bisected_reuse_factor_is_the_largest_meeting_the_target():
    coeffs = load_coefficients("analytic")
    layer = ConvLayer(in_ch=4, out_ch=16, kernel=3, in_dim=10, weight_bits=4, act_bits=4)
    allowed = allowed_reuse_factors(layer, coeffs)
    for fps in (1e3, 1e4, 3e4, 1e5, 1e6, 1e8):
        d = Design(style="hls4ml", input_bits=8, target_fps=fps, layers=(layer,))
        rf = estimate(d, BOARD, coeffs).per_layer[0].folding["reuse_factor"]
        meeting = [r for r in allowed if hls4ml.layer_cycles(layer, r)[0] <= BOARD.clock_mhz * 1e6 / fps]
        assert rf == (meeting[-1] if meeting else allowed[0])
