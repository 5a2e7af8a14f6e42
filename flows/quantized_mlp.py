"""The network the RTL flows take: a quantized MLP as plain data, built by the caller from its own model.

`flows` never imports the model code. The caller (`codesign.model.quantized_mlp` for the project's
Brevitas networks) hands over the quantized weights and quantizers as numbers, and the model's own
computations as numpy functions: the thresholds of the generated RTL are found through them and the
RTL is checked against them, so the RTL is exact with respect to what the model computes (float32
BatchNorm and rounding included), not to a re-implementation of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from flows.base import FlowSkipped

NumpyFn = Callable[[np.ndarray], np.ndarray]


class RtlUnsupported(FlowSkipped):
    """The network cannot be turned into an exact da4ml design (the message says why): use the
    analytic resource source instead."""


@dataclass(frozen=True)
class Quantizer:
    """An integer quantizer: real value = code * `scale`, codes of `bits` bits (1 bit signed: {-1, +1})."""

    bits: int
    scale: float
    signed: bool


@dataclass(frozen=True, eq=False)  # arrays and functions: compared by identity
class QuantizedDense:
    """One linear layer and what the model computes between it and the next linear layer."""

    weights: np.ndarray  # (in, out) float64: the quantized weights as real values (codes * weight_scale)
    weight_scale: float
    # float32 (n, out) C-contiguous linear outputs -> float64 outputs of the modules that follow (e.g.
    # BatchNorm + quantized activation), computed by the model itself; None when nothing follows
    activation: NumpyFn | None
    out_quant: Quantizer | None  # the quantizer ending `activation`; None: unquantized outputs (scores)
    bias: np.ndarray | None = None
    # per output its bits (per-neuron activation bits): output j's codes at `out_quant`'s scale are
    # multiples of 2**(out_quant.bits - channel_bits[j]); None: every output at out_quant.bits
    channel_bits: tuple[int, ...] | None = None


@dataclass(frozen=True, eq=False)
class QuantizedMLP:
    """A chain of dense layers behind an input quantizer, with the model's own forward pass."""

    input_quant: Quantizer
    quantize_input: NumpyFn  # float32 (n, features) -> float64 real values of the input quantizer's output
    layers: tuple[QuantizedDense, ...]
    forward: NumpyFn  # float32 (n, features) -> float64 (n, outputs): the model's output
    # per input its bits (0: dropped), each feature's real value a multiple of 2**-bits; None: every
    # input is `input_quant` (then `input_quant` has the widest bits and scale 2**-widest)
    feature_bits: tuple[int, ...] | None = None

    @property
    def n_features(self) -> int:
        return self.layers[0].weights.shape[0]
