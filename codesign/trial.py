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
from codesign.data import dataset_for
from codesign.objectives import objective_values
from codesign.scoring import estimate_spec, score
from codesign.space import ModelSpec, design_summary, spec_from_params


def candidate_spec(cfg: Config, params: dict) -> ModelSpec:
    data = dataset_for(cfg)
    return spec_from_params(params, cfg, n_features=data.n_features, image_shape=data.image_shape,
                            n_classes=data.n_classes)


def evaluate_candidate(cfg: Config, params: dict, *, trial_id: str, run_dir: str | Path,
                       on_epoch: Callable[[int, float, float], None] | None = None) -> dict:
    """Evaluate one sampled candidate and return its record (also the trial's final result)."""
    start = time.perf_counter()
    tdir = runfolder.trial_dir(run_dir, trial_id)
    record: dict = {"trial_id": trial_id, "params": dict(params), "style": cfg.style, "feedback": cfg.feedback,
                    "source": cfg.estimate_source,
                    "status": "failed", "failure_reason": None, "trial_dir": runfolder.relative_trial_dir(trial_id), "metrics": {},
                    "artifacts": [], "flows": {}}
    log = logging.getLogger(f"codesign.trial.{trial_id}")
    handler = logging.FileHandler(tdir / "trial.log")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        board = cfg.resolve_board()
        spec = candidate_spec(cfg, params)
        record["spec"] = spec.as_dict()
        t0 = time.perf_counter()
        est = estimate_spec(cfg, spec, board)
        record["estimate_s"] = time.perf_counter() - t0
        record["design"] = design_summary_from_estimate(spec, est, cfg.style)
        record["folding"] = [dict(l.folding) for l in est.per_layer]
        record["estimates"] = {est.source: est.as_dict()}
        metrics = _score(record, est, board, cfg)
        log.info("design %s: %s", record["design"], {k: metrics[k] for k in ("lut", "ff", "bram18", "dsp", "fps")})
        if record["status"] == "infeasible":
            log.info("infeasible without training: %s", record["failure_reason"])
        else:
            from codesign.model import build_model
            from codesign.train import train
            model = build_model(spec, seed=cfg.seed)
            result = train(model, dataset_for(cfg), cfg.training, seed=cfg.seed, on_epoch=on_epoch)
            record.update(status="ok", epochs_run=result.epochs_run, train_s=result.train_s,
                          history=[list(h) for h in result.history])
            record["artifacts"].append(runfolder.relative_path(run_dir, runfolder.save_state_dict(tdir, model.state_dict())))
            log.info("trained: test accuracy %.4f, val %.4f, %d epochs, %.1f s", result.test_accuracy,
                     result.val_accuracy, result.epochs_run, result.train_s)
            if cfg.style == "hls4ml":
                est = _estimate_with_trained_weights(cfg, spec, model, board, est, record, log)
                metrics = _score(record, est, board, cfg, " with the trained weights")
            primary = run_toolchain(cfg, spec, model, board, tdir, record, log, analytic=est)
            if primary is not None:  # the configured feedback source replaces the analytic numbers
                record["source"] = primary.source
                # the scoring source decides, whatever the model said after training
                metrics = _score(record, primary, board, cfg, f" by {primary.source}", ff_fallback=est, decisive=True)
            metrics.update(accuracy=result.test_accuracy, val_accuracy=result.val_accuracy)
        record["objective_values"] = objective_values(metrics, cfg.search.objectives)
    except Exception as exc:  # a failing candidate must not stop the search
        record.update(status="failed", failure_reason=f"{type(exc).__name__}: {exc}")
        log.error("trial failed:\n%s", traceback.format_exc())
    finally:
        record["total_s"] = time.perf_counter() - start
        log.removeHandler(handler)
        handler.close()
    return record


def _score(record: dict, est, board, cfg: Config, reason: str = "", *, ff_fallback=None,
           decisive: bool = False) -> dict:
    """Score the trial by `est`: its metrics, constraint values and board fit; infeasible ("does not
    fit BOARD{reason}: ...") when a constraint is broken, and with `decisive`, ok when none is."""
    scored = score(est, board, cfg, ff_fallback=ff_fallback)
    record.update(metrics=scored.metrics, constraints=scored.constraints, fits=scored.fits,
                  resource_sources=scored.resource_sources)
    if scored.violated:
        record.update(status="infeasible",
                      failure_reason=f"does not fit {board.name}{reason}: {', '.join(scored.violated)}")
    elif decisive:
        record.update(status="ok", failure_reason=None)
    return scored.metrics


def _estimate_with_trained_weights(cfg: Config, spec: ModelSpec, model, board, before, record: dict, log):
    """hls4ml-style layers at reuse factor 1 hold their weights as constants: re-estimate with the
    trained weights' CSD digits (zero weights cost nothing). The pre-training numbers stay recorded."""
    from codesign.model import weight_csd_digits
    est = estimate_spec(cfg, spec, board, csd_digits=weight_csd_digits(model))
    record["estimate_before_training"] = before.total.as_dict()
    record["estimates"][est.source] = est.as_dict()
    log.info("with the trained weights: %s (before training: %s)", est.total, before.total)
    return est


def run_toolchain(cfg: Config, spec: ModelSpec, model, board, tdir: Path, record: dict, log, *, analytic):
    """Take the trained model through the configured flows in order (`Config.flow_steps`). Records what
    each computed under record["flows"] / record["estimates"]; returns the estimate of the feedback's
    flow when it ran, else None (the trial keeps its model estimate). A failing flow raises (trial fails)."""
    steps = cfg.flow_steps()
    if not steps:
        return None
    import numpy as np
    import torch

    from codesign.model import quantized_mlp
    from flows.base import FlowContext
    from flows.registry import run_flows
    from hw_models.estimate import folded_design

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.eval()(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()

    ctx = FlowContext(model=model, forward=forward, network=lambda: quantized_mlp(model),
                      design=folded_design(spec.to_design(cfg.style, cfg.clock_mhz), board, cfg.coefficients),
                      board=board, clock_mhz=cfg.clock(board), work_dir=tdir, x_check=dataset_for(cfg).x_test,
                      image_shape=spec.image_shape, cycles_per_frame=analytic.cycles_per_frame,
                      latency_cycles=analytic.latency_cycles)
    results = run_flows(steps, ctx, on_result=lambda r: _record_flow(record, r, tdir, log))
    scoring = next((r for r in results if r.name == cfg.feedback and r.ran), None)
    return None if scoring is None else scoring.estimates.get(cfg.feedback, next(iter(scoring.estimates.values()), None))


def _record_flow(record: dict, result, tdir: Path, log) -> None:
    if not result.ran:
        record["flows"][result.name] = {"skipped": result.skipped}
        log.warning("%s skipped: %s", result.name, result.skipped)
        return
    record["flows"][result.name] = dict(result.detail)
    for source, est in result.estimates.items():
        record["estimates"][source] = est.as_dict()
        log.info("%s: %s, %d cycles/frame", source, est.total, est.cycles_per_frame)
    record["artifacts"] += [runfolder.relative_path(tdir.parent.parent, a) for a in result.artifacts]
    log.info("%s done", result.name)


def design_summary_from_estimate(spec: ModelSpec, est, style: str) -> str:
    """The per-layer summary with the folding the estimate actually used (derived or searched)."""
    from dataclasses import replace
    design = spec.to_design(style)
    layers = []
    for layer, le in zip(design.layers, est.per_layer):
        fold = {k: v for k, v in le.folding.items() if v is not None and hasattr(layer, k)}
        layers.append(replace(layer, **fold))
    return design_summary(design.with_layers(layers))
