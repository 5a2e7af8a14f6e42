"""hls4ml-style io_parallel layers with a reuse factor (Latency/Resource strategy).

hls4ml documentation ("Reuse factor", "Optimization / io_parallel"): a Dense layer of n_in x n_out
multiplies uses ceil(n_in * n_out / RF) multipliers, accepts a new input every RF cycles and has a
latency of about RF plus the adder-tree depth. Multiplies by constant weights narrower than ~10 bits
are built from LUTs, wider ones use DSPs. Conv layers (io_parallel, ParallelizationFactor 1) run the
dense kernel once per output pixel. Coefficients come from hw_models/data/*.yaml.
"""
from __future__ import annotations

import math

from boards import Resources
from hw_models.design import FLOAT_BITS, ConvLayer, DenseLayer, MaxPoolLayer
from hw_models.finn import accumulator_bits
from hw_models.memory import MemoryShape, memory_resources


def layer_cycles(layer, reuse_factor: int) -> tuple[int, int]:
    """(initiation interval, latency) in cycles for one frame through this layer."""
    if isinstance(layer, MaxPoolLayer):
        ii = layer.out_dim * layer.out_dim
        return ii, ii + 1
    rf = reuse_factor
    depth = math.ceil(math.log2(max(2, layer.mw)))
    if isinstance(layer, DenseLayer):
        return rf, rf + depth + 2
    pixels = layer.out_dim * layer.out_dim
    return pixels * rf, pixels * rf + depth + 2


def layer_resources(layer, input_bits: int, input_signed: bool, reuse_factor: int, ram_style: str,
                    coeffs) -> tuple[Resources, dict]:
    if isinstance(layer, MaxPoolLayer):
        c = coeffs.section("hls4ml", "maxpool")
        lane_bits = layer.channels * input_bits * (layer.pool * layer.pool - 1)
        return Resources(lut=c["lut_per_lane_bit"] * lane_bits, ff=c["ff_per_lane_bit"] * layer.channels * input_bits), {}
    c = coeffs.section("hls4ml", "dense")
    w, a = layer.weight_bits, input_bits
    n_mult = layer.mw * layer.mh
    mults = math.ceil(n_mult / reuse_factor)
    acc = accumulator_bits(layer.mw, w, a, input_signed)
    detail = {"multipliers": mults, "acc_bits": acc, "reuse_factor": reuse_factor}
    if w >= FLOAT_BITS or a >= FLOAT_BITS:
        f = coeffs.section("hls4ml", "float_mac")
        res = Resources(lut=c["lut_c0"] + mults * f["lut"], ff=c["ff_c0"] + mults * f["ff"], dsp=mults * f["dsp"])
        detail["float"] = True
    else:
        use_dsp = w >= c["dsp_min_weight_bits"]
        mult_luts = 0 if use_dsp else c["lut_per_lut_mult_bit2"] * w * a * mults
        if w == 1:  # bipolar weights: add or subtract, no multiplier
            mult_luts = 0
        adder_luts = c["lut_per_adder_bit"] * acc * mults
        res = Resources(
            lut=c["lut_c0"] + mult_luts + adder_luts,
            ff=c["ff_c0"] + c["ff_per_adder_bit"] * acc * mults,
            dsp=mults * c["dsp_per_mult"] if use_dsp else 0,
        )
        detail["multiplier_kind"] = "dsp" if use_dsp else "lut"
    if reuse_factor > 1:  # weights are read from a ROM of depth RF instead of being constants
        rom = MemoryShape(depth=reuse_factor, width_bits=mults * w)
        mem, style = memory_resources(rom, ram_style, coeffs.section("memory"))
        res = res + mem
        detail["weight_memory"] = {"depth": rom.depth, "width_bits": rom.width_bits, "style": style}
    if mults > c["max_unrolled_mults"]:
        detail["warning"] = (f"{mults} parallel multiplies exceed the HLS unroll limit of "
                             f"{c['max_unrolled_mults']}: raise reuse_factor")
    return res, detail
