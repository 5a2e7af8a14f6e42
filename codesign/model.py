"""Brevitas models from a `ModelSpec`: FINN-friendly layer order (linear/conv -> BN -> quantized act).

Bit-widths: 1 uses Brevitas' binary quantizers only (SignedBinaryWeightPerTensorConst for weights,
SignedBinaryActPerTensorConst for activations: a bipolar sign after batch norm).
`Int8WeightPerTensorFloat` with 1 bit gives NaN weights and `QuantReLU(bit_width=1)` computes {0, s}
but exports as bipolar, so neither is ever used for 1 bit. 2..16 bits use per-tensor float-scaled
integer quantizers; 32 means an unquantized float layer.
"""
from __future__ import annotations

import torch
from brevitas import nn as qnn
from brevitas.quant import Int8WeightPerTensorFloat, Uint8ActPerTensorFloat
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from torch import nn

from codesign.space import ModelSpec
from hw_models.design import FLOAT_BITS


def _weight_kwargs(bits: int) -> dict:
    if bits == 1:
        return {"weight_quant": SignedBinaryWeightPerTensorConst}
    return {"weight_quant": Int8WeightPerTensorFloat, "weight_bit_width": bits}


def quant_linear(n_in: int, n_out: int, bits: int) -> nn.Module:
    if bits >= FLOAT_BITS:
        return nn.Linear(n_in, n_out, bias=False)
    return qnn.QuantLinear(n_in, n_out, bias=False, **_weight_kwargs(bits))


def quant_conv(in_ch: int, out_ch: int, kernel: int, bits: int) -> nn.Module:
    if bits >= FLOAT_BITS:
        return nn.Conv2d(in_ch, out_ch, kernel, bias=False)
    return qnn.QuantConv2d(in_ch, out_ch, kernel, bias=False, **_weight_kwargs(bits))


def quant_act(bits: int, activation: str) -> nn.Module:
    """Output activation of a layer with `bits` bits (after its batch norm)."""
    if bits == 1:
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
    if bits >= FLOAT_BITS:
        return nn.ReLU() if activation == "relu" else nn.Hardtanh()
    if activation == "relu":
        return qnn.QuantReLU(bit_width=bits)
    return qnn.QuantHardTanh(bit_width=bits, max_val=1.0, min_val=-1.0)


def input_quant(bits: int) -> nn.Module:
    """Quantize the [0, 1] input to unsigned `bits`-bit integers times a learned scale."""
    if bits >= FLOAT_BITS:
        return nn.Identity()
    return qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=bits)


class QuantNet(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.input_quant = input_quant(spec.input_bits)
        self.image_shape = spec.image_shape
        blocks: list[nn.Module] = []
        if spec.kind == "cnn":
            ch, dim = spec.image_shape[0], spec.image_shape[1]
            for conv in spec.convs:
                blocks += [quant_conv(ch, conv.channels, conv.kernel, conv.weight_bits),
                           nn.BatchNorm2d(conv.channels), quant_act(conv.act_bits, spec.activation)]
                ch, dim = conv.channels, dim - conv.kernel + 1
                if conv.pool:
                    blocks.append(nn.MaxPool2d(2))
                    dim //= 2
            blocks.append(nn.Flatten())
            n_in = ch * dim * dim
        else:
            n_in = spec.n_features
        for i, d in enumerate(spec.dense):
            last = i == len(spec.dense) - 1
            blocks.append(quant_linear(n_in, d.width, d.weight_bits))
            if not last:
                blocks += [nn.BatchNorm1d(d.width), quant_act(d.act_bits, spec.activation)]
            elif d.act_bits < FLOAT_BITS:
                blocks.append(quant_act(d.act_bits, spec.activation))
            n_in = d.width
        self.body = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_shape is not None:
            x = x.reshape(x.shape[0], *self.image_shape)
        return self.body(self.input_quant(x))


def build_model(spec: ModelSpec, seed: int | None = None) -> QuantNet:
    """The network of `spec`; with a seed, its initial weights are reproducible."""
    if seed is not None:
        torch.manual_seed(seed)
    return QuantNet(spec)
