"""QONNX export of a trained Brevitas model, with verification against the Brevitas forward pass.

`export_and_verify` writes `model.onnx` (batch size 1, as FINN and hls4ml expect), runs qonnx's
cleanup, executes the graph with qonnx's reference executor on a slice of the test set and compares
every output with PyTorch's. Agreement below the threshold raises `ExportMismatch`; the files stay
for inspection.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import Field

from flows.base import Flow, FlowContext, FlowOptions, FlowResult


class ExportableModel(Protocol):
    """What the export takes: a Brevitas (torch) module and the shape of one input sample, (features,)
    or (channels, height, width), in which the exported graph reads its input."""

    sample_shape: tuple[int, ...]

    def eval(self) -> Any: ...

    def __call__(self, x: Any) -> Any: ...


class ExportError(RuntimeError):
    """The model could not be exported to QONNX."""


class ExportMismatch(RuntimeError):
    """The exported graph computes something else than the Brevitas model."""


@dataclass(frozen=True)
class ExportResult:
    onnx_path: Path
    samples: int
    agreement: float  # fraction of samples whose outputs match within tolerance
    argmax_agreement: float  # fraction with the same predicted class (ties count as agreeing)
    max_abs_diff: float
    export_s: float
    verify_s: float
    exporter: str  # "torchscript" (dynamo=False) or "dynamo"

    def as_dict(self) -> dict:
        return {"onnx_path": str(self.onnx_path), "samples": self.samples, "agreement": self.agreement,
                "argmax_agreement": self.argmax_agreement, "max_abs_diff": self.max_abs_diff,
                "export_s": self.export_s, "verify_s": self.verify_s, "exporter": self.exporter}


def input_shape(model: ExportableModel) -> tuple[int, ...]:
    """Batch-1 input shape: (1, C, H, W) for CNNs, (1, features) otherwise."""
    return (1, *model.sample_shape)


def export_qonnx_file(model: ExportableModel, path: Path) -> tuple[Path, str]:
    """Export with Brevitas' QONNX exporter, TorchScript path first (fast), dynamo if that fails."""
    import torch
    from brevitas.export import export_qonnx
    model.eval()
    example = torch.zeros(input_shape(model))
    try:
        export_qonnx(model, input_t=example, export_path=str(path), dynamo=False)
        return path, "torchscript"
    except Exception as first:  # some graphs only trace with the dynamo exporter
        try:
            export_qonnx(model, input_t=example, export_path=str(path))
            return path, "dynamo"
        except Exception as second:
            raise ExportError(f"QONNX export failed: {type(first).__name__}: {first}; "
                              f"dynamo exporter: {type(second).__name__}: {second}") from second


def load_clean(path: Path):
    """Load an ONNX file into qonnx and run its cleanup; malformed files raise ExportError."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model
    try:
        return cleanup_model(ModelWrapper(str(path)))
    except Exception as exc:
        raise ExportError(f"{path} is not a loadable ONNX/QONNX model: {type(exc).__name__}: {exc}") from exc


def batched(wrapper, batch: int):
    """A copy of a batch-1 graph with batch size `batch` (shapes re-inferred), for fast verification."""
    import copy

    from qonnx.transformation.infer_shapes import InferShapes
    out = copy.deepcopy(wrapper)
    del out.graph.value_info[:]
    for tensor in (out.graph.input[0].name, out.graph.output[0].name):
        out.set_tensor_shape(tensor, [batch] + list(wrapper.get_tensor_shape(tensor)[1:]))
    return out.transform(InferShapes())


def run_qonnx(wrapper, x: np.ndarray) -> np.ndarray:
    """Execute a batch-1 QONNX graph on the rows of `x` with qonnx's reference executor: all rows at
    once on a batched copy of the graph, row by row if the graph does not batch (fixed reshapes)."""
    from qonnx.core.onnx_exec import execute_onnx
    iname, oname = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    shape = wrapper.get_tensor_shape(iname)
    rows = np.asarray(x, dtype=np.float32).reshape(len(x), *shape[1:])
    try:
        return np.asarray(execute_onnx(batched(wrapper, len(rows)), {iname: rows})[oname])
    except Exception:  # e.g. a Reshape with a constant batch-1 shape
        return np.asarray([execute_onnx(wrapper, {iname: row[None]})[oname][0] for row in rows])


def compare_outputs(ours: np.ndarray, ref: np.ndarray, *, rtol: float = 1e-4, atol: float = 1e-5) -> tuple[float, float, float]:
    """(agreement, argmax agreement, max abs diff). A sample agrees when all its outputs match within
    atol + rtol * max|ref|; argmax agreement treats ties in the reference as matching."""
    ours, ref = ours.reshape(len(ref), -1), ref.reshape(len(ref), -1)
    diff = np.abs(ours - ref)
    scale = np.abs(ref).max(axis=1, keepdims=True)
    agree = np.all(diff <= atol + rtol * scale, axis=1)
    top = ref.max(axis=1, keepdims=True)
    tie_ok = np.isclose(ref[np.arange(len(ref)), ours.argmax(1)], top[:, 0], rtol=1e-6, atol=1e-7)
    return float(agree.mean()), float(tie_ok.mean()), float(diff.max()) if diff.size else 0.0


def export_and_verify(model: ExportableModel, x_verify: np.ndarray, out_dir: Path, *, min_agreement: float = 1.0,
                      samples: int = 64) -> ExportResult:
    """Export `model` to `out_dir/model.onnx`, verify on `x_verify[:samples]`; raise on mismatch."""
    import torch
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    path, exporter = export_qonnx_file(model, out_dir / "model.onnx")
    wrapper = load_clean(path)
    wrapper.save(str(path))
    export_s = time.perf_counter() - t0
    x = np.asarray(x_verify[:samples], dtype=np.float32)
    t0 = time.perf_counter()
    with torch.no_grad():
        model.eval()
        ref = model(torch.from_numpy(x).reshape(len(x), *input_shape(model)[1:])).numpy()
    ours = run_qonnx(wrapper, x)
    agreement, argmax_agreement, max_diff = compare_outputs(ours, ref)
    result = ExportResult(path, len(x), agreement, argmax_agreement, max_diff, export_s,
                          time.perf_counter() - t0, exporter)
    if agreement < min_agreement:
        raise ExportMismatch(f"export mismatch: QONNX agrees with Brevitas on {agreement:.1%} of {len(x)} samples "
                             f"(needed {min_agreement:.1%}; max |diff| {max_diff:.3g}); files kept in {out_dir}")
    return result


class QonnxOptions(FlowOptions):
    verify_samples: int = Field(default=64, ge=1, description="test samples the exported graph is checked on")
    min_agreement: float = Field(default=1.0, ge=0, le=1,
                                 description="share of samples that must match Brevitas; below, the trial fails")


class QonnxFlow(Flow):
    name = "qonnx"
    description = "QONNX export of the trained network, verified against it (model.onnx; the other flows read it)"
    Options = QonnxOptions
    feedback = False  # every other flow builds on it; it scores nothing

    def run(self, ctx: FlowContext, options: QonnxOptions) -> FlowResult:
        exported = export_and_verify(ctx.model, ctx.x_check, ctx.work_dir, min_agreement=options.min_agreement,
                                     samples=options.verify_samples)
        return FlowResult(self.name, exported.as_dict(), artifacts=(str(exported.onnx_path),))

    def next_context(self, ctx: FlowContext, result: FlowResult) -> FlowContext:
        return ctx.with_onnx(Path(result.artifacts[0]))
