import logging
import math
from pathlib import Path

import pytest

from boards import get_board
from codesign.config import Objective, config_from_mapping
from codesign.objectives import constraint_values, hardware_metrics, normalized, normalized_objectives, objective_values
from codesign.records import Status, TrialRecord
from codesign.results import front_hypervolume, pareto_front
from hw_models import DenseLayer, Design, estimate


def _est(board="pynq-z2", width=64, bits=4):
    return estimate(Design(layers=(DenseLayer(64, width, bits, bits), DenseLayer(width, 10, bits, 32)),
                           target_fps=1e5), get_board(board))


def test_metrics_include_percent_of_board():
    m = hardware_metrics(_est())
    assert m["lut_pct"] == pytest.approx(100 * m["lut"] / 53200)
    assert m["util_max"] == pytest.approx(max(m[f"{n}_pct"] for n in ("lut", "ff", "bram18", "uram", "dsp")) / 100)
    assert m["fps"] >= 1e5 and m["latency_us"] > 0


def test_constraints_fit_and_budget():
    est = _est()
    c = constraint_values(est, get_board("pynq-z2"), {"lut": est.total.lut / 2, "dsp": 0})
    assert all(c[f"fit_{n}"] <= 0 for n in ("lut", "ff", "bram18", "uram", "dsp"))
    assert c["budget_lut"] == pytest.approx(1.0)
    assert c["budget_dsp"] == est.total.dsp


def test_objective_values_infeasible_accuracy_is_zero():
    objs = [Objective(metric="accuracy"), Objective(metric="lut")]
    assert objective_values({"lut": 10.0}, objs) == [0.0, 10.0]
    assert objective_values({"accuracy": 0.9, "lut": 10.0}, objs) == [0.9, 10.0]


def test_normalization():
    assert normalized("accuracy", 0.9, clock_mhz=100) == pytest.approx(0.1)
    assert normalized("lut_pct", 35.0, clock_mhz=100) == pytest.approx(0.35)
    assert normalized("fps", 100e6, clock_mhz=100) == 0.0  # one frame per cycle
    assert normalized("fps", 1.0, clock_mhz=100) == pytest.approx(1.0)
    assert normalized("latency_us", 1.0, clock_mhz=100) == pytest.approx(math.log(100) / math.log(1e8))


def test_front_and_hypervolume_on_known_records():
    cfg = config_from_mapping({"search": {"objectives": [{"metric": "accuracy"}, {"metric": "lut"}]}})
    recs = [TrialRecord("a", Status.OK, {}, metrics={"accuracy": 0.9, "lut": 5320.0, "lut_pct": 10.0}),
            TrialRecord("b", Status.OK, {}, metrics={"accuracy": 0.8, "lut": 2660.0, "lut_pct": 5.0}),
            TrialRecord("c", Status.OK, {}, metrics={"accuracy": 0.7, "lut": 5320.0, "lut_pct": 10.0}),
            TrialRecord("d", Status.INFEASIBLE, {}, metrics={"lut": 1.0, "lut_pct": 0.0})]
    front = pareto_front(recs, cfg)
    assert [r.trial_id for r in front] == ["a", "b"]
    # normalised points (0.1, 0.10) and (0.2, 0.05), ref (1, 1): 0.9*0.9 + (0.9 - 0.8)*(0.95 - 0.9)... by slices:
    # x in [0.1, 0.2): height 1 - 0.10 = 0.90 -> 0.09; x in [0.2, 1]: height 0.95 -> 0.76; total 0.85
    assert front_hypervolume(front, cfg, 100) == pytest.approx(0.85)
    assert normalized_objectives(recs[0].metrics, cfg.search.objectives, 100) == pytest.approx([0.1, 0.1])


def test_ff_under_finn_estimate_is_marked_as_the_analytic_models():
    """finn-plus has no FF model: the trial takes FF from the analytic estimate, says so in the record,
    and the reports mark it (`*` and a footnote)."""
    from dataclasses import replace

    from codesign.html_report import pareto_table_html
    from codesign.report import _res, pareto_table
    from codesign.trial import TrialContext, _scored
    analytic = _est()
    finn = replace(analytic, source="finn-estimate", total=replace(analytic.total, lut=1234, ff=0), missing=("ff",))
    cfg = config_from_mapping({})
    ctx = TrialContext(cfg, get_board("pynq-z2"), Path("."), Path("."), logging.getLogger("test"))
    record = _scored(ctx, TrialRecord("t1", Status.OK, {}, source="finn-estimate"), finn, ff_fallback=analytic,
                     decisive=True)
    assert record.metrics["ff"] == analytic.total.ff and record.metrics["lut"] == 1234
    assert record.resource_sources == {"lut": "finn-estimate", "ff": "analytic", "bram18": "finn-estimate",
                                       "uram": "finn-estimate", "dsp": "finn-estimate"}
    assert TrialRecord.from_json(record.to_json()) == record
    record = record.replace(metrics={**record.metrics, "accuracy": 0.9})
    lines = pareto_table([record]).splitlines()
    assert lines[2].count("*") == 1 and _res(record.metrics, "ff") + "*" in lines[2]
    assert lines[-1] == "* FF from the analytic model (not estimated by the source)"
    html = pareto_table_html([record])
    assert f"{analytic.total.ff:,.0f}* " in html and "FF from the analytic model" in html
    plain = _scored(ctx, TrialRecord("t2", Status.OK, {}, source="analytic"), analytic)
    plain = plain.replace(metrics={**plain.metrics, "accuracy": 0.9})
    assert "*" not in pareto_table([plain]) and "analytic model" not in pareto_table_html([plain])
