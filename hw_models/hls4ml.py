"""hls4ml-style io_parallel layers with a reuse factor (Latency/Resource strategy).

hls4ml documentation ("Reuse factor", "Optimization / io_parallel"): a Dense layer of n_in x n_out
multiplies uses ceil(n_in * n_out / RF) multipliers, accepts a new input every RF cycles and has a
latency of about RF plus the adder-tree depth. Multiplies by constant weights narrower than ~10 bits
are built from LUTs, wider ones use DSPs. Conv layers (io_parallel, ParallelizationFactor 1) run the
dense kernel once per output pixel. Coefficients come from hw_models/data/*.yaml.
"""
from __future__ import annotations

import math

from hw_models.common import FLOAT_BITS
from hw_models.finn import accumulator_bits, dsp_per_multiply
from hw_models.memory import MemoryShape, memory_terms
from hw_models.terms import Terms, exact, terms


def layer_cycles(layer, reuse_factor: int) -> tuple[int, int]:
    """(initiation interval, latency) in cycles for one frame through this layer (see `hw_models.layers`)."""
    return layer.hls4ml_cycles(reuse_factor)


def weight_density(layer, reuse_factor: int, rules) -> float:
    """How the layer's constant multipliers compare with a typical trained layer of its weight width:
    its CSD digits per weight over the typical ones (1 when unknown, or when weights sit in a ROM
    because reuse_factor > 1 and every multiplier is built whatever the weights are)."""
    if layer.csd_digits is None or reuse_factor > 1:
        return 1.0
    table = rules["typical_csd_digits"]

    def typical(w):
        t = table.get(w, table.get(str(w)))  # YAML ints, JSON strings
        return w / 3 + 0.5 if t is None else t  # widths without a measurement: ~W/3 + 1/2 digits
    groups = neuron_groups(layer)
    if len(groups) == 1:
        return layer.csd_digits / typical(layer.weight_bits)
    # per-neuron weight bits: the layer's digits over the typical digits of its mix of widths
    return layer.csd_digits / (sum(n * typical(w) for w, n in groups.items()) / layer.mh)


def group_multipliers(layer, neurons: int, reuse_factor: int) -> int:
    """Multipliers of `neurons` output neurons of the layer (all of them: ceil(mw * mh / RF))."""
    return math.ceil(layer.mw * neurons / reuse_factor)


def neuron_groups(layer) -> dict[int, int]:
    """Weight bits -> output neurons at them (one group without per-neuron weight bits)."""
    bits = getattr(layer, "neuron_weight_bits", ())
    if not bits:
        return {layer.weight_bits: layer.mh}
    out: dict[int, int] = {}
    for b in bits:
        out[b] = out.get(b, 0) + 1
    return dict(sorted(out.items()))


def layer_terms(layer, input_bits: int, input_signed: bool, reuse_factor: int, ram_style: str,
                coeffs) -> tuple[Terms, dict]:
    return layer.hls4ml_terms(input_bits, input_signed, reuse_factor, ram_style, coeffs)


def mixed_input_adder_bits(layer, weight_bits: int, mean_bits: float, input_signed: bool) -> int:
    """Adder width per multiplier of a layer whose inputs differ in width (per-feature input bits): the
    accumulator at the kept inputs' mean width, i.e. the mean over inputs of the accumulator each input's
    own width gives, up to rounding (Colbert et al., arXiv:2301.13376: linear in the input bits), since
    da4ml adds each input's shifted copies at that input's width (da4ml 0.6 `cmvm`: an adder is as wide
    as its operands' range); the widest input's accumulator (`acc_bits`) is only a bound. Equal widths:
    that accumulator, as before."""
    return accumulator_bits(layer.mw, weight_bits, mean_bits, input_signed)


def dense_terms(layer, input_bits: int, input_signed: bool, reuse_factor: int, ram_style: str,
                coeffs, strategy: str = "latency") -> tuple[Terms, dict]:
    """A weight matrix (Dense, Conv per pixel, depthwise Conv) of mw x mh multiplies."""
    rules = coeffs.section("hls4ml", "rules")
    w, a = layer.weight_bits, input_bits
    mults = math.ceil(layer.mw * layer.mh / reuse_factor)
    acc = accumulator_bits(layer.mw, w, a, input_signed)
    detail = {"multipliers": mults, "acc_bits": acc, "reuse_factor": reuse_factor}
    zeros = round((getattr(layer, "zero_fraction", None) or 0.0) * layer.mw * layer.mh)
    # Latency strategy: no multiplier for a zero weight, ceil(n/RF) - floor(zeros/RF) of them
    # (nnet_dense_latency.h multiplier_limit); Resource multiplies every stored weight
    dsp_mults = mults - zeros // reuse_factor if strategy == "latency" else mults
    if w >= FLOAT_BITS or a >= FLOAT_BITS:
        out = (terms("hls4ml.dense", "lut", const=1, float_lanes=mults) + terms("hls4ml.dense", "ff", const=1, float_lanes=mults)
               + exact(dsp=mults * rules["float_lane_dsp"]))
        detail["float"] = True
    elif mixed_neurons(layer):
        out = neuron_mix_terms(layer, a, input_signed, reuse_factor, strategy, rules, detail)
    else:
        use_dsp = w >= rules["dsp_min_weight_bits"]
        # multiplies by constant weights built from LUTs: (multiplies x input bits), one term per weight
        # width, since what a constant multiplier costs depends on the weight width (bipolar: add/sub)
        density = weight_density(layer, reuse_factor, rules)
        # inputs of different widths (per-feature input bits): a multiplier per input, as wide as its input
        mean_a = layer.in_bits_total / layer.mw if getattr(layer, "in_bits_total", None) else a
        macs = {} if use_dsp else {f"mac_w{w}": mean_a * mults * density}
        requant = layer.mh * min(2 ** layer.act_bits - 1, 3 * acc) if layer.act_bits < FLOAT_BITS else 0
        # LUT multipliers scale with the CSD digits instead, which count a zero weight as no digits;
        # each input's adders as wide as its own bits make them (`mixed_input_adder_bits`)
        adders = acc * dsp_mults if use_dsp else mixed_input_adder_bits(layer, w, mean_a, input_signed) * mults * density
        out = (terms("hls4ml.dense", "lut", const=1, adder_bits=adders, requant=requant, **macs)
               + terms("hls4ml.dense", "ff", const=1, adder_bits=adders, requant=requant, **macs)
               + exact(dsp=dsp_mults * dsp_per_multiply(w, a, rules["dsp_port_bits"]) if use_dsp else 0))
        if use_dsp and dsp_mults != mults:
            detail["dsp_multipliers"] = dsp_mults
        detail["multiplier_kind"] = "dsp" if use_dsp else "lut"
        if layer.csd_digits is not None:
            detail["csd_digits"], detail["weight_density"] = layer.csd_digits, round(density, 4)
    if reuse_factor > 1:
        # each shared multiplier takes one of RF weights per cycle. Resource strategy: a ROM of depth RF
        # and width multipliers x W, read by the pipelined reuse loop (nnet_dense_resource.h: ARRAY_RESHAPE
        # block factor = ceil(n_in*n_out/RF)), so under ram_style auto a registered-read RAM (BRAM above
        # 1 Kbit). Latency strategy: the weights stay constants in the fabric (nnet_dense_latency.h,
        # PIPELINE II=RF, no reshape), an RF:1 selection per weight bit, counted as a LUT ROM
        width = sum(group_multipliers(layer, n, reuse_factor) * wg for wg, n in neuron_groups(layer).items())
        rom = MemoryShape(depth=reuse_factor, width_bits=width, registered_read=strategy == "resource")
        style_asked = ram_style if strategy == "resource" else "distributed"
        mem, style = memory_terms("hls4ml.dense", rom, style_asked, coeffs.section("memory"))
        out = out + mem
        detail["weight_memory"] = {"depth": rom.depth, "width_bits": rom.width_bits, "style": style,
                                   "strategy": strategy}
    if mults > rules["max_unrolled_mults"]:
        detail["warning"] = (f"{mults} parallel multiplies exceed the HLS unroll limit of "
                             f"{rules['max_unrolled_mults']}: raise reuse_factor")
    return out, detail


def mixed_neurons(layer) -> bool:
    """Whether the layer's output neurons differ in weight or activation bits."""
    return any(len(set(getattr(layer, key, ()))) > 1 for key in ("neuron_weight_bits", "neuron_act_bits"))


def neuron_mix_terms(layer, input_bits: int, input_signed: bool, reuse_factor: int, strategy: str, rules,
                     detail: dict) -> Terms:
    """`dense_terms` of a fixed-point layer whose neurons differ in bits: each group of neurons at one
    weight width is charged as its own slice of the layer (its constant multipliers, a `mac_wW` term per
    width, and its accumulators), each neuron a requantiser for its own output bits; adds to `detail`."""
    density = weight_density(layer, reuse_factor, rules)
    # inputs of different widths (read_features): a multiplier per input, as wide as its input
    mean_a = layer.in_bits_total / layer.mw if getattr(layer, "in_bits_total", None) else input_bits
    zero_fraction = getattr(layer, "zero_fraction", None) or 0.0
    macs, adders, dsp, kinds, acc_of, mults, dsp_mults = {}, 0, 0, set(), {}, 0, 0
    for wg, n in neuron_groups(layer).items():
        mults_g = group_multipliers(layer, n, reuse_factor)
        zeros_g = round(zero_fraction * layer.mw * n)
        dsp_mults_g = mults_g - zeros_g // reuse_factor if strategy == "latency" else mults_g
        acc_of[wg] = acc_g = accumulator_bits(layer.mw, wg, input_bits, input_signed)
        use_dsp = wg >= rules["dsp_min_weight_bits"]
        kinds.add("dsp" if use_dsp else "lut")
        if use_dsp:
            adders += acc_g * dsp_mults_g
            dsp += dsp_mults_g * dsp_per_multiply(wg, input_bits, rules["dsp_port_bits"])
            dsp_mults += dsp_mults_g if dsp_mults_g != mults_g else 0
        else:  # LUT multipliers scale with the CSD digits, which count a zero weight as no digits
            macs[f"mac_w{wg}"] = mean_a * mults_g * density
            adders += mixed_input_adder_bits(layer, wg, mean_a, input_signed) * mults_g * density
        mults += mults_g
    weight_bits = layer.neuron_weight_bits or (layer.weight_bits,) * layer.mh
    act_bits = layer.neuron_act_bits or (layer.act_bits,) * layer.mh
    requant = sum(min(2 ** ab - 1, 3 * acc_of[wb]) for wb, ab in zip(weight_bits, act_bits))
    detail.update({"multipliers": mults, "acc_bits": max(acc_of.values()),
                   "neuron_weight_bits": {str(wg): n for wg, n in neuron_groups(layer).items()},
                   "multiplier_kind": kinds.pop() if len(kinds) == 1 else "mixed"})
    if dsp_mults:
        detail["dsp_multipliers"] = dsp_mults
    if layer.csd_digits is not None:
        detail["csd_digits"], detail["weight_density"] = layer.csd_digits, round(density, 4)
    return (terms("hls4ml.dense", "lut", const=1, adder_bits=adders, requant=requant, **macs)
            + terms("hls4ml.dense", "ff", const=1, adder_bits=adders, requant=requant, **macs)
            + exact(dsp=dsp))
