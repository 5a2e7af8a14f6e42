"""Brevitas building blocks of every network: quantized dense/conv layers, activations and the input
quantizer, and the modules of merges (add, concat).

Bit-widths: 1 uses Brevitas' binary quantizers only (SignedBinaryWeightPerTensorConst for weights,
SignedBinaryActPerTensorConst for activations: a bipolar sign after batch norm).
`Int8WeightPerTensorFloat` with 1 bit gives NaN weights and `QuantReLU(bit_width=1)` computes {0, s}
but exports as bipolar, so neither is ever used for 1 bit. 2..16 bits use per-tensor float-scaled
integer quantizers; 32 means an unquantized float layer. Scales are powers of two by default
(`scaling: po2`, Brevitas' *FixedPoint quantizers: what fixed-point hardware computes, and what makes
hls4ml's C simulation bit-exact) or free floats (`scaling: float`).
"""
from __future__ import annotations

import torch
from brevitas import nn as qnn
from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8ActPerTensorFloat, Int8WeightPerTensorFixedPoint,
                            Int8WeightPerTensorFloat, Uint8ActPerTensorFixedPoint, Uint8ActPerTensorFloat)
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from torch import nn

from hw_models.design import FLOAT_BITS


class BipolarWeightPo2(SignedBinaryWeightPerTensorConst):
    """Brevitas' binary weight quantizer with a power-of-two scale (2^-3 instead of 0.1), so the
    bipolar weights are exact in fixed point."""

    scaling_const = 0.125


# scaling -> bipolar weight quantizer
BIPOLAR_WEIGHTS = {"po2": BipolarWeightPo2, "float": SignedBinaryWeightPerTensorConst}
# scaling -> (weight quantizer, unsigned activation quantizer, signed activation quantizer)
QUANTIZERS = {
    "po2": (Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint, Int8ActPerTensorFixedPoint),
    "float": (Int8WeightPerTensorFloat, Uint8ActPerTensorFloat, Int8ActPerTensorFloat),
}


def _weight_kwargs(bits: int, scaling: str) -> dict:
    if bits == 1:
        return {"weight_quant": BIPOLAR_WEIGHTS[scaling]}
    return {"weight_quant": QUANTIZERS[scaling][0], "weight_bit_width": bits}


def quant_linear(n_in: int, n_out: int, bits: int, scaling: str = "po2") -> nn.Module:
    if bits >= FLOAT_BITS:
        return nn.Linear(n_in, n_out, bias=False)
    return qnn.QuantLinear(n_in, n_out, bias=False, **_weight_kwargs(bits, scaling))


def quant_conv(in_ch: int, out_ch: int, kernel, bits: int, scaling: str = "po2", *, stride=1, padding=0,
               groups: int = 1, rank: int = 2) -> nn.Module:
    """A 2-D (or, with rank 1, 1-D) convolution without bias; `groups` = channels is depthwise."""
    args = dict(stride=stride, padding=padding, groups=groups, bias=False)
    if bits >= FLOAT_BITS:
        return (nn.Conv2d if rank == 2 else nn.Conv1d)(in_ch, out_ch, kernel, **args)
    return (qnn.QuantConv2d if rank == 2 else qnn.QuantConv1d)(in_ch, out_ch, kernel, **args,
                                                                **_weight_kwargs(bits, scaling))


def quant_act(bits: int, activation: str, scaling: str = "po2") -> nn.Module:
    """Output activation of a layer with `bits` bits (after its batch norm)."""
    if bits == 1:
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
    if bits >= FLOAT_BITS:
        return nn.ReLU() if activation == "relu" else nn.Hardtanh()
    _, unsigned, signed = QUANTIZERS[scaling]
    if activation == "relu":
        return qnn.QuantReLU(act_quant=unsigned, bit_width=bits)
    return qnn.QuantHardTanh(act_quant=signed, bit_width=bits, max_val=1.0, min_val=-1.0)


def input_quant(bits: int, scaling: str = "po2", signed: bool = False) -> nn.Module:
    """Quantize the [0, 1] input to unsigned `bits`-bit integers times a learned scale (a standardised
    input: signed integers)."""
    if bits >= FLOAT_BITS:
        return nn.Identity()
    return qnn.QuantIdentity(act_quant=QUANTIZERS[scaling][2 if signed else 1], bit_width=bits)


class SumModule(nn.Module):
    """A residual add of two tensors, then its requantisation (when any)."""

    def __init__(self, post: nn.Module | None):
        super().__init__()
        self.post = post

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        y = a + b
        return self.post(y) if self.post is not None else y


class CatModule(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


def _ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return x + (q - x).detach()


class ChannelQuantLinear(nn.Module):
    """A linear layer without bias whose output neuron j has its own weight bits b_j (2..16): narrow-range
    integers in [-(2**(b_j-1) - 1), 2**(b_j-1) - 1] times a per-row power-of-two scale, the smallest that
    holds the row's largest weight (straight-through gradients). The QONNX flows do not export it; the
    da4ml flows take it (`codesign.model.quantized_mlp`)."""

    def __init__(self, n_in: int, n_out: int, bits: tuple[int, ...]):
        super().__init__()
        if len(bits) != n_out:
            raise ValueError(f"neuron_weight_bits: {len(bits)} values for {n_out} outputs")
        self.neuron_bits = tuple(bits)
        self.weight = nn.Parameter(nn.Linear(n_in, n_out, bias=False).weight.detach().clone())
        self.register_buffer("levels", (2.0 ** (torch.tensor(bits, dtype=torch.float32) - 1) - 1)[:, None])

    def scales(self) -> torch.Tensor:
        """Per row (output neuron) its power-of-two scale, shape (out, 1)."""
        top = self.weight.detach().abs().amax(1, keepdim=True).clamp_min(1e-8)
        return 2.0 ** torch.ceil(torch.log2(top / self.levels))

    def int_weight(self) -> torch.Tensor:
        return torch.round(self.weight / self.scales()).clamp(-self.levels, self.levels).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, _ste(self.weight, self.int_weight() * self.scales()))


class ChannelQuantReLU(nn.Module):
    """A quantized ReLU with output neuron j at its own bits b_j (2..16): codes 0 .. 2**b_j - 1 times
    2**e / 2**b_j, where 2**e is the layer's range, a learned power of two (its log2 rounded, straight
    through); every neuron's value is then a multiple of the widest neuron's step (fixed point)."""

    def __init__(self, bits: tuple[int, ...], log2_range: float = 1.0):
        super().__init__()
        self.neuron_bits = tuple(bits)
        self.log2_range = nn.Parameter(torch.tensor(float(log2_range)))
        b = torch.tensor(bits, dtype=torch.float32)
        self.register_buffer("codes", 2.0 ** b)
        self.register_buffer("max_code", 2.0 ** b - 1)

    def exponent(self) -> int:
        """e: the range of every neuron's output is [0, 2**e)."""
        return int(torch.round(self.log2_range.detach()))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        step = 2.0 ** _ste(self.log2_range, torch.round(self.log2_range)) / self.codes
        y = torch.minimum(torch.relu(h), self.max_code * step)
        return _ste(y, torch.round(y / step) * step)
