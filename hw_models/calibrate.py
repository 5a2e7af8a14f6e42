"""Fit the analytic models' LUT/FF coefficients to synthesised designs (scikit-learn style fit/predict).

Each sample is a design with measured resources. Its features are the model's summed terms
(`hw_models.estimate.design_terms`); a resource is predicted as sum(coefficient x term) plus the
exactly counted part. The fit minimises relative errors (designs span orders of magnitude) with a
robust soft-L1 loss, keeps coefficients non-negative, and pulls every coefficient towards its
analytic value (ridge on the relative change), so terms the samples barely excite stay sensible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from boards import RESOURCE_NAMES, Board, Resources
from hw_models import finn
from hw_models.coefficients import Coefficients, coefficients_with
from hw_models.design import Design
from hw_models.estimate import design_terms
from hw_models.terms import FITTED_RESOURCES, Terms, coefficient


@dataclass(frozen=True)
class Sample:
    design: Design
    board: Board  # gives the clock for derived folding and the family
    measured: dict  # resource -> measured count; missing = not measured
    name: str = ""
    source: str = ""  # e.g. yosys-0.70, vivado-2024.2


def _swu_block(coeffs, *, channels: int, ifm_dim: int, kernel: int, simd: int, bits: int,
               ram_style: str = "auto") -> Terms:
    return finn.swu_terms(channels, ifm_dim, kernel, bits, simd, ram_style, coeffs)[0]


# block name -> (coefficients, **parameters) -> the block's model terms; explicit registry
BLOCK_MODELS = {"finn.swu": _swu_block}


@dataclass(frozen=True)
class BlockSample:
    """One block synthesised on its own (e.g. FINN's sliding-window generator): its parameters and
    measured resources. Calibrates the coefficients of that block's terms."""

    block: str
    params: dict
    measured: dict
    name: str = ""

    def __post_init__(self):
        if self.block not in BLOCK_MODELS:
            raise ValueError(f"block {self.block!r} unknown; valid: {sorted(BLOCK_MODELS)}")

    def terms(self, coeffs: Coefficients) -> Terms:
        return BLOCK_MODELS[self.block](coeffs, **self.params)


@dataclass(frozen=True)
class Metrics:
    n: int
    mape: float  # mean absolute percentage error
    r2: float
    max_error: float  # largest absolute percentage error

    def as_dict(self) -> dict:
        return {"n": self.n, "mape": self.mape, "r2": self.r2, "max_error": self.max_error}


def metrics(predicted: Sequence[float], measured: Sequence[float]) -> Metrics:
    """Errors relative to the measured value (to 1 where 0 was measured, e.g. no DSP: exact or not)."""
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    if len(m) == 0:
        return Metrics(0, math.nan, math.nan, math.nan)
    rel = np.abs(p - m) / np.maximum(m, 1.0)
    ss_res, ss_tot = float(((p - m) ** 2).sum()), float(((m - m.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    return Metrics(int(len(m)), float(rel.mean()), r2, float(rel.max()))


def _features(samples: Sequence[Sample | BlockSample], coeffs: Coefficients, resource: str):
    """Rows of term values for `resource`, the exactly counted part, and the term paths (columns)."""
    rows, exact_parts = [], []
    for s in samples:
        t = s.terms(coeffs) if isinstance(s, BlockSample) else design_terms(s.design, s.board, coeffs)
        rows.append({k: v for k, v in t.linear.items() if k.split(".")[2] == resource})
        exact_parts.append(getattr(t.exact, resource))
    columns = sorted({k for r in rows for k in r})
    x = np.array([[r.get(c, 0.0) for c in columns] for r in rows], dtype=float).reshape(len(rows), len(columns))
    return x, np.asarray(exact_parts, float), columns


def fit_resource(samples: Sequence[Sample | BlockSample], coeffs: Coefficients, resource: str, *, ridge: float = 0.01) -> dict[str, float]:
    """Fitted coefficients (term path -> value) for one resource."""
    from scipy.optimize import least_squares
    measured = [s for s in samples if s.measured.get(resource) not in (None, "") and float(s.measured[resource]) > 0]
    if not measured:
        return {}
    x, exact_part, columns = _features(measured, coeffs, resource)
    if not columns:
        return {}
    y = np.array([float(s.measured[resource]) for s in measured]) - exact_part
    prior = np.array([coefficient(coeffs, c) for c in columns])
    scale = np.where(prior > 0, prior, 1.0)
    denom = np.maximum(np.array([float(s.measured[resource]) for s in measured]), 1.0)

    def residuals(c):
        fit = (x @ c - y) / denom
        return np.concatenate([fit, ridge * (c - prior) / scale])

    sol = least_squares(residuals, x0=np.maximum(prior, 1e-6), bounds=(0, np.inf), loss="soft_l1", f_scale=0.1)
    return dict(zip(columns, (float(v) for v in sol.x)))


class Calibrator:
    """fit(samples) learns LUT/FF coefficients starting from `base`; predict(design, board) estimates."""

    def __init__(self, base: str | Coefficients = "analytic", *, ridge: float = 0.01):
        from hw_models.coefficients import load_coefficients
        self.base = base if isinstance(base, Coefficients) else load_coefficients(base)
        self.ridge = ridge
        self.fitted_: dict[str, float] = {}
        self.coefficients_: Coefficients | None = None

    def fit(self, samples: Sequence[Sample | BlockSample]) -> "Calibrator":
        fitted = {}
        for resource in FITTED_RESOURCES:
            fitted.update(fit_resource(samples, self.base, resource, ridge=self.ridge))
        self.fitted_ = fitted
        self.coefficients_ = coefficients_with(self.base, fitted, name="calibrated")
        return self

    def predict(self, design: Design, board: Board) -> Resources:
        from hw_models.estimate import estimate
        return estimate(design, board, self.coefficients_ or self.base).total

    def predict_sample(self, sample: Sample | BlockSample) -> Resources:
        if isinstance(sample, BlockSample):
            coeffs = self.coefficients_ or self.base
            return sample.terms(coeffs).resources(coeffs)
        return self.predict(sample.design, sample.board)

    def score(self, samples: Sequence[Sample | BlockSample]) -> dict[str, Metrics]:
        """Per resource: metrics of the predictions against the measured values of `samples`."""
        preds = [self.predict_sample(s) for s in samples]
        out = {}
        for r in RESOURCE_NAMES:
            pairs = [(getattr(p, r), float(s.measured[r])) for p, s in zip(preds, samples)
                     if s.measured.get(r) not in (None, "")]
            if pairs:
                out[r] = metrics(*zip(*pairs))
        return out


def split(samples: Sequence[Sample], validation_fraction: float = 0.25, seed: int = 0):
    """Deterministic train/validation split."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(samples))
    n_val = max(1, int(round(validation_fraction * len(samples)))) if len(samples) > 1 else 0
    val = [samples[i] for i in sorted(order[:n_val])]
    train = [samples[i] for i in sorted(order[n_val:])]
    return train, val
