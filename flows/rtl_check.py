"""Checks of a generated da4ml design against the network's own forward pass: da4ml's interpreter of
the traced graph (`check_rtl`) and the Verilog itself, simulated at gate level (`check_verilog`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flows.da4ml_rtl import RtlDesign, input_codes
from flows.qonnx import compare_outputs
from flows.quantized_mlp import QuantizedMLP
from flows.rtl_sim import aiger_commands, elaborate
from flows.yosys_run import copy_tree, verilog_sources


@dataclass(frozen=True)
class RtlCheck:
    samples: int
    agreement: float  # fraction of samples whose outputs equal the network's (bit-exact: tolerance 0)
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


def check_rtl(net: QuantizedMLP, design: RtlDesign, x: np.ndarray, *, samples: int = 256) -> RtlCheck:
    """Compare da4ml's interpreter with the network's forward pass on `x[:samples]` (exact equality)."""
    x = np.asarray(x[:samples], dtype=np.float32)
    ref = net.forward(x)
    ours, interpreter = da4ml_outputs(design, input_codes(net, x))
    agreement, argmax_agreement, max_diff = compare_outputs(ours, ref, rtol=0.0, atol=0.0)
    return RtlCheck(len(x), agreement, argmax_agreement, max_diff, interpreter)


def simulate_verilog(design: RtlDesign, codes: np.ndarray, work_dir: str | Path, *,
                     timeout_s: float = 600) -> np.ndarray:
    """The generated Verilog itself, simulated at gate level: Yosys elaborates da4ml's wrapper (the
    ports da4ml's own Verilator binder drives) into an and-inverter graph, `AigerSim` clocks every
    sample through the pipeline as a parallel lane. Returns the outputs (n, outputs) as da4ml's
    `predict` scales them, for integer input codes (n, features)."""
    from da4ml.types import minimal_kif
    work = Path(work_dir)
    copy_tree(design.verilog_dir, work / "src")
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


def check_verilog(net: QuantizedMLP, design: RtlDesign, x: np.ndarray, work_dir: str | Path, *, samples: int = 32,
                  timeout_s: float = 600) -> RtlCheck:
    """The simulated Verilog (`simulate_verilog`) against the network's forward pass on `x[:samples]`."""
    x = np.asarray(x[:samples], dtype=np.float32)
    ref = net.forward(x)
    ours = simulate_verilog(design, input_codes(net, x), work_dir, timeout_s=timeout_s)
    agreement, argmax_agreement, max_diff = compare_outputs(ours, ref, rtol=0.0, atol=0.0)
    return RtlCheck(len(x), agreement, argmax_agreement, max_diff, "verilog-gates")

