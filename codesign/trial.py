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
from codesign.objectives import constraint_values, hardware_metrics, objective_values
from codesign.space import ModelSpec, design_summary, spec_from_params
from hw_models import estimate


def candidate_spec(cfg: Config, params: dict) -> ModelSpec:
    data = dataset_for(cfg)
    return spec_from_params(params, cfg, n_features=data.n_features, image_shape=data.image_shape,
                            n_classes=data.n_classes)


def _violated(constraints: dict) -> list[str]:
    return sorted(k for k, v in constraints.items() if v > 0)


def evaluate_candidate(cfg: Config, params: dict, *, trial_id: str, run_dir: str | Path,
                       on_epoch: Callable[[int, float, float], None] | None = None) -> dict:
    """Evaluate one sampled candidate and return its record (also the trial's final result)."""
    start = time.perf_counter()
    tdir = runfolder.trial_dir(run_dir, trial_id)
    record: dict = {"trial_id": trial_id, "params": dict(params), "style": cfg.style, "feedback": cfg.feedback,
                    "source": cfg.estimate_source,
                    "status": "failed", "failure_reason": None, "metrics": {},
                    "trial_dir": runfolder.relative_trial_dir(trial_id),
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
        est = estimate(spec.to_design(cfg.style, cfg.clock_mhz), board, cfg.coefficients, source=cfg.estimate_source)
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
    metrics = hardware_metrics(est, ff_fallback=ff_fallback)
    constraints = constraint_values(est, board, dict(cfg.search.budgets))
    record.update(metrics=metrics, constraints=constraints, fits=est.fits)
    violated = _violated(constraints)
    if violated:
        record.update(status="infeasible", failure_reason=f"does not fit {board.name}{reason}: {', '.join(violated)}")
    elif decisive:
        record.update(status="ok", failure_reason=None)
    return metrics


def _estimate_with_trained_weights(cfg: Config, spec: ModelSpec, model, board, before, record: dict, log):
    """hls4ml-style layers at reuse factor 1 hold their weights as constants: re-estimate with the
    trained weights' CSD digits (zero weights cost nothing). The pre-training numbers stay recorded."""
    from codesign.model import weight_csd_digits
    design = spec.to_design(cfg.style, cfg.clock_mhz).with_csd_digits(weight_csd_digits(model))
    est = estimate(design, board, cfg.coefficients, source=cfg.estimate_source)
    record["estimate_before_training"] = before.total.as_dict()
    record["estimates"][est.source] = est.as_dict()
    log.info("with the trained weights: %s (before training: %s)", est.total, before.total)
    return est


def run_toolchain(cfg: Config, spec: ModelSpec, model, board, tdir: Path, record: dict, log, *, analytic):
    """Export, verify and run the configured tool flows on a trained model. Records what each step
    computed under record["flows"] / record["estimates"]; returns the estimate that should score the
    trial when the feedback source is not `analytic`, else None. Tool failures raise (trial fails)."""
    import torch

    from flows.tools import call_with_timeout
    from hw_models.estimate import folded_design
    fl = cfg.flows
    need_finn = cfg.feedback == "finn-estimate" or fl.finn
    need_hls4ml = cfg.feedback == "hls4ml" or fl.hls4ml_csim
    need_synthesis = cfg.feedback == "vivado" or fl.synthesis
    need_yosys = cfg.feedback == "yosys" or fl.yosys
    record.setdefault("flows", {})
    if not (fl.export or need_finn or need_hls4ml or need_synthesis or need_yosys):
        return None
    from flows.qonnx import export_and_verify
    data = dataset_for(cfg)
    exported = export_and_verify(model, data.x_test, tdir, min_agreement=fl.min_agreement, samples=fl.verify_samples)
    record["flows"]["qonnx"] = exported.as_dict()
    record["artifacts"].append(runfolder.relative_path(tdir.parent.parent, exported.onnx_path))
    log.info("QONNX export verified: agreement %.3f on %d samples", exported.agreement, exported.samples)
    design = folded_design(spec.to_design(cfg.style, cfg.clock_mhz), board, cfg.coefficients)
    primary = None
    if need_finn:
        from flows.finn import finn_estimate
        fe = call_with_timeout(finn_estimate, exported.onnx_path, design, board, timeout_s=fl.timeout_s)
        record["estimates"]["finn-estimate"] = fe.as_dict()
        log.info("FINN estimate: %s, %d cycles/frame", fe.total, fe.cycles_per_frame)
        if cfg.feedback == "finn-estimate":
            primary = fe
    if need_hls4ml:
        from flows.hls4ml import ToolMissing, csim_agreement
        x = data.x_test[:fl.verify_samples]
        with torch.no_grad():
            model.eval()
            reference = model(torch.from_numpy(x)).numpy()
        try:
            hr = call_with_timeout(csim_agreement, exported.onnx_path, design, board.part, x, reference,
                                   image_shape=spec.image_shape, strategy=fl.hls4ml_strategy,
                                   clock_mhz=cfg.clock_mhz or board.clock_mhz, timeout_s=fl.timeout_s)
        except ToolMissing as exc:
            record["flows"]["hls4ml"] = {"skipped": str(exc)}
            log.warning("hls4ml C simulation skipped: %s", exc)
        else:
            record["flows"]["hls4ml"] = hr.as_dict()
            log.info("hls4ml C simulation: agreement %.3f (argmax %.3f)", hr.agreement, hr.argmax_agreement)
            if hr.agreement < fl.hls4ml_min_agreement:
                raise RuntimeError(f"hls4ml mismatch: C simulation agrees with Brevitas on {hr.agreement:.1%} "
                                   f"of {hr.samples} samples (needed {fl.hls4ml_min_agreement:.1%})")
    if need_synthesis:
        synthesized = _synthesize(cfg, exported.onnx_path, design, board, tdir, record, log, analytic)
        if cfg.feedback == "vivado":
            primary = synthesized
    if need_yosys:
        synthesized = _yosys(cfg, model, board, tdir, record, log)
        if cfg.feedback == "yosys":
            primary = synthesized
    return primary


def _yosys(cfg: Config, model, board, tdir: Path, record: dict, log):
    """da4ml RTL + Yosys for MLPs; designs the RTL path does not cover (CNNs, float layers...) or a
    missing Yosys are recorded as skipped and the trial keeps its other sources."""
    from flows.tools import call_with_timeout
    from flows.yosys import RtlUnsupported, YosysMissing, synthesize_mlp_stat, yosys_estimate
    check_x = dataset_for(cfg).x_test if cfg.flows.yosys_simulate else None
    try:
        stat, latency, check = call_with_timeout(synthesize_mlp_stat, model, board.family, tdir / "yosys",
                                                 check_x=check_x, check_samples=cfg.flows.verify_samples,
                                                 timeout_s=cfg.flows.synthesis_timeout_s)
    except (RtlUnsupported, YosysMissing, ValueError) as exc:
        record["flows"]["yosys"] = {"skipped": f"{type(exc).__name__}: {exc}"}
        log.warning("yosys skipped: %s", exc)
        return None
    est = yosys_estimate(stat, latency, board, clock_mhz=cfg.clock_mhz or board.clock_mhz)
    record["estimates"]["yosys"] = est.as_dict()
    record["flows"]["yosys"] = {"yosys_version": stat.yosys_version, "carry": stat.carry, "seconds": stat.seconds,
                                "latency_cycles": latency, **({"verilog_simulation": check} if check else {})}
    log.info("yosys: %s", est.total)
    return est


def _synthesize(cfg: Config, onnx_path, design, board, tdir: Path, record: dict, log, analytic):
    """Vendor synthesis where installed (FINN out-of-context / hls4ml build); skipped with a message
    otherwise. Returns the `vivado` estimate or None."""
    from flows.synthesis import SynthesisToolMissing, finn_ooc_synthesis, hls4ml_synthesis
    from flows.tools import call_with_timeout
    clock = cfg.clock_mhz or board.clock_mhz
    timing = {"clock_mhz": clock, "cycles_per_frame": analytic.cycles_per_frame,
              "latency_cycles": analytic.latency_cycles}
    try:
        if cfg.style == "finn":
            found = {"vivado": call_with_timeout(finn_ooc_synthesis, onnx_path, design, board, tdir / "finn_build",
                                                 timeout_s=cfg.flows.synthesis_timeout_s, **timing)}
        else:
            found = call_with_timeout(hls4ml_synthesis, onnx_path, design, board, tdir / "hls4ml_build",
                                      strategy=cfg.flows.hls4ml_strategy, timeout_s=cfg.flows.synthesis_timeout_s,
                                      **timing)
    except SynthesisToolMissing as exc:
        if cfg.feedback == "vivado":
            raise
        record["flows"]["synthesis"] = {"skipped": str(exc)}
        log.warning("synthesis skipped: %s", exc)
        return None
    for source, est in found.items():
        record["estimates"][source] = est.as_dict()
        log.info("%s: %s", source, est.total)
    record["flows"]["synthesis"] = {"sources": sorted(found)}
    return found.get("vivado")


def design_summary_from_estimate(spec: ModelSpec, est, style: str) -> str:
    """The per-layer summary with the folding the estimate actually used (derived or searched)."""
    from dataclasses import replace
    design = spec.to_design(style)
    layers = []
    for layer, le in zip(design.layers, est.per_layer):
        fold = {k: v for k, v in le.folding.items() if v is not None and hasattr(layer, k)}
        layers.append(replace(layer, **fold))
    return design_summary(design.with_layers(layers))
