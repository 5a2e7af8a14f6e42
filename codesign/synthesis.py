"""Synthesis where it matters: which trained trials the (expensive) feedback flow synthesises.

With `synthesis.policy: all` every trial runs its feedback flow in its own worker before it is
scored. With `front` or `top_k` a trial is scored by its model estimate and marked `pending`; when it
finishes, the driver decides (`select`) whether its design is worth synthesising and runs the
feedback flow as a separate Ray task beside the training of the next trials (`SynthesisQueue`).
The synthesised numbers are written back into the trial's record (a newer line of trials.jsonl,
which readers take over the first), so reports and the front use them where present; a record says
`synthesis: queued` until then, and a resumed search queues those again. The sampler keeps what it
was told when the trial finished (Optuna trials cannot change afterwards).
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from codesign.config import Config
from codesign.records import Status, TrialRecord

PENDING, QUEUED, DONE, NOT_SELECTED, FAILED = "pending", "queued", "done", "not selected", "failed"


def deferred(cfg: Config) -> bool:
    """Whether trials leave their feedback flow to the driver's synthesis queue."""
    from flows.registry import FLOWS
    return cfg.synthesis.policy != "all" and cfg.feedback in FLOWS


def _oriented(record: TrialRecord, cfg: Config) -> list[float] | None:
    """The record's objective values, each turned so that larger is better."""
    if record.objective_values is None:
        return None
    return [v if o.direction == "max" else -v for v, o in zip(record.objective_values, cfg.search.objectives)]


def _dominates(a: list[float], b: list[float], margin: list[float] | None = None) -> bool:
    m = margin or [0.0] * len(a)
    return all(x >= y + d for x, y, d in zip(a, b, m)) and (any(x > y + d for x, y, d in zip(a, b, m)) or any(m))


def select(candidate: TrialRecord, records: list[TrialRecord], cfg: Config) -> bool:
    """Whether `candidate` (a trained trial scored by its model estimate) is synthesised under the
    config's policy, given the run's other records (synthesised numbers where present).

    front: no trained, feasible trial beats it by more than `margin` x (that objective's range over
    the run) in every objective, i.e. it is on the front or within the margin of it.
    top_k: fewer than `top_k` trained, feasible trials dominate it."""
    policy = cfg.synthesis.policy
    if policy == "all":
        return True
    mine = _oriented(candidate, cfg)
    if candidate.status is not Status.OK or mine is None:
        return False
    others = [v for r in records if r.trial_id != candidate.trial_id and r.status is Status.OK
              and (v := _oriented(r, cfg)) is not None]
    if policy == "top_k":
        return sum(_dominates(v, mine) for v in others) < cfg.synthesis.top_k
    values = others + [mine]
    spans = [max(col) - min(col) for col in zip(*values)]
    margin = [cfg.synthesis.margin * s for s in spans]
    return not any(_dominates(v, mine, margin) for v in others)


def synthesize(cfg: Config, run_dir: str | Path, record: TrialRecord) -> TrialRecord:
    """Run the feedback flow on a finished trial's trained network (a Ray task's work) and return the
    record scored by it, `synthesis: done`; a failing flow fails the trial, as it would under `all`."""
    import torch

    from codesign.model import build_model
    from codesign.trial import TrialContext, _trial_log, candidate_spec, run_toolchain, score_feedback
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


@dataclass
class SynthesisQueue:
    """The driver's side: decide, submit, write back. `submit(record)` starts the work and returns a
    handle; `ready(handles)` returns those finished and `result(handle)` their record (both given by the
    Ray callback; tests pass synchronous ones)."""

    run_dir: Path
    cfg: Config
    submit: Callable[[TrialRecord], object]
    ready: Callable[[list], list]
    result: Callable[[object], TrialRecord]
    running: dict = field(default_factory=dict)  # handle -> trial id

    def requeue(self) -> list[str]:
        """After a resume: submit again every trial that was queued but never written back."""
        from codesign import runfolder
        ids = []
        for rec in runfolder.read_records(self.run_dir):
            if rec.synthesis == QUEUED and rec.trial_id not in self.running.values():
                self.running[self.submit(rec)] = rec.trial_id
                ids.append(rec.trial_id)
        return ids

    def offer(self, record: TrialRecord) -> bool:
        """A finished trial: queue its synthesis when the policy selects it; its record says which."""
        from codesign import runfolder
        if record.synthesis != PENDING:
            return False
        records = runfolder.read_records(self.run_dir)
        chosen = select(record, records, self.cfg)
        record = record.replace(synthesis=QUEUED if chosen else NOT_SELECTED)
        runfolder.append_record(self.run_dir, record)
        if chosen:
            self.running[self.submit(record)] = record.trial_id
        return chosen

    def collect(self, wait: bool = False) -> list[TrialRecord]:
        """Write back every finished synthesis (all of them, waiting, with `wait`)."""
        from codesign import runfolder
        done = []
        while self.running:
            handles = list(self.running)
            finished = self.ready(handles) if not wait else handles
            if not finished:
                break
            for handle in finished:
                trial_id = self.running.pop(handle)
                try:
                    record = self.result(handle)
                except Exception as exc:  # the task's process died (out of memory, a lost node)
                    queued = next(r for r in runfolder.read_records(self.run_dir) if r.trial_id == trial_id)
                    record = queued.replace(status=Status.FAILED, synthesis=FAILED,
                                            failure_reason=f"synthesis task: {type(exc).__name__}: {exc}")
                runfolder.append_record(self.run_dir, record)
                runfolder.write_result(runfolder.trial_dir(self.run_dir, record.trial_id), record)
                done.append(record)
            if not wait:
                break
        return done
