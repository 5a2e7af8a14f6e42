"""A quantized MLP -> a fully parallel, pipelined da4ml design (Verilog), exact by construction.

What the generated design computes (units: integer codes; a code times its power-of-two scale is
the real value the model computes):

* input: the unsigned `input_bits`-bit codes of the model's input quantizer (computed on the host, as
  FINN does; `input_codes`), one port per feature; with per-feature bits (`QuantizedMLP.feature_bits`)
  each port is as wide as its feature (a dropped feature's port has no bits), and the design shifts
  each code up to the widest feature's scale (wiring, no logic);
* each linear layer: the exact integer accumulator `acc = codes @ W_int` (da4ml's adder graphs);
* each activation (e.g. BatchNorm + quantized activation): a monotone step function acc -> output
  code (per-neuron activation bits, `QuantizedDense.channel_bits`: a narrower neuron's code counts
  steps of 2**(widest - its bits) at the widest neuron's scale, a shift, so each output carries its
  own precision into the next layer's adder graphs; per-row weight scales arrive as integers at the
  finest row's scale, the coarser rows' trailing zero bits free in da4ml's constant multipliers). Its thresholds are found by bisection through the model's own activation function (float32
  BatchNorm, round-half-to-even and clamping included, on a contiguous batch as in forward), then
  built as the cheaper exact implementation of `flows.requant` (comparators or a corrected affine
  form): exact on the whole accumulator range either way;
* last layer without output quantizer: the accumulator times its power-of-two scale, i.e. exactly
  the model's float scores.

Not supported (`RtlUnsupported`, callers fall back to the analytic source): non-power-of-two scales,
weights that are not integers times their scale, signed inputs, biases, accumulators beyond
float32's exact integer range, activations that are not monotone step functions of the accumulator
(the caller rejects what has no `QuantizedMLP` form: CNNs, float layers).
"""
from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from flows.quantized_mlp import QuantizedDense, QuantizedMLP, Quantizer, RtlUnsupported
from flows.requant import ChannelImpl, ChannelMap, choose_impl, implemented_u
from flows.yosys_run import verilog_sources

MAX_EXACT_ACC = 2 ** 24  # float32 represents every integer below this: the model's matmul stays exact


@dataclass(frozen=True)
class Requant:
    """One layer's accumulator -> output-code map, exact on the accumulator range."""

    kind: str  # "comparators" if any channel uses them, else "affine", "constant"; "scale" for scores
    channels: int
    shift: int = 0  # affine: the largest sh over channels
    detail: str = ""  # channels per kind, corrections
    corrections: int = 0  # thresholds an affine channel places exactly with extra comparators


@dataclass(frozen=True)
class RtlDesign:
    """A generated da4ml project: Verilog under `verilog_dir`, top module `top`."""

    out_dir: Path
    verilog_dir: Path
    top: str
    n_inputs: int
    input_bits: int
    n_outputs: int
    latency_cutoff: float
    latency_cycles: int  # pipeline stages (0: combinational)
    da4ml_cost: float  # da4ml's own adder-bit cost estimate
    requant: tuple[Requant, ...]
    output_exponent: int | None  # scores = output * 2**output_exponent when the last layer is unquantized
    generate_s: float
    comb: Any = field(default=None, repr=False, compare=False)  # da4ml CombLogic (the interpreter's input)

    @property
    def sources(self) -> list[Path]:
        return [self.verilog_dir / p for p in verilog_sources(self.verilog_dir)]

    def as_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "verilog_dir": str(self.verilog_dir), "top": self.top,
                "n_inputs": self.n_inputs, "input_bits": self.input_bits, "n_outputs": self.n_outputs,
                "latency_cutoff": self.latency_cutoff, "latency_cycles": self.latency_cycles,
                "da4ml_cost": self.da4ml_cost, "requant": [asdict(r) for r in self.requant],
                "output_exponent": self.output_exponent, "generate_s": self.generate_s}


@dataclass(frozen=True)
class Po2Quant:
    """An integer quantizer with a power-of-two scale: real = code * 2**exponent."""

    exponent: int
    bits: int
    signed: bool
    bipolar: bool = False  # codes {-1, +1}

    @property
    def code_step(self) -> int:
        return 2 if self.bipolar else 1


@dataclass(frozen=True)
class DenseBlock:
    """One dense layer with integer weights and its power-of-two output quantizer."""

    weights: np.ndarray  # (in, out) integers
    weight_exponent: int
    activation: Callable[[np.ndarray], np.ndarray] | None  # the model's function after the linear layer
    out_quant: Po2Quant | None  # None: unquantized output (scores)
    channel_bits: tuple[int, ...] | None = None  # per output its bits (codes multiples of 2**(bits - its bits))


def _po2_exponent(scale: float, what: str) -> int:
    e = float(np.log2(float(scale)))
    if not np.isfinite(e) or e != round(e):
        raise RtlUnsupported(f"{what}: scale {float(scale):g} is not a power of two (use scaling: po2)")
    return int(round(e))


def _po2_quant(q: Quantizer, what: str) -> Po2Quant:
    return Po2Quant(_po2_exponent(q.scale, what), q.bits, q.signed, bipolar=q.bits == 1 and q.signed)


def _int_weights(layer: QuantizedDense, what: str) -> tuple[np.ndarray, int]:
    exponent = _po2_exponent(layer.weight_scale, what)
    w = layer.weights / 2.0 ** exponent
    w_int = np.rint(w)
    if not np.array_equal(w, w_int):
        raise RtlUnsupported(f"{what}: weights are not integers times their scale")
    return w_int.astype(np.int64), exponent


def _dense_blocks(net: QuantizedMLP) -> list[DenseBlock]:
    blocks = []
    for n, layer in enumerate(net.layers):
        if layer.bias is not None:
            raise RtlUnsupported(f"dense layer {n}: linear layers with bias are not converted")
        w, e = _int_weights(layer, f"dense layer {n} weights")
        out_q = _po2_quant(layer.out_quant, f"dense layer {n} activation") if layer.out_quant is not None else None
        if layer.channel_bits is not None and (out_q is None or out_q.signed or len(layer.channel_bits) != w.shape[1]
                                               or max(layer.channel_bits) != out_q.bits):
            raise RtlUnsupported(f"dense layer {n}: per-neuron activation bits need an unsigned output quantizer "
                                 "as wide as the widest neuron, one value per output")
        blocks.append(DenseBlock(w, e, layer.activation, out_q, layer.channel_bits))
    return blocks


def input_quantizer(net: QuantizedMLP) -> Po2Quant:
    q = _po2_quant(net.input_quant, "input quantizer")
    if q.signed or q.bipolar:
        raise RtlUnsupported("signed input quantizer: the RTL input port is unsigned")
    return q


def input_codes(net: QuantizedMLP, x: np.ndarray) -> np.ndarray:
    """The integer codes the input quantizer makes of `x` (the RTL's input), shape (n, features)."""
    q = input_quantizer(net)
    real = net.quantize_input(np.asarray(x, dtype=np.float32))
    exponent = q.exponent if net.feature_bits is None else -np.asarray(net.feature_bits, dtype=np.float64)
    codes = real.reshape(len(x), -1) / 2.0 ** exponent
    return np.rint(codes).astype(np.int64)


def _feature_shifts(net: QuantizedMLP, q_in: Po2Quant) -> np.ndarray | None:
    """Per feature, the left shift that puts its code at the common input scale 2**q_in.exponent."""
    if net.feature_bits is None:
        return None
    bits = np.asarray(net.feature_bits, dtype=np.int64)
    if len(bits) != net.n_features or q_in.exponent != -int(bits.max()):
        raise RtlUnsupported(f"feature_bits: {len(bits)} values for {net.n_features} features, or the input "
                             f"quantizer's scale is not 2**-{int(bits.max())}")
    return -q_in.exponent - bits


def _acc_range(w: np.ndarray, in_lo: np.ndarray, in_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the smallest and largest accumulator over input codes in [in_lo, in_hi]."""
    a, b = w * in_lo[:, None], w * in_hi[:, None]
    return np.minimum(a, b).sum(0), np.maximum(a, b).sum(0)


def _code_fn(block: DenseBlock, in_exponent: int) -> Callable[[np.ndarray], np.ndarray]:
    """acc (int64, (n, channels)) -> output codes, through the model's activation (float32, as in forward)."""
    unit = 2.0 ** (in_exponent + block.weight_exponent)  # real value of one accumulator step
    out_unit = 2.0 ** block.out_quant.exponent

    def codes(acc: np.ndarray) -> np.ndarray:
        # contiguous (n, channels), as the linear layer's output in forward: BatchNorm's CPU kernel
        # rounds differently on strided inputs
        y = block.activation(np.ascontiguousarray(acc * unit, dtype=np.float32))
        c = y / out_unit
        r = np.rint(c)
        if not np.array_equal(c, r):
            raise RtlUnsupported("activation output is not an integer code times its scale")
        return r.astype(np.int64)
    return codes


def _thresholds(codes: Callable, lo: np.ndarray, hi: np.ndarray, direction: np.ndarray,
                q_lo: np.ndarray, n_steps: np.ndarray, step: np.ndarray) -> np.ndarray:
    """t[c, j-1] = smallest s in (s_lo, s_hi] (s = direction * acc) with code >= q_lo + j*step[c], for
    j = 1..n_steps[c] (later entries: s_hi + 1). Vectorised bisection over channels and levels; the
    code is q_lo at s_lo and q_hi at s_hi by the choice of direction."""
    channels, levels = len(lo), int(n_steps.max(initial=0))
    s_lo, s_hi = np.minimum(direction * lo, direction * hi), np.maximum(direction * lo, direction * hi)
    if levels == 0:
        return np.zeros((channels, 0), dtype=np.int64)
    target = q_lo[:, None] + step[:, None] * np.arange(1, levels + 1)[None, :]  # (C, K)
    active = np.arange(1, levels + 1)[None, :] <= n_steps[:, None]
    left = np.repeat(s_lo[:, None], levels, 1)  # invariant: code(left) < target <= code(right)
    right = np.repeat(s_hi[:, None], levels, 1)
    while True:
        open_ = active & (right - left > 1)
        if not open_.any():
            break
        mid = (left + right) // 2
        up = codes((direction[:, None] * mid).T).T >= target  # column c of the batch is channel c
        right = np.where(open_ & up, mid, right)
        left = np.where(open_ & ~up, mid, left)
    return np.where(active, right, s_hi[:, None] + 1)


def _channel_maps(block: DenseBlock, in_exponent: int, lo: np.ndarray, hi: np.ndarray) -> list[ChannelMap]:
    codes = _code_fn(block, in_exponent)
    q_at_lo, q_at_hi = codes(lo[None, :])[0], codes(hi[None, :])[0]
    direction = np.where(q_at_hi >= q_at_lo, 1, -1)
    q_lo, q_hi = np.minimum(q_at_lo, q_at_hi), np.maximum(q_at_lo, q_at_hi)
    step = np.full(len(lo), block.out_quant.code_step, dtype=np.int64)
    if block.channel_bits is not None:  # per-neuron bits: a narrower neuron's codes step by 2**(widest - its bits)
        step = step << (block.out_quant.bits - np.asarray(block.channel_bits, dtype=np.int64))
    n_steps = (q_hi - q_lo) // step
    t = _thresholds(codes, lo, hi, direction, q_lo, n_steps, step)
    s_lo, s_hi = np.minimum(direction * lo, direction * hi), np.maximum(direction * lo, direction * hi)
    return [ChannelMap(int(direction[c]), int(s_lo[c]), int(s_hi[c]), int(q_lo[c]), int(step[c]),
                       tuple(int(v) for v in t[c, :n_steps[c]])) for c in range(len(lo))]


@dataclass(frozen=True)
class LayerPlan:
    weights: np.ndarray  # (in, out)
    channels: tuple[ChannelMap, ...] | None  # None: the last layer's unquantized accumulator
    impls: tuple[ChannelImpl, ...] | None
    exponent: int  # real value of the output: code * 2**exponent (acc scale for the last layer)
    out_lo: np.ndarray
    out_hi: np.ndarray


def _plan_layer(block: DenseBlock, in_exponent: int, in_lo: np.ndarray, in_hi: np.ndarray, n: int) -> LayerPlan:
    lo, hi = _acc_range(block.weights, in_lo, in_hi)
    if max(np.abs(lo).max(), np.abs(hi).max()) >= MAX_EXACT_ACC:
        raise RtlUnsupported(f"dense layer {n}: accumulator range beyond float32's exact integers")
    if block.out_quant is None:
        return LayerPlan(block.weights, None, None, in_exponent + block.weight_exponent, lo, hi)
    maps = tuple(_channel_maps(block, in_exponent, lo, hi))
    codes, rng = _code_fn(block, in_exponent), np.random.default_rng(0)
    impls = []
    for c, ch in enumerate(maps):
        impl = choose_impl(ch)
        if not _verify_map(codes, ch, impl, c, len(maps), rng):
            raise RtlUnsupported(f"dense layer {n} channel {c}: the activation is not a monotone step function "
                                 "of the accumulator")
        impls.append(impl)
    out_lo = np.array([ch.q_lo for ch in maps])
    out_hi = np.array([ch.q_lo + ch.step * len(ch.thresholds) for ch in maps])
    return LayerPlan(block.weights, maps, tuple(impls), block.out_quant.exponent, out_lo, out_hi)


def plan_mlp(net: QuantizedMLP) -> tuple[Po2Quant, list[LayerPlan]]:
    """Integer weights and exact requantization maps of every layer of a power-of-two MLP."""
    q_in = input_quantizer(net)
    lo = np.zeros(net.n_features, dtype=np.int64)
    hi = np.full(net.n_features, 2 ** q_in.bits - 1, dtype=np.int64)
    shifts = _feature_shifts(net, q_in)
    if shifts is not None:
        hi = (2 ** np.asarray(net.feature_bits, dtype=np.int64) - 1) << shifts
    exponent, plans = q_in.exponent, []
    for n, block in enumerate(_dense_blocks(net)):
        plan = _plan_layer(block, exponent, lo, hi, n)
        plans.append(plan)
        exponent, lo, hi = plan.exponent, plan.out_lo, plan.out_hi
    return q_in, plans


def _requant_channel(acc, ch: ChannelMap, impl: ChannelImpl):
    """da4ml ops for one channel: the output code as a FixedVariable."""
    from da4ml.trace import FixedVariable
    if impl.kind == "constant":
        return FixedVariable.from_const(float(ch.q_lo), hwconf=acc.hwconf, _factor=1)
    s = acc if ch.direction > 0 else -acc
    if impl.affine is not None:
        m, b, sh = impl.affine
        u = ((s * m + b) * 2.0 ** -sh).quantize(1, 48, 0, "WRAP", "TRN")  # floor (48 bits: never wraps)
        u = u.max_of(0).min_of(len(ch.thresholds))
        for t, a in impl.corrections:  # exact thresholds where the affine form is off
            u = u + (s >= t)
            if a <= ch.s_hi:
                u = u - (1 if a <= ch.s_lo else (s >= a))
    else:  # FINN-style thresholding: u = #{j: s >= t_j}
        bits = [s >= t for t in ch.thresholds]
        u = bits[0]
        for bit in bits[1:]:
            u = u + bit
    return u * ch.step + ch.q_lo if (ch.step != 1 or ch.q_lo != 0) else u


def _verify_map(codes: Callable, ch: ChannelMap, impl: ChannelImpl, c: int, channels: int, rng) -> bool:
    """The thresholds (and an exact implementation) against the model's activation at every threshold
    +-1 and random points of the accumulator range."""
    t = np.asarray(ch.thresholds, dtype=np.int64)
    s = np.concatenate([t - 1, t, [ch.s_lo, ch.s_hi], rng.integers(ch.s_lo, ch.s_hi + 1, 256)])
    s = np.clip(s, ch.s_lo, ch.s_hi)
    acc = np.zeros((len(s), channels), dtype=np.int64)
    acc[:, c] = ch.direction * s
    ref = codes(acc)[:, c]
    return bool(np.array_equal(ch.q_lo + ch.step * ch.u(s), ref)
                and np.array_equal(ch.q_lo + ch.step * implemented_u(ch, impl, s), ref))


def plan_outputs(plans: Sequence[LayerPlan], codes: np.ndarray) -> np.ndarray:
    """The planned integer MLP in numpy (int64): what the traced design must compute, real-valued out."""
    x = np.asarray(codes, dtype=np.int64)
    for plan in plans:
        acc = x @ plan.weights
        if plan.channels is None:
            return acc * 2.0 ** plan.exponent
        x = np.stack([ch.q_lo + ch.step * implemented_u(ch, impl, ch.direction * acc[:, c])
                      for c, (ch, impl) in enumerate(zip(plan.channels, plan.impls))], axis=1)
    return x * 2.0 ** plans[-1].exponent


def _requant_summary(plan: LayerPlan) -> Requant:
    if plan.channels is None:
        return Requant("scale", len(plan.out_lo), detail=f"scores = acc * 2**{plan.exponent}")
    kinds = [impl.kind for impl in plan.impls]
    kind = next(k for k in ("comparators", "affine", "constant") if k in kinds)
    shift = max((impl.affine[2] for impl in plan.impls if impl.affine), default=0)
    parts = [f"{kinds.count(k)} {k}" for k in sorted(set(kinds))]
    corrections = sum(len(impl.corrections) for impl in plan.impls)
    total = sum(len(ch.thresholds) for ch in plan.channels)
    if corrections:
        parts.append(f"{corrections} of {total} thresholds corrected by comparators")
    return Requant(kind, len(kinds), shift, "; ".join(parts), corrections)


def trace_mlp(q_in: Po2Quant, plans: Sequence[LayerPlan], *, hard_dc: int = 2,
              feature_bits: Sequence[int] | None = None):
    """(inputs, outputs) FixedVariableArrays of the integer MLP: input codes in, codes/scores out
    (`feature_bits`: per input its port width, 0 = no port bits, codes shifted to the widest's scale)."""
    from da4ml.trace import FixedVariableArray, FixedVariableArrayInput
    from da4ml.trace.ops import quantize
    inp = FixedVariableArrayInput(plans[0].weights.shape[0], solver_options={"hard_dc": hard_dc})
    if feature_bits is None:
        x = quantize(inp, 0, q_in.bits, 0)
    else:
        bits = np.asarray(feature_bits, dtype=np.int64)
        x = quantize(inp, 0, bits, 0) * 2.0 ** (q_in.bits - bits)
    for plan in plans:
        acc = x @ plan.weights.astype(np.float64)
        if plan.channels is None:
            x = acc * 2.0 ** plan.exponent
            continue
        outs = [_requant_channel(acc[c], ch, impl) for c, (ch, impl) in enumerate(zip(plan.channels, plan.impls))]
        x = FixedVariableArray(np.array(outs, dtype=object), acc.solver_options, hwconf=acc.hwconf)
        if plan is plans[-1]:
            x = x * 2.0 ** plan.exponent
    return inp, x


def mlp_to_verilog(net: QuantizedMLP, out_dir: str | Path, *, latency_cutoff: float = 5, name: str = "mlp",
                   hard_dc: int = 2) -> RtlDesign:
    """A fully parallel da4ml design of `net` in `out_dir` (Verilog under `out_dir/src`, top `name`).

    `latency_cutoff` > 0 pipelines (da4ml's adder-depth units per stage); <= 0 is combinational.
    Raises `RtlUnsupported` for networks that have no exact fixed-point form (see the module doc)."""
    from da4ml.codegen import RTLModel
    from da4ml.trace import comb_trace
    t0 = time.perf_counter()
    q_in, plans = plan_mlp(net)
    inp, out = trace_mlp(q_in, plans, hard_dc=hard_dc, feature_bits=net.feature_bits)
    comb = comb_trace(inp, out)
    out_dir = Path(out_dir)
    if (out_dir / "src").exists():
        shutil.rmtree(out_dir / "src")
    rtl = RTLModel(comb, name, out_dir, flavor="verilog", latency_cutoff=latency_cutoff, print_latency=False)
    rtl.write()
    (out_dir / "model").mkdir(parents=True, exist_ok=True)
    comb.save(out_dir / "model" / "comb.json")
    pipe = getattr(rtl, "_pipe", None)
    requant = tuple(_requant_summary(p) for p in plans)
    return RtlDesign(out_dir=out_dir, verilog_dir=out_dir / "src", top=name, n_inputs=comb.shape[0],
                     input_bits=q_in.bits, n_outputs=comb.shape[1], latency_cutoff=latency_cutoff,
                     latency_cycles=len(pipe.solutions) if pipe is not None else 0, da4ml_cost=float(comb.cost),
                     requant=requant,
                     output_exponent=plans[-1].exponent if plans[-1].channels is None else None,
                     generate_s=round(time.perf_counter() - t0, 3), comb=comb)

