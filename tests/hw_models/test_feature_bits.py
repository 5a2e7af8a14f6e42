"""Per-input-feature bits (0: the feature is dropped) in the design contract and the estimator."""
import pytest

from boards import get_board
from hw_models import estimate
from hw_models.coefficients import load_coefficients
from hw_models.design import DenseLayer, Design, DesignError, design_from_mapping, design_to_mapping

BITS = (4, 0, 2, 2, 0, 4)  # 4 of 6 features kept, 12 bits in all


def _design(feature_bits=BITS, style="hls4ml", **kw):
    layers = (DenseLayer(6, 3, 2, 2, reuse_factor=1 if style == "hls4ml" else None),
              DenseLayer(3, 2, 2, 32, reuse_factor=1 if style == "hls4ml" else None))
    return Design(layers=layers, style=style, input_bits=max(feature_bits), feature_bits=feature_bits, **kw)


def test_dense_terms_by_hand():
    """hls4ml dense at reuse factor 1: multipliers = kept inputs x outputs; the constant-multiplier term
    is the sum over multipliers of their input bits (12 bits x 3 outputs = 36), not 6 x 4 x 3 = 72;
    each input's adders are as wide as its own bits make the accumulator (the mean over inputs)."""
    coeffs = load_coefficients("analytic")
    narrowed = _design().with_narrowed_inputs().layers[0]
    assert (narrowed.in_features, narrowed.in_bits_total) == (4, 12)
    t, detail = narrowed.hls4ml_terms(4, False, 1, "auto", coeffs)
    assert detail["multipliers"] == 12
    assert t.linear["hls4ml.dense.lut.mac_w2"] == 36
    # alpha = log2(4 kept) + 2 + 4 (widest input) - 1 = 7; ceil(alpha + log2(1 + 2**-7) + 1) = 9
    assert detail["acc_bits"] == 9
    # adders: alpha = log2(4) + 2 + 3 (mean kept input bits, 12 / 4) - 1 = 6; ceil(6 + log2(1 + 2**-6) + 1) = 8
    assert t.linear["hls4ml.dense.lut.adder_bits"] == 8 * 12
    full = DenseLayer(6, 3, 2, 2).hls4ml_terms(4, False, 1, "auto", coeffs)[0]
    assert full.linear["hls4ml.dense.lut.mac_w2"] == 72


def test_estimate_uses_the_narrowed_first_layer_and_round_trips():
    board = get_board("pynq-z2")
    est = estimate(_design(), board)
    uniform = estimate(_design((4,) * 6), board)
    assert est.total.lut < uniform.total.lut
    assert est.per_layer[1].resources == uniform.per_layer[1].resources  # later layers are untouched
    # all features at input_bits is the design without per-feature bits
    plain = Design(layers=_design().layers, style="hls4ml", input_bits=4)
    assert uniform.total == estimate(plain, board).total
    mapping = design_to_mapping(_design())
    assert mapping["input_feature_bits"] == list(BITS)
    again, _ = design_from_mapping(mapping)
    assert again == _design() and estimate(again, board).total == est.total
    # a recorded (folded) design holds the narrowed layer: estimating it again gives the same numbers
    from hw_models.estimate import folded_design
    folded = folded_design(_design(), board)
    assert folded.layers[0].in_features == 4
    refolded, _ = design_from_mapping(design_to_mapping(folded))
    assert estimate(refolded, board).total == est.total


def test_finn_streams_the_widest_feature():
    board = get_board("pynq-z2")
    est = estimate(_design(style="finn"), board)
    assert est.per_layer[0].folding["simd"] in (1, 2, 4)  # SIMD divides the 4 kept inputs


@pytest.mark.parametrize("change, match", [
    ({"input_feature_bits": [4, 0, 7, 2, 0, 4]}, "not fixed-point bit-widths"),
    ({"input_feature_bits": [0] * 6}, "every feature is dropped"),
    ({"input_feature_bits": [4, 0, 2]}, "3 values for a dense layer of 6 inputs"),
    ({"input_bits": 8}, "widest feature has 4 bits but input_bits is 8"),
    ({"input_signed": True}, "unsigned inputs"),
])
def test_bad_feature_bits(change, match):
    mapping = {**design_to_mapping(_design()), **change}
    with pytest.raises(DesignError, match=match):
        design_from_mapping(mapping)


def test_uniform_feature_bits_give_exactly_the_uniform_estimate():
    """Every feature kept at the same width: the same numbers as a design without per-feature bits."""
    board = get_board("pynq-z2")
    for bits in (1, 2, 4, 8):
        for coeffs in ("analytic", "yosys-xc7"):
            per_feature = estimate(_design((bits,) * 6), board, coeffs)
            plain = estimate(Design(layers=_design((bits,) * 6).layers, style="hls4ml", input_bits=bits), board, coeffs)
            assert per_feature.total == plain.total
            assert [l.resources for l in per_feature.per_layer] == [l.resources for l in plain.per_layer]
