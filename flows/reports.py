"""Parsers for Xilinx synthesis reports: Vivado `report_utilization` text and the HLS csynth XML.

Pure functions over text (plus two thin `*_file` readers); nothing here runs a tool.

Vivado utilization reports are box-drawn tables. Only tables whose header starts with "Site Type"
and has a "Used" column are read, and the "Used" column is located by its header, because Vivado
2022+ inserts a "Prohibited" column. The first occurrence of a row wins: multi-SLR devices repeat
"CLB LUTs", "DSPs"... in a per-SLR table that has no "Used" column. Row names lose indentation and
a trailing `*` ("Slice LUTs*" -> "Slice LUTs").

BRAM is counted in 18 Kb halves, as `boards.Resources` does: 2 * RAMB36/FIFO + RAMB18, or
2 * "Block RAM Tile" when those sub-rows are absent.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from boards import Resources

__all__ = [
    "HlsSynthesis", "ReportError", "VivadoUtilization",
    "parse_hls_csynth_xml", "parse_hls_csynth_xml_file",
    "parse_vivado_utilization", "parse_vivado_utilization_file",
]


class ReportError(ValueError):
    """A report could not be parsed; the message says which report and what is missing."""


@dataclass(frozen=True)
class VivadoUtilization:
    resources: Resources
    tool_version: str | None  # "2023.1"
    device: str | None  # as printed; Vivado before 2022 drops the "xc" of 7-series parts
    design_state: str | None  # "Synthesized", "Fully Placed", ...
    lut_as_memory: float


@dataclass(frozen=True)
class HlsSynthesis:
    resources: Resources
    available: Resources
    latency_cycles_best: int | None
    latency_cycles_worst: int | None
    interval_min: int | None
    interval_max: int | None
    estimated_clock_ns: float
    target_clock_ns: float
    part: str
    top: str
    version: str


# --- Vivado report_utilization ------------------------------------------------------------------

_LUT_ROWS = ("Slice LUTs", "CLB LUTs")
_FF_ROWS = ("Slice Registers", "CLB Registers")
_HEADER_RE = {
    "tool": re.compile(r"^\|\s*Tool Version\s*:.*?\bv\.?(\d{4}\.\d+(?:\.\d+)?)", re.M),
    "device": re.compile(r"^\|\s*Device\s*:\s*(\S+)", re.M),
    "state": re.compile(r"^\|\s*Design State\s*:\s*(.*?)\s*$", re.M),
}


def _cells(line: str) -> list[str]:
    """The stripped cells of one `| a | b |` table line."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table_blocks(text: str) -> list[list[str]]:
    """Runs of consecutive `|...|` lines (separator `+---+` lines dropped)."""
    blocks, current = [], []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|") and s.count("|") >= 3:
            current.append(s)
        elif not s.startswith("+"):
            if current:
                blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _number(cell: str) -> float | None:
    """A table cell as a number, or None when blank or not numeric."""
    try:
        return float(cell.replace(",", ""))
    except ValueError:
        return None


def _site_rows(text: str) -> dict[str, float]:
    """Row name -> "Used" value from every "Site Type | Used" table (first occurrence wins)."""
    rows: dict[str, float] = {}
    for block in _table_blocks(text):
        header = _cells(block[0])
        if header[0] != "Site Type" or "Used" not in header:
            continue
        used_col = header.index("Used")
        for line in block[1:]:
            cells = _cells(line)
            value = _number(cells[used_col]) if len(cells) > used_col else None
            name = cells[0].rstrip("*").strip()
            if value is not None and name not in rows:
                rows[name] = value
    return rows


def _first(rows: dict[str, float], names: tuple[str, ...]) -> float | None:
    """The value of the first of `names` present in `rows`."""
    return next((rows[n] for n in names if n in rows), None)


def _bram18(rows: dict[str, float]) -> float | None:
    """18 Kb BRAM halves: 2 * RAMB36/FIFO + RAMB18, else 2 * Block RAM Tile."""
    if "RAMB36/FIFO" in rows and "RAMB18" in rows:
        return 2 * rows["RAMB36/FIFO"] + rows["RAMB18"]
    tile = rows.get("Block RAM Tile")
    return None if tile is None else 2 * tile


def _header_field(text: str, key: str) -> str | None:
    """One field of the report's `| Key : value` header block, or None."""
    m = _HEADER_RE[key].search(text)
    return m.group(1) if m else None


def parse_vivado_utilization(text: str) -> VivadoUtilization:
    """Parse the text of Vivado `report_utilization` (7-series or UltraScale/UltraScale+)."""
    if not text.strip():
        raise ReportError("empty Vivado utilization report")
    rows = _site_rows(text)
    if not rows:
        raise ReportError("not a Vivado report_utilization text: no 'Site Type | Used' table found")
    lut, ff, dsp, bram18 = _first(rows, _LUT_ROWS), _first(rows, _FF_ROWS), rows.get("DSPs"), _bram18(rows)
    missing = [label for label, value in (
        ("LUTs ('Slice LUTs' or 'CLB LUTs')", lut), ("registers ('Slice Registers' or 'CLB Registers')", ff),
        ("DSPs ('DSPs')", dsp), ("Block RAM ('Block RAM Tile')", bram18)) if value is None]
    if missing:
        raise ReportError(f"Vivado utilization report is missing required row(s): {', '.join(missing)} "
                          "(truncated report, or not a report_utilization summary?)")
    return VivadoUtilization(
        resources=Resources(lut=lut, ff=ff, bram18=bram18, uram=rows.get("URAM", 0.0), dsp=dsp),
        tool_version=_header_field(text, "tool"), device=_header_field(text, "device"),
        design_state=_header_field(text, "state"), lut_as_memory=rows.get("LUT as Memory", 0.0))


def _read(path: str | Path, what: str) -> str:
    """The text of `path`; ReportError naming the path when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise ReportError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ReportError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _parse_file(path: str | Path, what: str, parser):
    """Read `path` and parse it; every error names the path."""
    text = _read(path, what)
    try:
        return parser(text)
    except ReportError as exc:
        raise ReportError(f"{path}: {exc}") from None


def parse_vivado_utilization_file(path: str | Path) -> VivadoUtilization:
    """Parse a `report_utilization` file; errors name the path."""
    return _parse_file(path, "Vivado utilization report", parse_vivado_utilization)


# --- HLS csynth.xml -----------------------------------------------------------------------------

_DSP_TAGS = ("DSP", "DSP48E")  # Vitis HLS writes <DSP>, Vivado HLS <DSP48E>


def _text(root: ET.Element, path: str) -> str:
    """The stripped text at `path` under `root`; ReportError naming the path when absent."""
    value = root.findtext(path)
    if value is None or not value.strip():
        raise ReportError(f"HLS csynth report has no <{path}>")
    return value.strip()


def _as_float(root: ET.Element, path: str) -> float:
    """The number at `path`, as a float."""
    value = _text(root, path)
    try:
        return float(value)
    except ValueError:
        raise ReportError(f"HLS csynth report: <{path}> is {value!r}, expected a number") from None


def _cycles(root: ET.Element, path: str) -> int | None:
    """A cycle count at `path`: None when absent or "undef" (data-dependent)."""
    value = (root.findtext(path) or "").strip()
    if value in ("", "undef"):
        return None
    try:
        return int(value)
    except ValueError:
        raise ReportError(f"HLS csynth report: <{path}> is {value!r}, expected a cycle count") from None


def _hls_resources(root: ET.Element, section: str) -> Resources:
    """LUT/FF/BRAM_18K/URAM/DSP counts of `AreaEstimates/<section>` (URAM absent -> 0)."""
    base = f"AreaEstimates/{section}"
    node = root.find(base)
    if node is None:
        raise ReportError(f"HLS csynth report has no <{base}>")
    dsp_tag = next((t for t in _DSP_TAGS if node.find(t) is not None), None)
    if dsp_tag is None:
        raise ReportError(f"HLS csynth report has no <{base}/DSP> (Vitis HLS) or <{base}/DSP48E> (Vivado HLS)")
    uram = _as_float(root, f"{base}/URAM") if node.find("URAM") is not None else 0.0
    return Resources(lut=_as_float(root, f"{base}/LUT"), ff=_as_float(root, f"{base}/FF"),
                     bram18=_as_float(root, f"{base}/BRAM_18K"), uram=uram, dsp=_as_float(root, f"{base}/{dsp_tag}"))


def parse_hls_csynth_xml(text: str) -> HlsSynthesis:
    """Parse the csynth XML report of Vivado HLS / Vitis HLS (root <profile>)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ReportError(f"malformed HLS csynth XML: {exc}") from None
    if root.tag != "profile":
        raise ReportError(f"not an HLS csynth report: root element is <{root.tag}>, expected <profile>")
    if root.find("AreaEstimates") is None:  # direct child only: Vitis nests per-module AreaEstimates deeper
        raise ReportError("HLS csynth report has no top-level <AreaEstimates> section")
    lat = "PerformanceEstimates/SummaryOfOverallLatency/"
    return HlsSynthesis(
        resources=_hls_resources(root, "Resources"), available=_hls_resources(root, "AvailableResources"),
        latency_cycles_best=_cycles(root, lat + "Best-caseLatency"),
        latency_cycles_worst=_cycles(root, lat + "Worst-caseLatency"),
        interval_min=_cycles(root, lat + "Interval-min"), interval_max=_cycles(root, lat + "Interval-max"),
        estimated_clock_ns=_as_float(root, "PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod"),
        target_clock_ns=_as_float(root, "UserAssignments/TargetClockPeriod"),
        part=_text(root, "UserAssignments/Part"), top=_text(root, "UserAssignments/TopModelName"),
        version=_text(root, "ReportVersion/Version"))


def parse_hls_csynth_xml_file(path: str | Path) -> HlsSynthesis:
    """Parse a csynth XML file (`<proj>_prj/<solution>/syn/report/<top>_csynth.xml`); errors name the path."""
    return _parse_file(path, "HLS csynth report", parse_hls_csynth_xml)
