import pytest

from boards import get_board
from hw_models import DenseLayer, Design, estimate
from hw_models.coefficients import load_coefficients
from hw_models.design import ConvLayer
from hw_models.folding import derive_finn_folding, derive_reuse_factors

C = load_coefficients()


def test_setfolding_raises_simd_first_then_pe():
    # 64->10 at 100 MHz: 1e6 fps = 100 cycles; SIMD 8 gives 10*8 = 80 cycles
    d = derive_finn_folding(Design(layers=(DenseLayer(64, 10, 4, 4),), target_fps=1e6), 100, C)
    assert (d.layers[0].pe, d.layers[0].simd) == (1, 8)
    # 10 cycles: SIMD stops at 8 (8*4 = 32 <= 36 bits), then PE grows to 10 -> 8 cycles
    d = derive_finn_folding(Design(layers=(DenseLayer(64, 10, 4, 4),), target_fps=1e7), 100, C)
    assert (d.layers[0].pe, d.layers[0].simd) == (10, 8)


def test_setfolding_relaxes_weight_width_when_target_unreachable():
    # 8-bit weights: SIMD <= 4 under the 36-bit cap; 1 cycle needs full unfolding
    d = derive_finn_folding(Design(layers=(DenseLayer(64, 10, 8, 8),), target_fps=1e8), 100, C)
    assert (d.layers[0].pe, d.layers[0].simd) == (10, 64)


def test_given_folding_is_kept_and_missing_without_target_is_one():
    d = derive_finn_folding(Design(layers=(DenseLayer(64, 10, 4, 4, pe=2), DenseLayer(10, 10, 4, 4))), 100, C)
    assert (d.layers[0].pe, d.layers[0].simd) == (2, 1)
    assert (d.layers[1].pe, d.layers[1].simd) == (1, 1)


def test_conv_simd_divides_channels():
    d = derive_finn_folding(Design(layers=(ConvLayer(6, 8, 3, 8, 4, 4),), target_fps=1e6), 100, C)
    assert 6 % d.layers[0].simd == 0 and 8 % d.layers[0].pe == 0


def test_derived_folding_meets_target_and_balances():
    board = get_board("pynq-z2")
    layers = (DenseLayer(64, 64, 2, 2), DenseLayer(64, 32, 2, 2), DenseLayer(32, 10, 2, 32))
    for fps in (1e4, 1e5, 1e6):
        est = estimate(Design(layers=layers, target_fps=fps), board)
        assert est.fps >= fps
    slow = estimate(Design(layers=layers, target_fps=1e4), board)
    fast = estimate(Design(layers=layers, target_fps=1e6), board)
    assert fast.total.lut > slow.total.lut


def test_reuse_factor_derivation():
    # no target: hls4ml's smallest valid RF that respects the 4096-multiplier unroll limit
    d = derive_reuse_factors(Design(layers=(DenseLayer(64, 10, 8, 8), DenseLayer(128, 128, 8, 8)),
                                    style="hls4ml"), 100, C)
    assert d.layers[0].reuse_factor == 1
    assert d.layers[1].reuse_factor == 4  # 16384 multiplies / 4096
    # 1e6 fps at 100 MHz: II <= 100 cycles -> the largest valid RF <= 100 (80 is not valid: RF >= n_in
    # must be a multiple of n_in in hls4ml)
    d = derive_reuse_factors(Design(layers=(DenseLayer(64, 10, 8, 8),), style="hls4ml", target_fps=1e6), 100, C)
    assert d.layers[0].reuse_factor == 64


def test_hls4ml_estimate_dsp_rule():
    board = get_board("zcu104")
    narrow = estimate(Design(layers=(DenseLayer(16, 10, 8, 8, reuse_factor=1),), style="hls4ml"), board)
    wide = estimate(Design(layers=(DenseLayer(16, 10, 16, 16, reuse_factor=1),), style="hls4ml"), board)
    folded = estimate(Design(layers=(DenseLayer(16, 10, 16, 16, reuse_factor=4),), style="hls4ml"), board)
    assert narrow.total.dsp == 0 and wide.total.dsp == 160 and folded.total.dsp == 40
    assert folded.cycles_per_frame == 4 and wide.cycles_per_frame == 1
    assert wide.per_layer[0].latency_cycles == 1 + 4 + 2  # RF + log2(16) + 2


@pytest.mark.parametrize("style", ["finn", "hls4ml"])
def test_float_layers_estimate(style):
    est = estimate(Design(layers=(DenseLayer(16, 10, 32, 32),), style=style), get_board("zcu104"))
    assert est.total.dsp > 0
