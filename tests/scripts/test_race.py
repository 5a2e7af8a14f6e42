"""scripts/race.py's bookkeeping: curves at a time, medians, time to reach, the front comparison, configs."""
import sys
from pathlib import Path

from codesign.config import config_from_mapping

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from race import (ALGORITHMS, PROBLEMS, SIZES, compare_fronts, hv_at, median_curve, race_config,  # noqa: E402
                  time_to_reach)


def test_curves_medians_and_time_to_reach():
    a, b, c = [(1.0, 0.2), (4.0, 0.6)], [(2.0, 0.4)], [(3.0, 0.1), (5.0, 0.9)]
    assert hv_at(a, 0.5) == 0.0 and hv_at(a, 3.9) == 0.2 and hv_at(a, 4.0) == 0.6
    med = median_curve([a, b, c])
    assert dict(med) == {1.0: 0.0, 2.0: 0.2, 3.0: 0.2, 4.0: 0.4, 5.0: 0.6}
    assert time_to_reach(med, 0.4) == 4.0 and time_to_reach(med, 0.7) is None


def test_front_comparison_counts_budgets_where_ours_is_at_least_as_accurate():
    ours = [{"accuracy": 0.90, "yosys_lut": 1000}, {"accuracy": 0.95, "yosys_lut": 3000}]
    hgq2 = [{"test_accuracy": 0.93, "yosys_lut": 2000}, {"test_accuracy": 0.94, "yosys_lut": 3500},
            {"test_accuracy": 0.80, "yosys_lut": 500}]
    rows = compare_fronts(ours, hgq2)
    assert [r["budget_lut"] for r in rows] == [500, 2000, 3500]
    assert [r["ours_dominates"] for r in rows] == [False, False, True]
    assert rows[0]["our_accuracy"] is None and rows[1]["our_accuracy"] == 0.90


def test_every_race_config_is_valid(tmp_path):
    for size in SIZES.values():
        for alg in ALGORITHMS:
            for problem in PROBLEMS:
                cfg = config_from_mapping(race_config(alg, 0, size, tmp_path, problem))
                assert cfg.search.algorithm == alg and cfg.dataset.name == PROBLEMS[problem]["dataset"]["name"]
                assert cfg.style == PROBLEMS[problem].get("style", "hls4ml") and (cfg.model is None) == (problem != "conv1d")
