"""da4ml pipeline depth (hw_models/da4ml.py): hand-computed critical paths and stage counts, where the
rule applies, and which coefficient sets use it."""
import pytest

from boards import get_board
from codesign.calibration import pipeline_rules
from hw_models import estimate
from hw_models.calibrate import Sample
from hw_models.coefficients import calibration_document, load_coefficients
from hw_models.da4ml import covers, critical_levels, latency_rule, pipeline_stages, requant_levels
from hw_models.design import Design, DenseLayer

BOARD = get_board("pynq-z2")


def mlp(w, a, csd=None, hidden=16, rf=1):
    return Design(layers=(DenseLayer(64, hidden, w, a, reuse_factor=rf, csd_digits=csd),
                          DenseLayer(hidden, 10, w, 32, reuse_factor=rf, csd_digits=csd)), style="hls4ml", input_bits=8)


def test_critical_path_and_stages_by_hand():
    # W1A1: 64 one-digit terms -> 6 levels + 1 of solver slack; 1-bit sign: no requant levels;
    # 16 terms -> 4 + 1. L = 12 (da4ml measured 12 on mlp64-16-10_w1a1), 3 stages at cutoff 5
    d = mlp(1, 1)
    assert critical_levels(d) == 7 + 0 + 5
    assert pipeline_stages(d, 5) == 3 and pipeline_stages(d, 3) == 4 and pipeline_stages(d, 12) == 1
    # W4A4, 1.13 digits per weight: 64 x 1.13 = 72.3 terms -> 7 + 1; affine requant 4 + 2;
    # 16 x 1.13 = 18.1 -> 5 + 1; L = 20 -> 4 stages at cutoff 5
    assert critical_levels(mlp(4, 4, csd=1.13)) == 8 + 6 + 6
    assert pipeline_stages(mlp(4, 4, csd=1.13), 5) == 4
    assert pipeline_stages(mlp(4, 4, csd=1.13), 0) == 1  # combinational


def test_requant_levels_follow_the_generated_form():
    # comparators summed one after another: 2^A - 1 thresholds, 2^A - 2 adders in series
    assert [requant_levels(a) for a in (1, 2, 3)] == [0, 2, 6]
    assert [requant_levels(a) for a in (4, 6)] == [6, 8]  # affine M with ~A + 2 digits


def test_where_the_rule_applies():
    assert covers(mlp(2, 2)) is None
    assert "reuse factor 1" in covers(mlp(2, 2, rf=2))
    assert "style hls4ml" in covers(Design(layers=mlp(2, 2).layers[:1], style="finn"))
    assert "integer" in covers(mlp(32, 32))


def test_yosys_sets_report_the_da4ml_pipeline_and_analytic_the_hls_schedule():
    d = mlp(4, 4, csd=1.13)
    est = estimate(d, BOARD, "yosys-xc7")
    assert est.latency_cycles == 4 and any("da4ml pipeline, 20 adder levels" in n for n in est.notes)
    hls = estimate(d, BOARD, "analytic")
    assert hls.latency_cycles == (1 + 6 + 2) + (1 + 4 + 2)  # RF + log2(fan-in) + 2 per layer
    slow = estimate(mlp(4, 4, rf=2), BOARD, "yosys-xc7")  # RF 2: not da4ml's RTL, HLS schedule kept
    assert slow.latency_cycles == (2 + 6 + 2) + (2 + 4 + 2) and any("reuse factor 1" in n for n in slow.notes)


def test_unknown_pipeline_rule_is_refused():
    with pytest.raises(ValueError, match="valid: \\['hls', 'da4ml'\\]"):
        latency_rule(mlp(2, 2), {"pipeline": "vitis"})


def test_calibrations_of_da4ml_rtl_carry_the_rule(tmp_path):
    yosys = [Sample(mlp(2, 2), BOARD, {"lut": 1}, source="yosys-0.70")]
    assert pipeline_rules(yosys) == {"hls4ml": {"rules": {"pipeline": "da4ml"}}}
    vivado = [Sample(mlp(2, 2), BOARD, {"lut": 1}, source="vivado-2020.1-synth")]
    assert pipeline_rules(vivado) == {"hls4ml": {"rules": {"pipeline": "hls"}}}
    assert pipeline_rules(yosys + vivado) is None and pipeline_rules([]) is None
    path = tmp_path / "cal.json"
    path.write_text(calibration_document({"hls4ml.dense.lut.const": 50.0}, {"family": "xc7"},
                                         rules=pipeline_rules(yosys)))
    rules = load_coefficients(str(path)).section("hls4ml", "rules")
    assert rules["pipeline"] == "da4ml" and rules["da4ml_latency_cutoff"] == 5  # the rest from the base
