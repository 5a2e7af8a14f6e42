"""Brevitas models from a `ModelSpec` (`QuantNet`, the built-in space: FINN-friendly layer order
linear/conv -> BN -> quantized act) or a user network (`GraphNet`), from the blocks of `codesign.quant`.

`quantized_mlp(model)` hands an MLP to the RTL flows as plain data (`flows.quantized_mlp`): its
quantized weights and quantizers as numbers, its own modules as numpy functions.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from brevitas import nn as qnn
from torch import nn

from codesign.quant import ChannelQuantLinear, ChannelQuantReLU, input_quant, quant_act, quant_conv, quant_linear

from codesign.space import ModelSpec
from flows.quantized_mlp import QuantizedDense, QuantizedMLP, Quantizer, RtlUnsupported
from hw_models.design import FLOAT_BITS


class FeatureInputQuant(nn.Module):
    """Each input feature in [0, 1] at its own fixed-point width b: round(x * 2**b) / 2**b, the code
    clipped to [0, 2**b - 1] (what an unsigned b-bit port carries); 0 bits: the feature is dropped (0)."""

    def __init__(self, feature_bits: tuple[int, ...]):
        super().__init__()
        bits = torch.tensor(feature_bits, dtype=torch.float32)
        self.feature_bits = tuple(feature_bits)
        self.register_buffer("steps", 2.0 ** bits)
        self.register_buffer("max_code", 2.0 ** bits - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, features) or (N, *sample shape)
        flat = x.reshape(x.shape[0], -1)
        return (torch.minimum(torch.round(flat * self.steps).clamp_min(0), self.max_code) / self.steps).reshape(x.shape)


class QuantNet(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        sc = spec.scaling
        if spec.feature_bits and (spec.input_signed or spec.kind != "mlp"):
            raise ValueError("per-feature input bits: only for MLPs on unsigned inputs in [0, 1]")
        self.input_quant = (FeatureInputQuant(spec.feature_bits) if spec.feature_bits
                            else input_quant(spec.input_bits, sc, spec.input_signed))
        self.image_shape = spec.image_shape
        blocks: list[nn.Module] = []
        if spec.kind == "cnn":
            ch, dim = spec.image_shape[0], spec.image_shape[1]
            for conv in spec.convs:
                blocks += [quant_conv(ch, conv.channels, conv.kernel, conv.weight_bits, sc),
                           nn.BatchNorm2d(conv.channels), quant_act(conv.act_bits, spec.activation, sc)]
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
            if (d.neuron_weight_bits or d.neuron_act_bits) and (sc != "po2" or spec.activation != "relu"):
                raise ValueError("per-neuron bits: only with scaling po2 and relu activations")
            blocks.append(ChannelQuantLinear(n_in, d.width, d.neuron_weight_bits) if d.neuron_weight_bits
                          else quant_linear(n_in, d.width, d.weight_bits, sc))
            act = (ChannelQuantReLU(d.neuron_act_bits) if d.neuron_act_bits
                   else quant_act(d.act_bits, spec.activation, sc))
            if not last:
                blocks += [nn.BatchNorm1d(d.width), act]
            elif d.act_bits < FLOAT_BITS:
                blocks.append(act)
            n_in = d.width
        self.body = nn.Sequential(*blocks)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One input sample as the exported graph reads it (`flows.qonnx.ExportableModel`)."""
        return tuple(self.image_shape) if self.image_shape is not None else (self.spec.n_features,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_shape is not None and x.dim() == 2:  # flat samples; exports pass images directly
            x = x.reshape(x.shape[0], *self.image_shape)
        return self.body(self.input_quant(x))


class GraphNet(nn.Module):
    """A user network (`codesign.net.NetSpec`): its layers' modules, run in topological order."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        fb = getattr(spec, "feature_bits", None)  # Input(data, feature_bits=...)
        self.input_quant = FeatureInputQuant(fb) if fb else input_quant(spec.input_bits, spec.scaling, spec.input_signed)
        built = spec.modules()
        self.layers = nn.ModuleList(m for m, _ in built)
        self.inputs = [inputs for _, inputs in built]
        self._share_merge_quantizers()

    def _share_merge_quantizers(self) -> None:
        """The two layers feeding a residual add quantize with one shared activation quantizer (a layer
        feeding two adds joins both groups), so both inputs are on one scale: FINN's integer
        ElementwiseAdd takes nothing else, and FINN's own residual networks share them the same way.
        Producers without a quantized activation of their own, or of different bits, keep theirs."""
        parent = list(range(len(self.layers)))

        def root(i: int) -> int:
            while parent[i] != i:
                i = parent[i]
            return i

        for i, (kind, _, inputs) in enumerate(self.spec.layers):
            if kind == "add" and min(inputs) >= 0:
                parent[root(inputs[1])] = root(inputs[0])
        groups: dict[int, list[int]] = {}
        for i in range(len(self.layers)):
            groups.setdefault(root(i), []).append(i)
        for members in (m for m in groups.values() if len(m) > 1):
            acts = [_output_quant(self.layers[i]) for i in members]
            if any(a is None for a in acts) or len({(type(a), int(a.act_quant.bit_width())) for a in acts}) != 1:
                continue
            for i in members[1:]:
                _set_output_quant(self.layers[i], acts[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.spec.sample_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and len(self.spec.sample_shape) > 1:  # flat samples; exports pass the shape directly
            x = x.reshape(x.shape[0], *self.spec.sample_shape)
        outs: list[torch.Tensor] = []
        x = self.input_quant(x)
        for layer, inputs in zip(self.layers, self.inputs):
            outs.append(layer(*(x if p == -1 else outs[p] for p in inputs)))
        return outs[-1]


def _output_quant(layer: nn.Module) -> nn.Module | None:
    """The quantized activation a layer's output leaves through (a Sequential's last module, an add's
    requantisation), or None."""
    last = layer[-1] if isinstance(layer, nn.Sequential) and len(layer) else getattr(layer, "post", None)
    return last if last is not None and hasattr(last, "act_quant") else None


def _set_output_quant(layer: nn.Module, quant: nn.Module) -> None:
    if isinstance(layer, nn.Sequential):
        layer[-1] = quant
    else:
        layer.post = quant


_WEIGHTED = (qnn.QuantLinear, qnn.QuantConv1d, qnn.QuantConv2d)


def weight_csd_digits(model: nn.Module) -> list[float | None]:
    """Per conv/dense layer, in order: mean non-zero CSD digits of its trained integer weights
    (None for a float layer). Constant-weight hardware (hls4ml at reuse factor 1) costs with it."""
    from hw_models.weights import mean_csd_digits
    out: list[float | None] = []
    for module in model.modules():
        if isinstance(module, ChannelQuantLinear):
            out.append(mean_csd_digits(np.asarray(module.int_weight().int().cpu().numpy())))
        elif isinstance(module, _WEIGHTED):
            with torch.no_grad():
                out.append(mean_csd_digits(np.asarray(module.quant_weight().int().cpu().numpy())))
        elif isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            out.append(None)
    return out


def build_model(spec, seed: int | None = None) -> nn.Module:
    """The network of `spec` (a built-in `ModelSpec` or a user `NetSpec`); with a seed, its initial
    weights are reproducible."""
    if seed is not None:
        torch.manual_seed(seed)
    return QuantNet(spec) if isinstance(spec, ModelSpec) else GraphNet(spec)


def _numpy_fn(module: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.asarray(x, dtype=np.float32))).double().numpy()
    return run


def _quantizer(module: nn.Module) -> Quantizer:
    if isinstance(module, ChannelQuantReLU):  # the widest neuron's codes and step
        bits = max(module.neuron_bits)
        return Quantizer(bits, 2.0 ** (module.exponent() - bits), False)
    proxy = module.act_quant
    return Quantizer(int(proxy.bit_width()), float(proxy.scale().detach()), bool(proxy.is_signed))


def _check_rtl_supported(spec) -> None:
    if isinstance(spec, ModelSpec):
        if spec.kind != "mlp":
            raise RtlUnsupported(f"only MLPs are converted to RTL so far (model kind {spec.kind!r})")
        dense = [(d.weight_bits, d.act_bits) for d in spec.dense]
    else:
        kinds = [kind for kind, _, _ in spec.layers]
        if any(k not in ("dense", "flatten") for k in kinds) or any(
                inputs != (i - 1,) for i, (_, _, inputs) in enumerate(spec.layers)):
            raise RtlUnsupported(f"only chains of dense layers are converted to RTL so far (this network has "
                                 f"{', '.join(sorted(set(kinds) - {'dense', 'flatten'})) or 'branches'})")
        dense = [(args["weight_bits"], args["act_bits"]) for kind, args, _ in spec.layers if kind == "dense"]
    if spec.scaling != "po2":
        raise RtlUnsupported(f"scaling {spec.scaling!r}: only power-of-two scales are exact in fixed point")
    if spec.input_bits >= FLOAT_BITS:
        raise RtlUnsupported("float input (input_bits 32) has no fixed-point input port")
    for i, (weight_bits, act_bits) in enumerate(dense):
        if weight_bits >= FLOAT_BITS:
            raise RtlUnsupported(f"dense layer {i}: float weights (32 bits)")
        if act_bits >= FLOAT_BITS and i < len(dense) - 1:
            raise RtlUnsupported(f"dense layer {i}: float activations (32 bits)")


def _is_act(m: nn.Module) -> bool:
    return hasattr(m, "act_quant") or isinstance(m, ChannelQuantReLU)


def _dense_layer(linear: nn.Module, post: list[nn.Module], n: int) -> QuantizedDense:
    """One QuantLinear (or ChannelQuantLinear) and what follows it (BatchNorm + activation, an
    activation, or nothing)."""
    if any(not isinstance(m, (nn.BatchNorm1d, nn.Identity)) and not _is_act(m) for m in post):
        raise RtlUnsupported(f"dense layer {n}: unsupported module after it: {[type(m).__name__ for m in post]}")
    acts = [m for m in post if _is_act(m)]
    if isinstance(linear, ChannelQuantLinear):  # per-row scales: integers at the finest row's scale
        with torch.no_grad():
            scales = linear.scales()
            weights, scale = (linear.int_weight() * scales).double().numpy().T, float(scales.min())
        bias = None
    else:
        qw = linear.quant_weight()
        weights, scale = qw.value.detach().double().numpy().T, float(qw.scale.detach())
        bias = None if linear.bias is None else linear.bias.detach().double().numpy()
    channel_bits = acts[-1].neuron_bits if acts and isinstance(acts[-1], ChannelQuantReLU) else None
    return QuantizedDense(weights, scale, _numpy_fn(nn.Sequential(*post)) if post else None,
                          _quantizer(acts[-1]) if acts else None, bias, channel_bits=channel_bits)


def quantized_mlp(model: nn.Module) -> QuantizedMLP:
    """`model` (a `QuantNet`, or a `GraphNet` of a chain of dense layers; put in eval mode) as the plain
    data the RTL flows take; `RtlUnsupported` when it is not an MLP of quantized layers (CNNs,
    branches, float layers, float scaling)."""
    _check_rtl_supported(model.spec)
    model.eval()
    if isinstance(model, GraphNet):  # each Dense is Sequential(Flatten, QuantLinear, [BatchNorm], [act])
        body = [m for layer in model.layers for m in (layer if isinstance(layer, nn.Sequential) else [layer])
                if not isinstance(m, nn.Flatten)]
    else:
        body = list(model.body)
    linear = (qnn.QuantLinear, ChannelQuantLinear)
    starts = [i for i, m in enumerate(body) if isinstance(m, linear)]
    if not starts or len(starts) != sum(isinstance(m, (nn.Linear, *linear)) for m in body):
        raise RtlUnsupported("the body is not a chain of QuantLinear layers")
    ends = starts[1:] + [len(body)]
    layers = tuple(_dense_layer(body[s], body[s + 1:e], n) for n, (s, e) in enumerate(zip(starts, ends)))
    fb = getattr(model.spec, "feature_bits", ())  # a user network has one input width
    in_quant = Quantizer(max(fb), 2.0 ** -max(fb), False) if fb else _quantizer(model.input_quant)
    return QuantizedMLP(in_quant, _numpy_fn(model.input_quant), layers, _numpy_fn(model), feature_bits=fb or None)
