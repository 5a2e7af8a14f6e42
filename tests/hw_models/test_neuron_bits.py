"""Per-neuron (per output channel) weight and activation bits of dense layers: the design contract and
the estimator (hls4ml style charges each neuron its own widths, FINN's MVAU the widest)."""
from dataclasses import replace

import pytest

from boards import get_board
from hw_models import estimate
from hw_models.coefficients import load_coefficients
from hw_models.design import DenseLayer, Design, DesignError, design_from_mapping, design_to_mapping
from hw_models.terms import coefficient

BOARD = get_board("pynq-z2")


def _design(wb=(4, 2, 2), ab=(4, 2, 2), style="hls4ml"):
    rf = 1 if style == "hls4ml" else None
    layers = (DenseLayer(4, 3, max(wb or (4,)), max(ab or (4,)), reuse_factor=rf, neuron_weight_bits=wb,
                         neuron_act_bits=ab),
              DenseLayer(3, 2, 2, 32, reuse_factor=rf))
    return Design(layers=layers, style=style, input_bits=2)


@pytest.mark.parametrize("style", ["hls4ml", "finn"])
@pytest.mark.parametrize("wb, ab", [((4, 4, 4), (4, 4, 4)), ((4, 4, 4), ()), ((), (4, 4, 4))])
def test_one_width_per_layer_is_the_uniform_estimate(style, wb, ab):
    per_neuron, uniform = estimate(_design(wb, ab, style), BOARD), estimate(_design((), (), style), BOARD)
    assert per_neuron.total == uniform.total
    assert [l.resources for l in per_neuron.per_layer] == [l.resources for l in uniform.per_layer]


def test_hls4ml_charges_each_neuron_its_widths_by_hand():
    """Layer 0: 4 inputs of 2 bits, neurons W4A4, W2A2, W2A2 at reuse factor 1; layer 1 reads them at
    4, 2, 2 bits. By hand (accumulator_bits: Colbert et al.): acc(4 x W2 x A2) = ceil(5 + log2(1 + 2**-5)
    + 1) = 7, acc(4 x W4 x A2) = ceil(7 + 0.011 + 1) = 9."""
    coeffs = load_coefficients("analytic")
    narrowed = _design().with_narrowed_inputs()
    l0, l1 = narrowed.layers
    t0, d0 = l0.hls4ml_terms(2, False, 1, "auto", coeffs)
    assert t0.linear["hls4ml.dense.lut.mac_w2"] == 2 * 8  # 2 neurons x 4 inputs x 2 bits
    assert t0.linear["hls4ml.dense.lut.mac_w4"] == 2 * 4
    assert t0.linear["hls4ml.dense.lut.adder_bits"] == 7 * 8 + 9 * 4
    assert t0.linear["hls4ml.dense.lut.requant"] == 15 + 3 + 3  # min(2**A - 1, 3 acc) per neuron
    assert d0["multipliers"] == 12 and d0["acc_bits"] == 9
    u0, _ = _design((), ()).layers[0].hls4ml_terms(2, False, 1, "auto", coeffs)
    assert (u0.linear["hls4ml.dense.lut.mac_w4"], u0.linear["hls4ml.dense.lut.adder_bits"],
            u0.linear["hls4ml.dense.lut.requant"]) == (24, 108, 45)
    # layer 1 reads 4 + 2 + 2 = 8 input bits instead of 3 x 4: its multipliers sum 8 bits x 2 outputs
    assert (l1.in_features, l1.in_bits_total) == (3, 8)
    t1, _ = l1.hls4ml_terms(4, False, 1, "auto", coeffs)
    assert t1.linear["hls4ml.dense.lut.mac_w2"] == pytest.approx(16)
    # layer 0's estimate drops by exactly these terms times their coefficients; layer 1's by its
    # narrower multipliers (and whatever its adder model makes of narrower inputs)
    c = {k: coefficient(coeffs, f"hls4ml.dense.lut.{k}") for k in ("mac_w2", "mac_w4", "adder_bits", "requant")}
    saved = c["mac_w4"] * (24 - 8) - c["mac_w2"] * 16 + c["adder_bits"] * (108 - 92) + c["requant"] * (45 - 21)
    per_neuron, uniform = estimate(_design(), BOARD), estimate(_design((), ()), BOARD)
    lut = [l.resources.lut for l in uniform.per_layer], [l.resources.lut for l in per_neuron.per_layer]
    assert lut[0][0] - lut[1][0] == pytest.approx(saved)
    assert lut[0][1] - lut[1][1] >= c["mac_w2"] * (24 - 16) - 1e-9
    assert per_neuron.total.lut < uniform.total.lut


def test_finn_charges_the_widest():
    assert estimate(_design(style="finn"), BOARD).total == estimate(_design((), (), style="finn"), BOARD).total


def test_round_trip_and_text():
    mapping = design_to_mapping(_design())
    assert mapping["layers"][0]["neuron_weight_bits"] == [4, 2, 2]
    assert "neuron_act_bits" not in mapping["layers"][1]
    again, _ = design_from_mapping(mapping)
    assert again == _design() and estimate(again, BOARD).total == estimate(_design(), BOARD).total
    assert _design().layers[0].parts()[1] == "W2-4A2-4"
    two = replace(_design().layers[1], out_features=2, neuron_weight_bits=(2, 2))  # no pair collapse
    assert two.to_mapping()["neuron_weight_bits"] == [2, 2]
    from hw_models.estimate import folded_design
    refolded, _ = design_from_mapping(design_to_mapping(folded_design(_design(), BOARD)))
    assert estimate(refolded, BOARD).total == estimate(_design(), BOARD).total


@pytest.mark.parametrize("layer0, match", [
    ({"neuron_weight_bits": [4, 2]}, r"layers\[0\].neuron_weight_bits: 2 values for a dense layer of 3 outputs"),
    ({"neuron_act_bits": [4, 1, 2]}, r"\['1'\] are not per-neuron bit-widths; valid: \[2, 3, 4, 5, 6, 8, 16\]"),
    ({"neuron_weight_bits": [2, 2, 2]}, "the widest neuron has 2 bits but weight_bits is 4"),
    ({"neuron_act_bits": 4}, "expected a non-empty list of bits per output neuron"),
])
def test_bad_neuron_bits(layer0, match):
    mapping = design_to_mapping(_design())
    mapping["layers"][0].update(layer0)
    with pytest.raises(DesignError, match=match):
        design_from_mapping(mapping)


def test_per_neuron_act_bits_need_a_dense_reader_of_as_many_inputs():
    mapping = design_to_mapping(_design())
    mapping["layers"][1]["in"] = 5
    with pytest.raises(DesignError, match=r"layers\[0\].neuron_act_bits: 3 values but layers\[1\] reads 5 inputs"):
        design_from_mapping(mapping)


def test_wide_neurons_go_to_dsps_and_narrow_ones_to_luts():
    coeffs = load_coefficients("analytic")
    layer = DenseLayer(4, 3, 16, 4, reuse_factor=1, neuron_weight_bits=(16, 2, 2), zero_fraction=0.25)
    t, detail = layer.hls4ml_terms(2, False, 1, "auto", coeffs)
    assert detail["multiplier_kind"] == "mixed" and detail["neuron_weight_bits"] == {"2": 2, "16": 1}
    assert t.linear["hls4ml.dense.lut.mac_w2"] == 2 * 8 and "hls4ml.dense.lut.mac_w16" not in t.linear
    assert detail["dsp_multipliers"] == 4 - 1  # one of the wide neuron's 4 weights is zero (0.25 x 4)
    assert t.resources(coeffs).dsp > 0
