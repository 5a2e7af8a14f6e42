"""Synthesis where it matters: which trained trials the (expensive) feedback flow synthesises.

With `synthesis.policy: all` every trial runs its feedback flow in its own worker before it is
scored. With `front` or `top_k` a trial is scored by its model estimate and marked `pending`; when it
finishes, the driver decides (`select`) whether its design is worth synthesising and runs the
feedback flow as a separate Ray task beside the training of the next trials (`SynthesisQueue`; the
task runs `codesign.trial.synthesize`). With `recalibrate_every`, the run refits the model's
coefficients on what it has synthesised (`recalibrate`) and new trials are estimated with them.
The synthesised numbers are written back into the trial's record (a newer line of trials.jsonl,
which readers take over the first), so reports and the front use them where present; a record says
`synthesis: queued` until then, and a resumed search queues those again. The sampler keeps what it
was told when the trial finished (Optuna trials cannot change afterwards).
"""
from __future__ import annotations

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


COEFFICIENTS = "coefficients"  # RUN/coefficients/: v<N>.json refits, `current` names the newest, history.jsonl


def shipped_samples(family: str) -> list:
    """The project's Yosys calibration set of a device family (present in a checkout, not in a wheel)."""
    from codesign.calibration import read_samples
    path = Path(__file__).resolve().parents[1] / "scripts" / "data" / "calibration_yosys" / f"samples_{family}.csv"
    return read_samples(path) if path.is_file() else []


def run_samples(records: list[TrialRecord], board, feedback: str) -> list:
    """The run's synthesised designs as calibration samples (their feedback's LUT and FF)."""
    from hw_models.calibrate import Sample
    return [Sample(r.design, board, {"lut": e.total.lut, "ff": e.total.ff}, name=r.trial_id, source=feedback)
            for r in records if r.synthesis == DONE and r.design is not None and (e := r.estimates.get(feedback))]


def recalibrate(run_dir: str | Path, cfg: Config, version: int) -> dict:
    """Refit the model's LUT/FF coefficients on the shipped samples plus the run's synthesised designs
    (25% held out), write RUN/coefficients/v<version>.json and make it the current set. Returns the
    history entry: sample counts and held-out LUT/FF errors before and after."""
    import json

    from codesign import runfolder
    from codesign.calibration import _validation, pipeline_rules
    from hw_models.calibrate import Calibrator, split
    from hw_models.coefficients import calibration_document
    board = cfg.resolve_board()
    own = run_samples(runfolder.read_records(run_dir), board, cfg.feedback)
    samples = shipped_samples(board.family) + own
    train, val = split(samples, 0.25, cfg.seed)
    base = Calibrator(cfg.coefficients)
    cal = Calibrator(cfg.coefficients).fit(train)
    before, after = _validation(base, cal, val, ("lut", "ff"))
    entry = {"version": version, "file": f"{COEFFICIENTS}/v{version}.json", "run_samples": len(own),
             "samples": len(samples), "train": len(train), "validation": len(val), "before": before, "after": after}
    provenance = {"kind": "calibrated", "online": True, "family": board.family, "tools": [cfg.feedback],
                  **{k: entry[k] for k in ("samples", "run_samples", "train", "validation")},
                  "validation_metrics": after}
    runfolder.write_text(run_dir, entry["file"], calibration_document(cal.fitted_, provenance, base=cfg.coefficients,
                                                                   rules=pipeline_rules(samples)))
    runfolder.append_line(run_dir, f"{COEFFICIENTS}/history.jsonl", json.dumps(entry))
    runfolder.write_text(run_dir, f"{COEFFICIENTS}/current", entry["file"] + "\n")
    return entry


def current_coefficients(cfg: Config, run_dir: str | Path) -> tuple[Config, str]:
    """The config a new trial is estimated with (the run's newest refit, when there is one), and the
    name its records give those coefficients."""
    pointer = Path(run_dir) / COEFFICIENTS / "current"
    if cfg.synthesis.recalibrate_every and pointer.is_file():
        relative = pointer.read_text(encoding="utf-8").strip()
        if (Path(run_dir) / relative).is_file():
            return cfg.model_copy(update={"coefficients": str(Path(run_dir) / relative)}), relative
    return cfg, cfg.coefficients


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

    def recalibrate_if_due(self) -> dict | None:
        """With `recalibrate_every` N: a refit after every N-th synthesis (counted over the run)."""
        from codesign import runfolder
        every = self.cfg.synthesis.recalibrate_every
        if not every:
            return None
        done = sum(r.synthesis == DONE for r in runfolder.read_records(self.run_dir))
        version = done // every
        pointer = self.run_dir / COEFFICIENTS / "current"
        current = int(pointer.read_text().strip().rsplit("v", 1)[1].split(".")[0]) if pointer.is_file() else 0
        return recalibrate(self.run_dir, self.cfg, version) if version > current else None

    def collect(self, wait: bool = False) -> list[TrialRecord]:
        """Write back every finished synthesis (all of them, waiting, with `wait`), then refit the
        coefficients when due."""
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
        if done:
            self.recalibrate_if_due()
        return done
