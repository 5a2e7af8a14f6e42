"""Searches that are not Optuna samplers, by name (`search.algorithm`): each is a function
`run(cfg, run_dir, *, quiet)` that writes its trials' records into the run folder
(`codesign.runfolder.append_record`); `codesign.tune.run_search` dispatches to it and summarises the
run as it does a sampler's."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from codesign.config import Config


def _grow(cfg: Config, run_dir: Path, *, quiet: bool = False) -> None:
    from codesign.grow import run_grow
    run_grow(cfg, run_dir, quiet=quiet)


def _check_grow(cfg: Config) -> None:
    from codesign.grow import check_growable
    check_growable(cfg)


# algorithm name -> the function that runs it; explicit registry
ALGORITHMS: dict[str, Callable[..., None]] = {"grow": _grow}
# algorithm name -> its checks of the config, made before the run folder is created
CHECKS: dict[str, Callable[[Config], None]] = {"grow": _check_grow}


def run_algorithm(cfg: Config, run_dir: Path, *, quiet: bool = False, resumed: bool = False) -> tuple[Path, dict]:
    """Run `cfg.search.algorithm` from ALGORITHMS in `run_dir`; summary.json says whether it completed
    (Ctrl-C: interrupted, resumable with `codesign search --resume RUN`)."""
    from codesign import runfolder
    from codesign.results import summarize
    name = cfg.search.algorithm
    if name not in ALGORITHMS:
        raise ValueError(f"unknown search algorithm {name!r}; valid: {sorted(ALGORITHMS)}")
    started = time.time()
    status = "complete"
    try:
        ALGORITHMS[name](cfg, Path(run_dir), quiet=quiet)
    except KeyboardInterrupt:
        status = "interrupted"
    except BaseException:
        summarize(run_dir, cfg, extra={"status": "failed", "algorithm": name, "elapsed_s": time.time() - started})
        raise
    extra = {"status": status, "elapsed_s": time.time() - started, "resumed": resumed, "algorithm": name,
             "study": None}
    if status != "complete":
        extra["resume_command"] = runfolder.resume_command(run_dir)
    return Path(run_dir), summarize(run_dir, cfg, extra=extra)
