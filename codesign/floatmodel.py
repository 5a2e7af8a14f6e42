"""Quantize a float PyTorch model of yours: `model: {float: PATH.py:FUNCTION}`.

`FUNCTION()` returns a plain `torch.nn.Module` (trained or not) whose forward `torch.fx` can trace.
Its graph is converted once into `codesign.net` layers: Linear / Conv1d / Conv2d (and depthwise
Conv2d) with the BatchNorm and ReLU that follow them, max / average / adaptive (global) pooling,
flatten, residual adds (`+`, `torch.add`) and `torch.cat`. The search then chooses, AutoQKeras-style,
each weighted layer's weight bits and (where a ReLU follows) activation bits from `space.weight_bits`
/ `space.act_bits`, the input bits from `space.input_bits` and, with `width_multipliers`, one factor
for the width of every dense / conv layer but the output. Every trial starts from the float model's
weights (the leading filters of a narrowed layer; Brevitas' quantizers are fitted by QAT). A module or function the converter
cannot map is an error naming it, before any training.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field

from codesign.net import (Add, AvgPool, Concat, Conv1d, Conv2d, Dense, DepthwiseConv2d, Flatten, GlobalAvgPool,
                          Input, MaxPool, NetError)

FLOAT_BITS = 32


class FloatModelError(ValueError):
    """A float model the converter cannot map: the message names the module or function."""


@dataclass
class _Op:
    kind: str  # dense, conv1d, conv2d, dwconv2d, maxpool, avgpool, globalavgpool, add, concat, flatten
    args: dict
    inputs: list[int]  # op indices, -1: the input
    name: str  # the module (or node) it came from
    bn: str | None = None  # the BatchNorm module folded into it
    relu: bool = False
    uses: int = 0


@dataclass(frozen=True)
class Converted:
    ops: tuple[_Op, ...]
    output: int
    modules: dict = field(default_factory=dict)  # name -> float module (weights to start from)


PASS_MODULES = ("Identity", "Dropout", "Dropout1d", "Dropout2d")
SUPPORTED = ("Linear, Conv1d, Conv2d (groups 1 or depthwise), BatchNorm1d/2d after them, ReLU, MaxPool1d/2d, "
             "AvgPool1d/2d, AdaptiveAvgPool1d/2d(1), Flatten, Identity, Dropout, +, torch.add, torch.cat, flatten, view")


def _pool_size(node, module) -> int | tuple[int, int]:
    k, s, p = module.kernel_size, module.stride, module.padding
    if (s is not None and s != k) or p not in (0, (0, 0)):
        raise FloatModelError(f"module {node.target!r} ({type(module).__name__}): only pools with stride == kernel "
                              f"and no padding map to FINN / hls4ml (kernel {k}, stride {s}, padding {p})")
    return k


def _conv(node, module) -> tuple[str, dict]:
    name = type(module).__name__
    if module.dilation not in ((1,), (1, 1)) or isinstance(module.padding, str):
        raise FloatModelError(f"module {node.target!r} ({name}): dilation {module.dilation} / padding "
                              f"{module.padding!r} are not supported (integer padding, dilation 1)")
    two = name == "Conv2d"
    args = dict(kernel=tuple(module.kernel_size) if two else module.kernel_size[0],
                stride=tuple(module.stride) if two else module.stride[0],
                padding=tuple(module.padding) if two else module.padding[0])
    if module.groups == 1:
        return ("conv2d" if two else "conv1d"), dict(channels=module.out_channels, **args)
    if two and module.groups == module.in_channels == module.out_channels:
        return "dwconv2d", args
    raise FloatModelError(f"module {node.target!r} ({name}): groups={module.groups} maps to no FINN / hls4ml layer "
                          f"(groups 1, or depthwise: groups = in = out channels)")


def convert(module) -> Converted:
    """The layers of `module`'s traced graph, or FloatModelError naming what does not map."""
    import torch
    import torch.fx as fx
    from torch import nn
    try:
        gm = fx.symbolic_trace(module)
    except Exception as exc:
        raise FloatModelError(f"torch.fx cannot trace the model: {type(exc).__name__}: {exc}") from None
    ops: list[_Op] = []
    where: dict[str, int] = {}  # fx node name -> op index (-1: the input)
    float_modules: dict[str, nn.Module] = {}

    def source(node, arg) -> int:
        if not isinstance(arg, fx.Node) or arg.name not in where:
            raise FloatModelError(f"node {node.name!r} ({node.target}): its input {arg!r} is not a tensor of the network")
        return where[arg.name]

    def add(node, kind, args, inputs, name=None) -> None:
        for i in inputs:
            if i >= 0:
                ops[i].uses += 1
        ops.append(_Op(kind, args, inputs, name or node.name))
        where[node.name] = len(ops) - 1

    def attach(node, what: str) -> None:
        i = source(node, node.args[0])
        op = ops[i] if i >= 0 else None
        if what == "bn":
            if op is None or op.kind not in ("dense", "conv1d", "conv2d", "dwconv2d") or op.bn or op.relu or op.uses:
                raise FloatModelError(f"module {node.target!r} (BatchNorm): only a batch norm right after a Linear or "
                                      f"Conv layer (before its ReLU) maps to hardware (folded into thresholds)")
            op.bn = node.target
        else:
            if op is None or op.kind not in ("dense", "conv1d", "conv2d", "dwconv2d", "add") or op.relu or op.uses:
                raise FloatModelError(f"node {node.name!r} (ReLU): only a ReLU right after a Linear, Conv or add maps "
                                      f"to hardware (its quantized activation)")
            op.relu = True
        where[node.name] = i

    output = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if where:
                raise FloatModelError(f"the model takes more than one input ({node.name!r})")
            where[node.name] = -1
        elif node.op == "call_module":
            m = gm.get_submodule(node.target)
            name = type(m).__name__
            if isinstance(m, nn.Linear):
                float_modules[node.target] = m
                add(node, "dense", dict(units=m.out_features), [source(node, node.args[0])], node.target)
            elif isinstance(m, (nn.Conv1d, nn.Conv2d)):
                float_modules[node.target] = m
                kind, args = _conv(node, m)
                add(node, kind, args, [source(node, node.args[0])], node.target)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                float_modules[node.target] = m
                attach(node, "bn")
            elif isinstance(m, nn.ReLU):
                attach(node, "relu")
            elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
                kind = "maxpool" if "Max" in name else "avgpool"
                add(node, kind, dict(pool=_pool_size(node, m)), [source(node, node.args[0])])
            elif isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
                if m.output_size not in (1, (1,), (1, 1)):
                    raise FloatModelError(f"module {node.target!r} ({name}): only output size 1 (global pooling) maps")
                add(node, "globalavgpool", {}, [source(node, node.args[0])])
            elif isinstance(m, nn.Flatten):
                add(node, "flatten", {}, [source(node, node.args[0])])
            elif name in PASS_MODULES:
                where[node.name] = source(node, node.args[0])
            else:
                raise FloatModelError(f"module {node.target!r} ({name}) has no mapping to FPGA layers; supported: {SUPPORTED}")
        elif node.op in ("call_function", "call_method"):
            target = node.target
            if target in (operator.add, torch.add, "add") and len(node.args) == 2 and all(
                    isinstance(a, fx.Node) for a in node.args):
                add(node, "add", {}, [source(node, a) for a in node.args])
            elif target in (torch.relu, nn.functional.relu, "relu"):
                attach(node, "relu")
            elif target in (torch.flatten, "flatten", "view", "reshape"):
                add(node, "flatten", {}, [source(node, node.args[0])])
            elif target is torch.cat:
                tensors, dim = node.args[0], node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
                if dim != 1:
                    raise FloatModelError(f"node {node.name!r} (torch.cat): only dim=1 (channels) maps, got dim={dim}")
                add(node, "concat", {}, [source(node, t) for t in tensors])
            elif target == "size":
                where[node.name] = -2  # a shape query (x.view(x.size(0), -1)): not a tensor
            else:
                what = getattr(target, "__name__", str(target))
                raise FloatModelError(f"node {node.name!r} ({what}) has no mapping to FPGA layers; supported: {SUPPORTED}")
        elif node.op == "output":
            output = source(node, node.args[0])
        else:
            raise FloatModelError(f"node {node.name!r} ({node.op} {node.target}) has no mapping to FPGA layers")
    if output is None or output < 0:
        raise FloatModelError("the model's output is not computed by any layer")
    return Converted(tuple(ops), output, float_modules)


def _param(name: str) -> str:
    return name.replace(".", "_")


def build(converted: Converted, space, trial, data, width_multipliers=(1.0,)):
    """The quantized network of one trial: bit-widths per layer (and one width multiplier for every
    dense / conv layer but the output) asked from `trial`."""
    nodes = {-1: Input(data, bits=space.input_bits)}
    scale = 1.0
    if len(width_multipliers) > 1:
        scale = trial.suggest_categorical("width_multiplier", list(width_multipliers))
    elif width_multipliers:
        scale = width_multipliers[0]
    for i, op in enumerate(converted.ops):
        inputs = [nodes[j] for j in op.inputs]
        args = dict(op.args)
        if scale != 1.0 and i != converted.output and ("units" in args or "channels" in args):
            key = "units" if "units" in args else "channels"
            args[key] = max(1, round(args[key] * scale))
        if op.kind in ("dense", "conv1d", "conv2d", "dwconv2d"):
            wb = trial.suggest_categorical(f"{_param(op.name)}_weight_bits", list(space.weight_bits))
            ab = trial.suggest_categorical(f"{_param(op.name)}_act_bits", list(space.act_bits)) if op.relu else FLOAT_BITS
            cls = {"dense": Dense, "conv1d": Conv1d, "conv2d": Conv2d, "dwconv2d": DepthwiseConv2d}[op.kind]
            layer = cls(**args, weight_bits=wb, act_bits=ab, bn=op.bn is not None, name=op.name)
        elif op.kind == "add":
            ab = trial.suggest_categorical(f"{_param(op.name)}_act_bits", list(space.act_bits)) if op.relu else FLOAT_BITS
            layer = Add(act_bits=ab)
        else:
            layer = {"maxpool": MaxPool, "avgpool": AvgPool, "globalavgpool": GlobalAvgPool, "flatten": Flatten,
                     "concat": Concat}[op.kind](**args)
        try:
            nodes[i] = layer(*inputs)
        except NetError as exc:
            raise FloatModelError(f"{op.name}: {exc}") from None
    return nodes[converted.output]


def _slice(value, shape):
    """The leading part of a float tensor that fits a narrower layer (network slimming's initialisation)."""
    return value[tuple(slice(0, n) for n in shape)]


def initialise(model, converted: Converted) -> None:
    """Copy the float model's weights (and batch-norm statistics) into the quantized network's layers
    of the same name, so QAT starts from the trained float network; a layer made narrower by a width
    multiplier takes the leading filters and inputs."""
    import torch
    from torch import nn
    for layer, (kind, args, _) in zip(model.layers, model.spec.layers):
        name = args.get("name")
        if name not in converted.modules:
            continue
        source = converted.modules[name]
        op = next(o for o in converted.ops if o.name == name)
        parts = list(layer.modules())
        target = next(m for m in parts if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)))
        with torch.no_grad():
            target.weight.copy_(_slice(source.weight, target.weight.shape))
            if op.bn is not None:
                bn_source, bn_target = converted.modules[op.bn], next(
                    m for m in parts if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
                n = bn_target.num_features
                for key, value in bn_source.state_dict().items():
                    getattr(bn_target, key).copy_(value if value.dim() == 0 else value[:n])
