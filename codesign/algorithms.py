"""Search algorithms that are not Optuna samplers: each drives its own trials through the normal trial
path (`codesign.trial.evaluate_candidate`) and writes their records into the run folder.

name -> function(cfg, run_dir, quiet) running (or, on a folder that has some records, continuing) the
search; `codesign.tune.run_search` and `resume_search` dispatch here for these names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from codesign.config import Config


def _dnas(cfg: Config, run_dir: Path, quiet: bool = False) -> None:
    from codesign.dnas import run_dnas
    run_dnas(cfg, run_dir, quiet=quiet)


# explicit registry
ALGORITHMS: dict[str, Callable[..., None]] = {"dnas": _dnas}
