"""The FINN-style analytic model on hand-computed cases."""

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
    thresholds: 4 constant tables of depth 16 x 285 bits: shallow enough (<= 32) to live in the
    comparators' LUTs; the same as runtime-writable per-PE memories (embedded mode) -> LUTRAM 4 * 285."""
    res, detail = mvau_resources(DenseLayer(64, 64, 4, 4), 8, False, 4, 8, "auto", C)
    assert detail["acc_bits"] == 19
    assert detail["weight_memory"] == {"depth": 128, "width_bits": 128, "count": 1, "style": "block",
                                       "mem_mode": "internal_decoupled"}
    assert res.bram18 == 4
    # stream bits: in 8*8 + weights 128 = 192, 0.5 LUT each; input vector MW*A = 512 bits in
    # registers, read through a mux of 0.33 LUT per bit
    assert res.lut == pytest.approx(3696.8 + 0.5 * 192 + 0.33 * 512)
    assert detail["threshold_memory"]["style"] == "in comparators"
    assert res.dsp == 0
    emb, d = mvau_resources(DenseLayer(64, 64, 4, 4), 8, False, 4, 8, "auto", C, "internal_embedded")
    assert d["threshold_memory"]["style"] == "distributed"
    # per-PE weights: 4 x (128 deep x 32 bits) -> one RAMB18 each; no weight stream
    assert emb.lut == pytest.approx(3696.8 + 1140 + 0.5 * 8 * 8 + 0.33 * 512) and emb.bram18 == 4
    # FF: 150 + 1.0 * PE * (SIMD*(W+A) + acc + B) + 0.5 * PE * adder tree 180 + 2.0 * 192 stream bits
    # + 1.0 * 512 input vector bits
    assert res.ff == pytest.approx(150 + 4 * (96 + 19 + 4) + 0.5 * 4 * 180 + 2 * 192 + 512)


def test_streamed_weights_go_to_bram_however_shallow():
    """FINN's cybsec MLP layer 2 (64x64, W2, PE 4, SIMD 16): 64 deep x 128 bits = 8192 bits. Read by
    the memory streamer (registered) it is BRAM: 512x36 mode, ceil(128/36) = 4 RAMB18 (the build's 18
    BRAM primitives are 14 + 2 + 2 RAMB36 only this way); an async-read 64-deep array stays LUTRAM."""
    layer = DenseLayer(64, 64, 2, 2)
    res, d = mvau_resources(layer, 2, False, 4, 16, "auto", C)
    assert d["weight_memory"]["style"] == "block" and res.bram18 == 4
    from hw_models.memory import MemoryShape, resolve_ram_style
    assert resolve_ram_style("auto", MemoryShape(64, 128), C.section("memory")) == "distributed"
    assert resolve_ram_style("auto", MemoryShape(64, 2, registered_read=True), C.section("memory")) == "distributed"


def test_embedded_weights_are_one_memory_per_pe():
    """BNN-PYNQ LFC layer 2 (1024x1024, bipolar, PE 64, SIMD 32): finn-hlslib keeps one array per PE,
    512 deep x 32 bits -> one RAMB18 (512x36) each = 64; packed (decoupled) it would be 512 x 2048 bits
    = ceil(2048/36) = 57. No weight stream in embedded mode (decoupled: 64*32 bits, 2 FF each)."""
    layer = DenseLayer(1024, 1024, 1, 2)
    emb, d = mvau_resources(layer, 2, False, 64, 32, "auto", C, "internal_embedded")
    dec, _ = mvau_resources(layer, 2, False, 64, 32, "auto", C)
    assert d["weight_memory"]["count"] == 64 and emb.bram18 == 64 and dec.bram18 == 57
    assert dec.ff - emb.ff == pytest.approx(2.0 * 64 * 32)  # the decoupled weight stream's registers


def test_wide_multiplies_use_dsps():
    res, detail = mvau_resources(DenseLayer(64, 16, 8, 32), 8, False, 2, 4, "auto", C)
    assert detail["multipliers"] == "dsp"
    assert res.dsp == 2 * 4 * 1  # PE x SIMD lanes of one 8x8 multiply: one DSP48 each


def test_dsp48_port_boundaries():
    from hw_models.finn import dsp_per_multiply
    assert dsp_per_multiply(16, 16) == 1  # 16 <= 25 and 16 <= 18
    assert dsp_per_multiply(8, 24) == 1  # 24 on the 25-bit port
    assert dsp_per_multiply(20, 24) == 2  # 24 on 25 bits, 20 > 18: two tiles
    assert dsp_per_multiply(32, 32) == 4  # ceil(32/25) * ceil(32/18)
    assert dsp_per_multiply(26, 18, (27, 18)) == 1  # DSP48E2: 27x18



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


def test_hls_sliding_window_keeps_k_plus_1_rows():
    """BNN-PYNQ CNV-W1A2 layer 2 (64 ch, 30x30, k 3, 2-bit, SIMD 32): finn-hlslib's HLS window keeps
    K+1 = 4 row arrays of 30 * 64/32 = 60 words x 64 bits = 3840 bits each -> BRAM, ceil(64/36) = 2
    RAMB18 each = 8; finn-plus' RTL window one buffer of (2*30 + 3) * 2 = 126 x 64 bits -> 2 RAMB18."""
    from hw_models.finn import swu_terms
    hls, d = swu_terms(64, 30, 3, 2, 32, "auto", C, line_blocks=True)
    rtl, r = swu_terms(64, 30, 3, 2, 32, "auto", C)
    assert d["buffer"] == {"depth": 60, "width_bits": 64, "count": 4, "style": "block"}
    assert "count" not in r["buffer"]
    assert hls.resources(C).bram18 == 8
    assert r["buffer"]["depth"] == 126 and rtl.resources(C).bram18 == 2


def test_registered_memories_above_1kbit_are_bram():
    """BNN-PYNQ: per-PE weights of 36 words x 32 bits (1152 bits) -> one RAMB18 each; LFC's threshold
    arrays of 32 x 16 bits (512) stay in LUTs. The threshold is auto_registered_max_bits = 1024."""
    from hw_models.memory import MemoryShape, resolve_ram_style
    mem = C.section("memory")
    assert resolve_ram_style("auto", MemoryShape(36, 32, registered_read=True), mem) == "block"
    assert resolve_ram_style("auto", MemoryShape(32, 32, registered_read=True), mem) == "distributed"
    assert resolve_ram_style("auto", MemoryShape(36, 32), mem) == "distributed"  # async read: shallow = LUTRAM
