"""One scoring path for a candidate: its estimate under the run's coefficients, then its metrics,
constraints and board fit. The trial, `compare` and the benchmarks' surrogate problem all use it."""
from __future__ import annotations

from dataclasses import dataclass

from boards import Board
from codesign.config import Config
from codesign.objectives import constraint_values, hardware_metrics, resource_sources
from codesign.space import ModelSpec
from hw_models import ResourceEstimate, estimate


@dataclass(frozen=True)
class Score:
    metrics: dict[str, float]
    constraints: dict[str, float]  # Optuna convention: <= 0 is satisfied
    fits: bool  # within the board's fill limits
    resource_sources: dict[str, str]  # resource -> the source that produced it (FF under finn-estimate: analytic)

    @property
    def violated(self) -> list[str]:
        return sorted(k for k, v in self.constraints.items() if v > 0)


def estimate_spec(cfg: Config, spec: ModelSpec, board: Board, *, csd_digits=None) -> ResourceEstimate:
    """The estimate of `spec` in the run's style, clock and coefficients (source analytic or calibrated);
    with `csd_digits`, the weight-aware estimate of trained constant weights."""
    design = cfg.design_of(spec)
    if csd_digits is not None:
        design = design.with_csd_digits(csd_digits)
    return estimate(design, board, cfg.coefficients, source=cfg.estimate_source)


def score(est: ResourceEstimate, board: Board, cfg: Config, *, ff_fallback: ResourceEstimate | None = None) -> Score:
    """Metrics, constraint values (board fill limits and the config's budgets) and fit of `est`."""
    return Score(hardware_metrics(est, ff_fallback=ff_fallback),
                 constraint_values(est, board, dict(cfg.search.budgets)), est.fits,
                 resource_sources(est, ff_fallback))
