"""Kill a real running search (SIGKILL of the driver and its local Ray) and resume it."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from codesign.runfolder import read_records

CONFIG = """
name: resume
seed: 3
training: {epochs: 3, patience: 3}
space: {hidden_layers: [1], width: [16, 32], weight_bits: [2, 4], act_bits: [2, 4]}
search: {num_samples: 6, max_concurrent: 1, algorithm: tpe}
flows: []
"""


def _kill_session(proc, marker: str) -> None:
    """SIGKILL the driver's process group, then any Ray process of its private temp dir."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    for p in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in (p.info["cmdline"] or [])):
            p.kill()


def _lines(run_dir: Path) -> list[dict]:
    path = run_dir / "trials.jsonl"
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.is_file() else []


def test_killed_search_resumes_without_losing_or_duplicating_trials(ray_local, tmp_path):
    from codesign.tune import resume_search
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "runs"
    ray_tmp = tempfile.mkdtemp(prefix="cdsray", dir="/tmp")  # short: Ray's socket paths are length-limited
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "codesign.cli", "search", str(cfg), "--output", str(out), "--quiet"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        run_dir = None
        while time.monotonic() < deadline:
            runs = list(out.glob("resume-*")) if out.exists() else []
            if runs and len(_lines(runs[0])) >= 2:
                run_dir = runs[0]
                break
            assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-2000:]
            time.sleep(0.5)
        assert run_dir is not None, "the search did not finish two trials in time"
    finally:
        _kill_session(proc, ray_tmp)
        log.close()
    before = {r["trial_id"]: r for r in _lines(run_dir)}
    assert 2 <= len(before) < 6
    _, summary = resume_search(run_dir, quiet=True)
    lines = _lines(run_dir)
    counts = Counter(r["trial_id"] for r in lines)
    records = read_records(run_dir)
    assert len(records) == 6 and summary["trials"] == 6 and summary["resumed"] is True
    assert all(counts[tid] == 1 for tid in before), counts  # finished trials kept, not re-run
    for tid, rec in before.items():
        assert next(r for r in records if r["trial_id"] == tid)["metrics"] == rec["metrics"]
    assert all(r["status"] in ("ok", "infeasible") for r in records)
    # the Optuna study in RUN/study.db: one COMPLETE trial per finished trial, none told twice or left running
    import optuna
    study = optuna.load_study(storage=f"sqlite:///{run_dir}/study.db", study_name=run_dir.name)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["ray_trial_id"] for t in complete) == sorted(r["trial_id"] for r in records)
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]


def test_resume_errors_are_clear(tmp_path):
    from codesign.config import ConfigError
    from codesign.tune import resume_search
    with pytest.raises(ConfigError, match="not a run folder"):
        resume_search(tmp_path)


def test_run_storage_never_shows_a_partly_written_file(tmp_path):
    """Ray copies its checkpoint into the run folder at every step; a kill mid-copy must not leave a torn file."""
    import pyarrow.fs as pafs
    from codesign.tune import run_storage
    fs = run_storage()
    target = tmp_path / "ray" / "searcher-state.pkl"
    stream = fs.open_output_stream(str(target))
    stream.write(b"half a pickle")
    assert not target.exists()  # a driver killed here leaves the previous complete file (or none)
    stream.close()
    assert target.read_bytes() == b"half a pickle"
    source = tmp_path / "staging"
    source.mkdir()
    (source / "experiment_state.json").write_text("{}" * 100_000)
    pafs.copy_files(str(source), str(tmp_path / "copy"), source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=fs)
    assert (tmp_path / "copy" / "experiment_state.json").read_text() == "{}" * 100_000
    assert [p.name for p in (tmp_path / "copy").iterdir()] == ["experiment_state.json"]


def test_resume_refuses_a_damaged_checkpoint_with_a_clear_error(tmp_path):
    from codesign.config import ConfigError
    from codesign.tune import check_experiment_state
    experiment = tmp_path / "ray"
    experiment.mkdir()
    (experiment / "experiment_state-2026.json").write_text('{"trial_data": []}')
    (experiment / "searcher-state-2026.pkl").write_bytes(b"")
    check_experiment_state(experiment.parent / "nothing-here")  # no files, nothing to complain about
    with pytest.raises(ConfigError, match="searcher-state-2026.pkl.*damaged.*trials.jsonl"):
        check_experiment_state(experiment)
