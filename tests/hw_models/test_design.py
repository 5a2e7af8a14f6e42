import pytest

from hw_models import DesignError, design_from_mapping
from hw_models.design import ConvLayer, DenseLayer, MaxPoolLayer, shape_warnings, valid_reuse_factor

CONTRACT_EXAMPLE = {
    "board": "pynq-z2", "style": "finn", "clock_mhz": 100, "input_bits": 8,
    "layers": [
        {"kind": "dense", "in": 832, "out": 1024, "weight_bits": 1, "act_bits": 1, "pe": 32, "simd": 64},
        {"kind": "conv", "in_ch": 64, "out_ch": 128, "kernel": 3, "in_dim": 14, "stride": 1,
         "weight_bits": 2, "act_bits": 2, "pe": 16, "simd": 32},
        {"kind": "maxpool", "channels": 128, "in_dim": 12, "pool": 2},
        {"kind": "dense", "in": 512, "out": 10, "weight_bits": 2, "act_bits": 32, "pe": 2, "simd": 8},
    ],
}


def test_contract_example_parses():
    design, board = design_from_mapping(CONTRACT_EXAMPLE)
    assert board == "pynq-z2"
    assert [l.kind for l in design.layers] == ["dense", "conv", "maxpool", "dense"]
    conv = design.layers[1]
    assert isinstance(conv, ConvLayer) and conv.out_dim == 12 and conv.mw == 9 * 64
    assert design.input_bits_per_layer() == [8, 1, 2, 2]
    # the example's layers do not chain: a note, not an error
    assert len(shape_warnings(design)) == 2


def test_board_argument_overrides_file():
    _, board = design_from_mapping(CONTRACT_EXAMPLE, board="zcu104")
    assert board == "zcu104"


@pytest.mark.parametrize("layer,match", [
    ({"kind": "dense", "in": 64, "out": 10, "weight_bits": 4, "act_bits": 4, "pe": 3}, r"pe=3 does not divide.*valid: \[1, 2, 5, 10\]"),
    ({"kind": "dense", "in": 64, "out": 10, "weight_bits": 4, "act_bits": 4, "simd": 5}, "simd=5 does not divide the 64 inputs"),
    ({"kind": "conv", "in_ch": 6, "out_ch": 8, "kernel": 3, "in_dim": 8, "weight_bits": 4, "act_bits": 4, "simd": 4},
     "simd=4 does not divide the 6 input channels"),
    ({"kind": "dense", "in": 64, "out": 10, "weight_bits": 7, "act_bits": 4}, "not an allowed bit-width"),
    ({"kind": "dense", "in": 64, "out": 10, "weight_bits": 4}, "missing key"),
    ({"kind": "dense", "in": 64, "out": 10, "weight_bits": 4, "act_bits": 4, "foo": 1}, "unknown key"),
    ({"kind": "lstm"}, "kind"),
    ({"kind": "conv", "in_ch": 1, "out_ch": 8, "kernel": 9, "in_dim": 8, "weight_bits": 4, "act_bits": 4}, "does not fit"),
    ({"kind": "dense", "in": 0, "out": 10, "weight_bits": 4, "act_bits": 4}, "must be >= 1"),
])
def test_invalid_layers_are_clear_errors(layer, match):
    with pytest.raises(DesignError, match=match):
        design_from_mapping({"layers": [layer]})


def test_style_specific_knobs():
    with pytest.raises(DesignError, match="reuse_factor is an hls4ml-style knob"):
        design_from_mapping({"layers": [{"kind": "dense", "in": 4, "out": 4, "weight_bits": 4, "act_bits": 4,
                                         "reuse_factor": 2}]})
    with pytest.raises(DesignError, match="not valid for 64 inputs x 10 outputs"):
        design_from_mapping({"style": "hls4ml", "layers": [
            {"kind": "dense", "in": 64, "out": 10, "weight_bits": 4, "act_bits": 4, "reuse_factor": 3}]})
    with pytest.raises(DesignError, match="style"):
        design_from_mapping({"style": "vitis", "layers": []})


def test_reuse_factor_rule_matches_hls4ml():
    from hls4ml.backends.fpga.fpga_backend import FPGABackend
    for n_in, n_out in [(64, 10), (16, 16), (10, 64), (7, 3), (100, 32)]:
        for rf in range(1, n_in * n_out + 1):
            assert valid_reuse_factor(n_in, n_out, rf) == bool(FPGABackend._validate_reuse_factor(None, n_in, n_out, rf)), (n_in, n_out, rf)


def test_layer_geometry():
    assert DenseLayer(64, 10, 4, 4).params == 640
    assert MaxPoolLayer(8, 7, 2).out_dim == 3
    assert ConvLayer(3, 8, 3, 10, 4, 4, stride=2, padding=1).out_dim == 5
