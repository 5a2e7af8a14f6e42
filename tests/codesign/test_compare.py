"""`codesign compare`: from the stored estimates by default, finn-plus run again with --rerun."""
import pytest

from codesign import runfolder
from codesign.cli import main
from codesign.compare import NOT_RECORDED, compare_run
from codesign.config import config_from_mapping, dump_config
from codesign.trial import evaluate_candidate

PARAMS = {"kind": "mlp", "activation": "relu", "hidden_layers": 1, "fc0_width": 16, "fc0_weight_bits": 2,
          "fc0_act_bits": 2, "out_weight_bits": 2, "target_fps": 1e5}


def _run(tmp_path, *, finn: bool, coefficients: str = "analytic"):
    cfg = config_from_mapping({"coefficients": coefficients, "training": {"epochs": 1},
                               "flows": [{"qonnx": {"verify_samples": 8}}, *(["finn-estimate"] if finn else [])],
                               "space": {"hidden_layers": [1], "width": [16]}})
    run_dir = runfolder.create_run_dir(tmp_path, "cmp")
    runfolder.write_text(run_dir, "config.yaml", dump_config(cfg))
    record = evaluate_candidate(cfg, PARAMS, trial_id="t1", run_dir=run_dir)
    assert record.status == "ok", record.failure_reason
    runfolder.append_record(run_dir, record)
    return run_dir, record


def test_compare_reads_the_recorded_estimates_without_running_finn(tmp_path, monkeypatch):
    run_dir, record = _run(tmp_path, finn=True)
    import flows.finn

    def boom(*a, **k):
        raise AssertionError("finn-plus must not run without --rerun")
    monkeypatch.setattr(flows.finn, "finn_estimate", boom)
    [row] = compare_run(run_dir)
    finn = record.estimates["finn-estimate"]
    assert row["finn"] == {"lut": finn.total.lut, "bram18": finn.total.bram18, "dsp": finn.total.dsp,
                           "cycles": finn.cycles_per_frame}
    assert row["ours"]["lut"] == record.estimates["analytic"].total.lut == record.metrics["lut"]


@pytest.mark.slow
def test_compare_rerun_recomputes_finn_and_uses_the_runs_coefficients(tmp_path, capsys):
    run_dir, record = _run(tmp_path, finn=False, coefficients="yosys-xc7")
    [stored] = compare_run(run_dir)
    assert stored["finn_error"] == NOT_RECORDED and stored["ours_source"] == "calibrated"
    assert main(["compare", str(run_dir), "--rerun"]) == 0
    out = capsys.readouterr().out
    assert "lut calibrated" in out and NOT_RECORDED not in out
    [row] = compare_run(run_dir, rerun=True)
    assert row["ours"]["lut"] == record.metrics["lut"] and row["finn"]["lut"] > 0
