"""Layer kinds and graph designs, against hand-computed cycles, memories and FIFOs."""
import pytest

from boards import get_board
from hw_models import DesignError, design_from_mapping, estimate
from hw_models.design import (LAYER_KINDS, AddLayer, ConvLayer, DenseLayer, DepthwiseConvLayer, Design,
                              GlobalAvgPoolLayer, design_to_mapping)
from hw_models.estimate import folded_design
from hw_models.finn import mvau_cycles

BOARD = get_board("pynq-z2")


def one(layer, *, style="finn", ram_style="auto", input_bits=4):
    return estimate(Design(layers=(layer,), style=style, input_bits=input_bits, ram_style=ram_style), BOARD)


def test_depthwise_conv_cycles_and_memories():
    # VVAU: (C/PE) * (K*K/SIMD) * output pixels = 8 * 3 * 32 * 32
    layer = DepthwiseConvLayer(channels=64, kernel=3, in_dim=32, padding=1, weight_bits=4, act_bits=4, pe=8, simd=3)
    assert mvau_cycles(layer, 8, 3) == 24576
    # its depthwise window generator (SIMD = PE = 8, 8 channel words per pixel, 34x34 padded):
    # buffer (2 * 34 + 3) * 8 = 568, then 32 rows of max(32 * 9 * 8, 34 * 8) = 2304 cycles
    assert layer.finn_cycles(8, 3) == 568 + 32 * 2304
    est = one(layer, ram_style="block")
    detail = est.per_layer[0].detail
    # weights: 64 * 9 / (8 * 3) = 24 words of 8 * 3 * 4 = 96 bits -> 3 RAMB18 (512 x 36)
    assert detail["vvau"]["weight_memory"] == {"depth": 24, "width_bits": 96, "count": 1, "style": "block",
                                               "mem_mode": "internal_decoupled"}
    # thresholds per PE: 64/8 = 8 words of 15 x 12-bit thresholds (acc: log2(9) + 4 + 4 - 1 -> 12 bits)
    assert detail["vvau"]["acc_bits"] == 12
    assert detail["vvau"]["threshold_memory"] == {"depth": 8, "width_bits": 180, "count": 8, "style": "block"}
    # window buffer: 568 words of 32 bits -> 2 RAMB18
    assert detail["swu"]["buffer"] == {"depth": 568, "width_bits": 32, "style": "block"}
    assert est.total.bram18 == 3 + 8 * 5 + 2


def test_global_average_pool():
    layer = GlobalAvgPoolLayer(channels=32, in_dim=8, pe=4)
    assert layer.finn_cycles(4, 1) == 8 * 8 * 32 // 4
    assert layer.out_bits(4) == 4 + 6  # the sum of 64 pixels
    est = one(layer, ram_style="block")
    # partial sums: 32 / 4 = 8 words of 4 x 10 bits -> 2 RAMB18 (512 x 36)
    assert est.per_layer[0].detail["sums"] == {"depth": 8, "width_bits": 40, "style": "block"}
    assert est.total.bram18 == 2
    assert one(layer).total.bram18 == 0  # 320 bits go to LUTRAM under ram_style auto


def residual(style="finn"):
    """stem conv -> two 3x3 convs -> add with the stem's output -> global pool -> classifier."""
    conv = dict(kind="conv", in_ch=16, out_ch=16, kernel=3, in_dim=8, padding=1, weight_bits=4, act_bits=4)
    return design_from_mapping({"style": style, "input_bits": 4, "layers": [
        dict(conv, in_ch=1, name="stem"),
        dict(conv, name="a"),
        dict(conv, name="b"),
        {"kind": "add", "shape": [16, 8, 8], "act_bits": 4, "inputs": ["stem", "b"], "name": "sum"},
        {"kind": "globalavgpool", "channels": 16, "in_dim": 8},
        {"kind": "dense", "in": 16, "out": 10, "weight_bits": 4, "act_bits": 32},
    ]})[0]


def test_residual_block_duplicates_the_stream_and_buffers_the_skip_path():
    design = residual()
    folded = folded_design(design, BOARD)
    assert [l.kind for l in folded.layers] == ["conv", "duplicate", "conv", "conv", "add", "globalavgpool", "dense"]
    assert folded.inputs[4] == (1, 3)  # the add reads the duplicate and the second conv
    est = estimate(design, BOARD)
    assert [l.kind for l in est.per_layer] == [l.kind for l in folded.layers]
    dup, add = est.per_layer[1], est.per_layer[4]
    assert dup.cycles == 8 * 8 * 16 and add.cycles == 8 * 8 * 16  # PE 1: one channel per cycle
    # the skip path waits for two 3x3 windows on the 10-pixel-wide padded rows: 2 * (2 * 10 + 3) pixels,
    # 16 words of 4 bits each -> 736 x 4 bits: deeper than 64 words and over 2048 bits -> 1 RAMB18 (4096 x 4)
    assert add.detail["skip_fifos"] == [{"input": 1, "depth": 736, "width_bits": 4, "style": "block"}]
    assert add.resources.bram18 == 1


def test_residual_block_hls4ml_has_no_duplicate_and_its_latency_is_the_longest_path():
    design = residual("hls4ml")
    est = estimate(design, BOARD)
    assert "duplicate" not in [l.kind for l in est.per_layer]
    lat = [l.latency_cycles for l in est.per_layer]
    # stem -> a -> b -> add -> pool -> dense is the longest path (the skip edge stem -> add is shorter)
    assert est.latency_cycles == sum(lat)
    chain = Design(layers=design.layers[:3], style="hls4ml", input_bits=4)
    assert estimate(chain, BOARD).latency_cycles == sum(lat[:3])


def test_graph_round_trips_through_the_contract():
    design = residual()
    again, _ = design_from_mapping(design_to_mapping(design))
    assert again == design


def test_conv1d_is_a_one_pixel_high_conv2d():
    layer, _ = design_from_mapping({"layers": [
        {"kind": "conv1d", "in_ch": 4, "out_ch": 8, "kernel": 5, "length": 64, "weight_bits": 4, "act_bits": 4}]})
    conv = layer.layers[0]
    assert conv == ConvLayer(in_ch=4, out_ch=8, kernel=(1, 5), in_dim=(1, 64), weight_bits=4, act_bits=4)
    assert conv.out_shape == (8, 1, 60)
    # MVAU 8 x 20 x 60 pixels at PE = SIMD = 1
    assert conv.finn_cycles(1, 1) == 8 * 20 * 60
    # PE 8, SIMD 4: MVAU 20/4 x 60 = 300; window generator: a 5-word buffer, then one row of
    # max(60 outputs x 5 taps, 64 inputs) words = 305
    assert conv.finn_cycles(8, 4) == 5 + max(60 * 5, 64)
    assert one(conv) == one(ConvLayer(in_ch=4, out_ch=8, kernel=(1, 5), in_dim=(1, 64), weight_bits=4, act_bits=4))


def test_non_square_conv_shapes():
    conv = ConvLayer(in_ch=2, out_ch=4, kernel=(3, 5), in_dim=(4, 10), weight_bits=2, act_bits=2, stride=(1, 2))
    assert conv.out_hw == (2, 3) and conv.mw == 15 * 2
    with pytest.raises(ValueError, match="not square"):
        conv.out_dim


@pytest.mark.parametrize("layers,match", [
    ([{"kind": "dense", "in": 4, "out": 4, "weight_bits": 4, "act_bits": 4},
      {"kind": "add", "shape": [4], "inputs": [0]}], r"takes 2 input\(s\), got 1"),
    ([{"kind": "dense", "in": 4, "out": 4, "weight_bits": 4, "act_bits": 4, "inputs": [1]},
      {"kind": "dense", "in": 4, "out": 4, "weight_bits": 4, "act_bits": 4}], "not earlier layers"),
    ([{"kind": "dense", "in": 4, "out": 4, "weight_bits": 4, "act_bits": 4, "name": "a"},
      {"kind": "dense", "in": 4, "out": 4, "weight_bits": 4, "act_bits": 4, "inputs": ["input"]}],
     r"layers \[0\]: their outputs are not used"),
    ([{"kind": "add", "shape": [4], "inputs": ["input", "nope"]}], "'nope' is not an earlier layer"),
    ([{"kind": "conv1d", "in_ch": 4, "out_ch": 8, "kernel": 5, "weight_bits": 4, "act_bits": 4}], r"missing key\(s\) \['length'\]"),
])
def test_bad_graphs_are_clear_errors(layers, match):
    with pytest.raises(DesignError, match=match):
        design_from_mapping({"layers": layers})


def test_every_kind_round_trips_and_estimates_in_both_styles():
    examples = {
        "dense": DenseLayer(in_features=16, out_features=8, weight_bits=2, act_bits=2),
        "conv": ConvLayer(in_ch=2, out_ch=4, kernel=3, in_dim=6, weight_bits=2, act_bits=2),
        "dwconv": DepthwiseConvLayer(channels=4, kernel=3, in_dim=6, weight_bits=2, act_bits=2),
        "maxpool": LAYER_KINDS["maxpool"](channels=4, in_dim=6, pool=2),
        "avgpool": LAYER_KINDS["avgpool"](channels=4, in_dim=6, pool=2),
        "globalavgpool": GlobalAvgPoolLayer(channels=4, in_dim=6),
        "add": AddLayer(shape=(4, 6, 6), act_bits=2),
        "duplicate": LAYER_KINDS["duplicate"](shape=(4, 6, 6)),
        "concat": LAYER_KINDS["concat"](channels_in=(4, 2), in_dim=6),
    }
    assert set(examples) == set(LAYER_KINDS)
    for kind, layer in examples.items():
        assert LAYER_KINDS[kind].from_mapping("x", {k: v for k, v in layer.to_mapping().items() if k != "kind"}) == layer
        for style in ("finn", "hls4ml"):
            est = one(layer, style=style)
            assert est.total.lut > 0 or (style == "hls4ml" and kind in ("duplicate", "concat")), (kind, style)


def test_a_signed_input_changes_only_the_first_layers_accumulator():
    fc = DenseLayer(in_features=64, out_features=16, weight_bits=4, act_bits=4)
    unsigned = estimate(Design(layers=(fc, fc.__class__(16, 10, 4, 32)), input_bits=8), BOARD)
    signed = estimate(Design(layers=(fc, fc.__class__(16, 10, 4, 32)), input_bits=8, input_signed=True), BOARD)
    # Colbert et al.: alpha = log2(64) + 4 + 8 - 1 (- 1 for a signed input, whose magnitude is at most
    # 2^7), acc = ceil(alpha + 1 + a sliver) -> 19 bits unsigned, 18 signed
    assert unsigned.per_layer[0].detail["acc_bits"] == 19 and signed.per_layer[0].detail["acc_bits"] == 18
    assert unsigned.per_layer[1].detail == signed.per_layer[1].detail  # a ReLU output is unsigned either way
    again, _ = design_from_mapping(design_to_mapping(Design(layers=(fc,), input_signed=True)))
    assert again.input_signed
