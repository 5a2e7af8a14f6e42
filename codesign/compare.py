"""Side by side: the run's own estimate vs finn-plus' estimate for the trained designs of a run.

By default both come from the trial records (finn-plus' numbers are recorded by trials that ran the
`finn-estimate` flow); `rerun` exports each trained model again and runs finn-plus on it."""
from __future__ import annotations

import tempfile
from pathlib import Path

from codesign import runfolder
from codesign.config import ConfigError
from codesign.records import Status, TrialRecord
from codesign.results import pareto_front
from codesign.scoring import estimate_spec
from codesign.space import spec_from_mapping
from codesign.trial import candidate_spec
from hw_models.estimate import ResourceEstimate, folded_design

COLUMNS = ("lut", "bram18", "dsp")
FINN_SOURCE = "finn-estimate"
NOT_RECORDED = (f"no {FINN_SOURCE} recorded (the run had neither `feedback: {FINN_SOURCE}` nor the `finn-estimate` flow); "
                "`codesign compare --rerun` computes it")


def _load_trained(cfg, run_dir: Path, record: TrialRecord):
    import torch

    from codesign.model import build_model
    spec = spec_from_mapping(record.spec) if record.spec else candidate_spec(cfg, dict(record.params))
    model = build_model(spec)
    state = torch.load(run_dir / "trials" / record.trial_id / "model.pt", weights_only=True)
    model.load_state_dict(state)
    return spec, model.eval()


def _totals(est: ResourceEstimate) -> dict:
    return {**{k: getattr(est.total, k) for k in COLUMNS}, "cycles": est.cycles_per_frame}


def _rerun_row(cfg, board, run_dir: Path, rec: TrialRecord, data) -> dict:
    from flows.finn import FinnError, finn_estimate
    from flows.qonnx import export_and_verify
    spec, model = _load_trained(cfg, run_dir, rec)
    ours = estimate_spec(cfg, spec, board)
    row = {"ours": _totals(ours), "ours_source": ours.source}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            exported = export_and_verify(model, data.x_test, Path(tmp), samples=16)
            fe = finn_estimate(exported.onnx_path, folded_design(cfg.design_of(spec), board,
                                                                 cfg.coefficients), board)
        row["finn"] = _totals(fe)
    except FinnError as exc:
        row["finn_error"] = str(exc)
    return row


def _stored_row(cfg, rec: TrialRecord) -> dict:
    estimates = rec.estimates
    ours = estimates[cfg.estimate_source]
    row = {"ours": _totals(ours), "ours_source": cfg.estimate_source}
    if FINN_SOURCE in estimates:
        row["finn"] = _totals(estimates[FINN_SOURCE])
    else:
        row["finn_error"] = NOT_RECORDED
    return row


def compare_run(run_dir: str | Path, *, all_trials: bool = False, rerun: bool = False) -> list[dict]:
    """For each Pareto (or every trained) design: our totals and finn-plus' totals and cycles per frame,
    read from the records, or with `rerun` recomputed from the saved models."""
    run = runfolder.open_run(run_dir)
    run_dir, cfg = run.path, run.config
    if cfg.style != "finn":
        raise ConfigError(f"the run's style is {cfg.style!r}: the FINN comparison needs style 'finn'")
    board = cfg.resolve_board()
    records = runfolder.read_records(run_dir)
    chosen = [r for r in records if r.status is Status.OK] if all_trials else pareto_front(records, cfg)
    data = None
    if rerun:
        from codesign.data import dataset_for
        data = dataset_for(cfg)
    rows = []
    for rec in chosen:
        row = {"trial_id": rec.trial_id, "design": rec.design_summary, "accuracy": rec.accuracy}
        row.update(_rerun_row(cfg, board, run_dir, rec, data) if rerun else _stored_row(cfg, rec))
        rows.append(row)
    return rows


def comparison_table(rows: list[dict]) -> str:
    from codesign.report import _table
    source = rows[0]["ours_source"] if rows else "analytic"
    headers = ["trial", "design", "acc %"]
    for c in (*COLUMNS, "cycles"):
        headers += [f"{c} {source}", f"{c} FINN", "diff"]
    out = []
    for r in rows:
        cells = [r["trial_id"], r["design"] or "-", f"{100 * r['accuracy']:.1f}"]
        for c in (*COLUMNS, "cycles"):
            a = r["ours"][c]
            f = r.get("finn", {}).get(c)
            diff = "-" if f is None else (f"{100 * (a - f) / f:+.0f}%" if f else ("0" if a == 0 else "n/a"))
            cells += [f"{a:,.0f}", "-" if f is None else f"{f:,.0f}", diff]
        out.append(cells)
    notes = [f"{r['trial_id']}: {r['finn_error']}" for r in rows if "finn_error" in r]
    return _table(headers, out, align_left={0, 1}) + ("\n" + "\n".join(notes) if notes else "")
