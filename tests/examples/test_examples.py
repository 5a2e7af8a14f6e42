"""Every example under examples/ runs end to end at tiny size: a run folder, records and a report."""
from pathlib import Path

import pytest

from codesign.api import search
from codesign.config import load_config
from codesign.records import Status
from codesign.runfolder import read_records

EXAMPLES = sorted(p.parent.name for p in (Path(__file__).parents[2] / "examples").glob("*/config.yaml"))


def test_examples_are_found():
    assert {"resnet_digits", "conv1d_mnist1d", "jet_mlp", "float_cnn"} <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_end_to_end(ray_local, tmp_path, name):
    from codesign.html_report import write_html_report
    from codesign.report import run_report
    cfg = load_config(Path(__file__).parents[2] / "examples" / name / "config.yaml")
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"epochs": 1, "patience": 1}),
                                 "output_dir": str(tmp_path)})
    result = search(cfg, num_samples=2, max_concurrent=2)
    records = read_records(result.run_dir)
    assert len(records) == 2
    assert all(r.status in (Status.OK, Status.INFEASIBLE) for r in records), [r.failure_reason for r in records]
    for r in records:
        assert r.spec["kind"] == "net" and r.design is not None and "analytic" in r.estimates
    trained = [r for r in records if r.status is Status.OK]
    assert all(r.accuracy is not None for r in trained)
    assert "Pareto" in run_report(result.run_dir) or "front" in run_report(result.run_dir).lower()
    assert write_html_report(result.run_dir).is_file()


def test_a_user_space_is_searched_by_grid(ray_local, tmp_path):
    """grid walks the jet MLP's space function (codesign.walk) and visits distinct points of it."""
    cfg = load_config(Path(__file__).parents[2] / "examples" / "jet_mlp" / "config.yaml")
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"epochs": 1, "patience": 1}),
                                 "output_dir": str(tmp_path),
                                 "search": cfg.search.model_copy(update={"algorithm": "grid"})})
    result = search(cfg, num_samples=3, max_concurrent=1)
    records = read_records(result.run_dir)
    assert len(records) == 3 and all(r.status in (Status.OK, Status.INFEASIBLE) for r in records)
    points = {tuple(sorted(r.params.items())) for r in records}
    assert len(points) == 3
    assert all(set(dict(p)) == {"width_scale", "input_bits", "fc0_bits", "fc1_bits", "fc2_bits", "out_bits"}
               for p in points)
