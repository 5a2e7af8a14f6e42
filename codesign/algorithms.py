"""Search algorithms that are not Optuna samplers.

ALGORITHMS: name -> function(cfg, run_dir, *, quiet) that drives its own trials through the normal
trial path (`codesign.trial.evaluate_candidate`), writes their records into the run folder and, on a
folder that has some records, continues; `codesign.tune.run_search` and `resume_search` dispatch
here for these names and summarise the run as they do a sampler's.
TRIAL_GRIDS: name -> (cfg -> {parameter: values}, function(cfg, params, *, trial_id, run_dir, on_epoch)
-> TrialRecord): a fixed grid of trials, each one Ray Tune trial run by `codesign.tune` like a
sampler's (max_concurrent, a Ray cluster, records, `--resume`).
CHECKS: config checks made before the run folder exists.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from codesign.config import Config


def _dnas_grid(cfg: Config) -> dict[str, list]:
    from codesign.dnas import dnas_grid
    return dnas_grid(cfg)


def _dnas_trial(cfg: Config, params: dict, **kwargs):
    from codesign.dnas import lambda_trial
    if cfg.model is not None:  # a user space: its choices relaxed by codesign/dnas_user.py
        from codesign.dnas_user import search_user_space
        return lambda_trial(cfg, params, supernet=search_user_space, **kwargs)
    return lambda_trial(cfg, params, **kwargs)


def _check_dnas(cfg: Config) -> None:
    from codesign.dnas import check_dnas
    if cfg.model is not None:
        from codesign.dnas_user import check_user_dnas
        check_user_dnas(cfg)
        return
    check_dnas(cfg)


def _grow(cfg: Config, run_dir: Path, *, quiet: bool = False) -> None:
    from codesign.grow import run_grow
    run_grow(cfg, run_dir, quiet=quiet)


def _check_grow(cfg: Config) -> None:
    from codesign.grow import check_growable
    check_growable(cfg)


# algorithm name -> the function that runs it; explicit registry
ALGORITHMS: dict[str, Callable[..., None]] = {"grow": _grow}
# algorithm name -> (its grid of trials, the function running one); explicit registry
TRIAL_GRIDS: dict[str, tuple[Callable[[Config], dict], Callable[..., object]]] = {"dnas": (_dnas_grid, _dnas_trial)}
# algorithm name -> its checks of the config, made before the run folder is created
CHECKS: dict[str, Callable[[Config], None]] = {"grow": _check_grow, "dnas": _check_dnas}
