"""Networks of your own: a functional graph of the registry's layers, built inside a search space.

A user search space is a function `build(trial, data)` that asks Optuna's trial API for its choices and
returns the output of a graph of layers (or a `Network` with training settings):

    from codesign.net import Add, Conv2d, Dense, GlobalAvgPool, Input

    def build(trial, data):
        bits = trial.suggest_categorical("bits", [2, 4])
        x = Input(data)
        x = Conv2d(trial.suggest_int("ch", 8, 32, step=8), 3, padding=1, weight_bits=bits, act_bits=bits)(x)
        y = Conv2d(x.shape[0], 3, padding=1, weight_bits=bits, act_bits=bits)(x)
        x = GlobalAvgPool()(Add(act_bits=bits)(x, y))
        return Dense(data.n_classes, weight_bits=bits)(x)

Each layer kind (`NET_KINDS`) knows its search-facing arguments, its output shape and bits, its hardware
layer (`hw_models.layers`) and its Brevitas module. A dense or conv layer is followed by batch norm
and its quantized activation (the batch norm folds into FINN's thresholds); `act_bits` 32 means the
raw output (no activation), as for a classifier. Shapes are per sample: (features,), (channels,
length) or (channels, height, width).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from hw_models.common import ALLOWED_BITS, parse_bits
from hw_models.design import (GRAPH_INPUT, AddLayer, AvgPoolLayer, ConcatLayer, ConvLayer, DenseLayer,
                              DepthwiseConvLayer, Design, GlobalAvgPoolLayer, MaxPoolLayer, design_summary)

FLOAT_BITS = 32
_ids = itertools.count()


class NetError(ValueError):
    """A network that cannot be built: the message names the layer and what does not fit."""


@dataclass(frozen=True, eq=False)
class Node:
    """A tensor of the graph: the layer that made it, its inputs, its shape and bits per sample."""

    op: "NetLayer"
    inputs: tuple["Node", ...]
    shape: tuple[int, ...]
    bits: int
    id: int = field(default_factory=lambda: next(_ids))


class NetLayer:
    """A layer kind of user networks. Subclasses are frozen dataclasses of their arguments."""

    kind: ClassVar[str]
    arity: ClassVar[int | None] = 1  # None: two or more

    def __call__(self, *inputs: Node) -> Node:
        if not inputs or not all(isinstance(n, Node) for n in inputs):
            raise NetError(f"{self.label()}: call it on the output of Input(data) or of another layer")
        if self.arity is not None and len(inputs) != self.arity:
            raise NetError(f"{self.label()}: takes {self.arity} input(s), got {len(inputs)}")
        if self.arity is None and len(inputs) < 2:
            raise NetError(f"{self.label()}: takes two or more inputs, got {len(inputs)}")
        shapes = [n.shape for n in inputs]
        bits = [n.bits for n in inputs]
        return Node(self, tuple(inputs), self.out_shape(shapes), self.out_bits(bits, shapes))

    def label(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{type(self).__name__}({args})"

    def out_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        raise NotImplementedError

    def out_bits(self, bits: list[int], shapes) -> int:
        return self.act_bits

    def hardware(self, shapes, bits: list[int]):
        """The `hw_models.layers` layer, or None for a layer that is only a reshape."""
        raise NotImplementedError

    def module(self, shapes, bits: list[int], scaling: str):
        """The torch module computing this layer (Brevitas for quantized ones)."""
        raise NotImplementedError

    def _bits(self, *names: str) -> None:
        for name in names:
            try:
                parse_bits(name, getattr(self, name))
            except ValueError as exc:
                raise NetError(f"{self.label()}: {exc}") from None

    def _activation(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise NetError(f"{self.label()}: activation must be one of {list(ACTIVATIONS)}")

    def _positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            for v in (value if isinstance(value, tuple) else (value,)):
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise NetError(f"{self.label()}: {name} must be a positive integer")


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _spatial(layer: NetLayer, shape) -> tuple[int, tuple[int, int], int]:
    """(channels, (height, width), rank) of a feature map (C, H, W) or signal (C, L)."""
    if len(shape) == 3:
        return shape[0], (shape[1], shape[2]), 2
    if len(shape) == 2:
        return shape[0], (1, shape[1]), 1
    raise NetError(f"{layer.label()}: needs a feature map (channels, height, width) or a signal (channels, length); "
                   f"its input has shape {shape}")


def _back(dims, rank) -> tuple[int, ...]:
    return tuple(dims) if rank == 2 else (dims[1],)


ACTIVATIONS = ("relu", "hardtanh")  # hardtanh: signed activations in [-1, 1]


def _norm_act(modules: list, channels: int, rank: int, act_bits: int, bn: bool, scaling: str,
              activation: str = "relu"):
    from torch import nn

    from codesign.quant import quant_act
    if bn:
        modules.append({0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[rank](channels))
    if act_bits < FLOAT_BITS:
        modules.append(quant_act(act_bits, activation, scaling))
    return nn.Sequential(*modules)


@dataclass(frozen=True)
class Dense(NetLayer):
    units: int
    weight_bits: int = 4
    act_bits: int = FLOAT_BITS
    bn: bool | None = None  # default: batch norm unless act_bits is 32 (a classifier's raw scores)
    name: str | None = None  # a label (a converted float model's layers carry their module's name)
    activation: str = "relu"
    kind: ClassVar[str] = "dense"

    def out_shape(self, shapes):
        self._positive("units")
        self._bits("weight_bits", "act_bits")
        self._activation()
        return (self.units,)

    def hardware(self, shapes, bits):
        return DenseLayer(in_features=math.prod(shapes[0]), out_features=self.units, weight_bits=self.weight_bits,
                          act_bits=self.act_bits)

    def module(self, shapes, bits, scaling):
        from torch import nn

        from codesign.quant import quant_linear
        bn = self.bn if self.bn is not None else self.act_bits < FLOAT_BITS
        return _norm_act([nn.Flatten(), quant_linear(math.prod(shapes[0]), self.units, self.weight_bits, scaling)],
                         self.units, 0, self.act_bits, bn, scaling, self.activation)


@dataclass(frozen=True)
class Conv2d(NetLayer):
    """A 2-D convolution on (C, H, W), or a 1-D one on (C, L) (`Conv1d`)."""

    channels: int
    kernel: int | tuple[int, int]
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    weight_bits: int = 4
    act_bits: int = 4
    bn: bool = True
    name: str | None = None
    activation: str = "relu"
    kind: ClassVar[str] = "conv2d"
    rank: ClassVar[int] = 2

    def _geometry(self, shape):
        ch, (h, w), rank = _spatial(self, shape)
        if rank != self.rank:
            raise NetError(f"{self.label()}: expects a {'feature map (C, H, W)' if self.rank == 2 else 'signal (C, L)'}, "
                           f"got shape {shape}")
        k, s, p = (_pair(v) if rank == 2 else (1 if n != "padding" else 0, v) for n, v in
                   (("kernel", self.kernel), ("stride", self.stride), ("padding", self.padding)))
        if rank == 1 and any(isinstance(v, tuple) for v in (self.kernel, self.stride, self.padding)):
            raise NetError(f"{self.label()}: a 1-D convolution takes single integers")
        out = ((h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1)
        if min(out) < 1:
            raise NetError(f"{self.label()}: kernel {self.kernel} does not fit the input {shape}")
        return ch, (h, w), k, s, p, out, rank

    def out_shape(self, shapes):
        self._positive("channels", "kernel", "stride")
        self._bits("weight_bits", "act_bits")
        self._activation()
        *_, out, rank = self._geometry(shapes[0])
        return (self.channels, *_back(out, rank))

    def hardware(self, shapes, bits):
        ch, dims, k, s, p, _, _ = self._geometry(shapes[0])
        return ConvLayer(in_ch=ch, out_ch=self.channels, kernel=k, in_dim=dims, stride=s, padding=p,
                         weight_bits=self.weight_bits, act_bits=self.act_bits)

    def module(self, shapes, bits, scaling):
        from codesign.quant import quant_conv
        ch, *_ = self._geometry(shapes[0])
        conv = quant_conv(ch, self.channels, self.kernel, self.weight_bits, scaling, stride=self.stride,
                          padding=self.padding, rank=self.rank)
        return _norm_act([conv], self.channels, self.rank, self.act_bits, self.bn, scaling, self.activation)


@dataclass(frozen=True)
class Conv1d(Conv2d):
    kind: ClassVar[str] = "conv1d"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class DepthwiseConv2d(NetLayer):
    """A depthwise convolution on (C, H, W): one filter per channel (FINN's VVAU)."""

    kernel: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    weight_bits: int = 4
    act_bits: int = 4
    bn: bool = True
    name: str | None = None
    activation: str = "relu"
    kind: ClassVar[str] = "dwconv2d"

    def _conv(self, shape) -> Conv2d:
        return Conv2d(shape[0], self.kernel, self.stride, self.padding, self.weight_bits, self.act_bits, self.bn, self.name,
                      self.activation)

    def out_shape(self, shapes):
        return self._conv(shapes[0]).out_shape(shapes)

    def hardware(self, shapes, bits):
        ch, dims, k, s, p, _, _ = self._conv(shapes[0])._geometry(shapes[0])
        return DepthwiseConvLayer(channels=ch, kernel=k, in_dim=dims, stride=s, padding=p,
                                  weight_bits=self.weight_bits, act_bits=self.act_bits)

    def module(self, shapes, bits, scaling):
        from codesign.quant import quant_conv
        ch = shapes[0][0]
        conv = quant_conv(ch, ch, self.kernel, self.weight_bits, scaling, stride=self.stride, padding=self.padding,
                          groups=ch)
        return _norm_act([conv], ch, 2, self.act_bits, self.bn, scaling, self.activation)


@dataclass(frozen=True)
class MaxPool(NetLayer):
    """Pooling windows of `pool` with stride `pool` on (C, H, W) or (C, L); the output keeps the input's bits."""

    pool: int | tuple[int, int] = 2
    kind: ClassVar[str] = "maxpool"
    hw: ClassVar[type] = MaxPoolLayer

    def _geometry(self, shape):
        ch, (h, w), rank = _spatial(self, shape)
        pool = _pair(self.pool) if rank == 2 else (1, self.pool)
        if h // pool[0] < 1 or w // pool[1] < 1:
            raise NetError(f"{self.label()}: the pool is larger than the input {shape}")
        return ch, (h, w), pool, rank

    def out_shape(self, shapes):
        self._positive("pool")
        ch, (h, w), pool, rank = self._geometry(shapes[0])
        return (ch, *_back((h // pool[0], w // pool[1]), rank))

    def out_bits(self, bits, shapes):
        return bits[0]

    def hardware(self, shapes, bits):
        ch, dims, pool, _ = self._geometry(shapes[0])
        return self.hw(channels=ch, in_dim=dims, pool=pool)

    def module(self, shapes, bits, scaling):
        from torch import nn
        rank = self._geometry(shapes[0])[3]
        return (nn.MaxPool2d if rank == 2 else nn.MaxPool1d)(self.pool)


@dataclass(frozen=True)
class AvgPool(MaxPool):
    """Average pooling, requantised to the input's bits (a truncating average, as the hardware does)."""

    kind: ClassVar[str] = "avgpool"
    hw: ClassVar[type] = AvgPoolLayer

    def module(self, shapes, bits, scaling):
        from torch import nn

        from codesign.quant import quant_act
        rank = self._geometry(shapes[0])[3]
        pool = (nn.AvgPool2d if rank == 2 else nn.AvgPool1d)(self.pool)
        return nn.Sequential(pool, quant_act(bits[0], "relu", scaling)) if bits[0] < FLOAT_BITS else pool


@dataclass(frozen=True)
class GlobalAvgPool(NetLayer):
    """The mean of every pixel per channel: (C, H, W) or (C, L) -> (C,). In hardware a sum (the 1/N goes
    into the next layer), so the output has ceil(log2(pixels)) more bits."""

    kind: ClassVar[str] = "globalavgpool"

    def out_shape(self, shapes):
        return (_spatial(self, shapes[0])[0],)

    def out_bits(self, bits, shapes):
        _, (h, w), _ = _spatial(self, shapes[0])
        return bits[0] + math.ceil(math.log2(h * w)) if bits[0] < FLOAT_BITS else bits[0]

    def hardware(self, shapes, bits):
        ch, dims, _ = _spatial(self, shapes[0])
        return GlobalAvgPoolLayer(channels=ch, in_dim=dims)

    def module(self, shapes, bits, scaling):
        from torch import nn
        rank = _spatial(self, shapes[0])[2]
        return nn.Sequential((nn.AdaptiveAvgPool2d if rank == 2 else nn.AdaptiveAvgPool1d)(1), nn.Flatten())


@dataclass(frozen=True)
class Add(NetLayer):
    """The element-wise sum of two tensors of the same shape (a residual connection), requantised to
    `act_bits` by a quantized ReLU (32: the raw sum)."""

    act_bits: int = FLOAT_BITS
    kind: ClassVar[str] = "add"
    arity: ClassVar[int | None] = 2

    def out_shape(self, shapes):
        self._bits("act_bits")
        if shapes[0] != shapes[1]:
            raise NetError(f"{self.label()}: adds tensors of different shapes {shapes[0]} and {shapes[1]}")
        return shapes[0]

    def out_bits(self, bits, shapes):
        return self.act_bits if self.act_bits < FLOAT_BITS else max(bits) + 1

    def hardware(self, shapes, bits):
        return AddLayer(shape=_hw_shape(shapes[0]), act_bits=self.act_bits)

    def module(self, shapes, bits, scaling):
        from codesign.quant import SumModule, quant_act
        return SumModule(quant_act(self.act_bits, "relu", scaling) if self.act_bits < FLOAT_BITS else None)


@dataclass(frozen=True)
class Concat(NetLayer):
    """Channels of two or more tensors side by side (equal lengths / pixels)."""

    kind: ClassVar[str] = "concat"
    arity: ClassVar[int | None] = None

    def out_shape(self, shapes):
        if len({s[1:] for s in shapes}) != 1:
            raise NetError(f"{self.label()}: concatenates tensors of different sizes {shapes} (only channels may differ)")
        return (sum(s[0] for s in shapes), *shapes[0][1:])

    def out_bits(self, bits, shapes):
        return max(bits)

    def hardware(self, shapes, bits):
        rest = shapes[0][1:]
        in_dim = None if not rest else ((1, rest[0]) if len(rest) == 1 else rest)
        return ConcatLayer(channels_in=tuple(s[0] for s in shapes), in_dim=in_dim)

    def module(self, shapes, bits, scaling):
        from codesign.quant import CatModule
        return CatModule()


@dataclass(frozen=True)
class Flatten(NetLayer):
    """A reshape to (features,): free in hardware (a dense layer reads the feature map as a vector)."""

    kind: ClassVar[str] = "flatten"

    def out_shape(self, shapes):
        return (math.prod(shapes[0]),)

    def out_bits(self, bits, shapes):
        return bits[0]

    def hardware(self, shapes, bits):
        return None

    def module(self, shapes, bits, scaling):
        from torch import nn
        return nn.Flatten()


def _hw_shape(shape) -> tuple[int, ...]:
    return (shape[0], 1, shape[1]) if len(shape) == 2 else tuple(shape)


# kind -> layer class of user networks; explicit registry
NET_KINDS: dict[str, type[NetLayer]] = {cls.kind: cls for cls in (
    Dense, Conv2d, Conv1d, DepthwiseConv2d, MaxPool, AvgPool, GlobalAvgPool, Add, Concat, Flatten)}


@dataclass(frozen=True)
class InputLayer(NetLayer):
    bits: int = 8
    signed: bool = False
    feature_bits: tuple[int, ...] | None = None  # per input feature (flattened), 0 = dropped
    kind: ClassVar[str] = "input"
    arity: ClassVar[int | None] = 0


def Input(data, bits: int | None = None, feature_bits=None) -> Node:
    """The network's input: one sample of `data` (a `codesign.data.Dataset`), quantized to `bits`
    (default 8); or with `feature_bits` (one width per input feature of the flattened sample, 0 = the
    feature is dropped) each feature fixed point at its own width, `bits` then the widest."""
    if feature_bits is not None:
        feature_bits = _feature_bits(data, feature_bits)
        if bits is not None and bits != max(feature_bits):
            raise NetError(f"Input: bits {bits} but the widest of feature_bits is {max(feature_bits)}; give one of them")
        bits = max(feature_bits)
    bits = 8 if bits is None else bits
    try:
        parse_bits("Input bits", bits)
    except ValueError as exc:
        raise NetError(str(exc)) from None
    return Node(InputLayer(bits, data.signed_input, feature_bits), (), tuple(data.sample_shape), bits)


def _feature_bits(data, feature_bits) -> tuple[int, ...]:
    """Per-feature input widths checked against the data set (`Input(data, feature_bits=...)`)."""
    bits = tuple(int(b) for b in feature_bits)
    n = math.prod(data.sample_shape)
    valid = [0, *(b for b in ALLOWED_BITS if b < FLOAT_BITS)]
    if len(bits) != n:
        raise NetError(f"Input: feature_bits has {len(bits)} values for {n} input features (samples of "
                       f"{tuple(data.sample_shape)})")
    bad = sorted({b for b in bits if b not in valid})
    if bad:
        raise NetError(f"Input: feature_bits {bad} not allowed; valid: {valid} (0 = the feature is dropped)")
    if not any(bits):
        raise NetError("Input: feature_bits drops every feature")
    if data.signed_input:
        raise NetError("Input: feature_bits are for unsigned inputs in [0, 1] (dataset.scaling minmax or global), "
                       "this data set is standardised (signed)")
    return bits


TRAINING_KEYS = ("lr", "weight_decay", "batch_size", "epochs")


@dataclass(frozen=True)
class Network:
    """A space function's result when it also searches training settings (or the quantizer scales)."""

    output: Node
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    epochs: int | None = None
    scaling: str = "po2"


@dataclass(frozen=True)
class NetSpec:
    """A user network as data: its layers in topological order with their inputs (-1: the input)."""

    layers: tuple[tuple[str, dict, tuple[int, ...]], ...]  # (kind, arguments, inputs)
    sample_shape: tuple[int, ...]
    input_bits: int
    n_classes: int
    scaling: str = "po2"
    training: tuple[tuple[str, Any], ...] = ()  # searched training settings
    target_fps: float | None = None
    input_signed: bool = False
    kind: str = "net"
    feature_bits: tuple[int, ...] | None = None  # Input(data, feature_bits=...): per input feature, 0 = dropped

    @classmethod
    def from_output(cls, result, data, *, target_fps: float | None = None) -> "NetSpec":
        net = result if isinstance(result, Network) else Network(result)
        if not isinstance(net.output, Node):
            raise NetError(f"the space function must return the output of the network's last layer (or a "
                           f"codesign.net.Network), got {type(net.output).__name__}")
        order, seen = [], set()

        def visit(node: Node) -> None:
            if node.id in seen:
                return
            seen.add(node.id)
            for parent in node.inputs:
                visit(parent)
            order.append(node)

        visit(net.output)
        inputs = [n for n in order if isinstance(n.op, InputLayer)]
        if len(inputs) != 1:
            raise NetError(f"the network must start from one Input(data), found {len(inputs)}")
        out_size = math.prod(net.output.shape)
        if out_size != data.n_classes:
            raise NetError(f"the network's output has {out_size} values ({net.output.shape}) but the data set has "
                           f"{data.n_classes} classes")
        index = {n.id: i - 1 for i, n in enumerate(order)}  # the input is -1
        layers = tuple((n.op.kind, {f.name: getattr(n.op, f.name) for f in fields(n.op)},
                        tuple(index[p.id] for p in n.inputs)) for n in order[1:])
        training = tuple((k, getattr(net, k)) for k in TRAINING_KEYS if getattr(net, k) is not None)
        return cls(layers, tuple(order[0].shape), order[0].op.bits, data.n_classes, net.scaling, training, target_fps,
                   order[0].op.signed, feature_bits=order[0].op.feature_bits)

    # --- the graph with shapes and bits
    def _walk(self):
        """Per layer: (layer, input shapes, input bits); shapes and bits recomputed from the arguments."""
        shapes, bits, out = [], [], []
        for kind, args, inputs in self.layers:
            layer = NET_KINDS[kind](**args)
            in_shapes = [self.sample_shape if p == GRAPH_INPUT else shapes[p] for p in inputs]
            in_bits = [self.input_bits if p == GRAPH_INPUT else bits[p] for p in inputs]
            shapes.append(layer.out_shape(in_shapes))
            bits.append(layer.out_bits(in_bits, in_shapes))
            out.append((layer, in_shapes, in_bits))
        return out

    @property
    def image_shape(self) -> tuple[int, ...] | None:  # what the flows reshape flat samples to
        return self.sample_shape if len(self.sample_shape) == 3 else None

    def to_design(self, style: str, clock_mhz: float | None = None) -> Design:
        hw, inputs, where = [], [], {GRAPH_INPUT: GRAPH_INPUT}  # net index -> hardware index
        for i, ((layer, shapes, bits), (_, _, producers)) in enumerate(zip(self._walk(), self.layers)):
            h = layer.hardware(shapes, bits)
            if h is None:  # a reshape: its readers read its input
                where[i] = where[producers[0]]
                continue
            hw.append(h)
            inputs.append(tuple(where[p] for p in producers))
            where[i] = len(hw) - 1
        chain = all(p == (i - 1,) for i, p in enumerate(inputs))
        return Design(layers=tuple(hw), style=style, input_bits=self.input_bits, clock_mhz=clock_mhz,
                      target_fps=self.target_fps, inputs=() if chain else tuple(inputs), input_signed=self.input_signed,
                      feature_bits=self.feature_bits or ())

    def modules(self):
        """(torch module, inputs) per layer, in order."""
        return [(layer.module(shapes, bits, self.scaling), inputs)
                for (layer, shapes, bits), (_, _, inputs) in zip(self._walk(), self.layers)]

    def training_overrides(self) -> dict:
        return dict(self.training)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return design_summary(self.to_design("finn"))


__all__ = ["ACTIVATIONS", "NET_KINDS", "Add", "AvgPool", "Concat", "Conv1d", "Conv2d", "Dense", "DepthwiseConv2d", "Flatten",
           "GlobalAvgPool", "Input", "MaxPool", "NetError", "NetSpec", "Network", "Node"]
