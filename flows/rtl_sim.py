"""Gate-level simulation of RTL without a simulator: Yosys turns the design into an and-inverter
graph (ASCII AIGER with a map of port bits), `AigerSim` runs it cycle by cycle in Python.

YoWASP's Yosys has no `sim` and the machines have no Verilator. Every signal is a Python integer
whose bit j is its value in lane j, so `lanes` independent copies of the design (e.g. one per test
sample) run in one pass: an AND gate is one `&` on all lanes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from flows.tools import run_tool
from flows.yosys_run import yosys_for


def aiger_commands(top: str) -> str:
    """After the read commands: a flat and-inverter graph (zero-initialised registers, x as 0) and
    the map of port bits, as `design.aag` / `aig_map.txt` in Yosys' working folder."""
    return (f"hierarchy -top {top}\nproc\nflatten\nopt\nmemory -nomap\nmemory_map\nopt\ntechmap\nopt\n"
            "async2sync\ndffunmap\nsetundef -zero\naigmap\nopt_clean\n"
            "write_aiger -ascii -zinit -map aig_map.txt design.aag\n")


def elaborate(work: Path, script: str, *, timeout_s: float, lanes: int = 1) -> "AigerSim":
    """Run the Yosys `script` (read commands + `aiger_commands`) in `work`, where the sources are;
    the simulator of the resulting graph. Yosys' log: `work/aig.log`."""
    cmd = yosys_for("xc7")  # no technology mapping: the family does not matter
    (work / "aig.ys").write_text(script)
    run_tool([*cmd, "-q", "-l", "aig.log", "-s", "aig.ys"], cwd=work, timeout_s=timeout_s,
             log_file=work / "aig_console.log")
    return AigerSim(work / "design.aag", work / "aig_map.txt", lanes=lanes)


class AigerSim:
    """Two-valued cycle simulation of an ASCII AIGER file with Yosys' port map, `lanes` copies at
    once: `set` inputs, `eval()` the and-gates, `get` outputs, `clock()` the latches (one clock)."""

    def __init__(self, aag: str | Path, map_file: str | Path, *, lanes: int = 1):
        lines = Path(aag).read_text().splitlines()
        tag, m, i, l, o, a = lines[0].split()[:6]
        if tag != "aag":
            raise ValueError(f"{aag}: not an ASCII AIGER file")
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        m, i, l, o, a = map(int, (m, i, l, o, a))
        self.lanes, self.mask = lanes, (1 << lanes) - 1
        self.inputs = [int(x) >> 1 for x in lines[1:1 + i]]
        self.latches = [list(map(int, x.split())) for x in lines[1 + i:1 + i + l]]
        self.outputs = [int(x) for x in lines[1 + i + l:1 + i + l + o]]
        self.ands = [tuple(map(int, x.split())) for x in lines[1 + i + l + o:1 + i + l + o + a]]
        self.ports: dict[str, dict[str, dict[int, int]]] = {"input": {}, "output": {}}
        for line in Path(map_file).read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] in self.ports:
                self.ports[parts[0]].setdefault(parts[3], {})[int(parts[2])] = int(parts[1])
        self.v = [0] * (m + 1)
        for latch in self.latches:
            self.v[latch[0] >> 1] = self.mask if len(latch) > 2 and latch[2] else 0

    def _lit(self, x: int) -> int:
        return self.v[x >> 1] ^ (self.mask if x & 1 else 0)

    def set(self, name: str, value: int | Sequence[int]) -> None:
        """Drive input port `name`: one value for every lane, or one value per lane."""
        if name not in self.ports["input"]:
            raise KeyError(f"no input port {name!r}; inputs: {sorted(self.ports['input'])}")
        per_lane = None if isinstance(value, int) else list(value)
        if per_lane is not None and len(per_lane) != self.lanes:
            raise ValueError(f"{len(per_lane)} values for {self.lanes} lanes")
        for bit, idx in self.ports["input"][name].items():
            if per_lane is None:
                word = self.mask if (value >> bit) & 1 else 0
            else:
                word = sum(((v >> bit) & 1) << j for j, v in enumerate(per_lane))
            self.v[self.inputs[idx]] = word

    def eval(self) -> None:
        v, mask = self.v, self.mask
        for lhs, x, y in self.ands:
            v[lhs >> 1] = (v[x >> 1] ^ (mask if x & 1 else 0)) & (v[y >> 1] ^ (mask if y & 1 else 0))

    def get_lanes(self, name: str) -> list[int]:
        """Output port `name` in every lane (unsigned)."""
        bits = {bit: self._lit(self.outputs[idx]) for bit, idx in self.ports["output"][name].items()}
        return [sum(((word >> j) & 1) << bit for bit, word in bits.items()) for j in range(self.lanes)]

    def get(self, name: str) -> int:
        """Output port `name` in lane 0 (unsigned)."""
        return self.get_lanes(name)[0]

    def clock(self) -> None:
        nxt = [self._lit(latch[1]) for latch in self.latches]
        for latch, n in zip(self.latches, nxt):
            self.v[latch[0] >> 1] = n
