"""From trial records to the Pareto front, its hypervolume and the run's summary tables."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from codesign import runfolder
from codesign.config import Config
from codesign.objectives import normalized_objectives
from codesign.pareto import hypervolume, pareto_mask, to_minimization
from codesign.records import Status, TrialRecord


def feasible_records(records: list[TrialRecord]) -> list[TrialRecord]:
    return [r for r in records if r.status is Status.OK]


def pareto_front(records: list[TrialRecord], cfg: Config) -> list[TrialRecord]:
    """Non-dominated feasible, trained designs under the configured objectives."""
    ok = feasible_records(records)
    directions = [o.direction for o in cfg.search.objectives]
    points = [to_minimization([r.metrics[o.metric] for o in cfg.search.objectives], directions) for r in ok]
    return [r for r, keep in zip(ok, pareto_mask(points)) if keep]


def front_hypervolume(front: list[TrialRecord], cfg: Config, clock_mhz: float) -> float:
    """Hypervolume in the normalised objective space ([0, 1] each, 0 best, reference point 1)."""
    points = [normalized_objectives(r.metrics, cfg.search.objectives, clock_mhz) for r in front]
    return hypervolume(points, [1.0] * len(cfg.search.objectives))


def hypervolume_history(records: list[TrialRecord], cfg: Config, clock_mhz: float) -> list[float]:
    """Hypervolume of the front after each finished trial (records in completion order)."""
    out = []
    for i in range(1, len(records) + 1):
        out.append(front_hypervolume(pareto_front(records[:i], cfg), cfg, clock_mhz))
    return out


def summarize(run_dir: str | Path, cfg: Config, extra: dict | None = None) -> dict:
    """Write trials.csv/.parquet, pareto.csv and summary.json for the records found in `run_dir`."""
    records = runfolder.read_records(run_dir)
    board = cfg.resolve_board()
    clock = cfg.clock(board)
    front = pareto_front(records, cfg)
    counts = Counter(r.status.value for r in records)
    ok = feasible_records(records)
    summary = {
        "name": cfg.name, "board": board.name, "style": cfg.style, "source": cfg.feedback,
        "objectives": [{"metric": o.metric, "mode": o.direction} for o in cfg.search.objectives],
        "trials": len(records), "by_status": dict(counts), "pareto_size": len(front),
        "pareto_trial_ids": [r.trial_id for r in front],
        "hypervolume": front_hypervolume(front, cfg, clock),
        "hypervolume_reference": "objectives normalised to [0, 1] (0 best), reference point 1 in each",
        "best_accuracy": max((r.accuracy for r in ok), default=None),
        **(extra or {}),
    }
    runfolder.write_tables(run_dir, records, summary["pareto_trial_ids"], summary)
    return summary
