"""The FINN-style analytic model on hand-computed cases."""
import math

import pytest

from boards import get_board
from hw_models import DenseLayer, Design, estimate
from hw_models.coefficients import load_coefficients
from hw_models.design import ConvLayer, MaxPoolLayer
from hw_models.finn import accumulator_bits, layer_cycles, mvau_resources, swu_cycles

C = load_coefficients()


def test_mvau_cycles_follow_folding():
    layer = DenseLayer(64, 64, 4, 4)
    assert layer_cycles(layer, 1, 1) == 64 * 64
    assert layer_cycles(layer, 4, 8) == (64 // 4) * (64 // 8)
    assert layer_cycles(layer, 64, 64) == 1
    conv = ConvLayer(in_ch=8, out_ch=16, kernel=3, in_dim=10, weight_bits=4, act_bits=4)
    # MVAU: (16/2)*(72/4)*8*8 = 9216 cycles; the sliding window is faster
    assert layer_cycles(conv, 2, 4) == 9216
    assert swu_cycles(8, 10, 3, 1, 8, 4) < 9216


def test_accumulator_width():
    # FINN's bound: ceil(alpha + log2(1 + 2^-alpha) + 1), alpha = log2(MW) + W + A - 1 - signed
    assert accumulator_bits(64, 4, 8, False) == 19
    assert accumulator_bits(64, 1, 1, True) == 7  # popcount of 64
    assert accumulator_bits(64, 32, 8, False) == 32


def test_mvau_hand_computed():
    """Dense 64->64, W4, input A8, act 4 bits, PE=4, SIMD=8 (numbers worked out by hand):
    mult LUTs/lane (2*ceil(12/6)-1)*12 = 36; adder tree 12*(2*8-1) = 180; acc 19 bits;
    comparators (2^4-1)*19 = 285 -> LUT = 300 + 1.1*4*(8*36 + 180 + 19 + 285) = 3696.8
    weights: depth 64*64/32 = 128, width 4*8*4 = 128 bits -> BRAM (deeper than 64): 512x36 mode, 4 BRAM18
    thresholds: 4 memories of depth 16 x 285 bits -> LUTRAM 4 * 285 = 1140 LUT."""
    res, detail = mvau_resources(DenseLayer(64, 64, 4, 4), 8, False, 4, 8, "auto", C)
    assert detail["acc_bits"] == 19
    assert detail["weight_memory"] == {"depth": 128, "width_bits": 128, "style": "block"}
    assert res.bram18 == 4
    assert res.lut == pytest.approx(3696.8 + 1140)
    assert res.dsp == 0
    # FF: 150 + 1.0 * PE * (SIMD*(W+A) + acc + B) = 150 + 4*(96 + 19 + 4)
    assert res.ff == pytest.approx(150 + 4 * (96 + 19 + 4))


def test_wide_multiplies_use_dsps():
    res, detail = mvau_resources(DenseLayer(64, 16, 8, 32), 8, False, 2, 4, "auto", C)
    assert detail["multipliers"] == "dsp"
    assert res.dsp == 2 * 4 * math.ceil(16 / 48)


def test_binary_layer_is_xnor_and_cheap():
    binary, d = mvau_resources(DenseLayer(256, 256, 1, 1), 1, True, 16, 16, "auto", C)
    eight, _ = mvau_resources(DenseLayer(256, 256, 8, 8), 8, False, 16, 16, "auto", C)
    assert d["multipliers"] == "xnor"
    assert binary.lut < eight.lut / 4 and binary.dsp == 0 and eight.dsp > 0


def test_estimate_totals_cycles_fps_and_fit():
    board = get_board("pynq-z2")
    design = Design(layers=(DenseLayer(64, 64, 4, 4, pe=4, simd=8), DenseLayer(64, 10, 4, 32, pe=1, simd=4)))
    est = estimate(design, board)
    assert est.source == "analytic" and est.clock_mhz == 100
    assert [l.cycles for l in est.per_layer] == [128, 160]
    assert est.cycles_per_frame == 160
    assert est.fps == pytest.approx(100e6 / 160)
    assert est.latency_cycles == 288 and est.latency_us == pytest.approx(2.88)
    total = sum(l.resources.lut for l in est.per_layer)
    assert est.total.lut == round(total)
    assert est.fits
    d = est.as_dict()
    assert set(d) >= {"source", "total", "per_layer", "cycles_per_frame", "fps", "latency_us", "fits", "utilization"}
    assert set(d["total"]) == {"lut", "ff", "bram18", "uram", "dsp"}


def test_too_big_design_does_not_fit():
    big = Design(layers=(DenseLayer(1024, 1024, 8, 8, pe=256, simd=64),))
    est = estimate(big, get_board("pynq-z2"))
    assert not est.fits and est.violations["lut"] > 0
    assert estimate(big, get_board("vcu118")).utilization["lut"] < est.utilization["lut"]


def test_maxpool_and_conv_chain():
    design = Design(layers=(ConvLayer(1, 8, 3, 8, 4, 4), MaxPoolLayer(8, 6, 2), DenseLayer(72, 10, 4, 32)),
                    target_fps=1e5)
    est = estimate(design, get_board("pynq-z2"))
    assert [l.kind for l in est.per_layer] == ["conv", "maxpool", "dense"]
    assert est.fps >= 1e5
    assert not est.notes
