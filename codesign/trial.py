"""One trial, without Ray: sample -> analytic estimate (reject early) -> QAT -> score -> record.

`evaluate_candidate` never raises for a bad candidate: a failure becomes a record with status
`failed` and its reason, so the search goes on.
"""
from __future__ import annotations

import contextlib
import logging
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from boards import Board
from codesign import runfolder
from codesign.config import Config
from codesign.data import dataset_for
from codesign.objectives import objective_values
from codesign.records import FlowResult, Status, Timings, TrialRecord
from codesign.scoring import estimate_spec, score
from codesign.space import ModelSpec, spec_from_params
from hw_models import ResourceEstimate
from hw_models.estimate import folded_design


def candidate_spec(cfg: Config, params: dict):
    """The network of a trial's parameters: a built-in `ModelSpec`, or a user space's `NetSpec`."""
    data = dataset_for(cfg)
    if cfg.model is not None:
        from codesign.userspace import spec_from_params as user_spec_from_params
        return user_spec_from_params(cfg, params, data)
    return spec_from_params(params, cfg, n_features=data.n_features, image_shape=data.image_shape,
                            n_classes=data.n_classes, input_signed=data.signed_input)


@dataclass(frozen=True)
class TrialContext:
    """What every step of one trial works with."""

    cfg: Config
    board: Board
    run_dir: Path
    trial_dir: Path
    log: logging.Logger


@contextlib.contextmanager
def _trial_log(tdir: Path, trial_id: str):
    log = logging.getLogger(f"codesign.trial.{trial_id}")
    handler = logging.FileHandler(tdir / "trial.log")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield log
    finally:
        log.removeHandler(handler)
        handler.close()


def evaluate_candidate(cfg: Config, params: dict, *, trial_id: str, run_dir: str | Path,
                       on_epoch: Callable[[int, float, float], None] | None = None,
                       warm_start: Callable[[object], None] | None = None) -> TrialRecord:
    """Evaluate one sampled candidate and return its record (also the trial's final result).
    `warm_start(model)`, when given, sets the freshly built network's initial weights before training
    (dnas `derive: finetune`)."""
    start = time.perf_counter()
    tdir = runfolder.trial_dir(run_dir, trial_id)
    from codesign.synthesis import current_coefficients
    cfg, coefficients = current_coefficients(cfg, run_dir)  # the run's newest refit, when it recalibrates
    record = TrialRecord(trial_id, Status.FAILED, dict(params), style=cfg.style, feedback=cfg.feedback,
                         coefficients=coefficients,
                         source=cfg.estimate_source, trial_dir=runfolder.relative_trial_dir(trial_id))
    with _trial_log(tdir, trial_id) as log:
        try:
            ctx = TrialContext(cfg, cfg.resolve_board(), Path(run_dir), tdir, log)
            record = _evaluate(ctx, record, on_epoch, warm_start)
        except Exception as exc:  # a failing candidate must not stop the search
            record = record.replace(status=Status.FAILED, failure_reason=f"{type(exc).__name__}: {exc}")
            log.error("trial failed:\n%s", traceback.format_exc())
    return record.replace(timings=replace(record.timings, total_s=time.perf_counter() - start))


def _evaluate(ctx: TrialContext, record: TrialRecord, on_epoch, warm_start=None) -> TrialRecord:
    cfg, log = ctx.cfg, ctx.log
    spec = candidate_spec(cfg, dict(record.params))
    t0 = time.perf_counter()
    est = estimate_spec(cfg, spec, ctx.board)
    design = folded_design(cfg.design_of(spec), ctx.board, cfg.coefficients)
    record = record.replace(spec=spec.as_dict(), estimates={est.source: est}, design=design,
                            timings=Timings(estimate_s=time.perf_counter() - t0))
    record = _scored(ctx, record, est)
    log.info("design %s: %s", record.design_summary, {k: record.metrics[k] for k in ("lut", "ff", "bram18", "dsp", "fps")})
    if record.status is Status.INFEASIBLE:
        log.info("infeasible without training: %s", record.failure_reason)
        return record.replace(objective_values=tuple(objective_values(record.metrics, cfg.search.objectives)))
    from codesign.model import build_model
    from codesign.train import train
    from codesign.prune import trial_sparsity
    model = build_model(spec, seed=cfg.seed)
    if cfg.model is not None:
        from codesign.userspace import initialise
        initialise(model, cfg)
    if warm_start is not None:
        warm_start(model)
    training = cfg.training.model_copy(update=getattr(spec, "training_overrides", dict)())
    result = train(model, dataset_for(cfg), training, seed=cfg.seed, on_epoch=on_epoch,
                   sparsity=trial_sparsity(training, dict(record.params)))
    weights = runfolder.save_state_dict(ctx.trial_dir, model.state_dict())
    record = record.replace(status=Status.OK, epochs_run=result.epochs_run,
                            history=tuple(tuple(h) for h in result.history),
                            timings=replace(record.timings, train_s=result.train_s),
                            artifacts=(runfolder.relative_path(ctx.run_dir, weights),))
    log.info("trained: test accuracy %.4f, val %.4f, %d epochs, %.1f s", result.test_accuracy,
             result.val_accuracy, result.epochs_run, result.train_s)
    if cfg.style == "hls4ml":
        est, record = _with_trained_weights(ctx, spec, model, est, record)
    from codesign.synthesis import PENDING, deferred
    later = deferred(cfg)  # the driver decides whether to synthesise, after the trial
    record, primary = run_toolchain(ctx, spec, design, model, est, record, skip=(cfg.feedback,) if later else ())
    if later:
        record = record.replace(synthesis=PENDING)
    if primary is not None:
        record = score_feedback(ctx, record, primary, est)
    metrics = {**record.metrics, "accuracy": result.test_accuracy, "val_accuracy": result.val_accuracy,
               **_evidence(ctx, model)}
    if result.weight_sparsity is not None:
        metrics["weight_sparsity"] = result.weight_sparsity
    return record.replace(metrics=metrics, objective_values=tuple(objective_values(metrics, cfg.search.objectives)))


def _evidence(ctx: TrialContext, model) -> dict:
    """The trained network's Laplace log evidence (`codesign.evidence`). A network it cannot take (no
    linear classifier at the end) has none, said in the trial log; a trial whose objectives need it fails."""
    from codesign.evidence import network_evidence
    data = dataset_for(ctx.cfg)
    try:
        return {"evidence": network_evidence(model, data.x_train, data.y_train)["evidence"]}
    except Exception as exc:
        if any(o.metric == "evidence" for o in ctx.cfg.search.objectives):
            raise
        ctx.log.warning("no evidence for this network: %s: %s", type(exc).__name__, exc)
        return {}


def score_feedback(ctx: TrialContext, record: TrialRecord, primary: ResourceEstimate,
                   analytic: ResourceEstimate) -> TrialRecord:
    """The feedback's numbers decide, whatever the model said after training (resources it does not
    estimate come from the model); the objectives follow the new metrics."""
    accuracy = {k: record.metrics[k] for k in ("accuracy", "val_accuracy") if k in record.metrics}
    record = _scored(ctx, record.replace(source=primary.source), primary, f" by {primary.source}",
                     ff_fallback=analytic, decisive=True)
    metrics = {**record.metrics, **accuracy}
    values = tuple(objective_values(metrics, ctx.cfg.search.objectives)) if accuracy else record.objective_values
    return record.replace(metrics=metrics, objective_values=values)


def _scored(ctx: TrialContext, record: TrialRecord, est: ResourceEstimate, reason: str = "", *,
            ff_fallback: ResourceEstimate | None = None, decisive: bool = False) -> TrialRecord:
    """The record scored by `est`: its metrics, constraint values and board fit; infeasible ("does not
    fit BOARD{reason}: ...") when a constraint is broken, and with `decisive`, ok when none is."""
    scored = score(est, ctx.board, ctx.cfg, ff_fallback=ff_fallback)
    record = record.replace(metrics=scored.metrics, constraints=scored.constraints, fits=scored.fits,
                            resource_sources=scored.resource_sources)
    if scored.violated:
        return record.replace(status=Status.INFEASIBLE,
                              failure_reason=f"does not fit {ctx.board.name}{reason}: {', '.join(scored.violated)}")
    return record.replace(status=Status.OK, failure_reason=None) if decisive else record


def _with_trained_weights(ctx: TrialContext, spec: ModelSpec, model, before: ResourceEstimate,
                          record: TrialRecord) -> tuple[ResourceEstimate, TrialRecord]:
    """hls4ml-style layers at reuse factor 1 hold their weights as constants: re-estimate with the
    trained weights' CSD digits (zero weights cost nothing), and score by it. The pre-training totals
    stay recorded."""
    from codesign.model import weight_csd_digits
    digits = weight_csd_digits(model)
    est = estimate_spec(ctx.cfg, spec, ctx.board, csd_digits=digits)
    ctx.log.info("with the trained weights: %s (before training: %s)", est.total, before.total)
    record = record.replace(estimate_before_training=before.total, estimates={**record.estimates, est.source: est},
                            design=record.design.with_csd_digits(digits))
    return est, _scored(ctx, record, est, " with the trained weights")


def run_toolchain(ctx: TrialContext, spec, design, model, analytic: ResourceEstimate, record: TrialRecord, *,
                  skip: tuple[str, ...] = (), only: tuple[str, ...] | None = None,
                  onnx_path: Path | None = None) -> tuple[TrialRecord, ResourceEstimate | None]:
    """Take the trained model and its folded `design` through the configured flows in order
    (`Config.flow_steps`; without the `skip`ped ones, or `only` those, with `onnx_path` as the
    QONNX export of an earlier run): the record with what each computed (flows, estimates, files), and
    the estimate of the feedback's flow when it ran (else None: the trial keeps its model estimate).
    A failing flow raises (the trial fails)."""
    cfg = ctx.cfg
    steps = [(f, o) for f, o in cfg.flow_steps() if f.name not in skip and (only is None or f.name in only)]
    if not steps:
        return record, None
    import numpy as np
    import torch

    from codesign.model import quantized_mlp
    from flows.base import FlowContext
    from flows.registry import run_flows

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.eval()(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()

    flow_ctx = FlowContext(model=model, forward=forward, network=lambda: quantized_mlp(model),
                           design=design, board=ctx.board, clock_mhz=cfg.clock(ctx.board), work_dir=ctx.trial_dir,
                           x_check=dataset_for(cfg).x_test, image_shape=spec.image_shape,
                           cycles_per_frame=analytic.cycles_per_frame, latency_cycles=analytic.latency_cycles,
                           cache_dir=ctx.run_dir / runfolder.CACHE, onnx_path=onnx_path)
    results = run_flows(steps, flow_ctx, on_result=lambda r: _log_flow(ctx.log, r))
    estimates = {s: e for r in results for s, e in r.estimates.items()}
    record = record.replace(
        flows={**record.flows, **{r.name: FlowResult(r.name, r.detail, r.skipped) for r in results}},
        estimates={**record.estimates, **estimates},
        artifacts=record.artifacts + tuple(runfolder.relative_path(ctx.run_dir, a) for r in results for a in r.artifacts))
    scoring = next((r for r in results if r.name == cfg.feedback and r.ran), None)
    if scoring is None:
        return record, None
    return record, scoring.estimates.get(cfg.feedback, next(iter(scoring.estimates.values()), None))


def synthesize(cfg: Config, run_dir: str | Path, record: TrialRecord) -> TrialRecord:
    """Run the feedback flow on a finished trial's trained network (a Ray task's work) and return the
    record scored by it, `synthesis: done`; a failing flow fails the trial, as it would under `all`."""
    import torch

    from codesign.model import build_model
    from codesign.synthesis import DONE, FAILED
    run_dir = Path(run_dir)
    tdir = run_dir / "trials" / record.trial_id
    started = time.perf_counter()
    with _trial_log(tdir, record.trial_id) as log:
        try:
            ctx = TrialContext(cfg, cfg.resolve_board(), run_dir, tdir, log)
            spec = candidate_spec(cfg, dict(record.params))
            model = build_model(spec)
            model.load_state_dict(torch.load(tdir / "model.pt", weights_only=True))
            analytic = record.estimates[next(s for s in ("calibrated", "analytic") if s in record.estimates)]
            onnx = tdir / "model.onnx"
            log.info("synthesis selected by policy %s", cfg.synthesis.policy)
            record, primary = run_toolchain(ctx, spec, record.design, model, analytic, record,
                                            only=(cfg.feedback,), onnx_path=onnx if onnx.is_file() else None)
            if primary is not None:
                record = score_feedback(ctx, record, primary, analytic)
            return record.replace(synthesis=DONE, user_attrs={**record.user_attrs,
                                                               "synthesis_s": time.perf_counter() - started})
        except Exception as exc:
            log.error("synthesis failed:\n%s", traceback.format_exc())
            return record.replace(status=Status.FAILED, synthesis=FAILED,
                                  failure_reason=f"synthesis: {type(exc).__name__}: {exc}")


def _log_flow(log: logging.Logger, result) -> None:
    if not result.ran:
        log.warning("%s skipped: %s", result.name, result.skipped)
        return
    for source, est in result.estimates.items():
        log.info("%s: %s, %d cycles/frame", source, est.total, est.cycles_per_frame)
    log.info("%s done", result.name)
