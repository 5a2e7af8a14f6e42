"""hls4ml Strategy at reuse factor > 1 (hw_models/hls4ml.dense_terms): Resource keeps the weights in a
ROM of depth RF (BRAM when large), Latency keeps them as constants selected per cycle (LUTs)."""
import pytest

from boards import get_board
from hw_models import estimate
from hw_models.common import DesignError
from hw_models.design import design_from_mapping, design_to_mapping

BOARD = get_board("pynq-z2")


def design(strategy=None, rf=64, style="hls4ml"):
    data = {"style": style, "input_bits": 8,
            "layers": [{"kind": "dense", "in": 64, "out": 32, "weight_bits": 8, "act_bits": 8,
                        **({"reuse_factor": rf} if style == "hls4ml" else {})}]}
    if strategy is not None:
        data["strategy"] = strategy
    return design_from_mapping(data)[0]


def test_resource_strategy_puts_the_weights_in_bram():
    # 64 x 32 multiplies at RF 64: 32 multipliers, ROM 64 deep x 32 x 8 = 256 bits wide (16 Kbit, read
    # through a register: BRAM); best RAMB18 shape 512 x 36: ceil(256 / 36) = 8
    est = estimate(design("resource"), BOARD)
    mem = est.per_layer[0].detail["weight_memory"]
    assert (mem["depth"], mem["width_bits"], mem["style"]) == (64, 256, "block")
    assert est.total.bram18 == 8
    assert est.per_layer[0].cycles == 64  # II = RF for both strategies


def test_latency_strategy_keeps_constant_weights_in_luts():
    est = estimate(design(), BOARD)
    mem = est.per_layer[0].detail["weight_memory"]
    assert mem["style"] == "distributed" and mem["strategy"] == "latency" and est.total.bram18 == 0
    # one LUT per weight bit per 64 cycles of reuse: 256 x ceil(64 / 64)
    res = estimate(design("resource"), BOARD).total
    assert est.total.lut - res.lut == pytest.approx(256, abs=1)
    assert est.total.dsp == res.dsp  # the same 32 multipliers either way


def test_strategy_is_checked_and_round_trips():
    assert design_to_mapping(design("resource"))["strategy"] == "resource"
    assert "strategy" not in design_to_mapping(design())
    with pytest.raises(DesignError, match="valid: \\['latency', 'resource'\\]"):
        design("fast")
    with pytest.raises(DesignError, match="style hls4ml knob"):
        design("resource", style="finn")


def pruned(rf, strategy=None, zeros=0.75):
    data = {"style": "hls4ml", "input_bits": 16,
            "layers": [{"kind": "dense", "in": 64, "out": 32, "weight_bits": 16, "act_bits": 16,
                        "reuse_factor": rf, "zeros": zeros}]}
    if strategy:
        data["strategy"] = strategy
    return design_from_mapping(data)[0]


def test_latency_strategy_builds_no_multiplier_for_zero_weights():
    # 64 x 32 = 2,048 weights, 1,536 zero; 16 x 16 bits: one DSP48 each (25 x 18 ports)
    # RF 1: 2,048 - 1,536 = 512; RF 4: ceil(2,048 / 4) - floor(1,536 / 4) = 512 - 384 = 128
    assert estimate(pruned(1), BOARD).total.dsp == 512
    assert estimate(pruned(4), BOARD).total.dsp == 128
    assert estimate(pruned(4, "resource"), BOARD).total.dsp == 512  # every stored weight is multiplied
    assert design_to_mapping(pruned(1))["layers"][0]["zeros"] == 0.75
    with pytest.raises(DesignError, match="fraction in \\[0, 1\\)"):
        pruned(1, zeros=1.0)
