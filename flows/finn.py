"""finn-plus as a library: QONNX -> FINN -> streamline -> HW layers -> partition -> specialize ->
our folding -> finn-plus' own per-layer resource and cycle estimates (source `finn-estimate`).

No Vivado is needed. FINN writes intermediate files under FINN_BUILD_DIR: each call points it at a
fresh temporary folder (never the user's home) and removes it afterwards.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

from pydantic import Field

from boards import FAMILIES, Board, Resources
from flows.base import Flow, FlowContext, FlowOptions, FlowResult, FlowSkipped
from flows.tools import call_with_timeout
from hw_models.design import ConvLayer, Design, MaxPoolLayer, divisors
from hw_models.estimate import LayerEstimate, ResourceEstimate


class FinnError(RuntimeError):
    """FINN could not map or estimate the graph; the message is FINN's, or names the unmapped nodes."""


@contextlib.contextmanager
def finn_environment():
    """A private FINN_BUILD_DIR (and a FINN_SETTINGS that does not exist) for the duration."""
    saved = {k: os.environ.get(k) for k in ("FINN_BUILD_DIR", "FINN_SETTINGS")}
    with tempfile.TemporaryDirectory(prefix="codesign-finn-") as tmp:
        os.environ["FINN_BUILD_DIR"] = tmp
        os.environ["FINN_SETTINGS"] = str(Path(tmp) / "no-settings.toml")
        try:
            yield Path(tmp)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _transform_all(model, transforms):
    for t in transforms:
        model = model.transform(t)
    return model


def drop_identity_reshapes(model):
    """Remove Flatten / Reshape nodes that keep their input's shape (a Flatten after a global pool's
    flatten): FINN's RemoveCNVtoFCFlatten only removes one between two HW nodes."""
    for node in list(model.graph.node):
        if node.op_type in ("Flatten", "Reshape") and model.find_producer(node.input[0]) is not None and (
                model.get_tensor_shape(node.input[0]) == model.get_tensor_shape(node.output[0])) and (
                node.output[0] not in [o.name for o in model.graph.output]):
            for consumer in model.find_consumers(node.output[0]) or []:
                for k, name in enumerate(consumer.input):
                    if name == node.output[0]:
                        consumer.input[k] = node.input[0]
            model.graph.node.remove(node)
    return model


def avgpool_to_sum_pool(model):
    """An AveragePool (square k x k, stride k, no padding) of an integer stream as FINN takes a Brevitas
    TruncAvgPool: qonnx' QuantAvgPool2d keeping the whole sum (FINN's Pool with an accumulator of
    in + log2(k*k) bits, no shift) and a Mul by 1/(k*k) that streamlining moves into the next thresholds."""
    import numpy as np
    from onnx import TensorProto, helper
    from qonnx.util.basic import get_by_name
    for node in list(model.graph.node):
        if node.op_type != "AveragePool":
            continue
        kernel, strides = (list(get_by_name(node.attribute, a).ints) for a in ("kernel_shape", "strides"))
        pads = get_by_name(node.attribute, "pads")
        dt = model.get_tensor_datatype(node.input[0])
        if (len(kernel) != 2 or kernel[0] != kernel[1] or strides != kernel or (pads is not None and any(pads.ints))
                or not dt.is_integer()):
            continue
        k = kernel[0]
        bits = dt.bitwidth()
        acc = int((2 ** bits - 1) * k * k).bit_length() if not dt.signed() else bits + int(np.ceil(np.log2(k * k)))
        summed = model.make_new_valueinfo_name()
        model.graph.value_info.append(helper.make_tensor_value_info(summed, TensorProto.FLOAT, None))
        scale = model.make_new_valueinfo_name()
        model.set_initializer(scale, np.array(1.0 / (k * k), dtype=np.float32))
        at = list(model.graph.node).index(node)
        model.graph.node.insert(at, helper.make_node(
            "QuantAvgPool2d", [node.input[0]], [summed], domain="qonnx.custom_op.general", name=f"Sum{node.name}",
            kernel=k, stride=k, ibits=bits, obits=acc, signed=int(dt.signed()), data_layout="NCHW"))
        model.graph.node.insert(at + 1, helper.make_node("Mul", [summed, scale], [node.output[0]]))
        model.graph.node.remove(node)
    return model


def _joins(model, node) -> bool:
    """A node joining two computed streams (a residual add, a concat), not a stream and a constant."""
    return all(model.get_initializer(name) is None for name in node.input[:2])


def signals_to_images(model):
    """1-D signals (N, C, L) as FINN takes them: qonnx' Change3DTo4DTensors makes every 3-D tensor an
    (N, C, L, 1) image and every 1-D conv / pool a (K, 1) one (FINN's 1-D flows do the same)."""
    from qonnx.transformation.change_3d_tensors_to_4d import Change3DTo4DTensors, _find_invalid_nodes
    from qonnx.transformation.infer_shapes import InferShapes
    invalid = sorted(set(_find_invalid_nodes(model)))
    if invalid:
        raise FinnError(f"FINN cannot map this 1-D network: qonnx' Change3DTo4DTensors (the only way into FINN "
                        f"for (N, C, L) tensors) does not take {', '.join(invalid)} nodes")
    return model.transform(Change3DTo4DTensors()).transform(InferShapes())


def input_quant_to_host(model):
    """Move the input quantizer to the host, as FINN deployments do: the accelerator receives the
    integers round(x / s) (UINTb/INTb) and the graph starts with a Mul by s, which streamlining
    folds into the first thresholds. Without this, FINN builds a float-input Thresholding stage
    with 2^b - 1 float comparators per input channel."""
    import numpy as np
    from onnx import helper
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp
    inp = model.graph.input[0].name
    consumers = model.find_consumers(inp) or []
    if len(consumers) != 1 or consumers[0].op_type != "Quant":
        return model
    quant = consumers[0]
    scale, zero_point, bits = (model.get_initializer(n) for n in quant.input[1:4])
    if scale is None or zero_point is None or bits is None or np.size(scale) != 1 or np.any(zero_point != 0):
        return model
    op = getCustomOp(quant)
    if op.get_nodeattr("narrow") or op.get_nodeattr("rounding_mode") not in ("ROUND", "HALF_EVEN"):
        return model
    signed = bool(op.get_nodeattr("signed"))
    model.graph.node.insert(list(model.graph.node).index(quant),
                            helper.make_node("Mul", [inp, quant.input[1]], [quant.output[0]], name="HostInputScale"))
    model.graph.node.remove(quant)
    model.set_tensor_datatype(inp, DataType[f"{'INT' if signed else 'UINT'}{int(bits)}"])
    return model


def to_hw_dataflow(onnx_path: str | Path, fpga_part: str, build_dir: Path):
    """FINN's frontend on a QONNX file; returns the specialised dataflow partition (a ModelWrapper)."""
    import finn.transformation.streamline.absorb as absorb
    import finn.transformation.streamline.reorder as reorder
    from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
        InferBinaryMatrixVectorActivation)
    from finn.transformation.fpgadataflow.convert_to_hw.concat import InferConcatLayer
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.duplicate_streams import InferDuplicateStreamsLayer
    from finn.transformation.fpgadataflow.convert_to_hw.elementwise_binary_operation import (
        InferElementwiseBinaryOperation)
    from finn.transformation.fpgadataflow.convert_to_hw.global_acc_pool import InferGlobalAccPoolLayer
    from finn.transformation.fpgadataflow.convert_to_hw.label_select import InferLabelSelectLayer
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation)
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from finn.transformation.fpgadataflow.convert_to_hw.vector_vector_activation import InferVectorVectorActivation
    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
    from finn.transformation.fpgadataflow.minimize_accumulator_width import MinimizeAccumulatorWidth
    from finn.transformation.fpgadataflow.minimize_weight_bit_width import MinimizeWeightBitWidth
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from finn.transformation.move_reshape import RemoveCNVtoFCFlatten
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.reorder import MakeMaxPoolNHWC
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.bipolar_to_xnor import ConvertBipolarMatMulToXnorPopcount
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames, RemoveStaticGraphInputs
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.insert_topk import InsertTopK
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul
    from qonnx.util.cleanup import cleanup_model

    model = input_quant_to_host(cleanup_model(ModelWrapper(str(onnx_path))))
    model = model.transform(ConvertQONNXtoFINN())
    tidy = [InferShapes(), FoldConstants(), GiveUniqueNodeNames(), GiveReadableTensorNames(), InferDataTypes(),
            RemoveStaticGraphInputs()]
    model = _transform_all(model, tidy)
    if len(model.get_tensor_shape(model.graph.input[0].name)) == 3:
        model = signals_to_images(model)
    model = _transform_all(model, [InsertTopK(k=1), InferShapes(), InferDataTypes(),
                                   absorb.AbsorbScalarBiasIntoMultiThreshold(), Streamline()])
    if any(n.op_type in ("Add", "Concat") and _joins(model, n) for n in model.graph.node):
        # scales at a fork or on a residual add's inputs move past it into the next thresholds (FINN's
        # ResNet-50 streamlining)
        for _ in range(2):
            model = _transform_all(model, [reorder.MoveLinearPastFork(), reorder.MoveLinearPastEltwiseAdd(),
                                           reorder.MoveScalarLinearPastInvariants(), Streamline()])
    if model.get_nodes_by_op_type("AveragePool"):
        model = _transform_all(avgpool_to_sum_pool(model), [InferShapes(), InferDataTypes()])
    if model.get_nodes_by_op_type("Conv"):
        model = _transform_all(model, [LowerConvsToMatMul(), MakeMaxPoolNHWC(), absorb.AbsorbTransposeIntoMultiThreshold(),
                                       MakeMaxPoolNHWC(), absorb.AbsorbConsecutiveTransposes()])
    if model.get_nodes_by_op_type("GlobalAveragePool"):
        # FINN's GlobalAccPool sums; the 1/N Mul it leaves moves past the classifier into TopK
        model = _transform_all(model, [InferDataLayouts(), InferGlobalAccPoolLayer(), absorb.AbsorbConsecutiveTransposes(),
                                       InferDataLayouts(), reorder.MoveTransposePastScalarMul(),
                                       absorb.AbsorbTransposeIntoFlatten(),
                                       reorder.MoveScalarLinearPastInvariants()])
    model = _transform_all(model, [ConvertBipolarMatMulToXnorPopcount(), Streamline(),
                                   absorb.AbsorbScalarMulAddIntoTopK(), InferDataLayouts()])
    if any(n.op_type in ("Add", "Concat") and _joins(model, n) for n in model.graph.node):
        # a residual add or a concat of NHWC streams: the layout transposes around the fork and the join cancel
        model = _transform_all(model, [reorder.MoveTransposePastFork(), absorb.AbsorbConsecutiveTransposes(),
                                       reorder.MoveTransposePastJoinAdd(), reorder.MoveTransposePastJoinConcat(),
                                       absorb.AbsorbConsecutiveTransposes(),
                                       absorb.AbsorbTransposeIntoMultiThreshold(), InferDataLayouts(),
                                       InferShapes(), InferDataTypes()])
    model = drop_identity_reshapes(model)
    model = _transform_all(model, [InferBinaryMatrixVectorActivation(), InferVectorVectorActivation(),
                                   InferQuantizedMatrixVectorActivation(),
                                   InferLabelSelectLayer(), InferThresholdingLayer(), InferPool(), InferConvInpGen(),
                                   InferElementwiseBinaryOperation(lambda m, n: n.op_type == "Add" and _joins(m, n)),
                                   InferConcatLayer(),
                                   RemoveCNVtoFCFlatten(), absorb.AbsorbConsecutiveTransposes(),
                                   InferDuplicateStreamsLayer(),
                                   GiveUniqueNodeNames(), InferDataTypes(), InferShapes()])
    hw_domain = "finn.custom_op.fpgadataflow"
    ops = [n.op_type for n in model.graph.node]
    # a layout Transpose in front of the dataflow (NCHW input) stays on the host, as in FINN's flows
    core = [n for i, n in enumerate(model.graph.node) if not (n.op_type == "Transpose" and i == 0)]
    unmapped = [f"{n.op_type} ({n.name})" for n in core if not n.domain.startswith(hw_domain)]
    scaled = [f"{c.name} ({n.name} scales one input)" for n in core if n.op_type == "Mul"
              for c in model.find_consumers(n.output[0]) or []
              if c.op_type.startswith(("ElementwiseAdd", "StreamingConcat"))]
    if scaled:
        raise FinnError("FINN cannot map a residual add or concat whose inputs have different quantization scales: "
                        + ", ".join(scaled) + "; FINN's integer ElementwiseAdd / StreamingConcat needs them on one "
                        "scale (in Brevitas, one shared activation quantizer for the inputs)")
    if unmapped:
        raise FinnError("FINN cannot map these layers to hardware: " + ", ".join(unmapped)
                        + f" (graph after conversion: {ops}); float layers and unsupported ops have no FINN "
                          "implementation")
    model = model.transform(CreateDataflowPartition(partition_model_dir=str(build_dir / "partitions")))
    partitions = model.get_nodes_by_op_type("StreamingDataflowPartition")
    if len(partitions) != 1:
        raise FinnError(f"expected one dataflow partition, FINN made {len(partitions)}")
    dataflow = ModelWrapper(getCustomOp(partitions[0]).get_nodeattr("model"))
    dataflow = _transform_all(dataflow, [SpecializeLayers(fpga_part), MinimizeWeightBitWidth(),
                                         MinimizeAccumulatorWidth(), GiveUniqueNodeNames(), InferDataTypes(),
                                         InferShapes()])
    return dataflow


# FINN HW node (op type prefix) -> the design layer kinds it computes, and the shape attributes that
# must equal the layer's (FINN attribute -> layer property) for the two to line up
_COMPUTE_NODES = {
    "MVAU": (("dense", "conv"), {"MW": "mw", "MH": "mh"}),
    "VVAU": (("dwconv",), {"Channels": "channels"}),
    "Pool": (("maxpool", "avgpool"), {"Channels": "channels"}),
    "GlobalAccPool": (("globalavgpool",), {"NumChannels": "channels"}),
    "ElementwiseAdd": (("add",), {}),
    "DuplicateStreams": (("duplicate",), {"NumChannels": "channels", "NumOutputStreams": "outputs"}),
    "StreamingConcat": (("concat",), {}),
}
# nodes that feed a compute node and take its folding: their SIMD is the consumer layer's
_FEEDERS = ("ConvolutionInputGenerator", "FMPadding")
# the folding attribute of each compute node kind (FINN's names) -> our layer field
_FOLD_ATTRS = {"StreamingConcat": {"SIMD": "pe"}}


def _compute_kind(op: str) -> str | None:
    base = op.rsplit("_", 1)[0] if op.endswith(("_hls", "_rtl")) else op
    return base if base in _COMPUTE_NODES else None


def match_layers(dataflow, design: Design) -> dict[str, int]:
    """FINN's compute nodes -> design layer indices: each node takes the first design layer not yet
    taken (in design order) of the kinds it computes whose shape matches; a FINN node without one,
    or a design layer left over, is a FinnError naming it."""
    from qonnx.custom_op.registry import getCustomOp
    taken: dict[int, str] = {}
    out: dict[str, int] = {}
    for node in dataflow.graph.node:
        kind = _compute_kind(node.op_type)
        if kind is None:
            continue
        kinds, shape = _COMPUTE_NODES[kind]
        inst = getCustomOp(node)
        candidates = [i for i, layer in enumerate(design.layers) if layer.kind in kinds and i not in taken]
        match = next((i for i in candidates
                      if all(int(inst.get_nodeattr(a)) == int(getattr(design.layers[i], f)) for a, f in shape.items())),
                     None)
        if match is None:
            seen = {a: inst.get_nodeattr(a) for a in shape}
            raise FinnError(f"FINN node {node.name} ({node.op_type}{', ' if seen else ''}"
                            f"{', '.join(f'{k}={v}' for k, v in seen.items())}) lines up with no design layer of kind "
                            f"{'/'.join(kinds)}" + (f" (left: {[design.layers[i].describe() for i in candidates]})"
                                                    if candidates else " (the design has none left)"))
        taken[match] = node.name
        out[node.name] = match
    left = [f"layers[{i}] ({layer.describe()})" for i, layer in enumerate(design.layers) if i not in taken]
    if left:
        raise FinnError(f"FINN made no node for design layer(s) {', '.join(left)} (FINN's nodes: "
                        f"{[n.op_type for n in dataflow.graph.node]})")
    return out


def _feeds(dataflow, node, matched: dict[str, int]):
    """The compute node a sliding window / padding node feeds (following feeders), or None."""
    consumer = dataflow.find_consumer(node.output[0])
    while consumer is not None and consumer.name not in matched:
        if not consumer.op_type.startswith(_FEEDERS):
            return None
        consumer = dataflow.find_consumer(consumer.output[0])
    return consumer


def apply_folding(dataflow, design: Design) -> dict[str, dict]:
    """Set PE/SIMD of every FINN node from our (already folded) design, matching FINN's compute nodes to
    design layers by kind, shape and order (`match_layers`); sliding windows and padding take the SIMD
    of the layer they feed (a conv's SIMD; a depthwise conv's or pool's PE). The other nodes (input
    thresholding, a requantising Thresholding, label select) get the smallest PE that keeps them off the
    critical path, as FINN's SetFolding would. Returns the folding per node name."""
    from qonnx.custom_op.registry import getCustomOp
    matched = match_layers(dataflow, design)
    mapped_cycles = []
    for node in dataflow.graph.node:
        inst = getCustomOp(node)
        attrs = inst.get_nodeattr_types()
        if node.name in matched:
            layer = design.layers[matched[node.name]]
            fold = _FOLD_ATTRS.get(_compute_kind(node.op_type), {"PE": "pe", "SIMD": "simd"})
            for attr, field in fold.items():
                if attr in attrs and getattr(layer, field, None) is not None:
                    inst.set_nodeattr(attr, int(getattr(layer, field)))
        elif node.op_type.startswith(_FEEDERS):
            target = _feeds(dataflow, node, matched)
            if target is None:
                raise FinnError(f"FINN node {node.name} ({node.op_type}) feeds no compute node of the design")
            layer = design.layers[matched[target.name]]
            simd = layer.simd if layer.kind == "conv" else layer.pe
            if simd is not None:
                inst.set_nodeattr("SIMD", int(simd))
        else:
            continue
        mapped_cycles.append(inst.get_exp_cycles())
    target = max(mapped_cycles) if mapped_cycles else 1
    folding = {}
    for node in dataflow.graph.node:
        inst = getCustomOp(node)
        attrs = inst.get_nodeattr_types()
        if node.op_type.startswith(("Thresholding", "LabelSelect")) and "PE" in attrs:
            channels = inst.get_nodeattr("NumChannels") if "NumChannels" in attrs else inst.get_nodeattr("Labels")
            for pe in divisors(int(channels)):
                inst.set_nodeattr("PE", pe)
                if inst.get_exp_cycles() <= target:
                    break
        folding[node.name] = {k.lower(): inst.get_nodeattr(k) for k in ("PE", "SIMD") if k in attrs}
    return folding


def _lut_estimated(inst, base) -> bool:
    """Whether finn-plus estimates this node's logic: not when its class keeps HWCustomOp's `return 0`,
    nor for an elementwise op of two streams (finn-plus counts only the LUTs of constant operands)."""
    if type(inst).lut_estimation is base.lut_estimation:
        return False
    if "lhs_style" in inst.get_nodeattr_types():
        return "const" in (inst.get_nodeattr("lhs_style"), inst.get_nodeattr("rhs_style"))
    return True


def finn_estimate(onnx_path: str | Path, design: Design, board: Board, clock_mhz: float | None = None) -> ResourceEstimate:
    """finn-plus' own estimate of the exported network with our folding, as a `ResourceEstimate`."""
    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer
    from finn.analysis.fpgadataflow.res_estimation import res_estimation
    clock = clock_mhz or design.clock_mhz or board.clock_mhz
    started = time.perf_counter()
    with finn_environment() as build_dir:
        try:
            dataflow = to_hw_dataflow(onnx_path, board.part, build_dir)
            folding = apply_folding(dataflow, design)
            resources = dataflow.analysis(lambda m: res_estimation(m, board.part))
            cycles = dataflow.analysis(exp_cycles_per_layer)
        except FinnError:
            raise
        except Exception as exc:  # FINN's own message is the useful one
            raise FinnError(f"FINN flow failed: {type(exc).__name__}: {exc}") from exc
    from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
    from qonnx.custom_op.registry import getCustomOp
    per_layer, unestimated = [], []
    for idx, node in enumerate(dataflow.graph.node):
        estimated = _lut_estimated(getCustomOp(node), HWCustomOp)
        if not estimated:
            unestimated.append(node.op_type)
        r = resources.get(node.name, {})
        res = Resources(lut=float(r.get("LUT", 0)), ff=0.0, bram18=float(r.get("BRAM_18K", 0)),
                        uram=float(r.get("URAM", 0)), dsp=float(r.get("DSP", 0)))
        c = int(cycles.get(node.name, 0))
        detail = {"node": node.name, **({} if estimated else {"no_estimate": True})}
        per_layer.append(LayerEstimate(idx, node.op_type, res, c, c, folding.get(node.name, {}), detail))
    total = Resources.total(l.resources for l in per_layer)
    cycles_per_frame = max(1, max(l.cycles for l in per_layer))
    notes = ["FINN has no FF estimate (ff reported as 0)",
             f"finn-plus flow took {time.perf_counter() - started:.2f} s"]
    if unestimated:
        notes.append(f"finn-plus has no resource estimate for {', '.join(sorted(set(unestimated)))} "
                     "(reported as 0)")
    if any(l.kind.startswith("MVAU_rtl") for l in per_layer):
        notes.append("MVAU_rtl nodes report LUT=0 in finn-plus' estimate")
    return ResourceEstimate(
        source="finn-estimate", style="finn", board=board.name, clock_mhz=clock, total=total,
        per_layer=tuple(per_layer), cycles_per_frame=cycles_per_frame,
        latency_cycles=sum(l.cycles for l in per_layer), fits=board.fits(total),
        utilization=board.utilization(total), violations=board.violations(total), notes=tuple(notes),
        missing=("ff",))


def _finn_dtype(bits: int, signed: bool) -> str:
    if bits >= 32:
        return "INT32"
    return "BIPOLAR" if bits == 1 else f"{'INT' if signed else 'UINT'}{bits}"


def design_hw_graph(design: Design):
    """FINN's HW nodes for a folded FINN-style design, built directly (no QONNX export): dense ->
    MVAU_hls; conv -> ConvolutionInputGenerator_rtl + MVAU_hls; maxpool -> ConvolutionInputGenerator_rtl
    (depthwise) + Pool_hls, as FINN's InferConvInpGen / InferPool make them; the design's ram_style,
    internal_decoupled weights (finn-plus 1.6.1 estimates internal_embedded MVAUs with URAM even on
    parts without any), FINN's defaults for the rest. For designs we have no ONNX of
    (the published builds), so finn-plus can estimate the same layers and folding."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model
    nodes, bits, t = [], design.input_bits, 0

    def node(op, domain, **attrs):
        nonlocal t
        nodes.append(helper.make_node(op, [f"t{t}"], [f"t{t + 1}"], name=f"{op}_{len(nodes)}",
                                      domain=f"finn.custom_op.fpgadataflow.{domain}", backend="fpgadataflow", **attrs))
        t += 1

    def swg(channels, in_dim, kernel, stride, simd, depthwise):
        (h, w), (kh, kw), (sh, sw) = in_dim, kernel, stride
        out = [(h - kh) // sh + 1, (w - kw) // sw + 1]
        node("ConvolutionInputGenerator_rtl", "rtl", ConvKernelDim=[kh, kw], IFMChannels=channels,
             IFMDim=[h, w], OFMDim=out, SIMD=simd, Stride=[sh, sw],
             Dilation=[1, 1], inputDataType=_finn_dtype(bits, bits == 1), outputDataType=_finn_dtype(bits, bits == 1),
             depthwise=int(depthwise), ram_style=design.ram_style)

    for layer in design.layers:
        if layer.kind not in ("dense", "conv", "maxpool"):
            raise FinnError(f"{layer.describe()}: no FINN node graph is built for a {layer.kind} layer here")
        if isinstance(layer, MaxPoolLayer):
            swg(layer.channels, layer.in_dim, layer.pool, layer.pool, layer.pe, True)
            node("Pool_hls", "hls", Channels=layer.channels, PE=layer.pe, KernelSize=list(layer.pool),
                 Function="MaxPool", OutImgDims=list(layer.out_hw),
                 InputDataType=_finn_dtype(bits, bits == 1), OutputDataType=_finn_dtype(bits, bits == 1))
            continue
        if isinstance(layer, ConvLayer):
            # FINN pads in an FMPadding node of its own: the window sees the padded image
            swg(layer.in_ch, layer.padded, layer.kernel, layer.stride, layer.simd, False)
        w, b = layer.weight_bits, layer.act_bits
        node("MVAU_hls", "hls", MW=layer.mw, MH=layer.mh, PE=layer.pe, SIMD=layer.simd,
             inputDataType=_finn_dtype(bits, bits == 1), weightDataType=_finn_dtype(w, True),
             outputDataType=_finn_dtype(b, False), noActivation=int(b >= 32), binaryXnorMode=int(w == 1 and bits == 1),
             numInputVectors=[layer.input_vectors], mem_mode="internal_decoupled", ram_style=design.ram_style)
        bits = b
    graph = helper.make_graph(nodes, "design", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info(f"t{t}", TensorProto.FLOAT, [1])])
    return ModelWrapper(qonnx_make_model(graph))


def finn_estimate_design(design: Design, board: Board) -> dict[str, float]:
    """finn-plus' own res_estimation of a folded design's HW nodes (`design_hw_graph`): totals of
    LUT, BRAM18, URAM, DSP (FINN has no FF estimate)."""
    from finn.analysis.fpgadataflow.res_estimation import res_estimation
    from hw_models.estimate import folded_design
    design = folded_design(design, board)  # folding the design leaves open is derived as `estimate` does
    with finn_environment():
        per_node = res_estimation(design_hw_graph(design), board.part)
    keys = {"lut": "LUT", "bram18": "BRAM_18K", "uram": "URAM", "dsp": "DSP"}
    return {ours: float(sum(r.get(theirs, 0) for r in per_node.values())) for ours, theirs in keys.items()}


class FinnEstimateOptions(FlowOptions):
    timeout_s: float = Field(default=600, gt=0, description="time limit of finn-plus' flow")


class FinnEstimateFlow(Flow):
    name = "finn-estimate"
    description = "finn-plus' own per-layer estimate of the QONNX file with our folding (source finn-estimate; no Vivado)"
    styles = ("finn",)
    requires = ("qonnx",)
    Options = FinnEstimateOptions

    def board_problem(self, board) -> str | None:
        family = FAMILIES.get(board.family)
        if family is not None and family.vendor != "AMD Xilinx":  # SpecializeLayers takes a Xilinx part
            return f"finn-plus estimates Xilinx parts; board {board.name} is {family.vendor} {board.family}"
        return None

    def run(self, ctx: FlowContext, options: FinnEstimateOptions) -> FlowResult:
        problem = self.board_problem(ctx.board)
        if problem:
            raise FlowSkipped(problem)
        est = call_with_timeout(finn_estimate, self.needs_onnx(ctx), ctx.design, ctx.board, ctx.clock_mhz,
                                timeout_s=options.timeout_s)
        return FlowResult(self.name, {"cycles_per_frame": est.cycles_per_frame}, estimates={est.source: est})
