"""Side by side: our analytic estimate vs finn-plus' estimate for the trained designs of a run."""
from __future__ import annotations

import tempfile
from pathlib import Path

from codesign import runfolder
from codesign.config import ConfigError
from codesign.results import pareto_front
from codesign.trial import candidate_spec
from hw_models.estimate import estimate, folded_design

COLUMNS = ("lut", "bram18", "dsp")


def _load_trained(cfg, run_dir: Path, record):
    import torch

    from codesign.model import build_model
    spec = candidate_spec(cfg, record["params"])
    model = build_model(spec)
    state = torch.load(run_dir / "trials" / record["trial_id"] / "model.pt", weights_only=True)
    model.load_state_dict(state)
    return spec, model.eval()


def compare_run(run_dir: str | Path, *, all_trials: bool = False) -> list[dict]:
    """For each Pareto (or every trained) design: analytic and FINN totals and cycles per frame."""
    from flows.finn import FinnError, finn_estimate
    from flows.qonnx import export_and_verify
    run = runfolder.open_run(run_dir)
    run_dir, cfg = run.path, run.config
    if cfg.style != "finn":
        raise ConfigError(f"the run's style is {cfg.style!r}: the FINN comparison needs style 'finn'")
    board = cfg.resolve_board()
    records = runfolder.read_records(run_dir)
    chosen = [r for r in records if r.get("status") == "ok"] if all_trials else pareto_front(records, cfg)
    from codesign.data import dataset_for
    data = dataset_for(cfg)
    rows = []
    for rec in chosen:
        spec, model = _load_trained(cfg, run_dir, rec)
        design = spec.to_design(cfg.style, cfg.clock_mhz)
        analytic = estimate(design, board)
        row = {"trial_id": rec["trial_id"], "design": rec.get("design"), "accuracy": rec["metrics"]["accuracy"],
               "analytic": {**analytic.total.as_dict(), "cycles": analytic.cycles_per_frame}}
        try:
            with tempfile.TemporaryDirectory() as tmp:
                exported = export_and_verify(model, data.x_test, Path(tmp), samples=16)
                fe = finn_estimate(exported.onnx_path, folded_design(design, board), board)
            row["finn"] = {**fe.total.as_dict(), "cycles": fe.cycles_per_frame}
        except FinnError as exc:
            row["finn_error"] = str(exc)
        rows.append(row)
    return rows


def comparison_table(rows: list[dict]) -> str:
    from codesign.report import _table
    headers = ["trial", "design", "acc %"]
    for c in (*COLUMNS, "cycles"):
        headers += [f"{c} analytic", f"{c} FINN", "diff"]
    out = []
    for r in rows:
        cells = [r["trial_id"], r["design"] or "-", f"{100 * r['accuracy']:.1f}"]
        for c in (*COLUMNS, "cycles"):
            a = r["analytic"][c]
            f = r.get("finn", {}).get(c)
            diff = "-" if f is None else (f"{100 * (a - f) / f:+.0f}%" if f else ("0" if a == 0 else "n/a"))
            cells += [f"{a:,.0f}", "-" if f is None else f"{f:,.0f}", diff]
        out.append(cells)
    notes = [f"{r['trial_id']}: {r['finn_error']}" for r in rows if "finn_error" in r]
    return _table(headers, out, align_left={0, 1}) + ("\n" + "\n".join(notes) if notes else "")
