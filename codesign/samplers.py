"""Optuna samplers by name (the search's `algorithm`), including a grid that never materialises."""
from __future__ import annotations

import math
import warnings

import numpy as np
import optuna

from codesign.config import Config
from codesign.space import grid_space

GRID_MATERIALISE_LIMIT = 1_000_000  # Optuna's GridSampler lists every point up front


def _nsga2(cfg: Config):
    return optuna.samplers.NSGAIISampler(seed=cfg.seed, population_size=cfg.search.population_size)


def _tpe(cfg: Config):
    # group=True (joint models per conditional sub-space) was tried: worse on the sampler benchmark
    # (44 vs 30 trials to random's final hypervolume), so parameters outside the shared sub-space are
    # sampled one by one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=cfg.search.startup_trials,
                                          multivariate=True, constant_liar=True)


def _gp(cfg: Config):
    return optuna.samplers.GPSampler(seed=cfg.seed, n_startup_trials=cfg.search.startup_trials,
                                     warn_independent_sampling=False)


def _bo(cfg: Config, image_shape=None, data=None):
    """The seed's GP BO (`codesign.bo`) with the configured acquisition; `qnehvi` goes through BoTorch
    (optuna-integration's BoTorchSampler, whose GP keeps only the parameters every trial has)."""
    s = cfg.search
    if s.acquisition == "qnehvi":
        try:
            from optuna_integration import BoTorchSampler
            from optuna_integration.botorch import qnehvi_candidates_func
        except ImportError as exc:
            raise ValueError(f"search.acquisition 'qnehvi' needs optuna-integration and botorch ({exc})") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return BoTorchSampler(candidates_func=qnehvi_candidates_func, n_startup_trials=s.startup_trials,
                                  seed=cfg.seed)
    from codesign.bo import GPBOSampler, encoding_for
    return GPBOSampler(encoding_for(cfg, image_shape, data), acquisition=s.acquisition, kappa=s.kappa,
                       n_startup_trials=s.startup_trials, seed=cfg.seed)


def _random(cfg: Config):
    return optuna.samplers.RandomSampler(seed=cfg.seed)


def _grid(cfg: Config, image_shape=None, data=None):
    space = grid_space(cfg, image_shape=image_shape) if cfg.model is None else _user_space_values(cfg, data)
    if math.prod(len(v) for v in space.values()) > GRID_MATERIALISE_LIMIT:
        return LazyGridSampler(space, seed=cfg.seed)
    return optuna.samplers.GridSampler(space, seed=cfg.seed)


def _user_space_values(cfg: Config, data) -> dict[str, list]:
    from codesign.data import dataset_for
    from codesign.userspace import space_values
    return space_values(cfg, data if data is not None else dataset_for(cfg))


# algorithm name -> sampler factory; explicit registry
SAMPLERS = {"nsga2": _nsga2, "tpe": _tpe, "gp": _gp, "bo": _bo, "random": _random, "grid": _grid}
NEEDS_SPACE = ("grid", "bo")  # factories that walk the space (it depends on the data set: image shape, classes)


def make_sampler(cfg: Config, image_shape=None, data=None) -> optuna.samplers.BaseSampler:
    """The configured algorithm's sampler; `grid` and `bo` take the data set (`data`, or its image
    shape for the built-in space) since the space they enumerate depends on it."""
    name = cfg.search.algorithm
    if name not in SAMPLERS:
        raise ValueError(f"unknown search algorithm {name!r}; valid: {sorted(SAMPLERS)}")
    if name in NEEDS_SPACE:
        return SAMPLERS[name](cfg, image_shape, data)
    return SAMPLERS[name](cfg)


def tell(study: optuna.Study, trial: optuna.Trial, *, final: bool, failed: bool, values: list[float] | None,
         constraints: dict[str, float]) -> None:
    """Tell Optuna how a trial ended: FAIL when it failed or ended without objective values, PRUNED when
    it was stopped before its final result (a scheduler's early stop), else COMPLETE with its values
    and constraints (<= 0 satisfied), so neither failures nor stops pollute the front it learns from."""
    State = optuna.trial.TrialState
    if failed or (final and values is None):
        study.tell(trial, state=State.FAIL)
    elif not final:
        study.tell(trial, state=State.PRUNED)
    else:
        for key, value in constraints.items():
            trial.set_constraint(key, float(value))
        study.tell(trial, [float(v) for v in values], state=State.COMPLETE)


class LazyGridSampler(optuna.samplers.BaseSampler):
    """Optuna's GridSampler visiting order without materialising the grid: every trial takes a
    uniformly random not-yet-visited point of the grid (a mixed-radix index into the product of
    the value lists). GridSampler builds `list(itertools.product(...))` up front, which does not fit
    in memory for realistic spaces (the demo's grid has 3.5e11 points)."""

    def __init__(self, search_space: dict[str, list], seed: int | None = None):
        self._space = {k: list(v) for k, v in sorted(search_space.items())}
        self._sizes = [len(v) for v in self._space.values()]
        self._n = math.prod(self._sizes)
        self._rng = np.random.default_rng(seed or 0)
        self._visited: set[int] = set()
        self._points: dict[int, dict] = {}

    @property
    def grid_size(self) -> int:
        return self._n

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def before_trial(self, study, trial) -> None:
        if len(self._visited) >= self._n:
            raise RuntimeError("grid exhausted")
        while True:
            idx = int(self._rng.integers(self._n))
            if idx not in self._visited:
                break
        self._visited.add(idx)
        point = {}
        for (name, values), size in zip(reversed(self._space.items()), reversed(self._sizes)):
            idx, r = divmod(idx, size)
            point[name] = values[r]
        self._points[trial.number] = point

    def sample_independent(self, study, trial, param_name, param_distribution):
        point = self._points[trial.number]
        if param_name not in point:
            raise ValueError(f"parameter {param_name!r} is not in the grid")
        return point[param_name]

    def after_trial(self, study, trial, state, values) -> None:
        self._points.pop(trial.number, None)
