"""The flow interface, FINN's named build steps as the model: a `Flow` has a name, the styles it serves,
the flows that must run before it, its options, a tool check, and `run(context, options)` returning a
`FlowResult`. A flow that cannot run here raises `FlowSkipped` (the trial keeps its other sources);
any other exception fails the trial. Concrete flows live beside the code they drive; `flows.registry`
lists them."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict

from boards import Board
from hw_models import Design, ResourceEstimate
from hw_models.design import STYLES


class FlowSkipped(RuntimeError):
    """The flow cannot run for this trial (a tool is missing, the design is outside what it covers);
    the message says why. Recorded as skipped; the trial goes on with its other sources."""


class FlowOptions(BaseModel):
    """Base of every flow's options (unknown keys rejected, like the rest of the config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class FlowResult:
    """What one flow did for one trial: its measurements, the estimates it produced (by source) and
    the files it wrote; or, when `skipped`, why it did not run."""

    name: str
    detail: Mapping[str, Any] = field(default_factory=dict)  # JSON-able measurements
    skipped: str | None = None
    estimates: Mapping[str, ResourceEstimate] = field(default_factory=dict)
    artifacts: tuple[str, ...] = ()

    @property
    def ran(self) -> bool:
        return self.skipped is None


@dataclass(frozen=True)
class FlowContext:
    """Everything a flow may use about one trained candidate."""

    model: Any  # the trained network (a torch module; see flows.qonnx.ExportableModel)
    forward: Callable[[np.ndarray], np.ndarray]  # the network's outputs for samples (the reference)
    network: Callable[[], Any]  # the network as plain data for the RTL flows (flows.quantized_mlp.QuantizedMLP)
    design: Design  # the hardware design, folding filled in
    board: Board
    clock_mhz: float
    work_dir: Path  # the trial's folder
    x_check: np.ndarray  # test samples the checks run on
    image_shape: tuple[int, ...] | None
    cycles_per_frame: int  # of the shape estimate (vendor reports give no throughput)
    latency_cycles: int
    onnx_path: Path | None = None  # the verified QONNX file, once the qonnx flow has run
    cache_dir: Path | None = None  # shared by the run's trials: results keyed by their inputs (RUN/cache)

    def with_onnx(self, path: Path) -> "FlowContext":
        return replace(self, onnx_path=path)


@dataclass(frozen=True)
class ToolCheck:
    available: bool
    detail: str = ""  # what is missing, or what was found


class Flow(ABC):
    name: ClassVar[str]
    description: ClassVar[str]  # one line: what it runs and what it records
    styles: ClassVar[tuple[str, ...]] = STYLES
    requires: ClassVar[tuple[str, ...]] = ()  # flows that must run before this one
    feedback: ClassVar[bool] = True  # may be named as the config's `feedback` (it scores or checks every trial)
    Options: ClassVar[type[FlowOptions]] = FlowOptions

    def check(self, style: str) -> ToolCheck:
        """Whether the tools this flow needs for `style` are installed (cheap: no tool is run)."""
        return ToolCheck(True)

    def board_problem(self, board) -> str | None:
        """Why this flow cannot run for `board` at all (every trial would be skipped), or None."""
        return None

    @abstractmethod
    def run(self, ctx: FlowContext, options: FlowOptions) -> FlowResult:
        """Run on one trained candidate; raise `FlowSkipped` when it cannot run here."""

    def next_context(self, ctx: FlowContext, result: FlowResult) -> FlowContext:
        """The context the following flows see (the qonnx flow adds the exported file)."""
        return ctx

    def needs_onnx(self, ctx: FlowContext) -> Path:
        if ctx.onnx_path is None:
            raise RuntimeError(f"flow {self.name!r} needs the QONNX file: list 'qonnx' before it")
        return ctx.onnx_path
