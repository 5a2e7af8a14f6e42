"""Kill (SIGKILL) or interrupt (SIGINT) a real running search, damage or move its folder, and resume it."""
import json
import os
import re
import shutil
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


CONFIG_SMALL = """
name: killed
seed: 3
training: {epochs: 1, patience: 1}
space: {hidden_layers: [1], width: [16, 32], weight_bits: [2, 4], act_bits: [2, 4]}
search: {num_samples: 4, max_concurrent: 1, algorithm: tpe}
flows: []
"""

# The driver blocks in the record writer of the third finished trial, so the test can kill it between
# the worker's end of training and the record: the worst moment for a crash.
BLOCKING_DRIVER = """
import sys, time
from pathlib import Path
from codesign import tune
write_record = tune.RecordWriter.on_trial_complete
def blocked(self, iteration, trials, trial, **info):
    if len(list(Path(self.run_dir).glob("trials/*/record.json"))) >= 2:
        (Path(self.run_dir) / "BLOCKED").write_text(trial.trial_id)
        time.sleep(600)
    write_record(self, iteration, trials, trial, **info)
tune.RecordWriter.on_trial_complete = blocked
from codesign.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _start_driver(tmp_path: Path, config: str, argv: list[str], code: str | None = None):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config)
    ray_tmp = tempfile.mkdtemp(prefix="cdsray", dir="/tmp")  # short: Ray's socket paths are length-limited
    command = ["-c", code, *argv] if code else ["-m", "codesign.cli", *argv]
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen([sys.executable, *command, str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "RAY_TMPDIR": ray_tmp}, start_new_session=True)
    return proc, ray_tmp, log


def _wait_for(proc, tmp_path: Path, found, what: str, timeout_s: float = 240):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = found()
        if result:
            return result
        assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen in {timeout_s} s")


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A run folder whose driver was SIGKILLed after the third trial had trained (trials/<id>/result.json
    written) but before its record was: two records, one orphaned result, one trial not started.
    Tests copy it; the folder itself stays as the kill left it."""
    tmp_path = tmp_path_factory.mktemp("killed")
    out = tmp_path / "runs"
    proc, ray_tmp, log = _start_driver(tmp_path, CONFIG_SMALL, ["search", "--output", str(out), "--quiet"],
                                       code=BLOCKING_DRIVER)
    try:
        blocked = _wait_for(proc, tmp_path, lambda: list(out.glob("killed-*/BLOCKED")), "the third trial")
    finally:
        _kill_session(proc, ray_tmp)
        log.close()
    run_dir = blocked[0].parent
    blocked[0].unlink()
    return run_dir


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _copy(run_dir: Path, target: Path) -> Path:
    shutil.copytree(run_dir, target)
    return target


def _orphan(run_dir: Path) -> str:
    """The trial that finished training but has no record."""
    (result,) = [p for p in run_dir.glob("trials/*/result.json") if not (p.parent / "record.json").exists()]
    return result.parent.name


def test_killed_search_resumes_without_losing_duplicating_or_retraining(ray_local, killed_run, tmp_path):
    from codesign.tune import resume_search
    run_dir = _copy(killed_run, tmp_path / "run")
    before = {r["trial_id"]: r for r in _lines(run_dir)}
    orphan = _orphan(run_dir)
    assert len(before) == 2 and orphan not in before
    trained = json.loads((run_dir / "trials" / orphan / "result.json").read_text())
    _, summary = resume_search(run_dir, quiet=True)
    counts = Counter(r["trial_id"] for r in _lines(run_dir))
    records = {r.trial_id: r for r in read_records(run_dir)}
    assert len(records) == 4 and summary["trials"] == 4 and summary["resumed"] is True
    assert summary["status"] == "complete"
    assert all(n == 1 for n in counts.values()), counts  # nothing recorded twice
    for tid, rec in before.items():
        assert records[tid].metrics == rec["metrics"]
    # completed from what its worker left, not trained a second time
    assert records[orphan].completed_from == "result.json"
    assert records[orphan].metrics == trained["metrics"] and [list(h) for h in records[orphan].history] == trained["history"]
    assert (run_dir / "trials" / orphan / "trial.log").read_text().count("trained:") == 1
    assert all(r.status in ("ok", "infeasible") for r in records.values())
    # the Optuna study in RUN/study.db: one COMPLETE trial per finished trial, none told twice or left running
    import optuna
    name = json.loads((run_dir / "study.json").read_text())["name"]  # the folder it started in: a copy keeps it
    study = optuna.load_study(storage=f"sqlite:///{run_dir}/study.db", study_name=name)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["ray_trial_id"] for t in complete) == sorted(records)
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]


def test_copied_run_folder_resumes_into_itself_and_leaves_the_original_untouched(ray_local, killed_run, tmp_path,
                                                                                  capsys):
    from codesign.tune import resume_search
    original = _copy(killed_run, tmp_path / "original")
    copy = _copy(original, tmp_path / "moved" / "run_copy")
    snapshot = _tree_bytes(original)
    run_dir, summary = resume_search(copy)
    assert run_dir == copy.resolve() and summary["status"] == "complete"
    assert _tree_bytes(original) == snapshot  # not one byte of the original changed
    assert len(read_records(copy)) == 4 and len(_lines(copy)) == 4
    assert all(r.trial_dir.startswith("trials/") for r in read_records(copy))
    progress = re.findall(r"\[(\d+)/(\d+)\].*~(-?[\d.]+|nan) s left", capsys.readouterr().err)
    assert progress and all(int(done) <= int(total) for done, total, _ in progress), progress
    assert all(not eta.startswith("-") for *_, eta in progress), progress


def test_truncated_trials_jsonl_is_reported_and_resumed(ray_local, killed_run, tmp_path, capsys):
    from codesign.cli import main
    from codesign.tune import resume_search
    run_dir = _copy(killed_run, tmp_path / "run")
    path = run_dir / "trials.jsonl"
    first, second = path.read_text().splitlines()
    path.write_text(first + "\n" + second[: len(second) // 2])  # a crash (or a full disk) mid-line
    lost = json.loads(second)["trial_id"]
    assert main(["report", str(run_dir), "--all"]) == 0
    out = capsys.readouterr().out
    assert f"{path}:2: skipped (truncated or not JSON)" in out and "status: unfinished" in out
    _, summary = resume_search(run_dir, quiet=True)
    err = capsys.readouterr().err
    assert f"{path}:2: skipped (truncated or not JSON)" in err and lost in err
    records = {r.trial_id: r for r in read_records(run_dir)}
    assert len(records) == 4 and summary["trials"] == 4
    assert records[lost].metrics == json.loads(second)["metrics"]  # recovered from its record.json
    assert all(json.loads(line) for line in path.read_text().splitlines())  # the damaged line is gone


def test_ctrl_c_leaves_status_interrupted_and_the_resume_hint(tmp_path):
    config = CONFIG_SMALL.replace("num_samples: 4", "num_samples: 30").replace("name: killed", "name: ctrlc")
    out = tmp_path / "runs"
    # not --quiet: Ray's warnings are shown, and its Tuner.restore(...) hint must not be among them
    proc, ray_tmp, log = _start_driver(tmp_path, config, ["search", "--output", str(out)])
    try:
        run_dir = _wait_for(proc, tmp_path, lambda: next((r for r in out.glob("ctrlc-*") if _lines(r)), None),
                            "the first trial")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:
        _kill_session(proc, ray_tmp)
        log.close()
    text = (tmp_path / "driver.log").read_text()
    assert code == 130, text[-3000:]
    assert "Stop signal received" in text  # Ray's own interrupt handling ran, and its warnings are shown...
    assert f"continue with: codesign search --resume {run_dir}" in text and "Tuner.restore" not in text  # ...but not its hint
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["trials"] < 30
    assert summary["resume_command"] == f"codesign search --resume {run_dir}"


def test_keyboard_interrupt_in_fit_records_the_interruption(tmp_path):
    from codesign.config import config_from_mapping, dump_config
    from codesign.runfolder import write_text
    from codesign.tune import _fit

    class Interrupted:
        def fit(self):
            raise KeyboardInterrupt  # a second Ctrl-C: Ray lets it through

    cfg = config_from_mapping({"search": {"num_samples": 2}})
    write_text(tmp_path, "config.yaml", dump_config(cfg))
    try:
        _, summary = _fit(Interrupted(), cfg, tmp_path)
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped without recording the interruption")
    assert summary["status"] == "interrupted"
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "interrupted"


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
