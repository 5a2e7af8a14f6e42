"""Search algorithms that are not Optuna samplers: each drives its own trials through the normal trial
path (`codesign.trial.evaluate_candidate`) and writes their records into the run folder.

name -> function(cfg, run_dir, *, quiet) running (or, on a folder that has some records, continuing)
the search; `codesign.tune.run_search` and `resume_search` dispatch here for these names and
summarise the run as they do a sampler's. CHECKS: config checks made before the run folder exists.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from codesign.config import Config


def _dnas(cfg: Config, run_dir: Path, *, quiet: bool = False) -> None:
    from codesign.dnas import run_dnas
    run_dnas(cfg, run_dir, quiet=quiet)


def _grow(cfg: Config, run_dir: Path, *, quiet: bool = False) -> None:
    from codesign.grow import run_grow
    run_grow(cfg, run_dir, quiet=quiet)


def _check_grow(cfg: Config) -> None:
    from codesign.grow import check_growable
    check_growable(cfg)


# algorithm name -> the function that runs it; explicit registry
ALGORITHMS: dict[str, Callable[..., None]] = {"dnas": _dnas, "grow": _grow}
# algorithm name -> its checks of the config, made before the run folder is created
CHECKS: dict[str, Callable[[Config], None]] = {"grow": _check_grow}
