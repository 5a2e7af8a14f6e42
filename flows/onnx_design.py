"""Read a QONNX file (Brevitas' `export_qonnx`, ours or anyone's) into a `hw_models.design.Design`.

`design_from_qonnx(path)` loads and cleans the file with qonnx, sorts the graph topologically and maps
each node through explicit registries:

* `LAYER_HANDLERS`: MatMul / Gemm with a constant weight -> `DenseLayer`; Conv (2-D or 1-D, group 1)
  -> `ConvLayer`, depthwise (group = channels) -> `DepthwiseConvLayer`; MaxPool / AveragePool (kernel ==
  stride, unpadded) -> `MaxPoolLayer` / `AvgPoolLayer`; GlobalAveragePool or a ReduceMean over every pixel
  -> `GlobalAvgPoolLayer`; an Add
  of two computed tensors (a residual add) -> `AddLayer`; Concat of channels -> `ConcatLayer`.
* `QUANT_BITS`: the quantizers Quant / IntQuant (bit width input), BipolarQuant (1 bit) and Trunc
  (output bit width input).
* `ABSORBED_OPS`: ops with no hardware layer of their own (batch norm, ReLU, scaling Mul/Add, reshapes...).
  FINN and hls4ml fold them into thresholds or the neighbouring layer.

The design is a graph: each layer reads the layers that produce its inputs (through absorbed ops); a
tensor read by two layers fans out (FINN-style estimates insert its DuplicateStreams). Any other op
type raises `UnsupportedModel`, and so does a Sub/Mul/Div of two computed tensors (absorbing it would
drop a branch); a graph without a single quantizer raises `NotQuantized`.

Bits: a weight's bits are those of the quantizer on its initializer (BipolarQuant: 1; none: 32 = float).
A compute layer's act_bits are those of the first quantizer on its output path before the next
compute layer (searched through absorbed ops and MaxPool), else 32. The input bits are those of the
first quantizer after the graph input. Bit widths that are not in `ALLOWED_BITS` are rounded up to the
next allowed width (a 7-bit Quant is read as 8 bits, 10..16 as 16, anything wider as 32); nothing
records the rounding, so estimates of such models are slightly pessimistic.
"""
from __future__ import annotations

import math
from collections import deque
from pathlib import Path

import numpy as np

from flows.qonnx import ExportError, load_clean
from hw_models.design import (ALLOWED_BITS, FLOAT_BITS, GRAPH_INPUT, STYLES, AddLayer, AvgPoolLayer, ConcatLayer,
                              ConvLayer, DenseLayer, DepthwiseConvLayer, Design, DesignError, GlobalAvgPoolLayer,
                              MaxPoolLayer)
from hw_models.weights import mean_csd_digits


class UnsupportedModel(DesignError):
    """The graph contains ops (or op settings) that no FINN / hls4ml layer of ours implements."""


class NotQuantized(DesignError):
    """A plain float ONNX model: it carries no bit widths to read."""


# Ops without a hardware layer of their own: folded into thresholds / neighbours, or pure data movement.
ABSORBED_OPS: tuple[str, ...] = (
    "BatchNormalization", "Relu", "Clip", "Mul", "Add", "Sub", "Div", "Flatten", "Reshape", "Transpose",
    "Squeeze", "Unsqueeze", "Identity", "Dropout", "Constant",
)
COMPUTE_OPS: tuple[str, ...] = ("MatMul", "Gemm", "Conv")
MERGE_OPS: tuple[str, ...] = ("Add", "Concat")  # a layer of their own when they join computed tensors
QCDQ_OPS: tuple[str, ...] = ("QuantizeLinear", "DequantizeLinear")


# ----------------------------------------------------------------------------- small graph helpers

def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _constant(model, tensor: str, what: str) -> np.ndarray:
    value = model.get_initializer(tensor)
    if value is None:
        raise DesignError(f"{what}: input {tensor!r} is not a constant; cannot read it statically")
    return np.asarray(value)


def allowed_bits(bits: float) -> int:
    """The smallest allowed bit width >= `bits` (32 for anything wider than 16)."""
    need = max(1, math.ceil(float(bits) - 1e-9))
    return next((b for b in ALLOWED_BITS if b >= need), FLOAT_BITS)


def _int_quant_bits(model, node) -> int:  # Quant / IntQuant: (x, scale, zeropt, bitwidth)
    return allowed_bits(_constant(model, node.input[3], f"{node.op_type} {node.name}").reshape(-1)[0])


def _trunc_bits(model, node) -> int:  # Trunc v1: (..., in_bw, out_bw); v2: (..., in_bw, out_scale, out_bw)
    index = 5 if len(node.input) >= 6 else 4
    return allowed_bits(_constant(model, node.input[index], f"Trunc {node.name}").reshape(-1)[0])


# quantizer op -> its output bit width; explicit registry
QUANT_BITS = {
    "Quant": _int_quant_bits,
    "IntQuant": _int_quant_bits,
    "BipolarQuant": lambda model, node: 1,
    "Trunc": _trunc_bits,
}


def _output_bits(model, tensor: str) -> int:
    """Bits of the first quantizer downstream of `tensor`, before any compute layer (else 32)."""
    queue, seen = deque([tensor]), {tensor}
    while queue:
        current = queue.popleft()
        for node in model.find_consumers(current) or []:
            if node.op_type in QUANT_BITS and node.input[0] == current:
                return QUANT_BITS[node.op_type](model, node)
            if node.op_type in COMPUTE_OPS or _merges_streams(model, node):
                continue
            for out in node.output:
                if out not in seen:
                    seen.add(out)
                    queue.append(out)
    return FLOAT_BITS


def _weight(model, node, tensor: str) -> tuple[tuple[int, ...], int, float | None]:
    """Shape, bits and mean CSD digits (of the integer weights) of a constant weight: an initializer,
    possibly behind a quantizer."""
    value = model.get_initializer(tensor)
    if value is not None:
        return tuple(np.shape(value)), FLOAT_BITS, None
    producer = model.find_producer(tensor)
    if producer is not None and producer.op_type in QUANT_BITS:
        value = model.get_initializer(producer.input[0])
        if value is not None:
            return tuple(np.shape(value)), QUANT_BITS[producer.op_type](model, producer), _csd(model, producer, value)
    raise UnsupportedModel(f"{node.op_type} {node.name}: its weight {tensor!r} is not a constant (optionally "
                           f"quantized) initializer; only layers with static weights map to hardware")


def _csd(model, quantizer, value: np.ndarray) -> float | None:
    """Mean CSD digits of the integers a weight quantizer makes of its float initializer (qonnx'
    own Quant semantics); None where that is not an integer grid (e.g. a Trunc)."""
    if quantizer.op_type == "BipolarQuant":
        return 1.0  # every weight is +-1
    if quantizer.op_type not in ("Quant", "IntQuant"):
        return None
    from qonnx.custom_op.general.quant import quant
    attrs = _attrs(quantizer)
    scale = _constant(model, quantizer.input[1], f"{quantizer.name} scale")
    zeropt = _constant(model, quantizer.input[2], f"{quantizer.name} zero point")
    bits = _constant(model, quantizer.input[3], f"{quantizer.name} bit width")
    mode = attrs.get("rounding_mode", "ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    ints = quant(value, scale, zeropt, bits, attrs.get("signed", 1), attrs.get("narrow", 0), mode) / scale
    if not np.allclose(ints, np.round(ints), atol=1e-3):
        return None
    return mean_csd_digits(np.round(ints))


def _within(csd: float | None, weight_bits: int) -> float | None:
    """Only statistics a weight of the (rounded-up) allowed width can have; else unknown."""
    if csd is None or weight_bits >= FLOAT_BITS or csd > (weight_bits + 1) // 2:
        return None
    return csd


def _image(model, node, tensor: str) -> tuple[int, tuple[int, int]]:
    """(channels, (height, width)) of an NCHW input, or of an NCL signal as a 1-pixel-high image."""
    shape = model.get_tensor_shape(tensor)
    if shape is None or len(shape) not in (3, 4) or not all(shape[1:]):
        raise UnsupportedModel(f"{node.op_type} {node.name}: expected an NCHW or NCL input, got shape {shape}")
    return int(shape[1]), ((1, int(shape[2])) if len(shape) == 3 else (int(shape[2]), int(shape[3])))


def _hw(node, name: str, values, rank: int, default: int) -> tuple[int, int]:
    """An ONNX per-axis attribute as (height, width); 1-D ones are 1 (or 0 for pads) high."""
    values = [int(v) for v in values] if values is not None else [default] * rank
    return (1 if name != "pads" else 0, values[0]) if rank == 1 else (values[0], values[1])


def _pads(node, pads, rank: int) -> tuple[int, int]:
    pads = [int(p) for p in pads] if pads is not None else [0] * (2 * rank)
    begin, end = pads[:rank], pads[rank:]
    if begin != end:
        raise UnsupportedModel(f"{node.op_type} {node.name}: asymmetric pads {pads} are not supported")
    return _hw(node, "pads", begin, rank, 0)


# ----------------------------------------------------------------------------- layer handlers

def _dense(model, node, out_bits: int) -> DenseLayer:
    attrs = _attrs(node)
    if attrs.get("transA", 0):
        raise UnsupportedModel(f"Gemm {node.name}: transA=1 is not supported")
    shape, wbits, csd = _weight(model, node, node.input[1])
    if len(shape) != 2:
        raise UnsupportedModel(f"{node.op_type} {node.name}: expected a 2-D weight, got shape {shape}")
    n_in, n_out = (shape[1], shape[0]) if attrs.get("transB", 0) else shape
    return DenseLayer(in_features=int(n_in), out_features=int(n_out), weight_bits=wbits, act_bits=out_bits,
                      csd_digits=_within(csd, wbits))


def _conv(model, node, out_bits: int):
    attrs = _attrs(node)
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
        raise UnsupportedModel(f"Conv {node.name}: auto_pad={attrs['auto_pad']!r} is not supported; use pads")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise UnsupportedModel(f"Conv {node.name}: dilations {attrs['dilations']} are not supported")
    shape, wbits, csd = _weight(model, node, node.input[1])
    if len(shape) not in (3, 4):
        raise UnsupportedModel(f"Conv {node.name}: only 1-D and 2-D convolutions are supported (weight shape {shape})")
    rank = len(shape) - 2
    in_ch, in_dim = _image(model, node, node.input[0])
    common = dict(kernel=_hw(node, "kernels", shape[2:], rank, 1), in_dim=in_dim, weight_bits=wbits, act_bits=out_bits,
                  csd_digits=_within(csd, wbits), stride=_hw(node, "strides", attrs.get("strides"), rank, 1),
                  padding=_pads(node, attrs.get("pads"), rank))
    group = attrs.get("group", 1)
    if group == 1:
        return ConvLayer(in_ch=in_ch, out_ch=int(shape[0]), **common)
    if group == in_ch == int(shape[0]) and shape[1] == 1:
        return DepthwiseConvLayer(channels=in_ch, **common)
    raise UnsupportedModel(f"Conv {node.name}: group={group} with {in_ch} input and {shape[0]} output channels: only "
                           f"group 1 and depthwise (group = channels, one filter each) map to FINN / hls4ml layers")


def _pool(model, node, out_bits: int):
    attrs = _attrs(node)
    kernel = [int(k) for k in attrs.get("kernel_shape", ())]
    rank = len(kernel)
    if rank not in (1, 2):
        raise UnsupportedModel(f"{node.op_type} {node.name}: {rank}-D pooling is not supported")
    stride = [int(s) for s in attrs.get("strides", [1] * rank)]
    pads = [int(p) for p in attrs.get("pads", [0] * 2 * rank)]
    if stride != kernel or any(pads):
        raise UnsupportedModel(f"{node.op_type} {node.name}: only unpadded pools with stride == kernel are supported "
                               f"(kernel {kernel}, stride {stride}, pads {pads})")
    channels, in_dim = _image(model, node, node.input[0])
    pool = _hw(node, "kernels", kernel, rank, 1)
    if attrs.get("ceil_mode", 0) and (in_dim[0] % pool[0] or in_dim[1] % pool[1]):
        raise UnsupportedModel(f"{node.op_type} {node.name}: ceil_mode on a {in_dim[0]}x{in_dim[1]} input with pool "
                               f"{kernel} is not supported")
    cls = MaxPoolLayer if node.op_type == "MaxPool" else AvgPoolLayer
    return cls(channels=channels, in_dim=in_dim, pool=pool)


def _global_pool(model, node, out_bits: int) -> GlobalAvgPoolLayer:
    """GlobalAveragePool, or ReduceMean over every pixel (torch's AdaptiveAvgPool2d(1) / mean(dim=(2, 3)))."""
    channels, in_dim = _image(model, node, node.input[0])
    if node.op_type == "ReduceMean":
        rank = len(model.get_tensor_shape(node.input[0]))
        axes = _attrs(node).get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = _constant(model, node.input[1], f"ReduceMean {node.name} axes").reshape(-1).tolist()
        if axes is None or sorted(a % rank for a in axes) != list(range(2, rank)):
            raise UnsupportedModel(f"ReduceMean {node.name}: only a mean over every pixel (axes 2..{rank - 1}) maps to "
                                   f"a global average pool, got axes {axes}")
    return GlobalAvgPoolLayer(channels=channels, in_dim=in_dim)


def _tensor_shape(model, node, tensor: str) -> tuple[int, ...]:
    shape = model.get_tensor_shape(tensor)
    if shape is None or len(shape) < 2 or not all(shape[1:]):
        raise UnsupportedModel(f"{node.op_type} {node.name}: the shape of {tensor!r} is unknown ({shape})")
    return tuple(int(v) for v in shape[1:])


def _add(model, node, out_bits: int) -> AddLayer:
    shapes = {_tensor_shape(model, node, t) for t in node.input}
    if len(shapes) != 1:
        raise UnsupportedModel(f"Add {node.name}: adds tensors of different shapes {sorted(shapes)} (broadcast)")
    return AddLayer(shape=shapes.pop(), act_bits=out_bits)


def _concat(model, node, out_bits: int) -> ConcatLayer:
    shapes = [_tensor_shape(model, node, t) for t in node.input]
    axis = _attrs(node).get("axis", 1)
    if axis not in (1, -len(shapes[0]) - 1) or len({s[1:] for s in shapes}) != 1:
        raise UnsupportedModel(f"Concat {node.name}: only concatenation of channels (axis 1) is supported "
                               f"(axis {axis}, shapes {shapes})")
    rest = shapes[0][1:]
    in_dim = None if not rest else ((1, rest[0]) if len(rest) == 1 else rest)
    return ConcatLayer(channels_in=tuple(s[0] for s in shapes), in_dim=in_dim)


# op -> handler(model, node, output act bits) -> layer; explicit registry
LAYER_HANDLERS = {"MatMul": _dense, "Gemm": _dense, "Conv": _conv, "MaxPool": _pool, "AveragePool": _pool,
                  "GlobalAveragePool": _global_pool, "ReduceMean": _global_pool}
# merge op -> handler, when the op joins two computed tensors (else it is absorbed: a bias, a scale)
MERGE_HANDLERS = {"Add": _add, "Concat": _concat}


# ----------------------------------------------------------------------------- checks and entry point

def _load(path: Path):
    from qonnx.transformation.general import SortGraph
    if not path.exists():
        raise DesignError(f"{path}: no such file")
    if not path.is_file():
        raise DesignError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DesignError(f"{path}: empty file, not an ONNX/QONNX model")
    try:
        model = load_clean(path)
        model = model.transform(SortGraph())
    except ExportError as exc:
        raise DesignError(f"{path}: not a readable ONNX/QONNX model ({exc})") from exc
    except Exception as exc:  # qonnx transformations on a malformed graph
        raise DesignError(f"{path}: not a readable ONNX/QONNX model ({type(exc).__name__}: {exc})") from exc
    if not model.graph.node:
        raise DesignError(f"{path}: the ONNX graph has no nodes (empty or malformed file)")
    return model


def _file_node_names(path: Path, nodes) -> list[tuple[str, str]]:
    """(name, op type) of `nodes` as the file names them: qonnx's cleanup renames every node
    (GiveUniqueNodeNames: `Sigmoid_0`), so the names a user gave are read from the raw file."""
    import onnx
    types = {n.op_type for n in nodes}
    try:
        raw = [n for n in onnx.load(str(path), load_external_data=False).graph.node if n.op_type in types]
    except Exception:
        raw = []
    if raw and all(n.name for n in raw):
        return [(n.name, n.op_type) for n in raw]
    return [(n.name, n.op_type) for n in nodes]


def _check_ops(model, path: Path) -> None:
    ops = {n.op_type for n in model.graph.node}
    if not ops & set(QUANT_BITS) and not ops & set(QCDQ_OPS):
        raise NotQuantized(f"{path}: a float ONNX model (no Quant/BipolarQuant/Trunc node): bit widths cannot be "
                           f"read from it. Export the Brevitas model as QONNX with "
                           f"brevitas.export.export_qonnx (see flows.qonnx.export_and_verify)")
    known = set(QUANT_BITS) | set(LAYER_HANDLERS) | set(ABSORBED_OPS) | set(MERGE_HANDLERS)
    bad = [n for n in model.graph.node if n.op_type not in known or _drops_branch(model, n)]
    if bad:
        types = sorted({n.op_type for n in bad})
        names = ", ".join(f"{name} ({op})" for name, op in _file_node_names(path, bad))
        hint = ("; QuantizeLinear/DequantizeLinear mean a QCDQ export: use brevitas.export.export_qonnx instead"
                if set(types) & set(QCDQ_OPS) else "")
        if any(_drops_branch(model, n) for n in bad):
            hint += ("; an elementwise Sub/Mul/Div of two computed tensors joins two branches, and only Add and "
                     "Concat map to hardware (FINN AddStreams / StreamingConcat)")
        raise UnsupportedModel(f"{path}: unsupported op type(s) {types} in node(s) {names}{hint}")


def _merges_streams(model, node) -> bool:
    """An elementwise op (Add, Mul...) or Concat whose inputs are two computed tensors joins two
    branches of the graph (a residual connection); absorbing it would silently drop one branch."""
    if node.op_type not in ("Add", "Sub", "Mul", "Div", "Concat"):
        return False
    return sum(1 for t in node.input if t and not _static(model, t)) >= 2


def _drops_branch(model, node) -> bool:
    return node.op_type not in MERGE_HANDLERS and _merges_streams(model, node)


def _static(model, tensor: str) -> bool:
    """Whether `tensor` is a constant: an initializer, or computed from constants only (a quantized bias)."""
    if model.get_initializer(tensor) is not None:
        return True
    producer = model.find_producer(tensor)
    return producer is not None and all(_static(model, t) for t in producer.input if t)


def _check_args(style: str, input_bits, target_fps, clock_mhz) -> None:
    if style not in STYLES:
        raise DesignError(f"style: {style!r} unknown; valid: {list(STYLES)}")
    if input_bits is not None and (isinstance(input_bits, bool) or input_bits not in ALLOWED_BITS):
        raise DesignError(f"input_bits: {input_bits!r} is not an allowed bit-width; valid: {list(ALLOWED_BITS)}")
    for name, value in (("target_fps", target_fps), ("clock_mhz", clock_mhz)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise DesignError(f"{name}: expected a positive number, got {value!r}")


def _layers(model) -> tuple[list, list[tuple[int, ...]]]:
    """The hardware layers in topological order, and per layer the layers it reads (-1: the graph
    input), followed through absorbed ops and quantizers."""
    layers, inputs = [], []
    source = {model.graph.input[0].name: GRAPH_INPUT}  # tensor -> the layer whose output it carries
    for node in model.graph.node:
        computed = [t for t in node.input if t in source]
        handler = LAYER_HANDLERS.get(node.op_type)
        if handler is None and _merges_streams(model, node):
            handler = MERGE_HANDLERS[node.op_type]
        if handler is None:  # absorbed op or quantizer: its output carries its computed input
            for out in node.output:
                if computed:
                    source[out] = source[computed[0]]
            continue
        out_bits = (_output_bits(model, node.output[0])
                    if node.op_type in COMPUTE_OPS or node.op_type in MERGE_HANDLERS else FLOAT_BITS)
        layers.append(handler(model, node, out_bits))
        inputs.append(tuple(source[t] for t in computed) or (GRAPH_INPUT,))
        source[node.output[0]] = len(layers) - 1
    return layers, inputs


def design_from_qonnx(path, *, style: str = "finn", input_bits: int | None = None,
                      target_fps: float | None = None, clock_mhz: float | None = None) -> Design:
    """The hardware `Design` of a QONNX file exported by Brevitas.

    `input_bits`, when given, overrides the bits read from the quantizer on the graph input (without
    one, the input is taken as 32-bit float). Raises `NotQuantized` for a float ONNX model,
    `UnsupportedModel` (naming every offending op type and node) for ops without a hardware mapping,
    and `DesignError` for a missing, unreadable or malformed file.
    """
    _check_args(style, input_bits, target_fps, clock_mhz)
    path = Path(path)
    model = _load(path)
    _check_ops(model, path)
    if len(model.graph.input) != 1:
        raise UnsupportedModel(f"{path}: expected one graph input, got {[i.name for i in model.graph.input]}")
    layers, inputs = _layers(model)
    if not layers:
        raise UnsupportedModel(f"{path}: no MatMul/Gemm/Conv layer with a constant weight was found")
    if input_bits is None:
        input_bits = _output_bits(model, model.graph.input[0].name)
    chain = all(producers == (i - 1,) for i, producers in enumerate(inputs))
    return Design(layers=tuple(layers), style=style, input_bits=input_bits, inputs=() if chain else tuple(inputs),
                  clock_mhz=float(clock_mhz) if clock_mhz is not None else None,
                  target_fps=float(target_fps) if target_fps is not None else None)


__all__ = ["ABSORBED_OPS", "LAYER_HANDLERS", "MERGE_HANDLERS", "QUANT_BITS", "NotQuantized", "UnsupportedModel", "allowed_bits",
           "design_from_qonnx"]
