"""Yosys `stat` output (text table of Yosys 0.2x/0.3x or >= 0.5x, or `stat -json`) -> Xilinx cell counts.

Yosys versions differ by ~20 % in LUTs on the same netlist, so every count carries the Yosys version
that produced it.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from boards import Resources

LUT_CELLS = {f"LUT{i}": 1 for i in range(1, 7)}
# LUTs a distributed-RAM primitive occupies (Xilinx UG474/UG574 primitive descriptions)
LUTRAM_CELLS = {"RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM512X1S": 8,
                "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
                "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM16X2S": 2, "RAM32X2S": 2}
SRL_CELLS = {"SRL16E", "SRLC16E", "SRLC32E"}
FF_CELLS = {"FDRE", "FDSE", "FDCE", "FDPE", "FDR", "FDS", "FDC", "FDP", "FDE", "FD", "LDCE", "LDPE"}
CARRY_CELLS = {"CARRY4", "CARRY8"}
DSP_CELLS = {"DSP48E1", "DSP48E2", "DSP48A1", "DSP58"}
BRAM18_CELLS = {"RAMB18E1": 1, "RAMB18E2": 1, "RAMB18": 1, "RAMB36E1": 2, "RAMB36E2": 2, "RAMB36": 2,
                "FIFO18E1": 1, "FIFO36E1": 2, "FIFO18E2": 1, "FIFO36E2": 2}
URAM_CELLS = {"URAM288", "URAM288_BASE"}


class YosysStatError(ValueError):
    """The text holds no parsable Yosys `stat` report."""


class CellsReport:
    """JSON round trip of a tool report dataclass with `resources` (Resources) and `cells` (sorted
    (cell type, count) pairs): Yosys' stat, nextpnr's report."""

    def as_dict(self) -> dict:
        out = asdict(self)
        out["resources"] = self.resources.as_dict()
        out["cells"] = dict(self.cells)
        return out

    @classmethod
    def from_dict(cls, data: dict):
        data = dict(data)
        data["resources"] = Resources(**data["resources"])
        data["cells"] = tuple(sorted((str(k), int(v)) for k, v in data.get("cells", {}).items()))
        return cls(**data)


@dataclass(frozen=True)
class YosysStat(CellsReport):
    """Cell counts of one synthesised design. `resources.lut` counts LUT sites: logic LUTs
    (`lut_logic`, LUT1..LUT6), LUTs used as distributed RAM (`lutram`, in LUTs) and shift registers
    (`srl`, one LUT each); `resources.ff` all FD*/LD* registers; `carry` CARRY4/CARRY8 cells (Yosys
    maps carry chains to CARRY4 even for UltraScale+); `resources.dsp` DSP48E1/E2 cells;
    `resources.bram18` RAMB18 halves (a RAMB36 counts 2); `resources.uram` URAM288 cells."""

    resources: Resources
    lut_logic: int
    carry: int
    lutram: int
    srl: int
    inv: int  # INV cells (not in `lut`: Vivado mostly absorbs them into neighbouring LUTs, else a LUT1)
    yosys_version: str | None
    module: str | None  # the module (or "design hierarchy") the counts come from
    cells: tuple[tuple[str, int], ...] = ()  # every cell type and count, sorted by name
    seconds: float | None = None  # wall-clock of the run (synthesize_verilog), else Yosys' own "End of script" time

    @property
    def cell_counts(self) -> dict[str, int]:
        return dict(self.cells)



def stat_from_cells(cells: dict[str, int], *, yosys_version: str | None = None, module: str | None = None,
                    seconds: float | None = None) -> YosysStat:
    """Resource counts from a {cell type: count} map of Xilinx primitives."""
    count = lambda names: sum(n for c, n in cells.items() if c in names)  # noqa: E731
    weighted = lambda table: sum(n * table[c] for c, n in cells.items() if c in table)  # noqa: E731
    lut_logic, lutram, srl = weighted(LUT_CELLS), weighted(LUTRAM_CELLS), count(SRL_CELLS)
    resources = Resources(lut=lut_logic + lutram + srl, ff=count(FF_CELLS), bram18=weighted(BRAM18_CELLS),
                          uram=count(URAM_CELLS), dsp=count(DSP_CELLS))
    return YosysStat(resources=resources, lut_logic=lut_logic, carry=count(CARRY_CELLS), lutram=lutram, srl=srl,
                     inv=cells.get("INV", 0), yosys_version=yosys_version, module=module, cells=tuple(sorted(cells.items())),
                     seconds=seconds)


_VERSION = re.compile(r"\bYosys (\d+\.\d+\S*)(?: \(git sha1 ([0-9a-f]+))?")
_END_TIME = re.compile(r"End of script\..*?\btime: ([0-9.]+)s")
_SECTION = re.compile(r"^=== (.+) ===\s*$")
_NEW_CELL = re.compile(r"^\s*(\d+)\s{3,}(\S+)\s*$")  # Yosys >= 0.5x: "      8   LUT2"
_NEW_HEADER = re.compile(r"^\s*(\d+|-)\s+(cells|submodules|wires|wire bits|public wires|public wire bits|ports|"
                         r"port bits|memories|memory bits|processes)\s*$")
_OLD_CELL = re.compile(r"^\s{5,}(\S+)\s+(\d+)\s*$")  # Yosys <= 0.4x: "     LUT2      8"
_OLD_HEADER = re.compile(r"^\s*Number of (cells|wires|wire bits|public wires|public wire bits|ports|port bits|"
                         r"memories|memory bits|processes|submodules):\s*(\d+)\s*$")


def yosys_version(text: str) -> str | None:
    """`Yosys 0.70 (git sha1 28ba3cb92)` from a log or `yosys -V`, None if absent."""
    found = _VERSION.findall(text)
    if not found:
        return None
    number, sha = found[-1]
    return f"Yosys {number}" + (f" (git sha1 {sha})" if sha else "")


def _last_stat_block(text: str) -> str:
    """The output of the last `stat` in a log (Yosys numbers it "N. Printing statistics.")."""
    starts = [m.end() for m in re.finditer(r"^(?:[\d.]+\s+)?Printing statistics\.\s*$", text, re.M)]
    block = text[starts[-1]:] if starts else text
    end = re.search(r"^(?:\d+(?:\.\d+)*\.\s+Executing|End of script|Warnings: )", block, re.M)
    return block[:end.start()] if end else block


def _section_cells(lines: Sequence[str]) -> dict[str, int]:
    """Cell counts of one `=== module ===` section, in either text format."""
    cells: dict[str, int] = {}
    in_cells = False
    for line in lines:
        if _NEW_HEADER.match(line):
            in_cells = _NEW_HEADER.match(line).group(2) in ("cells", "submodules")
            continue
        old = _OLD_HEADER.match(line)
        if old:
            in_cells = old.group(1) == "cells"
            continue
        if not in_cells:
            continue
        new, old_cell = _NEW_CELL.match(line), _OLD_CELL.match(line)
        if new:
            cells[new.group(2)] = cells.get(new.group(2), 0) + int(new.group(1))
        elif old_cell:
            cells[old_cell.group(1)] = cells.get(old_cell.group(1), 0) + int(old_cell.group(2))
        elif line.strip() and not line.strip().startswith(("+", "|")):
            in_cells = False
    return cells


def _text_sections(block: str) -> dict[str, dict[str, int]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in block.splitlines():
        m = _SECTION.match(line)
        if m:
            current = m.group(1).strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {name: _section_cells(lines) for name, lines in sections.items()}


def _pick_module(modules: dict[str, dict[str, int]], top: str | None,
                 module: str | None = None) -> tuple[str, dict[str, int]]:
    """`module`'s own cells if asked for; else the design total: the hierarchy summary if present
    (cells of submodules included), else `top`, else the only module (a flattened design)."""
    if not modules:
        raise YosysStatError("no `=== module ===` section in the stat output")
    wanted = [module] if module else ["design hierarchy", "design"] + ([top] if top else [])
    for name in wanted:
        for key in (name, "\\" + name):
            if key in modules:
                return name, modules[key]
    if module or top:
        raise YosysStatError(f"module {module or top!r} not in the stat output (modules: {sorted(modules)[:10]})")
    if len(modules) == 1:
        name, cells = next(iter(modules.items()))
        return name.lstrip("\\"), cells
    raise YosysStatError(f"several modules and no hierarchy summary: {sorted(modules)[:10]}; pass top=")


def _json_modules(data: dict) -> dict[str, dict[str, int]]:
    out = {name: dict(m.get("num_cells_by_type", {})) for name, m in data.get("modules", {}).items()}
    if "design" in data:
        out["design"] = dict(data["design"].get("num_cells_by_type", {}))
    return out


def yosys_stat(text: str, *, top: str | None = None, module: str | None = None) -> YosysStat:
    """Parse Yosys `stat` output: a whole log (the last `stat` counts), a bare `stat` report, or the
    JSON of `stat -json`. The design total comes from the hierarchy summary (cells of submodules
    included), else the `top` module's section, else the only module (flattened designs); `module`
    asks for one module's own cells instead."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise YosysStatError(f"stat -json output is not valid JSON: {exc}") from None
        name, cells = _pick_module(_json_modules(data), top, module)
        return stat_from_cells(cells, yosys_version=yosys_version(data.get("creator", "")), module=name)
    name, cells = _pick_module(_text_sections(_last_stat_block(text)), top, module)
    end = _END_TIME.findall(text)
    return stat_from_cells(cells, yosys_version=yosys_version(text), module=name,
                           seconds=float(end[-1]) if end else None)


def yosys_stat_file(path: str | Path, *, top: str | None = None, module: str | None = None) -> YosysStat:
    return yosys_stat(Path(path).read_text(errors="replace"), top=top, module=module)
