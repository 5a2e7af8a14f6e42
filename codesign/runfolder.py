"""The one place that writes run folders.

Layout of a run folder:
    config.yaml          the resolved configuration (every default filled in)
    trials/<id>/         one folder per trial: record.json, model.pt, trial.log
    trials.jsonl         one record per finished trial, appended as trials finish
    trials.csv, trials.parquet, pareto.csv, summary.json   written at the end of the search
    ray/                 Ray Tune's experiment state
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path

import pandas as pd

CSV_COLUMNS = [
    "trial_id", "status", "failure_reason", "design", "style", "source", "accuracy", "val_accuracy",
    "lut", "ff", "bram18", "uram", "dsp", "lut_pct", "ff_pct", "bram18_pct", "uram_pct", "dsp_pct",
    "util_max", "fps", "latency_us", "latency_cycles", "cycles_per_frame", "fits", "epochs_run",
    "train_s", "estimate_s", "total_s", "params", "folding", "trial_dir",
]


def create_run_dir(output_dir: str | Path, name: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(output_dir).resolve() / f"{name}-{stamp}"
    run_dir, i = base, 1
    while run_dir.exists():
        run_dir, i = Path(f"{base}-{i}"), i + 1
    (run_dir / "trials").mkdir(parents=True)
    return run_dir


def write_text(run_dir: Path, relative: str, text: str) -> Path:
    path = Path(run_dir) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def trial_dir(run_dir: str | Path, trial_id: str) -> Path:
    path = Path(run_dir) / "trials" / trial_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_state_dict(directory: Path, state_dict) -> Path:
    import torch
    path = Path(directory) / "model.pt"
    torch.save(state_dict, path)
    return path


def _json_default(o):
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _dumps(obj) -> str:
    return json.dumps(obj, default=_json_default, allow_nan=True)


def append_record(run_dir: str | Path, record: dict) -> None:
    """Write a finished trial's record into its folder and append it to trials.jsonl."""
    run_dir = Path(run_dir)
    directory = trial_dir(run_dir, record["trial_id"])
    (directory / "record.json").write_text(json.dumps(record, default=_json_default, indent=1))
    with open(run_dir / "trials.jsonl", "a") as f:
        f.write(_dumps(record) + "\n")


def finished_record(run_dir: str | Path, trial_id: str) -> dict | None:
    """The record of a trial that already finished in this run folder (in trials.jsonl), else None.
    A trial whose worker process crashed has not finished: it is run again."""
    for rec in read_records(run_dir):
        if rec["trial_id"] == trial_id and not rec.get("process_error"):
            return rec
    return None


def read_records(run_dir: str | Path) -> list[dict]:
    """Finished trial records; the last record of a trial id wins (a re-run trial replaces its first)."""
    path = Path(run_dir) / "trials.jsonl"
    if not path.is_file():
        return []
    by_id: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            by_id[rec["trial_id"]] = rec
    return list(by_id.values())


def _row(record: dict) -> dict:
    row = {k: record.get(k) for k in CSV_COLUMNS}
    row.update({k: record.get("metrics", {}).get(k) for k in CSV_COLUMNS if k in record.get("metrics", {})})
    for key in ("params", "folding"):
        row[key] = _dumps(record.get(key))
    return row


def records_frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([_row(r) for r in records], columns=CSV_COLUMNS)


def write_tables(run_dir: str | Path, records: list[dict], pareto_ids: list[str], summary: dict) -> None:
    """trials.csv, trials.parquet, pareto.csv (front only, best accuracy first) and summary.json."""
    run_dir = Path(run_dir)
    frame = records_frame(records)
    frame.to_csv(run_dir / "trials.csv", index=False)
    frame.to_parquet(run_dir / "trials.parquet", index=False)
    front = frame[frame["trial_id"].isin(pareto_ids)].sort_values("accuracy", ascending=False)
    front.to_csv(run_dir / "pareto.csv", index=False)
    write_text(run_dir, "summary.json", json.dumps(summary, default=_json_default, indent=1))
