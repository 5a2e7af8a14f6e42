"""Vendor synthesis when Vivado / Vitis HLS are installed: FINN's out-of-context synthesis of the
stitched dataflow, and hls4ml's `build()` (C synthesis, optionally Vivado synthesis).

Results come back as `ResourceEstimate`s: source `vivado` for post-synthesis utilisation,
`hls-estimate` for the HLS C-synthesis estimate (which over-states LUTs ~2x on small designs). The
report collection and parsing (`collect_*`) is separate from running the tools, so it is tested on
checked-in report files; the tools themselves are only run where they are installed.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from typing import Literal

from pydantic import Field

from boards import Board, Resources
from flows.base import Flow, FlowContext, FlowOptions, FlowResult, FlowSkipped, ToolCheck
from flows.finn import apply_folding, finn_environment, input_quant_to_host, to_hw_dataflow
from flows.hls4ml import convert
from flows.qonnx import load_clean
from flows.reports import HlsSynthesis, VivadoUtilization, parse_hls_csynth_xml_file, parse_vivado_utilization_file
from flows.tools import call_with_timeout, vivado_available
from hw_models.design import Design
from hw_models.estimate import LayerEstimate, ResourceEstimate


class SynthesisToolMissing(FlowSkipped):
    """Vivado / Vitis HLS is not installed: the synthesis source is skipped (the message says why)."""


def vitis_hls_command() -> str | None:
    return shutil.which("vitis-run") or shutil.which("vitis_hls") or shutil.which("vivado_hls")


def require_vivado() -> None:
    if not vivado_available():
        raise SynthesisToolMissing("Vivado not found (needs XILINX_VIVADO set and `vivado` on PATH): "
                                   "the post-synthesis `vivado` source is skipped")


def require_vitis_hls() -> None:
    if vitis_hls_command() is None:
        raise SynthesisToolMissing("Vitis HLS / Vivado HLS not found (vitis-run, vitis_hls or vivado_hls on PATH): "
                                   "hls4ml build() is skipped")


def whole_design_estimate(source: str, style: str, board: Board, clock_mhz: float, total: Resources, cycles_per_frame: int,
                  latency_cycles: int, notes: list[str]) -> ResourceEstimate:
    layer = LayerEstimate(0, "design", total, cycles_per_frame, latency_cycles, {}, {})
    return ResourceEstimate(source=source, style=style, board=board.name, clock_mhz=clock_mhz, total=total,
                            per_layer=(layer,), cycles_per_frame=max(1, cycles_per_frame),
                            latency_cycles=latency_cycles, fits=board.fits(total),
                            utilization=board.utilization(total), violations=board.violations(total),
                            notes=tuple(notes))


def estimate_from_utilization(util: VivadoUtilization, board: Board, *, style: str, clock_mhz: float,
                              cycles_per_frame: int, latency_cycles: int, origin: str) -> ResourceEstimate:
    """Post-synthesis utilisation as the `vivado` source; throughput from the dataflow's cycles."""
    notes = [f"{origin}: Vivado {util.tool_version or '?'} on {util.device or '?'} ({util.design_state or '?'})",
             "cycles per frame from the folding (synthesis does not report them)"]
    return whole_design_estimate("vivado", style, board, clock_mhz, util.resources, cycles_per_frame, latency_cycles, notes)


def estimate_from_hls(hls: HlsSynthesis, board: Board, *, clock_mhz: float) -> ResourceEstimate:
    """The HLS C-synthesis estimate (`hls-estimate`): resources, interval and latency from csynth."""
    interval = hls.interval_max or hls.interval_min or 1
    latency = hls.latency_cycles_worst or hls.latency_cycles_best or interval
    notes = [f"{hls.version} C synthesis of {hls.top} for {hls.part}: estimated clock {hls.estimated_clock_ns:g} ns "
             f"(target {hls.target_clock_ns:g} ns); HLS estimates over-state LUTs, calibrate against `vivado`"]
    return whole_design_estimate("hls-estimate", "hls4ml", board, clock_mhz, hls.resources, interval, latency, notes)


def collect_finn_ooc(output_dir: str | Path, board: Board, *, clock_mhz: float, cycles_per_frame: int,
                     latency_cycles: int) -> ResourceEstimate:
    """Read a FINN build's `report/ooc_synth_and_timing.json` and the utilisation report it points at."""
    output_dir = Path(output_dir)
    summary_path = output_dir / "report" / "ooc_synth_and_timing.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"FINN's out-of-context synthesis left no {summary_path}")
    summary = json.loads(summary_path.read_text())
    project = Path(summary.get("vivado_proj_folder", output_dir))
    reports = sorted(project.glob("*utilization*.rpt")) or sorted(output_dir.rglob("ooc_utilization.rpt"))
    if not reports:
        raise FileNotFoundError(f"no utilisation report under {project}")
    est = estimate_from_utilization(parse_vivado_utilization_file(reports[0]), board, style="finn",
                                    clock_mhz=clock_mhz, cycles_per_frame=cycles_per_frame,
                                    latency_cycles=latency_cycles, origin="FINN out-of-context synthesis")
    fmax = summary.get("fmax_mhz")
    if fmax:
        est = replace(est, notes=est.notes + (f"fmax {float(fmax):.1f} MHz after OOC P&R",))
    return est


def collect_hls4ml(project_dir: str | Path, board: Board, *, clock_mhz: float, cycles_per_frame: int,
                   latency_cycles: int) -> dict[str, ResourceEstimate]:
    """hls4ml's reports after build(): `hls-estimate` from the csynth XML, `vivado` from vivado_synth.rpt."""
    project_dir = Path(project_dir)
    out: dict[str, ResourceEstimate] = {}
    xmls = sorted(project_dir.glob("*_prj/*/syn/report/*_csynth.xml"))
    if xmls:
        out["hls-estimate"] = estimate_from_hls(parse_hls_csynth_xml_file(xmls[0]), board, clock_mhz=clock_mhz)
    rpt = project_dir / "vivado_synth.rpt"
    if rpt.is_file():
        out["vivado"] = estimate_from_utilization(parse_vivado_utilization_file(rpt), board, style="hls4ml",
                                                  clock_mhz=clock_mhz, cycles_per_frame=cycles_per_frame,
                                                  latency_cycles=latency_cycles, origin="hls4ml vsynth")
    if not out:
        raise FileNotFoundError(f"no csynth XML or vivado_synth.rpt under {project_dir}")
    return out


def hls4ml_synthesis(onnx_path: str | Path, design: Design, board: Board, project_dir: Path, *,
                     clock_mhz: float, cycles_per_frame: int, latency_cycles: int, vsynth: bool = True,
                     strategy: str = "Latency") -> dict[str, ResourceEstimate]:
    """hls4ml build(): C synthesis (+ Vivado synthesis with vsynth) of the design, then its reports."""
    require_vitis_hls()
    if vsynth:
        require_vivado()
    hls_model, _ = convert(onnx_path, design, board.part, project_dir, strategy=strategy, clock_mhz=clock_mhz)
    hls_model.build(csim=False, synth=True, vsynth=vsynth)
    return collect_hls4ml(project_dir, board, clock_mhz=clock_mhz, cycles_per_frame=cycles_per_frame,
                          latency_cycles=latency_cycles)


def finn_ooc_synthesis(onnx_path: str | Path, design: Design, board: Board, output_dir: Path, *,
                       clock_mhz: float, cycles_per_frame: int, latency_cycles: int) -> ResourceEstimate:
    """FINN's builder up to out-of-context synthesis of the stitched IP, with our folding."""
    require_vivado()
    from finn.builder import build_dataflow_config as bc
    from finn.builder.build_dataflow import build_dataflow_cfg
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with finn_environment() as build_dir:
        dataflow = to_hw_dataflow(onnx_path, board.part, build_dir)
        folding = apply_folding(dataflow, design)
    folding_file = output_dir / "folding_config.json"
    folding_file.write_text(json.dumps({"Defaults": {}, **{name: {k.upper(): v for k, v in f.items()}
                                                            for name, f in folding.items()}}, indent=1))
    host_model = output_dir / "model_host_input.onnx"
    input_quant_to_host(load_clean(Path(onnx_path))).save(str(host_model))
    cfg = bc.DataflowBuildConfig(
        output_dir=str(output_dir), synth_clk_period_ns=1000.0 / clock_mhz, fpga_part=board.part,
        folding_config_file=str(folding_file),
        generate_outputs=[bc.DataflowOutputType.ESTIMATE_REPORTS, bc.DataflowOutputType.STITCHED_IP,
                          bc.DataflowOutputType.OOC_SYNTH])
    with finn_environment():
        status = build_dataflow_cfg(str(host_model), cfg)
    if status != 0:
        raise RuntimeError(f"FINN's build failed (status {status}); see {output_dir}/build_dataflow.log")
    return collect_finn_ooc(output_dir, board, clock_mhz=clock_mhz, cycles_per_frame=cycles_per_frame,
                            latency_cycles=latency_cycles)


class VivadoOptions(FlowOptions):
    strategy: Literal["Latency", "Resource"] = Field(default="Latency", description="hls4ml's Strategy (style hls4ml)")
    timeout_s: float = Field(default=7200, gt=0, description="time limit of one synthesis")


class VivadoFlow(Flow):
    name = "vivado"
    description = ("Vivado synthesis where installed: FINN out-of-context synthesis (style finn) or hls4ml "
                   "build() (style hls4ml); sources vivado and hls-estimate")
    requires = ("qonnx",)
    Options = VivadoOptions

    def check(self, style: str) -> ToolCheck:
        try:
            require_vivado()
            if style == "hls4ml":
                require_vitis_hls()
        except SynthesisToolMissing as exc:
            return ToolCheck(False, str(exc))
        return ToolCheck(True, "Vivado" + (" and Vitis HLS" if style == "hls4ml" else ""))

    def run(self, ctx: FlowContext, options: VivadoOptions) -> FlowResult:
        timing = {"clock_mhz": ctx.clock_mhz, "cycles_per_frame": ctx.cycles_per_frame,
                  "latency_cycles": ctx.latency_cycles}
        onnx = self.needs_onnx(ctx)
        if ctx.design.style == "finn":
            found = {"vivado": call_with_timeout(finn_ooc_synthesis, onnx, ctx.design, ctx.board,
                                                 ctx.work_dir / "finn_build", timeout_s=options.timeout_s, **timing)}
        else:
            found = call_with_timeout(hls4ml_synthesis, onnx, ctx.design, ctx.board, ctx.work_dir / "hls4ml_build",
                                      strategy=options.strategy, timeout_s=options.timeout_s, **timing)
        return FlowResult(self.name, {"sources": sorted(found)}, estimates=found)
