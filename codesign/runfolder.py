"""The one place that writes run folders.

Layout of a run folder:
    config.yaml          the resolved configuration (every default filled in)
    trials/<id>/         one folder per trial: record.json, result.json, model.pt, trial.log
    trials.jsonl         one record per finished trial, appended as trials finish
    trials.csv, trials.parquet, pareto.csv, summary.json   written at the end of the search
    ray/                 Ray Tune's experiment state
    cache/               results the flows share across trials (e.g. Yosys' counts of identical RTL)

Paths inside records are relative to the run folder, so a copied or moved folder stays whole.
Every file is written whole (temporary name + rename, or one fsync'ed line for trials.jsonl) and read
tolerantly: a damaged line of trials.jsonl is skipped and reported, never fatal.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from codesign.config import Config, ConfigError, load_config
from codesign.records import RecordError, Status, Timings, TrialRecord

CSV_COLUMNS = [
    "trial_id", "status", "failure_reason", "design", "style", "source", "accuracy", "val_accuracy", "evidence",
    "lut", "ff", "bram18", "uram", "dsp", "lut_pct", "ff_pct", "bram18_pct", "uram_pct", "dsp_pct",
    "util_max", "fps", "fmax_mhz", "latency_us", "latency_cycles", "cycles_per_frame", "fits", "epochs_run",
    "train_s", "estimate_s", "total_s", "params", "folding", "trial_dir",
]


RECORDS = "trials.jsonl"
RESULT = "result.json"  # a trial's finished record, written by its worker before it reports to Ray
CACHE = "cache"  # results the flows share across the run's trials, keyed by their inputs (identical RTL)


def check_output_dir(output_dir: str | Path) -> Path:
    """The parent of new run folders: an existing directory or one that can be created (checked
    before any work starts)."""
    path = Path(output_dir).resolve()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"output folder {str(output_dir)!r}: {str(probe)!r} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {str(output_dir)!r}: {str(probe)!r} is not writable")
    return path


def create_run_dir(output_dir: str | Path, name: str) -> Path:
    """A new, empty run folder NAME-STAMP (NAME-STAMP-1, -2... when taken). mkdir is atomic: two
    searches started in the same second never share a folder."""
    parent = check_output_dir(output_dir)
    parent.mkdir(parents=True, exist_ok=True)
    base = parent / f"{name}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    for i in range(10_000):
        run_dir = base if i == 0 else Path(f"{base}-{i}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        (run_dir / "trials").mkdir()
        return run_dir
    raise ConfigError(f"output folder {str(parent)!r}: no free run folder name {base.name}-N")


def _write_atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_text(run_dir: Path, relative: str, text: str) -> Path:
    return _write_atomic(Path(run_dir) / relative, text)


def append_line(run_dir: Path, relative: str, line: str) -> None:
    """One whole, fsync'ed line appended to a log of the run folder (e.g. coefficients/history.jsonl)."""
    path = Path(run_dir) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line.rstrip("\n") + "\n")
        f.flush()
        os.fsync(f.fileno())


def trial_dir(run_dir: str | Path, trial_id: str) -> Path:
    path = Path(run_dir) / "trials" / trial_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def resume_command(run_dir: str | Path) -> str:
    return f"codesign search --resume {shlex.quote(str(run_dir))}"


def relative_trial_dir(trial_id: str) -> str:
    """How records name a trial's folder: relative to the run folder."""
    return f"trials/{trial_id}"


def relative_path(run_dir: str | Path, path: str | Path) -> str:
    """How records name an artefact: relative to the run folder."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(run_dir))).as_posix()


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


def append_record(run_dir: str | Path, record: TrialRecord) -> None:
    """Write a finished trial's record into its folder and append it to trials.jsonl as one whole,
    fsync'ed line (a line torn by an earlier crash is closed first so it cannot swallow this one)."""
    run_dir = Path(run_dir)
    data = record.to_json()
    directory = trial_dir(run_dir, record.trial_id)
    _write_atomic(directory / "record.json", json.dumps(data, default=_json_default, indent=1))
    line = (_dumps(data) + "\n").encode()
    fd = os.open(run_dir / RECORDS, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_result(directory: Path, record: TrialRecord) -> None:
    """The worker's copy of a finished trial's record (trials/<id>/result.json): lets a resumed search
    complete a trial whose driver died before writing its record, instead of training it again."""
    _write_atomic(Path(directory) / RESULT, json.dumps(record.to_json(), default=_json_default, indent=1))


def _load_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _load_record(path: Path) -> TrialRecord | None:
    data = _load_json(path)
    try:
        return TrialRecord.from_json(data) if data is not None else None
    except RecordError:
        return None


def finished_record(records: list[TrialRecord], trial_id: str) -> TrialRecord | None:
    """The record of a trial that already finished in this run folder (in trials.jsonl), else None.
    A trial whose worker process crashed has not finished: it is run again."""
    for rec in records:
        if rec.trial_id == trial_id and not rec.process_error:
            return rec
    return None


def _same_params(a, b) -> bool:
    return json.loads(_dumps(dict(a))) == json.loads(_dumps(dict(b)))


def twin_record(records: list[TrialRecord], trial_id: str, params: dict) -> TrialRecord | None:
    """An earlier finished trial of this run with the same sampled parameters: the same network, bits,
    folding and (one run, one config) seed, so training it again would compute the same. Failed,
    stopped and crashed trials do not count."""
    for rec in records:
        if rec.trial_id != trial_id and rec.status in (Status.OK, Status.INFEASIBLE) and _same_params(rec.params, params):
            return rec
    return None


def reuse_twin(run_dir: str | Path, twin: TrialRecord, trial_id: str) -> TrialRecord:
    """`twin`'s results as trial `trial_id`'s record, its files copied into this trial's folder (every
    folder stays whole) and a line in its trial.log saying where they came from."""
    run_dir = Path(run_dir)
    src, dst = run_dir / "trials" / twin.trial_id, trial_dir(run_dir, trial_id)
    artifacts = []
    for name in twin.artifacts:
        path = run_dir / name
        if path.parent == src and path.is_file():
            shutil.copy2(path, dst / path.name)
            path = dst / path.name
        artifacts.append(relative_path(run_dir, path))
    with open(dst / "trial.log", "a", encoding="utf-8") as log:
        log.write(f"same parameters as trial {twin.trial_id}: its results and files are reused, not retrained\n")
    return twin.replace(trial_id=trial_id, trial_dir=relative_trial_dir(trial_id), artifacts=tuple(artifacts),
                        duplicate_of=twin.trial_id, completed_from=None, node_id=None, timings=Timings())


def completed_result(run_dir: str | Path, trial_id: str, params: dict) -> TrialRecord | None:
    """The finished record a worker left in trials/<id>/result.json for these params, else None
    (no file, a damaged one, or one for other params: then the trial runs again)."""
    rec = _load_record(Path(run_dir) / "trials" / trial_id / RESULT)
    if rec is None or rec.trial_id != trial_id or not _same_params(params, rec.params):
        return None
    return rec


@dataclass(frozen=True)
class SkippedLine:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: skipped ({self.reason})"


@dataclass(frozen=True)
class RecordsRead:
    records: list[TrialRecord]  # the last record of each trial id, in order of first appearance
    skipped: tuple[SkippedLine, ...]  # damaged lines (a crash mid-write, a full disk, an edit)


def scan_records(run_dir: str | Path) -> RecordsRead:
    """Finished trial records; the last record of a trial id wins (a re-run trial replaces its first).
    Lines that are not a JSON record with a trial_id are skipped and listed."""
    path = Path(run_dir) / RECORDS
    if not path.is_file():
        return RecordsRead([], ())
    by_id: dict[str, TrialRecord] = {}
    skipped = []
    for i, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            skipped.append(SkippedLine(path, i, "not UTF-8 text"))
            continue
        except ValueError:
            skipped.append(SkippedLine(path, i, "truncated or not JSON"))
            continue
        if not (isinstance(rec, dict) and isinstance(rec.get("trial_id"), str) and isinstance(rec.get("status"), str)
                and isinstance(rec.get("metrics"), dict)):
            skipped.append(SkippedLine(path, i, "not a trial record"))
            continue
        try:
            by_id[rec["trial_id"]] = TrialRecord.from_json(rec)
        except RecordError as exc:
            skipped.append(SkippedLine(path, i, str(exc)))
    return RecordsRead(list(by_id.values()), tuple(skipped))


def read_records(run_dir: str | Path) -> list[TrialRecord]:
    return scan_records(run_dir).records


@dataclass(frozen=True)
class Recovery:
    skipped: tuple[SkippedLine, ...]  # damaged lines of trials.jsonl
    recovered: tuple[str, ...]  # trial ids whose record came back from their folder


def recover_records(run_dir: str | Path) -> Recovery:
    """Before a resume: drop the damaged lines of trials.jsonl, then re-append the record of every
    trial whose line is missing, from trials/<id>/record.json (written before the line) or result.json
    (written by the worker before the driver heard of the result), so no finished trial is lost or
    trained twice. A trial with neither runs again if Ray had not finished it."""
    run_dir = Path(run_dir)
    scan = scan_records(run_dir)
    if scan.skipped:
        bad = {s.line for s in scan.skipped}
        lines = (run_dir / RECORDS).read_bytes().split(b"\n")
        kept = b"".join(line + b"\n" for i, line in enumerate(lines, start=1) if i not in bad and line.strip())
        _write_atomic(run_dir / RECORDS, kept.decode("utf-8"))
    known = {r.trial_id for r in scan.records}
    recovered = []
    for folder in sorted(p for p in (run_dir / "trials").glob("*") if p.is_dir() and p.name not in known):
        rec = _load_record(folder / "record.json")
        if rec is None and (rec := _load_record(folder / RESULT)) is not None:
            rec = rec.replace(completed_from=RESULT)
        if rec is not None and rec.trial_id == folder.name:
            append_record(run_dir, rec)
            recovered.append(folder.name)
    return Recovery(scan.skipped, tuple(recovered))


@dataclass(frozen=True)
class RunFolder:
    path: Path
    config: Config

    def scan(self) -> RecordsRead:
        return scan_records(self.path)

    def summary(self) -> dict:
        """summary.json ({} while the search runs, or when it was killed before writing it)."""
        return _load_json(self.path / "summary.json") or {}


def open_run(path: str | Path) -> RunFolder:
    """The one check that a folder is a run folder (report, compare, html report, resume)."""
    run = Path(path)
    if not run.is_dir():
        raise ConfigError(f"{str(path)!r}: not a run folder ({'a file' if run.exists() else 'does not exist'})")
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"{str(path)!r}: not a run folder (no config.yaml)")
    try:
        cfg = load_config(run / "config.yaml")
    except ConfigError as exc:
        raise ConfigError(f"{str(path)!r}: damaged run folder: {' '.join(str(exc).split())}") from None
    return RunFolder(run.resolve(), cfg)


def _folding(record: TrialRecord) -> list[dict] | None:
    if record.design is None:
        return None
    return [{k: getattr(layer, k) for k in ("pe", "simd", "reuse_factor") if getattr(layer, k, None) is not None}
            for layer in record.design.layers]


def _row(record: TrialRecord) -> dict:
    t = record.timings
    row = {"trial_id": record.trial_id, "status": record.status.value, "failure_reason": record.failure_reason,
           "design": record.design_summary, "style": record.style, "source": record.source, "fits": record.fits,
           "epochs_run": record.epochs_run, "train_s": t.train_s, "estimate_s": t.estimate_s, "total_s": t.total_s,
           "params": _dumps(dict(record.params)), "folding": _dumps(_folding(record)), "trial_dir": record.trial_dir}
    row.update({k: record.metrics[k] for k in CSV_COLUMNS if k in record.metrics})
    return row


def records_frame(records: list[TrialRecord]) -> pd.DataFrame:
    return pd.DataFrame([_row(r) for r in records], columns=CSV_COLUMNS)


def write_tables(run_dir: str | Path, records: list[TrialRecord], pareto_ids: list[str], summary: dict) -> None:
    """trials.csv, trials.parquet, pareto.csv (front only, best accuracy first) and summary.json."""
    run_dir = Path(run_dir)
    frame = records_frame(records)
    frame.to_csv(run_dir / "trials.csv", index=False)
    frame.to_parquet(run_dir / "trials.parquet", index=False)
    front = frame[frame["trial_id"].isin(pareto_ids)].sort_values("accuracy", ascending=False)
    front.to_csv(run_dir / "pareto.csv", index=False)
    write_text(run_dir, "summary.json", json.dumps(summary, default=_json_default, indent=1))
