"""The registry of toolchain flows (one line per flow) and the runner that takes a trained candidate
through a list of them in order, as FINN's builder runs its named steps."""
from __future__ import annotations

from typing import Iterable, Sequence

from flows.base import Flow, FlowContext, FlowOptions, FlowResult, FlowSkipped
from flows.finn import FinnEstimateFlow
from flows.hls4ml import Hls4mlFlow
from flows.pnr import PnrFlow
from flows.qonnx import QonnxFlow
from flows.synthesis import VivadoFlow
from flows.yosys_flow import YosysFlow

FLOWS: dict[str, Flow] = {f.name: f for f in (QonnxFlow(), FinnEstimateFlow(), Hls4mlFlow(), VivadoFlow(), YosysFlow(),
                                             PnrFlow())}


def get_flow(name: str) -> Flow:
    try:
        return FLOWS[name]
    except KeyError:
        raise ValueError(f"unknown flow {name!r}; valid: {sorted(FLOWS)}") from None


def resolve(names: Iterable[str]) -> list[str]:
    """`names` in order, each preceded by the flows it requires (once each)."""
    out: list[str] = []

    def add(name: str) -> None:
        for required in get_flow(name).requires:
            add(required)
        if name not in out:
            out.append(name)
    for name in names:
        add(name)
    return out


def run_flows(steps: Sequence[tuple[Flow, FlowOptions]], ctx: FlowContext, *, on_result=None) -> list[FlowResult]:
    """Run each (flow, options) in order; a `FlowSkipped` becomes a skipped result, any other exception
    propagates (the trial fails). `on_result(result)` is called after each flow (logging)."""
    results = []
    for flow, options in steps:
        try:
            result = flow.run(ctx, options)
        except FlowSkipped as exc:
            result = FlowResult(flow.name, skipped=f"{type(exc).__name__}: {exc}")
        else:
            ctx = flow.next_context(ctx, result)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
