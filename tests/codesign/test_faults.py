"""Fault injection into one trial: every fault becomes a failed record with its reason and log."""
import time

import pytest

from codesign.config import config_from_mapping
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
    assert record["status"] == "failed"
    assert record["failure_reason"].startswith(reason), record["failure_reason"]
    log = (tmp_path / "trials" / "t1" / "trial.log").read_text()
    assert "trial failed" in log and "Traceback" in log


def test_a_trial_writes_only_into_its_folder_and_cleans_temporaries(tmp_path, monkeypatch):
    import tempfile
    tmp_root = tmp_path / "tmp"
    tmp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_root))
    run_dir = tmp_path / "run"
    record = evaluate_candidate(_cfg(feedback="finn-estimate"), PARAMS, trial_id="t2", run_dir=run_dir)
    assert record["status"] == "ok", record["failure_reason"]
    assert [p.name for p in run_dir.iterdir()] == ["trials"]
    assert [p.name for p in (run_dir / "trials").iterdir()] == ["t2"]
    assert sorted(p.name for p in (run_dir / "trials" / "t2").iterdir()) == ["model.onnx", "model.pt", "trial.log"]
    assert list(tmp_root.iterdir()) == []  # FINN's build dir and every other temporary removed
