"""Metrics, objectives and constraints of a trial, and their normalisation for the hypervolume."""
from __future__ import annotations

import math
from typing import Sequence

from boards import RESOURCE_NAMES, Board
from codesign.config import Objective
from hw_models import ResourceEstimate

STATUSES: tuple[str, ...] = ("ok", "infeasible", "failed", "stopped")


def hardware_metrics(est: ResourceEstimate, ff_fallback: ResourceEstimate | None = None) -> dict[str, float]:
    """Every hardware metric of an estimate, resources also as % of the board. `ff_fallback` supplies
    the resources `est` does not estimate (`est.missing`: FF under finn-estimate); `resource_sources` says which."""
    out: dict[str, float] = {n: float(getattr(est.total, n)) for n in RESOURCE_NAMES}
    util = dict(est.utilization)
    for n in est.missing if ff_fallback is not None else ():
        out[n], util[n] = float(getattr(ff_fallback.total, n)), ff_fallback.utilization[n]
    for n in RESOURCE_NAMES:
        u = util[n]
        out[f"{n}_pct"] = 100.0 * u if math.isfinite(u) else float("inf")
    out["util_max"] = max(util.values())
    out.update(fps=est.fps, latency_us=est.latency_us, latency_cycles=float(est.latency_cycles),
               cycles_per_frame=float(est.cycles_per_frame))
    if est.fmax_mhz is not None:  # place-and-route or the timing model: the clock the fps is computed at
        out["fmax_mhz"] = float(est.fmax_mhz)
    return out


def resource_sources(est: ResourceEstimate, ff_fallback: ResourceEstimate | None = None) -> dict[str, str]:
    """Which source produced each resource of `hardware_metrics(est, ff_fallback)`."""
    borrowed = est.missing if ff_fallback is not None else ()
    return {n: ff_fallback.source if n in borrowed else est.source for n in RESOURCE_NAMES}


def borrowed_resources(record) -> dict[str, str]:
    """Resources of a record's metrics (a `TrialRecord`) produced by another source than the record's
    (FF under finn-estimate comes from the analytic model): resource -> that source."""
    return {n: s for n, s in record.resource_sources.items() if s != record.source}


def constraint_values(est: ResourceEstimate, board: Board, budgets: dict[str, float]) -> dict[str, float]:
    """Optuna convention, <= 0 is feasible: board fit under the fill limits, and user budgets."""
    out = {f"fit_{n}": v for n, v in board.violations(est.total).items()}
    for n, cap in budgets.items():
        used = getattr(est.total, n)
        out[f"budget_{n}"] = (used / cap - 1.0) if cap > 0 else float(used)
    return out


def objective_values(metrics: dict, objectives: Sequence[Objective]) -> list[float]:
    """Values in config order for the sampler. An untrained (infeasible) design counts as 0% accurate:
    its constraint violation already ranks it behind every feasible design."""
    return [float(metrics.get(o.metric) if metrics.get(o.metric) is not None else 0.0) for o in objectives]


def normalized(metric: str, value: float, *, clock_mhz: float) -> float:
    """Map a metric onto [0, 1], 0 best, for a hypervolume with reference point 1 in every objective:
    accuracy as error; evidence (nats per sample above chance) as exp(-evidence); resources as fraction of the board; throughput and latency on a log scale
    between 1 cycle and 1 second at the clock."""
    if metric == "accuracy":
        v = 1.0 - value
    elif metric == "evidence":  # nats per sample above chance -> chance's share of the evidence per sample
        v = math.exp(-value)
    elif metric in RESOURCE_NAMES:
        raise ValueError("absolute resource counts are normalised through the board: use <name>_pct")
    elif metric.endswith("_pct"):
        v = value / 100.0
    elif metric == "util_max":
        v = value
    else:
        clock_hz = clock_mhz * 1e6
        if metric == "fps":
            cycles = clock_hz / value
        elif metric == "latency_us":
            cycles = value * clock_mhz
        else:
            cycles = value
        v = math.log(max(cycles, 1.0)) / math.log(clock_hz)
    return min(1.0, max(0.0, v))


def normalized_objectives(metrics: dict, objectives: Sequence[Objective], clock_mhz: float) -> list[float]:
    """Objective values normalised for the hypervolume (resources through their % of the board)."""
    out = []
    for o in objectives:
        name = f"{o.metric}_pct" if o.metric in RESOURCE_NAMES else o.metric
        v = normalized(name, metrics[name], clock_mhz=clock_mhz)
        # a metric optimised against its natural direction is mirrored
        natural = "max" if o.metric in ("accuracy", "fps", "evidence") else "min"
        out.append(v if o.direction == natural else 1.0 - v)
    return out
