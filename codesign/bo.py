"""Gaussian-process Bayesian optimisation as the seed system ("Innate") does it: a GP over the whole
topology, a chosen acquisition function, random starting points.

`GPBOSampler` proposes one complete point of the space (every parameter `codesign.space.grid_space`
lists, layers that the point's depth leaves out included) before each trial; the define-by-run space
then asks only for the parameters that exist. The GP sees every trial in one encoding that keeps
inactive layers: an ordinal parameter is its position in its value list scaled to [0, 1] and -1 when
inactive, a categorical one is one-hot and all zeros when inactive (imputation of inactive
parameters, Hutter et al. 2009; Swersky et al. 2014 compare it with dedicated kernels), so trials of
different depths share one model instead of falling outside it (Optuna's GPSampler keeps only the
parameters every trial has).

Several objectives are scalarised by ParEGO's augmented Chebyshev function with a fresh random weight
vector per proposal (Knowles 2006); board-fit and budget constraints weigh the acquisition by the
probability of feasibility under a second GP on the largest constraint value (Gardner et al. 2014).
The acquisition is maximised over random points of the space plus mutations of the best ones.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import optuna
from optuna.trial import TrialState
from scipy.special import erfcx, log_ndtr, ndtr

ACQUISITIONS = ("ei", "log_ei", "ucb")
INACTIVE = -1.0
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    """EI(x) = E[max(f(x) - best, 0)] under N(mu, sigma^2) (Mockus 1989; Jones et al. 1998), maximisation."""
    z = (mu - best - xi) / sigma
    return (mu - best - xi) * ndtr(z) + sigma * np.exp(-0.5 * z * z - _LOG_SQRT_2PI)


def log_expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    """log EI computed without underflow where EI is 0 in floating point (Ament et al. 2023, LogEI):
    log EI = log sigma + log h(z), h(z) = phi(z) + z Phi(z); for z < 0, h(z) = phi(z) (1 - |z| r(|z|)) with
    the Mills ratio r(t) = sqrt(pi/2) erfcx(t/sqrt(2))."""
    z = (mu - best - xi) / sigma
    out = np.empty_like(z)
    pos = z >= 0
    zp = z[pos]
    out[pos] = np.log(np.exp(-0.5 * zp * zp - _LOG_SQRT_2PI) + zp * ndtr(zp))
    t = -z[~pos]
    inner = 1.0 - t * math.sqrt(math.pi / 2) * erfcx(t / math.sqrt(2))
    out[~pos] = -0.5 * t * t - _LOG_SQRT_2PI + np.log(np.maximum(inner, 1e-300))
    return out + np.log(sigma)


def upper_confidence_bound(mu: np.ndarray, sigma: np.ndarray, kappa: float) -> np.ndarray:
    """UCB(x) = mu(x) + kappa sigma(x) (Srinivas et al. 2010), maximisation."""
    return mu + kappa * sigma


class SpaceEncoding:
    """Every parameter of the space (`grid_space`) as GP features; `active(point)` says which of them a
    point's network uses (by replaying the define-by-run space on it)."""

    def __init__(self, space: dict[str, list], asked: Callable[[dict], list[str]]):
        self.space = {k: list(v) for k, v in sorted(space.items())}
        self._asked = asked
        self.ordinal = {k: all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                        for k, v in self.space.items()}
        self.dim = sum(1 if self.ordinal[k] else len(v) for k, v in self.space.items())

    def active(self, point: dict) -> set[str]:
        return set(self._asked(point))

    def encode(self, params: dict) -> np.ndarray:
        """`params` holds the active parameters only (a trial's params, or a point cut to its active set)."""
        out = []
        for k, values in self.space.items():
            if self.ordinal[k]:
                if k not in params:
                    out.append(INACTIVE)
                else:
                    v = params[k]
                    i = values.index(v) if v in values else int(np.argmin([abs(x - v) for x in values]))
                    out.append(i / max(1, len(values) - 1))
            else:
                out += [1.0 if k in params and params[k] == x else 0.0 for x in values]
        return np.asarray(out, dtype=float)

    def random_point(self, rng: np.random.Generator) -> dict:
        return {k: v[int(rng.integers(len(v)))] for k, v in self.space.items()}

    def mutate(self, point: dict, rng: np.random.Generator, n_changes: int) -> dict:
        out = dict(point)
        for k in rng.choice(list(self.space), size=min(n_changes, len(self.space)), replace=False):
            values = self.space[k]
            if self.ordinal[k] and len(values) > 1 and point.get(k) in values and rng.random() < 0.7:
                i = values.index(point[k]) + int(rng.choice((-1, 1)))  # a neighbour on ordinal scales
                out[k] = values[min(len(values) - 1, max(0, i))]
            else:
                out[k] = values[int(rng.integers(len(values)))]
        return out


def _fit_gp(x: np.ndarray, y: np.ndarray, seed: int):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
    kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.ones(x.shape[1]), (5e-2, 2e1), nu=2.5)
              + WhiteKernel(1e-3, (1e-6, 1e-1)))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=0, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kernel bounds reached: fine for a model that only ranks candidates
        gp.fit(x, y)
    return gp


def parego_scalarize(values: np.ndarray, weights: np.ndarray, rho: float = 0.05) -> np.ndarray:
    """Augmented Chebyshev scalarisation of minimised objectives scaled to [0, 1] (ParEGO, Knowles 2006):
    max_i w_i f_i + rho sum_i w_i f_i; smaller is better."""
    lo, hi = values.min(0), values.max(0)
    f = (values - lo) / np.where(hi > lo, hi - lo, 1.0)
    return (f * weights).max(1) + rho * (f * weights).sum(1)


class GPBOSampler(optuna.samplers.BaseSampler):
    """GP Bayesian optimisation over the whole (conditional) space with a selectable acquisition."""

    def __init__(self, encoding: SpaceEncoding, *, acquisition: str = "log_ei", n_startup_trials: int = 6,
                 kappa: float = 2.0, n_candidates: int = 1024, seed: int | None = None):
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"unknown acquisition {acquisition!r}; valid: {list(ACQUISITIONS)}")
        self.encoding, self.acquisition, self.kappa = encoding, acquisition, kappa
        self.n_startup_trials, self.n_candidates = n_startup_trials, n_candidates
        self._seed = seed or 0
        self._rng = np.random.default_rng(seed)
        self._points: dict[int, dict] = {}
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self.last_acquisition: str | None = None  # the acquisition the last model-based proposal used

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        point = self._points.get(trial.number)
        if point is None or param_name not in point:  # a parameter outside grid_space: sample it at random
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        value = point[param_name]
        if isinstance(param_distribution, optuna.distributions.CategoricalDistribution) \
                and value not in param_distribution.choices:
            return param_distribution.choices[int(self._rng.integers(len(param_distribution.choices)))]
        return value

    def after_trial(self, study, trial, state, values) -> None:
        self._points.pop(trial.number, None)

    def before_trial(self, study, trial) -> None:
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
        if len(done) < self.n_startup_trials:
            self._points[trial.number] = self.encoding.random_point(self._rng)
            return
        self._points[trial.number] = self._propose(study, done)

    def _propose(self, study, done) -> dict:
        enc = self.encoding
        x = np.stack([enc.encode(t.params) for t in done])
        signs = np.array([1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0 for d in study.directions])
        minimised = np.array([t.values for t in done], dtype=float) * signs
        minimised = np.nan_to_num(minimised, nan=0.0, posinf=1e12, neginf=-1e12)
        if minimised.shape[1] == 1:
            y = -minimised[:, 0]
        else:
            y = -parego_scalarize(minimised, self._rng.dirichlet(np.ones(minimised.shape[1])))
        violation = np.array([max([v for k, v in t.system_attrs.items() if k.startswith("constraints:")] or [0.0])
                              for t in done], dtype=float)
        feasible = violation <= 0
        seed = int(self._rng.integers(2**31))
        gp = _fit_gp(x, y, seed)
        gp_c = _fit_gp(x, np.clip(violation, -1.0, 5.0), seed) if (~feasible).any() and feasible.any() else None
        best = float(y[feasible].max()) if feasible.any() else float(y.max())

        cands = self._candidates(done, y)
        xc = np.stack([enc.encode(c) for c in cands])
        mu, sd = gp.predict(xc, return_std=True)
        sd = np.maximum(sd, 1e-9)
        if self.acquisition == "ucb":
            score = upper_confidence_bound(mu, sd, self.kappa)
        elif self.acquisition == "ei":
            score = expected_improvement(mu, sd, best)
        else:
            score = log_expected_improvement(mu, sd, best)
        if gp_c is not None:
            mc, sc = gp_c.predict(xc, return_std=True)
            log_pof = log_ndtr(-mc / np.maximum(sc, 1e-9))
            if self.acquisition == "log_ei":
                score = score + log_pof
            elif self.acquisition == "ei":
                score = score * np.exp(log_pof)
            else:  # UCB may be negative: rank infeasible-looking points last instead of scaling them
                score = np.where(log_pof > math.log(0.5), score, score - 1e6)
        pending = [{k: v for k, v in p.items() if k in enc.active(p)} for p in self._points.values()]
        seen = {tuple(e) for e in x} | {tuple(enc.encode(p)) for p in pending}  # asked, not yet told
        order = np.argsort(-score, kind="stable")
        pick = next((i for i in order if tuple(xc[i]) not in seen), order[0])
        self.last_acquisition = self.acquisition
        return dict(cands[pick])

    def _candidates(self, done, y) -> list[dict]:
        """Random points plus mutations of the best observed ones, each cut to its active parameters
        (with the rest filled from a random point, so the define-by-run space can ask for anything)."""
        enc, rng = self.encoding, self._rng
        top = [dict(done[i].params) for i in np.argsort(-y)[:5]]
        out = []
        for i in range(self.n_candidates):
            base = enc.random_point(rng)
            if i % 4 == 0:  # a quarter are local moves around the incumbents
                base = {**base, **top[(i // 4) % len(top)]}
                base = enc.mutate(base, rng, int(rng.integers(1, 4)))
            active = enc.active(base)
            out.append({k: v for k, v in base.items() if k in active})
        return out


def encoding_for(cfg, image_shape, data=None) -> SpaceEncoding:
    """The encoding of the config's space (the built-in `grid_space`, or the walked user space); a
    point's active parameters are those the define-by-run space asks for when replayed on it."""
    from codesign.walk import asked
    if cfg.model is not None:
        from codesign.data import dataset_for
        from codesign.userspace import asked_params, space_values
        data = data if data is not None else dataset_for(cfg)
        return SpaceEncoding(space_values(cfg, data), lambda point: asked_params(cfg, data, point))
    from codesign.space import grid_space, sample_spec

    def run(trial):
        sample_spec(trial, cfg.space, cfg.folding, n_features=1, image_shape=image_shape, n_classes=2,
                    prune=cfg.training.prune)

    return SpaceEncoding(grid_space(cfg, image_shape=image_shape), lambda point: asked(run, point))
