"""CSD digit statistics of trained weights and how the hls4ml-style model uses them."""
import numpy as np
import pytest

from boards import get_board
from hw_models import DenseLayer, Design, DesignError, estimate
from hw_models.coefficients import load_coefficients
from hw_models.design import design_from_mapping
from hw_models.hls4ml import weight_density
from hw_models.weights import csd_digit_counts, csd_digits, mean_csd_digits


def _naf_digits(v: int) -> int:
    """Reference: build the non-adjacent form digit by digit."""
    v, digits = abs(v), []
    while v:
        if v % 2:
            d = 2 - (v % 4)  # +1 or -1
            v -= d
        else:
            d = 0
        digits.append(d)
        v //= 2
    assert all(not (a and b) for a, b in zip(digits, digits[1:]))  # non-adjacent
    return sum(1 for d in digits if d)


def test_csd_digits_match_the_non_adjacent_form():
    values = np.arange(-5000, 5001)
    assert csd_digit_counts(values).tolist() == [_naf_digits(int(v)) for v in values]
    assert [csd_digits(int(v)) for v in values] == [_naf_digits(int(v)) for v in values]
    assert csd_digits(2 ** 70 - 1) == 2  # Python integers of any width: 2^70 - 1
    assert csd_digit_counts([[0, 1], [7, -8]]).tolist() == [[0, 1], [2, 1]]  # 7 = 8 - 1
    assert mean_csd_digits([0, 0, 3, -1]) == 0.75


def test_mean_csd_digits_rejects_non_integers_and_empty():
    with pytest.raises(ValueError, match="integers"):
        mean_csd_digits([0.5, 1.0])
    with pytest.raises(ValueError, match="no weights"):
        mean_csd_digits([])


def _dense(csd=None, rf=None, w=2):
    return DenseLayer(in_features=64, out_features=16, weight_bits=w, act_bits=2, reuse_factor=rf, csd_digits=csd)


def test_constant_multipliers_scale_with_the_trained_weights_csd_digits():
    board, coeffs = get_board("pynq-z2"), load_coefficients("yosys-xc7")
    rules = coeffs.section("hls4ml", "rules")
    typical = rules["typical_csd_digits"][2]

    def lut(layer):
        return estimate(Design(layers=(layer,), style="hls4ml"), board, coeffs).total.lut

    assert weight_density(_dense(), 1, rules) == 1.0
    assert lut(_dense(csd=typical)) == pytest.approx(lut(_dense()))  # typical weights: the shape-only model
    sparse, dense = lut(_dense(csd=typical / 2)), lut(_dense(csd=2 * typical))
    assert sparse < lut(_dense()) < dense
    # weights in a ROM (reuse factor > 1): every multiplier is built, whatever the weights
    assert weight_density(_dense(csd=0.1, rf=4), 4, rules) == 1.0
    assert lut(_dense(csd=0.1, rf=4)) == lut(_dense(rf=4))


def test_design_files_carry_csd_digits_and_reject_impossible_values():
    doc = {"style": "hls4ml", "layers": [{"kind": "dense", "in": 8, "out": 4, "weight_bits": 4, "act_bits": 4,
                                          "csd_digits": 0.9}]}
    design, _ = design_from_mapping(doc)
    assert design.layers[0].csd_digits == 0.9
    for bad, message in ((3, "between 0 and 2"), (-0.1, "between 0"), (True, "expected a number")):
        doc["layers"][0]["csd_digits"] = bad
        with pytest.raises(DesignError, match=message):
            design_from_mapping(doc)
    doc["layers"][0].update(weight_bits=32, csd_digits=1.0)
    with pytest.raises(DesignError, match="float weights"):
        design_from_mapping(doc)


def test_with_csd_digits_skips_pools_and_checks_the_count():
    from hw_models.design import ConvLayer, MaxPoolLayer
    d = Design(layers=(ConvLayer(in_ch=1, out_ch=4, kernel=3, in_dim=8, weight_bits=2, act_bits=2),
                       MaxPoolLayer(channels=4, in_dim=6, pool=2), _dense(w=2)), style="hls4ml")
    out = d.with_csd_digits([0.5, None])
    assert out.layers[0].csd_digits == 0.5 and out.layers[2].csd_digits is None
    with pytest.raises(DesignError, match="2 layers with weights"):
        d.with_csd_digits([0.5])
