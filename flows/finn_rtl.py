"""finn-plus' own RTL layers through Yosys: FINN generates the Verilog of a node, Yosys synthesises it.

finn-plus has layers written directly in SystemVerilog (finn-rtllib) that need no Vitis HLS; their
code generation (`RTLBackend.generate_hdl`: template wrapper + parameter/memory-init files) runs
without Vivado. This module

* builds a one-node FINN graph for a `ThresholdingConfig` (channels C, PE, input bits WI, threshold
  bits WT, activation bits A -> N = 2^A - 1 thresholds, signed or unsigned input) and specialises it
  to `Thresholding_rtl` exactly as a FINN flow does (`SpecializeLayers(part)`),
* lets finn-plus generate the HDL of any RTL node (`generate_rtl`: the node's own `generate_hdl` into
  a fresh folder, plus the finn-rtllib files of its `get_rtl_file_list`), so the threshold ROM
  contents are FINN's own `.dat` files,
* synthesises it with Yosys' SystemVerilog frontend (`read_slang -j 1`; `read_verilog` cannot parse
  finn-rtllib) and `synth_xilinx -family F -top T -flatten; stat` (`synthesize_sv`; counts parsed by
  `flows.yosys_stat.yosys_stat`, cached by a hash of every source and memory file),
* checks the RTL bit for bit (`check_thresholding`): the same slang elaboration written as an
  and-inverter graph (YoWASP's Yosys has no `sim`), simulated cycle by cycle through the AXI-stream
  ports (`AigerSim`) and compared with qonnx' `multithreshold` of the same thresholds,
* returns finn-plus' own estimate of the same node (`node_res_estimation`) and our analytic FINN
  model's numbers for the thresholding part (`analytic_thresholding`), for the comparison,
* does the same (without the functional check) for the sliding-window generator
  `ConvolutionInputGenerator_rtl` (`SwgConfig`, `swg_sample`; analytic: `hw_models.finn.swu_terms`).

One Yosys-compatibility patch is applied to the copied finn-rtllib `thresholding.sv` (never to the
installed file; recorded in `FinnRtl.patches`): its `Scope` register is written as
`(SCOPE_REDUCE == 0) ? 1 : p.ptr[M-1:SN+1] < ...`, whose dead arm is a reversed part-select in
pipeline stage 0 (SN = M-1); yosys-slang rejects it ("unsynthesizable feature", no location) even
though the arm is never taken. The patch chooses the arm with a generate-if instead; SCOPE_REDUCE is
0 in stage 0 for every N, so the logic is unchanged.
"""
from __future__ import annotations

import copy
import hashlib
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from boards import Resources
from boards.resources import RESOURCE_NAMES
from flows.finn import finn_environment
from flows.rtl_sim import aiger_commands, elaborate
from flows.tools import call_with_timeout
from flows.yosys_run import cached_stat, run_synthesis, synth_commands, yosys_for, yosys_tool_version
from flows.yosys_stat import YosysStat
from hw_models.coefficients import load_coefficients
from hw_models.design import FLOAT_BITS, DenseLayer
from hw_models.finn import accumulator_bits, mvau_terms, swu_terms

DEFAULT_PART = "xc7z020clg400-1"  # the Zynq-7020 of the board catalog (pynq-z1/z2): finn-plus' 7-series path
DEFAULT_CLK_NS = 10.0
SCRIPT_VERSION = 1  # bump when the slang synthesis script changes: part of the cache key
MEMORY_FILE_SUFFIXES = (".dat", ".mem", ".hex")


class FinnRtlError(RuntimeError):
    """finn-plus could not build or generate the node (its message is kept)."""


# ----------------------------------------------------------------------------------------------
# Thresholding_rtl configurations
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ThresholdingConfig:
    """One standalone FINN Thresholding layer: `channels` channels, `pe` of them per cycle, inputs of
    `input_bits` (signed: INT, else UINT), thresholds of `threshold_bits` (default: `input_bits`),
    outputs UINT`act_bits` (N = 2^act_bits - 1 thresholds per channel). `seed` draws the thresholds;
    `deep_pipeline` is finn-plus' attribute of the same name (default 1)."""

    channels: int
    pe: int
    input_bits: int
    act_bits: int
    threshold_bits: int | None = None
    signed: bool = True
    seed: int = 0
    deep_pipeline: int = 1

    def __post_init__(self):
        if self.channels < 1 or self.pe < 1 or self.channels % self.pe:
            raise ValueError(f"PE={self.pe} must divide the channel count C={self.channels}")
        if not 1 <= self.act_bits <= 8:
            raise ValueError(f"act_bits {self.act_bits}: expected 1..8 (N = 2^act_bits - 1 thresholds)")
        for what, bits in (("input_bits", self.input_bits), ("threshold_bits", self.wt)):
            if not 2 <= bits <= 32:
                raise ValueError(f"{what} {bits}: expected 2..32")
        if self.deep_pipeline not in (0, 1):
            raise ValueError("deep_pipeline must be 0 or 1")

    @property
    def wt(self) -> int:
        return self.threshold_bits or self.input_bits

    @property
    def n_thresholds(self) -> int:
        return 2 ** self.act_bits - 1

    @property
    def input_datatype(self) -> str:
        return f"{'INT' if self.signed else 'UINT'}{self.input_bits}"

    @property
    def threshold_datatype(self) -> str:
        return f"{'INT' if self.signed else 'UINT'}{self.wt}"

    @property
    def output_datatype(self) -> str:
        return f"UINT{self.act_bits}"

    @property
    def name(self) -> str:
        return (f"thr_c{self.channels}_pe{self.pe}_i{self.input_bits}{'s' if self.signed else 'u'}"
                f"_t{self.wt}_a{self.act_bits}" + (f"_s{self.seed}" if self.seed else "")
                + ("" if self.deep_pipeline else "_nodp"))

    def as_row(self) -> dict:
        return {"name": self.name, "channels": self.channels, "pe": self.pe, "input_bits": self.input_bits,
                "threshold_bits": self.wt, "act_bits": self.act_bits, "n_thresholds": self.n_thresholds,
                "signed": int(self.signed), "deep_pipeline": self.deep_pipeline, "seed": self.seed}


def random_thresholds(cfg: ThresholdingConfig) -> np.ndarray:
    """(C, N) sorted integer thresholds (seeded), each one reachable by an input: inside the input range
    and inside the threshold type with one code to spare below (the RTL saturates narrowed inputs)."""
    def bounds(bits: int) -> tuple[int, int]:
        return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if cfg.signed else (0, 2 ** bits - 1)
    (ilo, ihi), (tlo, thi) = bounds(cfg.input_bits), bounds(cfg.wt)
    lo, hi = max(ilo, tlo + 1), min(ihi, thi)
    rng = np.random.default_rng(cfg.seed)
    return np.sort(rng.integers(lo, hi + 1, size=(cfg.channels, cfg.n_thresholds)), axis=1).astype(np.float32)


def thresholding_model(cfg: ThresholdingConfig, fpgapart: str = DEFAULT_PART, thresholds: np.ndarray | None = None):
    """A one-node FINN graph (ModelWrapper): the hardware `Thresholding` op with `cfg`'s attributes,
    specialised by finn-plus' `SpecializeLayers(fpgapart)` (Thresholding_rtl, its default). Needs FINN
    settings (run inside `flows.finn.finn_environment()`)."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    t = random_thresholds(cfg) if thresholds is None else np.asarray(thresholds, dtype=np.float32)
    if t.shape != (cfg.channels, cfg.n_thresholds):
        raise ValueError(f"thresholds of shape {t.shape}, expected {(cfg.channels, cfg.n_thresholds)}")
    node = helper.make_node(
        "Thresholding", ["inp", "thresh"], ["outp"], domain="finn.custom_op.fpgadataflow", backend="fpgadataflow",
        name="Thresholding_0", NumChannels=cfg.channels, PE=cfg.pe, numSteps=cfg.n_thresholds,
        inputDataType=cfg.input_datatype, weightDataType=cfg.threshold_datatype, outputDataType=cfg.output_datatype,
        ActVal=0, numInputVectors=[1])
    graph = helper.make_graph(
        [node], "thresholding", [helper.make_tensor_value_info("inp", TensorProto.FLOAT, [1, cfg.channels])],
        [helper.make_tensor_value_info("outp", TensorProto.FLOAT, [1, cfg.channels])],
        value_info=[helper.make_tensor_value_info("thresh", TensorProto.FLOAT, list(t.shape))])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="codesign"))
    for tensor, dt in (("inp", cfg.input_datatype), ("outp", cfg.output_datatype), ("thresh", cfg.threshold_datatype)):
        model.set_tensor_datatype(tensor, DataType[dt])
    model.set_initializer("thresh", t)
    model = model.transform(SpecializeLayers(fpgapart))
    (spec,) = model.graph.node
    if spec.op_type != "Thresholding_rtl":
        raise FinnRtlError(f"SpecializeLayers made {spec.op_type}, not Thresholding_rtl")
    getCustomOp(spec).set_nodeattr("deep_pipeline", cfg.deep_pipeline)
    return model


# ----------------------------------------------------------------------------------------------
# HDL generation by finn-plus
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourcePatch:
    file: str
    old: str
    new: str
    reason: str


_SCOPE_OLD = "Scope <= (SCOPE_REDUCE == 0)? 1 : p.ptr[M-1:SN+1] < 2**stage - SCOPE_REDUCE;"
_P_DECL = "pipe_t  P = '{ op: NOP, default: 'x };"
PATCHES: tuple[tuple[SourcePatch, ...], ...] = (
    (SourcePatch("thresholding.sv", _SCOPE_OLD, "Scope <= ScopeNext;",
                 "yosys-slang rejects the reversed part-select p.ptr[M-1:M] in the dead arm of Scope's "
                 "conditional (stage 0); the arm is chosen by a generate-if instead (same logic)"),
     SourcePatch("thresholding.sv", _P_DECL,
                 "uwire  ScopeNext;\n"
                 "\t\t\tif(SCOPE_REDUCE == 0)  assign  ScopeNext = 1;\n"
                 "\t\t\telse  assign  ScopeNext = p.ptr[M-1:SN+1] < 2**stage - SCOPE_REDUCE;\n"
                 "\t\t\t" + _P_DECL, "(declaration of ScopeNext for the patch above)")),
)


def patch_source(name: str, text: str) -> tuple[str, list[str]]:
    """`text` of finn-rtllib file `name` with the Yosys-compatibility patches applied, and the reasons
    of those applied. A patch group applies only when every one of its old strings is present once;
    a group whose first old string is absent is not needed (another finn-rtllib version)."""
    applied = []
    for group in PATCHES:
        group = [p for p in group if p.file == name]
        if not group or group[0].old not in text:
            continue
        if any(text.count(p.old) != 1 for p in group):
            raise FinnRtlError(f"{name}: the Yosys patch does not apply to this finn-rtllib version")
        for p in group:
            text = text.replace(p.old, p.new)
        applied.append(f"{name}: {group[0].reason}")
    return text, applied


@dataclass(frozen=True)
class FinnRtl:
    """HDL of one finn-plus RTL node, every file in `src_dir` (flat): `files` in read order, memory
    init files in `data_files`, top module `top`."""

    src_dir: Path
    top: str
    files: tuple[str, ...]
    data_files: tuple[str, ...]
    node: str
    op_type: str
    attributes: dict = field(default_factory=dict)
    patches: tuple[str, ...] = ()
    generate_s: float = 0.0

    def as_dict(self) -> dict:
        out = asdict(self)
        out["src_dir"] = str(self.src_dir)
        return out


def _node_attributes(inst) -> dict:
    keys = ("NumChannels", "PE", "SIMD", "numSteps", "inputDataType", "weightDataType", "outputDataType",
            "ActVal", "deep_pipeline", "runtime_writeable_weights", "depth_trigger_bram", "depth_trigger_uram",
            "IFMChannels", "IFMDim", "OFMDim", "ConvKernelDim", "Stride", "Dilation", "ram_style", "parallel_window")
    types = inst.get_nodeattr_types()
    out = {}
    for k in keys:
        if k in types:
            v = inst.get_nodeattr(k)
            out[k] = [int(x) for x in v] if isinstance(v, (list, tuple)) else (v.decode() if isinstance(v, bytes) else v)
    return out


def generate_rtl(model, node, out_dir: str | Path, *, fpgapart: str = DEFAULT_PART,
                 clk_ns: float = DEFAULT_CLK_NS) -> FinnRtl:
    """finn-plus' HDL of `node` (a NodeProto or its name) of `model` (a ModelWrapper after
    SpecializeLayers), as PrepareIP makes it for an RTL node: `generate_hdl` (wrapper + memory files)
    into `out_dir` (emptied first), plus the finn-rtllib sources of `get_rtl_file_list`, patched for
    Yosys. Works on a copy of the model (the caller's node attributes are not touched). Needs FINN
    settings (run inside `flows.finn.finn_environment()`); no Vivado."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from finn.util.fpgadataflow import is_rtl_node
    t0 = time.perf_counter()
    name = node if isinstance(node, str) else node.name
    work = ModelWrapper(copy.deepcopy(model.model))
    found = [n for n in work.graph.node if n.name == name]
    if len(found) != 1:
        raise FinnRtlError(f"node {name!r}: {len(found)} nodes of that name in the model")
    node = found[0]
    if not is_rtl_node(node):
        raise FinnRtlError(f"{name} ({node.op_type}) is not a finn-plus RTL node (specialise it first)")
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    inst = getCustomOp(node)
    inst.set_nodeattr("code_gen_dir_ipgen", str(out))
    try:
        inst.generate_hdl(work, fpgapart, clk_ns)
    except Exception as exc:
        raise FinnRtlError(f"{name}: finn-plus generate_hdl failed: {type(exc).__name__}: {exc}") from exc
    files, patches = [], []
    for path in map(Path, inst.get_rtl_file_list(abspath=True)):
        if path.parent.resolve() != out.resolve():  # a finn-rtllib file: copy it next to the generated ones
            if (out / path.name).exists():
                raise FinnRtlError(f"{path.name}: two sources of that name")
            text, applied = patch_source(path.name, path.read_text())
            (out / path.name).write_text(text)
            patches += applied
        elif not path.is_file():
            raise FinnRtlError(f"{name}: generate_hdl did not write {path.name}")
        files.append(path.name)
    data = sorted(p.name for p in out.iterdir() if p.suffix in MEMORY_FILE_SUFFIXES)
    top = inst.get_nodeattr("gen_top_module") or inst.get_verilog_top_module_name()
    return FinnRtl(out, top, tuple(files), tuple(data), name, node.op_type, _node_attributes(inst), tuple(patches),
                   round(time.perf_counter() - t0, 3))


def finn_node_estimate(model, node, fpgapart: str = DEFAULT_PART) -> tuple[Resources, dict]:
    """finn-plus' own estimate of one node (`node_res_estimation`, as its `res_estimation` analysis
    reports it) as Resources (FINN has no FF estimate: ff 0), and the raw dict."""
    from qonnx.custom_op.registry import getCustomOp
    name = node if isinstance(node, str) else node.name
    (found,) = [n for n in model.graph.node if n.name == name]
    raw = dict(getCustomOp(found).node_res_estimation(fpgapart))
    res = Resources(lut=float(raw.get("LUT", 0)), ff=0.0, bram18=float(raw.get("BRAM_18K", 0)),
                    uram=float(raw.get("URAM", 0)), dsp=float(raw.get("DSP", 0)))
    return res, raw


# ----------------------------------------------------------------------------------------------
# Yosys with the SystemVerilog frontend
# ----------------------------------------------------------------------------------------------

SLANG_OPTIONS = "-j 1 --ignore-assertions --allow-use-before-declare"


def _copy_flat(rtl: FinnRtl, work: Path) -> Path:
    """`rtl`'s sources and memory files, flat in a fresh `work` (YoWASP only opens files under its cwd,
    and finn-plus' `$readmemh` paths are relative to it)."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name in (*rtl.files, *rtl.data_files):
        shutil.copyfile(rtl.src_dir / name, work / name)
    return work


def _slang_reads(files: Sequence[str], top: str) -> str:
    return f"read_slang {SLANG_OPTIONS} --top {top} {' '.join(files)}\n"


def slang_script(files: Sequence[str], top: str, family: str) -> str:
    """read_slang (one thread: WASI has none; assertions ignored, as synthesis tools do; parameters
    used in a port list before their declaration accepted, as Vivado does for finn-plus' SWG wrapper)
    then the same synth_xilinx / stat as `flows.yosys_run.synthesis_script`."""
    return _slang_reads(files, top) + synth_commands(top, family)


def _cache_key(rtl: FinnRtl, family: str, version: str, script: str) -> str:
    h = hashlib.sha256(f"{SCRIPT_VERSION}|{rtl.top}|{family}|{version}|{script}".encode())
    for name in (*rtl.files, *rtl.data_files):
        h.update(name.encode() + b"\0" + (rtl.src_dir / name).read_bytes() + b"\0")
    return h.hexdigest()[:32]


def synthesize_sv(rtl: FinnRtl, family: str, work_dir: str | Path, *, timeout_s: float,
                  log_file: str | Path | None = None, cache_dir: str | Path | None = None) -> YosysStat:
    """`read_slang; synth_xilinx -family F -top TOP -flatten; stat` of `rtl`'s sources.

    Sources and memory files are copied flat into `work_dir/rtl`, where Yosys runs (YoWASP only opens
    files under its cwd, and finn-plus' `$readmemh` paths are relative to it); Yosys' own log is
    `work_dir/rtl/yosys.log`, copied to `log_file` when given. With `cache_dir`, a result for the same
    files (memory files included), top, family and Yosys binary is read from there."""
    cmd = yosys_for(family)
    work = Path(work_dir) / "rtl"
    work.parent.mkdir(parents=True, exist_ok=True)
    version = yosys_tool_version(cmd, work_dir=work.parent)
    script = slang_script(rtl.files, rtl.top, family)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"yosys_slang_{_cache_key(rtl, family, version, script)}.json"
    if (hit := cached_stat(cache_file)) is not None:
        return hit
    _copy_flat(rtl, work)
    return run_synthesis(cmd, work, script, rtl.top, timeout_s=timeout_s, log_file=log_file, cache_file=cache_file)


# ----------------------------------------------------------------------------------------------
# checking the RTL: the same slang elaboration as a gate netlist, simulated cycle by cycle
# ----------------------------------------------------------------------------------------------

def aiger_script(files: Sequence[str], top: str) -> str:
    """read_slang as for synthesis, then a flat and-inverter graph (ASCII AIGER, zero-initialised
    registers, x as 0) with a map of port bits: what `AigerSim` runs (YoWASP has no `sim`)."""
    return _slang_reads(files, top) + aiger_commands(top)


def simulate_thresholding(rtl: FinnRtl, cfg: ThresholdingConfig, vectors: np.ndarray, work_dir: str | Path, *,
                          timeout_s: float = 300) -> tuple[np.ndarray, int]:
    """Stream `vectors` (n, C) of input codes through the AXI-stream ports of FINN's Thresholding_rtl
    wrapper (PE lanes of WI bits per beat, C/PE beats per vector, output always ready) in a
    simulation of the slang-elaborated netlist; returns the (n, C) output codes and the cycles taken."""
    work = _copy_flat(rtl, Path(work_dir))
    sim = elaborate(work, aiger_script(rtl.files, rtl.top), timeout_s=timeout_s)
    cf, mask, obits = cfg.channels // cfg.pe, (1 << cfg.input_bits) - 1, cfg.act_bits
    beats = [sum((int(x[f * cfg.pe + p]) & mask) << (p * cfg.input_bits) for p in range(cfg.pe))
             for x in np.asarray(vectors, dtype=np.int64) for f in range(cf)]
    sim.set("ap_rst_n", 0)
    sim.set("out0_V_TREADY", 1)
    for _ in range(3):
        sim.eval()
        sim.clock()
    sim.set("ap_rst_n", 1)
    got, sent, cycles = [], 0, 0
    while len(got) < len(beats) and cycles < 10 * len(beats) + 100:
        sim.set("in0_V_TVALID", int(sent < len(beats)))
        sim.set("in0_V_TDATA", beats[sent] if sent < len(beats) else 0)
        sim.eval()
        if sent < len(beats) and sim.get("in0_V_TREADY"):
            sent += 1
        if sim.get("out0_V_TVALID"):
            word = sim.get("out0_V_TDATA")
            got.append([(word >> (p * obits)) & ((1 << obits) - 1) for p in range(cfg.pe)])
        sim.clock()
        cycles += 1
    if len(got) < len(beats):
        raise FinnRtlError(f"the simulated RTL produced {len(got)} of {len(beats)} output beats in {cycles} cycles")
    return np.asarray(got, dtype=np.int64).reshape(len(vectors), cfg.channels), cycles


@dataclass(frozen=True)
class ThresholdingCheck:
    vectors: int
    agreement: float  # fraction of output codes equal to qonnx' multithreshold of the same thresholds
    cycles: int

    def as_dict(self) -> dict:
        return asdict(self)


def check_thresholding(rtl: FinnRtl, cfg: ThresholdingConfig, thresholds: np.ndarray, work_dir: str | Path, *,
                       vectors: int = 8, timeout_s: float = 300) -> ThresholdingCheck:
    """The RTL against qonnx' `multithreshold` (FINN's reference semantics: y = #{i: T_i <= x}) on
    inputs at each channel's lowest/middle/highest threshold, one below the highest, the input type's
    extremes, and random codes."""
    from qonnx.custom_op.general.multithreshold import multithreshold
    t = np.asarray(thresholds, dtype=np.int64)
    lo, hi = (-(2 ** (cfg.input_bits - 1)), 2 ** (cfg.input_bits - 1) - 1) if cfg.signed else (0, 2 ** cfg.input_bits - 1)
    x = np.random.default_rng(cfg.seed + 1).integers(lo, hi + 1, size=(max(vectors, 6), cfg.channels))
    x[:6] = np.clip([t[:, 0], t[:, t.shape[1] // 2], t[:, -1], t[:, -1] - 1, np.full(cfg.channels, lo),
                     np.full(cfg.channels, hi)], lo, hi)
    out, cycles = simulate_thresholding(rtl, cfg, x, work_dir, timeout_s=timeout_s)
    ref = multithreshold(x.astype(np.float32), t.astype(np.float32)).astype(np.int64)
    return ThresholdingCheck(len(x), float(np.mean(out == ref)), cycles)


# ----------------------------------------------------------------------------------------------
# our analytic FINN model, thresholding part
# ----------------------------------------------------------------------------------------------

def analytic_thresholding(cfg: ThresholdingConfig, coeffs: Any = "analytic", ram_style: str = "auto") -> tuple[Resources, dict]:
    """What `hw_models.finn.mvau_terms` charges for thresholding `cfg.channels` channels at `cfg.pe`
    PEs with `cfg.wt`-bit thresholds: the MVAU's resources with `act_bits` minus the same MVAU without
    thresholds (act_bits 32). The model compares thresholds against the accumulator, so the MVAU is
    chosen with an accumulator of exactly `cfg.wt` bits (XNOR layer of 2^(wt-1) inputs); everything
    but the thresholds cancels. Detail: comparator LUTs, threshold-memory LUTs, memory shape/style."""
    c = load_coefficients(coeffs) if isinstance(coeffs, str) else coeffs
    mw = 2 ** (cfg.wt - 1)
    if accumulator_bits(mw, 1, 1, False) != cfg.wt:
        raise AssertionError(f"no MVAU with a {cfg.wt}-bit accumulator")
    # internal_embedded: thresholds in a memory of their own, as Thresholding_rtl keeps them (the FINN
    # compiler's MVAU folds shallow constant thresholds into its comparators instead)
    with_t, detail = mvau_terms(DenseLayer(mw, cfg.channels, 1, cfg.act_bits), 1, False, cfg.pe, 1, ram_style, c,
                                "internal_embedded")
    without, _ = mvau_terms(DenseLayer(mw, cfg.channels, 1, FLOAT_BITS), 1, False, cfg.pe, 1, ram_style, c,
                            "internal_embedded")
    a, b = with_t.resources(c), without.resources(c)
    res = Resources(*(getattr(a, n) - getattr(b, n) for n in RESOURCE_NAMES))
    lin = lambda t, k: t.linear.get(k, 0.0)  # noqa: E731
    coef = lambda k: c.terms[k][1]  # noqa: E731
    comparators = coef("finn.mvau.lut.logic") * (lin(with_t, "finn.mvau.lut.logic") - lin(without, "finn.mvau.lut.logic"))
    memory = coef("finn.mvau.lut.lutram") * (lin(with_t, "finn.mvau.lut.lutram") - lin(without, "finn.mvau.lut.lutram"))
    return res, {"comparator_lut": comparators, "memory_lut": memory, "threshold_memory": detail["threshold_memory"],
                 "coefficients": c.name}


# ----------------------------------------------------------------------------------------------
# ConvolutionInputGenerator_rtl (sliding-window generator)
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SwgConfig:
    """One FINN ConvolutionInputGenerator (2D, square, not depthwise, dilation 1): `channels` input
    channels of an `ifm_dim` x `ifm_dim` image of UINT`bits`, `kernel` x `kernel` windows at `stride`,
    `simd` channels per beat, line buffer of `ram_style` (finn-plus' attribute; its default is
    distributed). finn-plus chooses its RTL style (default, or parallel)."""

    channels: int
    ifm_dim: int
    kernel: int
    simd: int
    bits: int
    stride: int = 1
    ram_style: str = "distributed"

    def __post_init__(self):
        if self.ram_style not in ("auto", "block", "distributed", "ultra"):
            raise ValueError(f"ram_style {self.ram_style!r}: expected auto, block, distributed or ultra")
        if self.simd < 1 or self.channels % self.simd:
            raise ValueError(f"SIMD={self.simd} must divide the channel count C={self.channels}")
        if not 1 <= self.kernel <= self.ifm_dim or self.stride < 1:
            raise ValueError(f"kernel {self.kernel} / stride {self.stride} do not fit a {self.ifm_dim}-pixel image")
        if not 1 <= self.bits <= 32:
            raise ValueError(f"bits {self.bits}: expected 1..32")

    @property
    def ofm_dim(self) -> int:
        return (self.ifm_dim - self.kernel) // self.stride + 1

    @property
    def name(self) -> str:
        return (f"swg_c{self.channels}_d{self.ifm_dim}_k{self.kernel}_s{self.stride}_simd{self.simd}_b{self.bits}"
                + ("" if self.ram_style == "distributed" else f"_{self.ram_style}"))

    def as_row(self) -> dict:
        return {"name": self.name, "channels": self.channels, "ifm_dim": self.ifm_dim, "kernel": self.kernel,
                "stride": self.stride, "simd": self.simd, "bits": self.bits, "ofm_dim": self.ofm_dim,
                "ram_style": self.ram_style}


def swg_model(cfg: SwgConfig, fpgapart: str = DEFAULT_PART):
    """A one-node FINN graph: the hardware ConvolutionInputGenerator with `cfg`'s attributes,
    specialised by `SpecializeLayers(fpgapart)` (ConvolutionInputGenerator_rtl). Needs FINN settings."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    k, d, o, dt = cfg.kernel, cfg.ifm_dim, cfg.ofm_dim, f"UINT{cfg.bits}"
    node = helper.make_node(
        "ConvolutionInputGenerator", ["inp"], ["outp"], domain="finn.custom_op.fpgadataflow", backend="fpgadataflow",
        name="ConvolutionInputGenerator_0", ConvKernelDim=[k, k], IFMChannels=cfg.channels, IFMDim=[d, d],
        OFMDim=[o, o], SIMD=cfg.simd, Stride=[cfg.stride, cfg.stride], Dilation=[1, 1], inputDataType=dt,
        outputDataType=dt, depthwise=0, ram_style=cfg.ram_style)
    graph = helper.make_graph(
        [node], "swg", [helper.make_tensor_value_info("inp", TensorProto.FLOAT, [1, d, d, cfg.channels])],
        [helper.make_tensor_value_info("outp", TensorProto.FLOAT, [1, o, o, k * k * cfg.channels])])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="codesign"))
    model.set_tensor_datatype("inp", DataType[dt])
    model.set_tensor_datatype("outp", DataType[dt])
    model = model.transform(SpecializeLayers(fpgapart))
    (spec,) = model.graph.node
    if spec.op_type != "ConvolutionInputGenerator_rtl":
        raise FinnRtlError(f"SpecializeLayers made {spec.op_type}, not ConvolutionInputGenerator_rtl")
    return model


def analytic_swg(cfg: SwgConfig, coeffs: Any = "analytic", ram_style: str | None = None) -> tuple[Resources, dict]:
    """Our analytic FINN model of the same window generator (`hw_models.finn.swu_terms`), with the
    node's ram style unless `ram_style` is given."""
    ram_style = ram_style or cfg.ram_style
    c = load_coefficients(coeffs) if isinstance(coeffs, str) else coeffs
    t, detail = swu_terms(cfg.channels, cfg.ifm_dim, cfg.kernel, cfg.bits, cfg.simd, ram_style, c)
    return t.resources(c), {**detail, "coefficients": c.name}


# ----------------------------------------------------------------------------------------------
# one sample: FINN codegen + Yosys + both estimates
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RtlSample:
    """One configuration through finn-plus and Yosys: the synthesised counts (`stat`), finn-plus'
    estimate of the node (`finn`, no FF), our analytic model's (`analytic`), and for thresholding
    the bit-exactness check of the RTL."""

    config: Any  # ThresholdingConfig | SwgConfig
    rtl: FinnRtl
    stat: YosysStat
    finn: Resources
    finn_raw: dict
    analytic: Resources
    analytic_detail: dict
    check: ThresholdingCheck | None = None
    finn_cycles: int | None = None  # finn-plus' get_exp_cycles of the node

    def row(self) -> dict:
        s, r = self.stat, self.stat.resources
        out = {**self.config.as_row(),
               "yosys_lut": int(r.lut), "yosys_ff": int(r.ff), "yosys_bram18": int(r.bram18), "yosys_dsp": int(r.dsp),
               "yosys_lutram": s.lutram, "yosys_srl": s.srl, "yosys_carry": s.carry, "yosys_seconds": s.seconds,
               "finn_lut": _num(self.finn.lut), "finn_bram18": _num(self.finn.bram18), "finn_uram": _num(self.finn.uram),
               "analytic_lut": round(self.analytic.lut, 1), "analytic_ff": round(self.analytic.ff, 1),
               "analytic_bram18": _num(self.analytic.bram18)}
        if isinstance(self.config, ThresholdingConfig):
            out["rtl_agreement"] = "" if self.check is None else self.check.agreement
        else:
            out["finn_cycles"] = self.finn_cycles
            out["impl_style"] = self.rtl.attributes.get("impl_style", "")
        out["yosys_version"] = s.yosys_version or ""
        return out



def _num(x: float):
    return int(x) if float(x).is_integer() else round(float(x), 3)


def _finn_thresholding(cfg: ThresholdingConfig, out_dir: Path, fpgapart: str):
    with finn_environment():
        model = thresholding_model(cfg, fpgapart)
        node = model.graph.node[0]
        rtl = generate_rtl(model, node, out_dir, fpgapart=fpgapart)
        finn, raw = finn_node_estimate(model, node, fpgapart)
        return rtl, finn, raw, model.get_initializer(node.input[1])


def thresholding_sample(cfg: ThresholdingConfig, work_dir: str | Path, *, family: str = "xc7",
                        fpgapart: str = DEFAULT_PART, timeout_s: float = 600, cache_dir: str | Path | None = None,
                        coeffs: Any = "analytic", check: bool = True) -> RtlSample:
    """`cfg` through finn-plus (graph, SpecializeLayers, generate_hdl, its estimate; in a forked child,
    as the project runs FINN, so its process-wide settings stay there) and Yosys; with `check`, the
    RTL is also simulated against qonnx' multithreshold (`check_thresholding`)."""
    work = Path(work_dir)
    rtl, finn, raw, thresholds = call_with_timeout(_finn_thresholding, cfg, work / "finn_rtl", fpgapart,
                                                   timeout_s=timeout_s)
    stat = synthesize_sv(rtl, family, work / "yosys", timeout_s=timeout_s, log_file=work / "yosys.log",
                         cache_dir=cache_dir)
    analytic, detail = analytic_thresholding(cfg, coeffs)
    checked = check_thresholding(rtl, cfg, thresholds, work / "check", timeout_s=timeout_s) if check else None
    return RtlSample(cfg, rtl, stat, finn, raw, analytic, detail, checked)


def _finn_swg(cfg: SwgConfig, out_dir: Path, fpgapart: str):
    from qonnx.custom_op.registry import getCustomOp
    with finn_environment():
        model = swg_model(cfg, fpgapart)
        node = model.graph.node[0]
        rtl = generate_rtl(model, node, out_dir, fpgapart=fpgapart)
        finn, raw = finn_node_estimate(model, node, fpgapart)
        inst = getCustomOp(node)
        rtl = replace(rtl, attributes={**rtl.attributes, "impl_style": inst.select_impl_style()})
        return rtl, finn, raw, int(inst.get_exp_cycles())


def swg_sample(cfg: SwgConfig, work_dir: str | Path, *, family: str = "xc7", fpgapart: str = DEFAULT_PART,
               timeout_s: float = 600, cache_dir: str | Path | None = None, coeffs: Any = "analytic") -> RtlSample:
    """`cfg` through finn-plus (ConvolutionInputGenerator_rtl, generate_hdl, its estimate and cycles;
    in a forked child) and Yosys. The window order of the RTL is not checked (no SWG simulation)."""
    work = Path(work_dir)
    rtl, finn, raw, cycles = call_with_timeout(_finn_swg, cfg, work / "finn_rtl", fpgapart, timeout_s=timeout_s)
    stat = synthesize_sv(rtl, family, work / "yosys", timeout_s=timeout_s, log_file=work / "yosys.log",
                         cache_dir=cache_dir)
    analytic, detail = analytic_swg(cfg, coeffs)
    return RtlSample(cfg, rtl, stat, finn, raw, analytic, detail, None, cycles)
