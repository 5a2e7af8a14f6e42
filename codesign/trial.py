"""One trial, without Ray: sample -> analytic estimate (reject early) -> QAT -> score -> record.

`evaluate_candidate` never raises for a bad candidate: a failure becomes a record with status
`failed` and its reason, so the search goes on.
"""
from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Callable

from codesign import runfolder
from codesign.config import Config
from codesign.data import load_dataset
from codesign.objectives import constraint_values, hardware_metrics, objective_values
from codesign.space import ModelSpec, design_summary, spec_from_params
from hw_models import estimate


def _dataset(cfg: Config):
    d = cfg.dataset
    return load_dataset(d.name, d.path, d.val_fraction, d.test_fraction, cfg.seed)


def candidate_spec(cfg: Config, params: dict) -> ModelSpec:
    data = _dataset(cfg)
    return spec_from_params(params, cfg, n_features=data.n_features, image_shape=data.image_shape,
                            n_classes=data.n_classes)


def evaluate_candidate(cfg: Config, params: dict, *, trial_id: str, run_dir: str | Path,
                       on_epoch: Callable[[int, float, float], None] | None = None) -> dict:
    """Evaluate one sampled candidate and return its record (also the trial's final result)."""
    start = time.perf_counter()
    tdir = runfolder.trial_dir(run_dir, trial_id)
    record: dict = {"trial_id": trial_id, "params": dict(params), "style": cfg.style, "source": cfg.feedback,
                    "status": "failed", "failure_reason": None, "trial_dir": str(tdir), "metrics": {},
                    "artifacts": []}
    log = logging.getLogger(f"codesign.trial.{trial_id}")
    handler = logging.FileHandler(tdir / "trial.log")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        board = cfg.resolve_board()
        spec = candidate_spec(cfg, params)
        record["spec"] = spec.as_dict()
        t0 = time.perf_counter()
        est = estimate(spec.to_design(cfg.style, cfg.clock_mhz), board)
        record["estimate_s"] = time.perf_counter() - t0
        record["design"] = design_summary_from_estimate(spec, est, cfg.style)
        record["folding"] = [dict(l.folding) for l in est.per_layer]
        record["estimates"] = {"analytic": est.as_dict()}
        metrics = hardware_metrics(est)
        constraints = constraint_values(est, board, dict(cfg.search.budgets))
        record.update(metrics=metrics, constraints=constraints, fits=est.fits)
        log.info("design %s: %s", record["design"], {k: metrics[k] for k in ("lut", "ff", "bram18", "dsp", "fps")})
        if any(v > 0 for v in constraints.values()):
            over = sorted(k for k, v in constraints.items() if v > 0)
            record.update(status="infeasible", failure_reason=f"does not fit {board.name}: {', '.join(over)}")
            log.info("infeasible without training: %s", record["failure_reason"])
        else:
            from codesign.model import build_model
            from codesign.train import train
            model = build_model(spec, seed=cfg.seed)
            result = train(model, _dataset(cfg), cfg.training, seed=cfg.seed, on_epoch=on_epoch)
            metrics.update(accuracy=result.test_accuracy, val_accuracy=result.val_accuracy)
            record.update(status="ok", epochs_run=result.epochs_run, train_s=result.train_s,
                          history=[list(h) for h in result.history])
            record["artifacts"].append(str(runfolder.save_state_dict(tdir, model.state_dict())))
            log.info("trained: test accuracy %.4f, val %.4f, %d epochs, %.1f s", result.test_accuracy,
                     result.val_accuracy, result.epochs_run, result.train_s)
        record["objective_values"] = objective_values(metrics, cfg.search.objectives)
    except Exception as exc:  # a failing candidate must not stop the search
        record.update(status="failed", failure_reason=f"{type(exc).__name__}: {exc}")
        log.error("trial failed:\n%s", traceback.format_exc())
    finally:
        record["total_s"] = time.perf_counter() - start
        log.removeHandler(handler)
        handler.close()
    return record


def design_summary_from_estimate(spec: ModelSpec, est, style: str) -> str:
    """The per-layer summary with the folding the estimate actually used (derived or searched)."""
    from dataclasses import replace
    design = spec.to_design(style)
    layers = []
    for layer, le in zip(design.layers, est.per_layer):
        fold = {k: v for k, v in le.folding.items() if v is not None and hasattr(layer, k)}
        layers.append(replace(layer, **fold))
    return design_summary(design.with_layers(layers))
