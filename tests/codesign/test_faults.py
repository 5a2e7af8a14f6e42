"""Fault injection into one trial: every fault becomes a failed record with its reason and log."""
import time

import pytest

from codesign.config import config_from_mapping
from codesign.records import Status, TrialRecord
from codesign.trial import evaluate_candidate

PARAMS = {"kind": "mlp", "activation": "relu", "hidden_layers": 1, "fc0_width": 16, "fc0_weight_bits": 4,
          "fc0_act_bits": 4, "out_weight_bits": 4}


def _cfg(**over):
    base = {"training": {"epochs": 1, "patience": 1}, "space": {"hidden_layers": [1], "width": [16]}}
    base.update(over)
    return config_from_mapping(base)


def _boom(*args, **kwargs):
    raise RuntimeError("injected tool failure")


def _hang(*args, **kwargs):
    time.sleep(60)


def _oom(*args, **kwargs):
    raise MemoryError("injected: out of memory")


@pytest.mark.parametrize("target,fault,cfg_over,reason", [
    ("codesign.train.train", _oom, {}, "MemoryError: injected: out of memory"),
    ("flows.qonnx.export_and_verify", lambda *a, **k: (_ for _ in ()).throw(
        __import__("flows.qonnx", fromlist=["ExportMismatch"]).ExportMismatch("export mismatch: injected")), {},
     "ExportMismatch: export mismatch: injected"),
    ("flows.finn.finn_estimate", _boom, {"feedback": "finn-estimate"}, "RuntimeError: injected tool failure"),
    ("flows.finn.finn_estimate", _hang, {"feedback": "finn-estimate", "flows": [{"finn-estimate": {"timeout_s": 1}}]},
     "ToolTimeout: _hang did not finish within 1 s"),
    ("flows.hls4ml.csim_agreement", _boom, {"style": "hls4ml", "feedback": "hls4ml"},
     "RuntimeError: injected tool failure"),
])
def test_fault_fails_the_trial_with_its_reason(tmp_path, monkeypatch, target, fault, cfg_over, reason):
    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(__import__(module, fromlist=[name]), name, fault)
    if target == "codesign.train.train":
        import codesign.model  # noqa: F401  (trial.py imports train lazily from codesign.train)
    record = evaluate_candidate(_cfg(**cfg_over), PARAMS, trial_id="t1", run_dir=tmp_path)
    assert record.status == "failed"
    assert record.failure_reason.startswith(reason), record.failure_reason
    log = (tmp_path / "trials" / "t1" / "trial.log").read_text()
    assert "trial failed" in log and "Traceback" in log


def test_a_trial_writes_only_into_its_folder_and_cleans_temporaries(tmp_path, monkeypatch):
    import tempfile
    tmp_root = tmp_path / "tmp"
    tmp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_root))
    run_dir = tmp_path / "run"
    record = evaluate_candidate(_cfg(feedback="finn-estimate"), PARAMS, trial_id="t2", run_dir=run_dir)
    assert record.status == "ok", record.failure_reason
    assert [p.name for p in run_dir.iterdir()] == ["trials"]
    assert [p.name for p in (run_dir / "trials").iterdir()] == ["t2"]
    assert sorted(p.name for p in (run_dir / "trials" / "t2").iterdir()) == ["model.onnx", "model.pt", "trial.log"]
    assert list(tmp_root.iterdir()) == []  # FINN's build dir and every other temporary removed


# ---------------------------------------------------------------- run folder integrity (issue 10)

def _create(args):
    import time as _time

    from codesign.runfolder import create_run_dir
    out, start_at = args
    _time.sleep(max(0.0, start_at - _time.time()))  # every process starts the same instant
    try:
        return str(create_run_dir(out, "same"))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return f"{type(exc).__name__}: {exc}"


def test_concurrent_searches_never_share_a_run_folder(tmp_path):
    import multiprocessing
    out = tmp_path / "runs"
    n = 8
    for round_ in range(3):
        with multiprocessing.get_context("fork").Pool(n) as pool:
            created = pool.map(_create, [(out, time.time() + 0.3)] * n)
        assert all(c.startswith(str(out)) for c in created), created
        assert len(set(created)) == n
    assert len(list(out.iterdir())) == 3 * n and all((p / "trials").is_dir() for p in out.iterdir())


def test_damaged_trials_jsonl_lines_are_skipped_and_named(tmp_path):
    from codesign.runfolder import append_record, read_records, recover_records, scan_records
    append_record(tmp_path, TrialRecord("a", Status.OK, {}, metrics={}))
    with open(tmp_path / "trials.jsonl", "ab") as f:
        f.write(b'{"trial_id": "b", "status": "o')  # the driver died mid-line
    append_record(tmp_path, TrialRecord("c", Status.OK, {}, metrics={}))  # starts on a line of its own
    with open(tmp_path / "trials.jsonl", "ab") as f:
        f.write(b"\xff\xfe garbage\n[1, 2]\n")
    scan = scan_records(tmp_path)
    assert [r.trial_id for r in scan.records] == ["a", "c"]
    assert [(s.line, s.reason) for s in scan.skipped] == [
        (2, "truncated or not JSON"), (4, "not UTF-8 text"), (5, "not a trial record")]
    assert str(scan.skipped[0]) == f"{tmp_path / 'trials.jsonl'}:2: skipped (truncated or not JSON)"
    # b's record.json was written (atomically) before its line: a resume takes it back from there
    (tmp_path / "trials" / "b").mkdir()
    (tmp_path / "trials" / "b" / "record.json").write_text('{"trial_id": "b", "status": "ok", "metrics": {}}')
    recovery = recover_records(tmp_path)
    assert len(recovery.skipped) == 3 and recovery.recovered == ("b",)
    assert scan_records(tmp_path).skipped == () and {r.trial_id for r in read_records(tmp_path)} == {"a", "b", "c"}


def test_records_are_written_whole(tmp_path, monkeypatch):
    import json as _json
    import os

    from codesign.runfolder import append_record
    append_record(tmp_path, TrialRecord("a", Status.OK, {}, metrics={}))
    before = (tmp_path / "trials" / "a" / "record.json").read_text()

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        append_record(tmp_path, TrialRecord("a", Status.FAILED, {}, metrics={"x": 1}))
    assert (tmp_path / "trials" / "a" / "record.json").read_text() == before  # the old record, whole
    assert _json.loads(before)["status"] == "ok"


def test_a_trained_trial_is_completed_from_its_result_only_for_the_same_params(tmp_path):
    from codesign.runfolder import completed_result, write_result
    record = TrialRecord("t1", Status.OK, dict(PARAMS), metrics={"accuracy": 0.5})
    write_result(tmp_path / "trials" / "t1", record)
    assert completed_result(tmp_path, "t1", PARAMS) == record
    assert completed_result(tmp_path, "t1", {**PARAMS, "fc0_width": 32}) is None
    assert completed_result(tmp_path, "t2", PARAMS) is None
    (tmp_path / "trials" / "t1" / "result.json").write_text('{"trial_id": "t1", "sta')  # torn: train again
    assert completed_result(tmp_path, "t1", PARAMS) is None


def test_progress_never_counts_past_the_total_nor_a_negative_eta(tmp_path):
    from codesign.config import config_from_mapping
    from codesign.runfolder import append_record
    from codesign.tune import progress_line
    cfg = config_from_mapping({"search": {"num_samples": 3}})
    for i in range(3):
        append_record(tmp_path, TrialRecord(f"t{i}", Status.FAILED, {}, metrics={}))
    line = progress_line(tmp_path, cfg, elapsed_s=10.0, running=0, done_before=2)
    assert line.startswith("[3/3]") and "~0 s left" in line
