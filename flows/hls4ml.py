"""hls4ml from QONNX: convert (io_parallel, reuse factor per layer from the design point, precision
from the Quant nodes), compile the C simulation with g++ and compare it with the Brevitas model.

hls4ml documents QONNX as the Brevitas route: the QONNX graph is cleaned, made channels-last and its
Gemms turned into MatMuls before conversion. Without g++ the C simulation is skipped with a message.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Literal
from pathlib import Path

import numpy as np
from pydantic import Field

from flows.base import Flow, FlowContext, FlowOptions, FlowResult, FlowSkipped, ToolCheck
from flows.qonnx import compare_outputs
from flows.tools import call_with_timeout
from hw_models.design import Design


class Hls4mlError(RuntimeError):
    """hls4ml could not convert or compile the model; the message is hls4ml's."""


class ToolMissing(FlowSkipped):
    """A tool the step needs is not installed (the message names it)."""


@dataclass(frozen=True)
class Hls4mlResult:
    project_dir: Path | None
    layers: tuple[tuple[str, str, int], ...]  # (hls4ml layer name, class, reuse factor)
    samples: int
    agreement: float  # fraction of samples matching Brevitas within tolerance
    argmax_agreement: float
    max_abs_diff: float
    convert_s: float
    compile_s: float

    def as_dict(self) -> dict:
        return {"project_dir": str(self.project_dir) if self.project_dir else None,
                "layers": [list(l) for l in self.layers], "samples": self.samples, "agreement": self.agreement,
                "argmax_agreement": self.argmax_agreement, "max_abs_diff": self.max_abs_diff,
                "convert_s": self.convert_s, "compile_s": self.compile_s}


def prepare_qonnx(onnx_path: str | Path):
    """The QONNX preparation hls4ml documents: cleanup, channels-last, Gemm -> MatMul, cleanup."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model
    model = cleanup_model(ModelWrapper(str(onnx_path)))
    model = model.transform(ConvertToChannelsLastAndClean())
    model = model.transform(GemmToMatMul())
    return cleanup_model(model)


def convert(onnx_path: str | Path, design: Design, fpga_part: str, output_dir: Path, *,
            strategy: str = "Latency", backend: str = "Vitis", clock_mhz: float = 100.0):
    """An hls4ml model of the QONNX file with the design's reuse factors (MatMul/Conv nodes in order)."""
    import hls4ml
    model = prepare_qonnx(onnx_path)
    cfg = hls4ml.utils.config.config_from_onnx_model(model, granularity="name", backend=backend,
                                                     default_precision="fixed<32,16>")
    cfg["Model"]["Strategy"] = strategy
    compute = [n.name for n in model.graph.node if n.op_type in ("MatMul", "Conv", "Gemm")]
    layers = [l for l in design.layers if l.weighted]
    if len(compute) != len(layers):
        raise Hls4mlError(f"the QONNX graph has {len(compute)} MatMul/Conv nodes but the design {len(layers)} layers")
    for name, layer in zip(compute, layers):
        cfg["LayerName"].setdefault(name, {})["ReuseFactor"] = int(layer.reuse_factor or 1)
        cfg["LayerName"][name]["Strategy"] = strategy
    hls_model = hls4ml.converters.convert_from_onnx_model(
        model, output_dir=str(output_dir), io_type="io_parallel", backend=backend, hls_config=cfg,
        part=fpga_part, clock_period=1000.0 / clock_mhz)
    return hls_model, model


def csim_agreement(onnx_path: str | Path, design: Design, fpga_part: str, x: np.ndarray, reference: np.ndarray,
                   *, image_shape=None, strategy: str = "Latency", keep_dir: Path | None = None,
                   clock_mhz: float = 100.0) -> Hls4mlResult:
    """Convert, compile the C simulation and compare its outputs on `x` with `reference` (Brevitas)."""
    if shutil.which("g++") is None:
        raise ToolMissing("g++ not found: hls4ml's C simulation needs a C++ compiler (apt-get install g++)")
    tmp = None
    out_dir = keep_dir
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="codesign-hls4ml-")
        out_dir = Path(tmp.name)
    try:
        t0 = time.perf_counter()
        try:
            hls_model, _ = convert(onnx_path, design, fpga_part, Path(out_dir) / "hls4ml_prj", strategy=strategy,
                                   clock_mhz=clock_mhz)
        except Hls4mlError:
            raise
        except Exception as exc:
            raise Hls4mlError(f"hls4ml conversion failed: {type(exc).__name__}: {exc}") from exc
        convert_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            hls_model.compile()
        except Exception as exc:
            raise Hls4mlError(f"hls4ml C simulation did not compile: {type(exc).__name__}: {exc}") from exc
        compile_s = time.perf_counter() - t0
        xin = np.asarray(x, dtype=np.float32)
        if image_shape is not None:  # hls4ml works channels-last
            xin = xin.reshape(len(xin), *image_shape).transpose(0, 2, 3, 1)
        ours = np.asarray(hls_model.predict(np.ascontiguousarray(xin)), dtype=np.float64)
        agreement, argmax_agreement, max_diff = compare_outputs(ours, np.asarray(reference, dtype=np.float64))
        layers = tuple((l.name, l.class_name, int(l.get_attr("reuse_factor") or 1)) for l in hls_model.get_layers()
                       if l.class_name in ("Dense", "Conv2D", "Conv1D"))
        return Hls4mlResult(Path(out_dir) if keep_dir else None, layers, len(xin), agreement, argmax_agreement,
                            max_diff, convert_s, compile_s)
    finally:
        if tmp is not None:
            tmp.cleanup()


class Hls4mlOptions(FlowOptions):
    strategy: Literal["Latency", "Resource"] = Field(default="Latency", description="hls4ml's Strategy")
    verify_samples: int = Field(default=64, ge=1, description="test samples the C simulation runs on")
    min_agreement: float = Field(default=0.0, ge=0, le=1, description=(
        "share of samples that must match the network; below, the trial fails (0: report only)"))
    timeout_s: float = Field(default=600, gt=0, description="time limit of conversion + compile + prediction")


class Hls4mlFlow(Flow):
    name = "hls4ml"
    description = "hls4ml conversion of the QONNX file and its C simulation (g++), compared with the network"
    styles = ("hls4ml",)
    requires = ("qonnx",)
    Options = Hls4mlOptions

    def check(self, style: str) -> ToolCheck:
        found = shutil.which("g++")
        return ToolCheck(found is not None, found or "g++ not found (hls4ml's C simulation compiles with it)")

    def run(self, ctx: FlowContext, options: Hls4mlOptions) -> FlowResult:
        x = ctx.x_check[:options.verify_samples]
        result = call_with_timeout(csim_agreement, self.needs_onnx(ctx), ctx.design, ctx.board.part, x, ctx.forward(x),
                                   image_shape=ctx.image_shape, strategy=options.strategy, clock_mhz=ctx.clock_mhz,
                                   timeout_s=options.timeout_s)
        if result.agreement < options.min_agreement:
            raise RuntimeError(f"hls4ml mismatch: C simulation agrees with the network on {result.agreement:.1%} "
                               f"of {result.samples} samples (needed {options.min_agreement:.1%})")
        return FlowResult(self.name, result.as_dict())
