"""FINN-style streaming dataflow: MVAU (+ thresholds), sliding-window generator and max-pool.

The block formulas of FINN's hardware nodes, which the layer kinds of `hw_models.layers` combine
(a dense layer is one MVAU; a conv layer a ConvolutionInputGenerator (SWU) feeding an MVAU; a max-pool
an SWU feeding a Pool node; a residual add AddStreams and Thresholding ...). Formulas
follow FINN-R (arXiv:1809.04570) and finn-plus 1.6.1's estimators; coefficients come from
hw_models/data/*.yaml. FF has no FINN model: ours counts operand, accumulator and compare registers.
"""
from __future__ import annotations

import math

from boards import Resources
from hw_models.common import FLOAT_BITS
from hw_models.memory import MemoryShape, memory_terms
from hw_models.terms import Terms, exact, terms


def accumulator_bits(mw: int, weight_bits: int, input_bits: int, input_signed: bool) -> int:
    """Minimal accumulator width for MW products (Colbert et al., arXiv:2301.13376, as in FINN)."""
    if weight_bits >= FLOAT_BITS or input_bits >= FLOAT_BITS:
        return FLOAT_BITS
    if weight_bits == 1 and input_bits == 1:  # XNOR-popcount: a count of up to MW ones
        return max(1, math.ceil(math.log2(mw + 1)))
    alpha = math.log2(mw) + weight_bits + input_bits - 1 - int(input_signed)
    return int(math.ceil(alpha + math.log2(1 + 2 ** -alpha) + 1))


def mvau_cycles(layer, pe: int, simd: int) -> int:
    """FINN MVAU: (MH/PE) * (MW/SIMD) * input vectors (FINN-R eq. for folded matrix-vector units)."""
    return (layer.mh // pe) * (layer.mw // simd) * layer.input_vectors


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def swu_cycles(in_ch: int, in_dim, kernel, stride, out_dim, simd: int, depthwise: bool = False) -> int:
    """ConvolutionInputGenerator_rtl default style, 2D (finn-plus 1.6.1 get_exp_cycles); pooling
    windows are generated depthwise. Sizes are (height, width) pairs or one int for square."""
    (_, iw), (kh, kw), (sh, sw), (oh, ow) = _pair(in_dim), _pair(kernel), _pair(stride), _pair(out_dim)
    channel_factor = in_ch // simd
    buffer_min = ((kh - 1) * iw + (kw - 1) + 1) * channel_factor
    write_block = ow * kh * kw * channel_factor
    read_block = sw * iw * channel_factor
    max_cycles = max(write_block, read_block)
    extra = 0
    if depthwise:
        max_cycles += ow * (sw - 1) * (channel_factor - 1)
        extra = (sh - 1) * iw * channel_factor
    return buffer_min + oh * max_cycles + extra


def pool_cycles(channels: int, pool, out_dim, pe: int) -> int:
    """Pool_hls: channels * kh * kw / PE * output pixels (finn-plus 1.6.1 get_exp_cycles)."""
    (kh, kw), (oh, ow) = _pair(pool), _pair(out_dim)
    return (channels * kh * kw // pe) * oh * ow


def layer_cycles(layer, pe: int, simd: int) -> int:
    """Cycles per frame of the layer's slowest hardware node (see `hw_models.layers`)."""
    return layer.finn_cycles(pe, simd)


def dsp_per_multiply(w: int, a: int, port_bits=(25, 18)) -> int:
    """DSP48 slices of one W x A multiply: the wider operand on the 25-bit (DSP48E1; 27 on E2) port,
    the narrower on the 18-bit one, tiled (UG479 / UG579); 16x16 -> 1, 24x20 -> 2, 32x32 -> 4."""
    wide, narrow = max(w, a), min(w, a)
    return math.ceil(wide / port_bits[0]) * math.ceil(narrow / port_bits[1])


def _mac_lane_luts(w: int, a: int) -> int:
    """FINN-R LUTs of one W x A multiplier built from LUTs; a bipolar weight only negates (A LUTs)."""
    if w == 1:
        return 1 if a == 1 else a
    return (2 * math.ceil((w + a) / 6) - 1) * (w + a)


def weight_memory(layer, pe: int, simd: int, mem_mode: str) -> MemoryShape:
    """internal_decoupled: one packed PE*SIMD*W-wide memory read by FINN's memory streamer (registered
    read); internal_embedded: finn-hlslib's per-PE arrays (`m_weights[PE][TILES]`, partitioned by
    PE), each SIMD*W wide. Depth: MW*MH / (PE*SIMD) either way. internal_embedded stands for the
    hand-written finn-hlslib designs (BNN-PYNQ): their sliding windows are finn-hlslib's too."""
    depth = (layer.mw * layer.mh) // (pe * simd)
    if mem_mode == "internal_embedded":  # HLS RAMs read synchronously too
        return MemoryShape(depth=depth, width_bits=simd * layer.weight_bits, count=pe, registered_read=True)
    return MemoryShape(depth=depth, width_bits=pe * simd * layer.weight_bits, registered_read=True)


def mvau_terms(layer, input_bits: int, input_signed: bool, pe: int, simd: int,
               ram_style: str, coeffs, mem_mode: str = "internal_decoupled") -> tuple[Terms, dict]:
    """One MVAU: weights in memory, PE x SIMD MAC lanes, adder trees, accumulators, thresholds."""
    rules = coeffs.section("finn", "rules")
    mem_c = coeffs.section("memory")
    w, a, b = layer.weight_bits, input_bits, layer.act_bits
    acc = accumulator_bits(layer.mw, w, a, input_signed)
    detail = {"acc_bits": acc}
    weights = weight_memory(layer, pe, simd, mem_mode)
    wmem, wstyle = memory_terms("finn.mvau", weights, ram_style, mem_c)
    detail["weight_memory"] = {"depth": weights.depth, "width_bits": weights.width_bits, "count": weights.count,
                               "style": wstyle, "mem_mode": mem_mode}

    if w >= FLOAT_BITS or a >= FLOAT_BITS:
        lanes = pe * simd
        compute = (terms("finn.mvau", "lut", const=1, float_lanes=lanes) + terms("finn.mvau", "ff", const=1, float_lanes=lanes)
                   + exact(dsp=lanes * rules["float_lane_dsp"]))
        return compute + wmem, {**detail, "float": True}

    use_dsp = (w + a) >= rules["dsp_min_sum_bits"]
    mult_luts = 0 if use_dsp else simd * _mac_lane_luts(w, a)
    addertree_luts = (w + a) * (2 * simd - 1)
    comp_luts, tmem = 0, Terms()
    has_thresholds = b < FLOAT_BITS
    if has_thresholds:
        n_thr = 2 ** b - 1
        comp_luts = n_thr * acc
        thresholds = MemoryShape(depth=layer.mh // pe, width_bits=n_thr * acc, count=pe)
        if (mem_mode == "internal_decoupled" and ram_style == "auto"
                and thresholds.depth <= rules["const_threshold_max_depth"]):
            # the FINN compiler's thresholds are constants: a table this shallow is a function of the
            # compare LUT's spare inputs (bit + log2(depth) <= 6), so it costs no storage of its own
            tmem, tstyle = Terms(), "in comparators"
        else:
            tmem, tstyle = memory_terms("finn.mvau", thresholds, ram_style, mem_c)
        detail["threshold_memory"] = {"depth": thresholds.depth, "width_bits": thresholds.width_bits,
                                      "count": pe, "style": tstyle}
    logic = pe * (mult_luts + addertree_luts + acc + comp_luts)
    regs = pe * (simd * (w + a) + acc + (b if has_thresholds else 0))
    # HLS pipelines the PE's adder tree at II=1: registers after its levels, in proportion to its bits
    adder_tree = pe * addertree_luts
    # finn-hlslib's MVAU keeps the whole input vector in registers (`inputBuf[SF]`, partitioned
    # completely), read back through an SF:1 multiplexer for every output fold: MW * A bits
    input_buffer = layer.mw * a
    # AXI-stream infrastructure: the input stream's registers and skid buffer (the output stream is
    # the next block's input), plus in decoupled mode the memory streamer's registered read and
    # output FIFO, PE*SIMD*W bits wide
    stream_bits = simd * a + (weights.width_bits if mem_mode == "internal_decoupled" else 0)
    # FINN's own estimate says ceil((W+A)/48) DSPs per lane; a DSP48 multiplies 25x18 at most
    dsp = pe * simd * dsp_per_multiply(w, a, rules["dsp_port_bits"]) if use_dsp else 0
    detail["multipliers"] = "dsp" if use_dsp else ("xnor" if w == 1 and a == 1 else "lut")
    compute = (terms("finn.mvau", "lut", const=1, logic=logic, stream_bits=stream_bits, input_buffer=input_buffer)
               + terms("finn.mvau", "ff", const=1, regs=regs, adder_tree=adder_tree, stream_bits=stream_bits,
                       input_buffer=input_buffer)
               + exact(dsp=dsp))
    return compute + wmem + tmem, detail


def swu_terms(in_ch: int, in_dim, kernel, bits: int, simd: int, ram_style: str,
              coeffs, line_blocks: bool = False) -> tuple[Terms, dict]:
    """Sliding-window line buffer of (kh-1) rows + kw pixels, SIMD * bits wide (finn-plus SWU_rtl).
    `line_blocks`: finn-hlslib's HLS ConvolutionInputGenerator (stride 1) instead, K + 1 separate
    one-row arrays (`inputBuf[K+1][IFMDim * IFMCh/SIMD]`, partitioned by row), each its own RAM."""
    (_, iw), (kh, kw) = _pair(in_dim), _pair(kernel)
    width = simd * bits
    if line_blocks:
        buffer = MemoryShape(depth=iw * (in_ch // simd), width_bits=width, count=kh + 1, registered_read=True)
    else:
        buffer = MemoryShape(depth=((kh - 1) * iw + kw) * (in_ch // simd), width_bits=width)
    mem, style = memory_terms("finn.swu", buffer, ram_style, coeffs.section("memory"))
    logic = terms("finn.swu", "lut", const=1, stream_bits=width) + terms("finn.swu", "ff", const=1, stream_bits=width)
    detail = {"depth": buffer.depth, "width_bits": width, "style": style}
    return logic + mem, {"buffer": {**detail, "count": buffer.count} if line_blocks else detail}


def threshold_terms(channels: int, in_bits: int, out_bits: int, pe: int, ram_style: str,
                    coeffs) -> tuple[Terms, dict]:
    """A standalone Thresholding node: 2^A - 1 thresholds of the input width per channel, compared
    by PE lanes, stored per PE (FINN-R's threshold memory, as in the MVAU's)."""
    n_thr = 2 ** out_bits - 1
    mem = MemoryShape(depth=channels // pe, width_bits=n_thr * in_bits, count=pe)
    tmem, style = memory_terms("finn.thresholding", mem, ram_style, coeffs.section("memory"))
    compare = pe * n_thr * in_bits
    logic = terms("finn.thresholding", "lut", const=1, compare_bits=compare) + terms("finn.thresholding", "ff", const=1, regs=pe * out_bits)
    return logic + tmem, {"depth": mem.depth, "width_bits": mem.width_bits, "count": pe, "style": style}


def layer_terms(layer, input_bits: int, input_signed: bool, pe: int, simd: int, ram_style: str,
                coeffs, mem_mode: str = "internal_decoupled") -> tuple[Terms, dict]:
    return layer.finn_terms(input_bits, input_signed, pe, simd, ram_style, coeffs, mem_mode=mem_mode)


def mvau_resources(layer, input_bits: int, input_signed: bool, pe: int, simd: int, ram_style: str,
                   coeffs, mem_mode: str = "internal_decoupled") -> tuple[Resources, dict]:
    t, detail = mvau_terms(layer, input_bits, input_signed, pe, simd, ram_style, coeffs, mem_mode)
    return t.resources(coeffs), detail
