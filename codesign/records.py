"""Trial records: what a finished trial leaves behind, as frozen data (Optuna's `FrozenTrial` is the
model), and their versioned JSON form in the run folder.

Schema 2 (written since 2026-12) carries the design as data (the estimator contract of
`hw_models.design_to_mapping`) and the estimates as `ResourceEstimate`s. Schema 1 (the untyped dicts
written before, no `schema` key) is read too: its design is rebuilt from the recorded network and
folding. A newer schema than this code knows is an error naming both versions.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Mapping

from boards import Resources
from flows.base import FlowResult
from hw_models import Design, ResourceEstimate, design_from_mapping, design_to_mapping

SCHEMA_VERSION = 2


class RecordError(ValueError):
    """A record that cannot be read (a newer schema, a missing key)."""


class Status(str, Enum):
    OK = "ok"  # trained and scored
    INFEASIBLE = "infeasible"  # breaks the board's fill limits or a budget (not trained when known before)
    FAILED = "failed"  # an error; the reason says which
    STOPPED = "stopped"  # stopped early by the scheduler (ASHA)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Timings:
    estimate_s: float | None = None  # the shape-only estimate
    train_s: float | None = None
    total_s: float | None = None  # the whole trial, flows included


@dataclass(frozen=True)
class TrialRecord:
    trial_id: str
    status: Status
    params: Mapping[str, Any]  # the sampled parameters (replayed by codesign.space.spec_from_params)
    failure_reason: str | None = None
    style: str | None = None
    feedback: str | None = None
    source: str | None = None  # the estimate source that scored the trial
    design: Design | None = None  # the hardware view, with the folding its estimate used
    spec: Mapping[str, Any] | None = None  # the network as trained (codesign.space.ModelSpec as data)
    metrics: Mapping[str, float] = field(default_factory=dict)
    constraints: Mapping[str, float] = field(default_factory=dict)  # <= 0 satisfied (Optuna convention)
    objective_values: tuple[float, ...] | None = None
    fits: bool | None = None
    estimates: Mapping[str, ResourceEstimate] = field(default_factory=dict)  # by source
    estimate_before_training: Resources | None = None  # shape-only totals, when trained weights re-scored it
    flows: Mapping[str, FlowResult] = field(default_factory=dict)  # measurements or skip reason, by flow
    epochs_run: int | None = None
    history: tuple[tuple[float, ...], ...] = ()  # (epoch, loss, val_accuracy) per epoch
    timings: Timings = Timings()
    trial_dir: str | None = None  # relative to the run folder
    artifacts: tuple[str, ...] = ()  # relative to the run folder
    node_id: str | None = None  # the Ray node that ran it
    process_error: bool = False  # its worker process died: run again on resume
    completed_from: str | None = None  # a file it was completed from on resume, instead of re-running
    duplicate_of: str | None = None  # an earlier trial with the same parameters, whose results it reuses
    user_attrs: Mapping[str, Any] = field(default_factory=dict)  # extra data (benchmarks), as in Optuna
    # resource -> the source its metric came from (FF under finn-estimate: the analytic model); empty: `source`
    resource_sources: Mapping[str, str] = field(default_factory=dict)
    # the feedback's synthesis under a policy other than `all` (codesign.synthesis): pending, queued,
    # done, not selected, failed; None when every trial is synthesised in its own worker
    synthesis: str | None = None
    coefficients: str | None = None  # the coefficients of its model estimate (a name, or a run's refit: coefficients/v2.json)

    @property
    def accuracy(self) -> float | None:
        return self.metrics.get("accuracy")

    @property
    def design_summary(self) -> str | None:
        from codesign.space import design_summary
        return design_summary(self.design) if self.design is not None else None

    def replace(self, **changes) -> "TrialRecord":
        return replace(self, **changes)

    def to_json(self) -> dict:
        out = {"schema": SCHEMA_VERSION, "trial_id": self.trial_id, "status": self.status.value,
               "params": dict(self.params), "failure_reason": self.failure_reason, "style": self.style,
               "feedback": self.feedback, "source": self.source,
               "design": design_to_mapping(self.design) if self.design is not None else None,
               "design_summary": self.design_summary, "spec": self.spec, "metrics": dict(self.metrics),
               "constraints": dict(self.constraints),
               "objective_values": list(self.objective_values) if self.objective_values is not None else None,
               "fits": self.fits, "estimates": {k: v.as_dict() for k, v in self.estimates.items()},
               "estimate_before_training": (self.estimate_before_training.as_dict()
                                            if self.estimate_before_training is not None else None),
               "flows": {k: _flow_json(v) for k, v in self.flows.items()}, "epochs_run": self.epochs_run,
               "history": [list(h) for h in self.history], "timings": vars(self.timings).copy(),
               "trial_dir": self.trial_dir, "artifacts": list(self.artifacts), "node_id": self.node_id,
               "process_error": self.process_error, "completed_from": self.completed_from,
               "duplicate_of": self.duplicate_of,
               "user_attrs": dict(self.user_attrs), "resource_sources": dict(self.resource_sources),
               "synthesis": self.synthesis, "coefficients": self.coefficients}
        return out

    @classmethod
    def from_json(cls, data: Mapping) -> "TrialRecord":
        version = data.get("schema", 1)
        if version not in (1, SCHEMA_VERSION):
            raise RecordError(f"trial record schema {version!r}: this version of codesign reads schemas 1 and "
                              f"{SCHEMA_VERSION} (a newer codesign wrote it)")
        try:
            return _from_json(data, version)
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"trial record {data.get('trial_id', '?')!r}: {type(exc).__name__}: {exc}") from None


def _flow_json(result: FlowResult) -> dict:
    """A flow's part of the record: its measurements, or why it was skipped (its estimates and files
    are the record's `estimates` and `artifacts`)."""
    return {**result.detail, "skipped": result.skipped} if result.skipped else dict(result.detail)


def _flow_from_json(name: str, data: Mapping) -> FlowResult:
    data = dict(data)
    skipped = data.pop("skipped", None)
    return FlowResult(name, data, skipped)


def _from_json(data: Mapping, version: int) -> TrialRecord:
    if version == 1:
        design = _legacy_design(data)
        timings = Timings(data.get("estimate_s"), data.get("train_s"), data.get("total_s"))
    else:
        design = design_from_mapping(data["design"])[0] if data.get("design") else None
        timings = Timings(**(data.get("timings") or {}))
    before = data.get("estimate_before_training")
    values = data.get("objective_values")
    return TrialRecord(
        trial_id=data["trial_id"], status=Status(data["status"]), params=dict(data.get("params") or {}),
        failure_reason=data.get("failure_reason"), style=data.get("style"), feedback=data.get("feedback"),
        source=data.get("source"), design=design, spec=data.get("spec"), metrics=dict(data.get("metrics") or {}),
        constraints=dict(data.get("constraints") or {}),
        objective_values=tuple(values) if values is not None else None, fits=data.get("fits"),
        estimates={k: ResourceEstimate.from_dict(v) for k, v in (data.get("estimates") or {}).items()},
        estimate_before_training=Resources(**before) if before else None,
        flows={k: _flow_from_json(k, v) for k, v in (data.get("flows") or {}).items()},
        epochs_run=data.get("epochs_run"), history=tuple(tuple(h) for h in data.get("history") or ()),
        timings=timings, trial_dir=data.get("trial_dir"), artifacts=tuple(data.get("artifacts") or ()),
        node_id=data.get("node_id"), process_error=bool(data.get("process_error")),
        completed_from=data.get("completed_from"), duplicate_of=data.get("duplicate_of"), user_attrs=dict(data.get("user_attrs") or {}),
        resource_sources=dict(data.get("resource_sources") or {}), synthesis=data.get("synthesis"),
        coefficients=data.get("coefficients"))


def _legacy_design(data: Mapping) -> Design | None:
    """Schema 1 kept the design as text: rebuild it from the recorded network and per-layer folding."""
    from codesign.space import ConvSpec, DenseSpec, ModelSpec
    spec, style = data.get("spec"), data.get("style")
    if not spec or not style:
        return None
    image = spec.get("image_shape")
    model = ModelSpec(**{**spec, "image_shape": tuple(image) if image else None,
                         "convs": tuple(ConvSpec(**c) for c in spec["convs"]),
                         "dense": tuple(DenseSpec(**d) for d in spec["dense"]),
                         "folding": tuple(tuple(f) for f in spec["folding"]) if spec.get("folding") else None})
    design = model.to_design(style)
    folding = data.get("folding") or []
    layers = [replace(layer, **{k: v for k, v in fold.items() if v is not None and hasattr(layer, k)})
              for layer, fold in zip(design.layers, folding)] + list(design.layers[len(folding):])
    return design.with_layers(layers)
