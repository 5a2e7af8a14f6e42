"""The Python API (`from codesign import search, estimate, fit`): the CLI's arguments, data back."""
import json
import subprocess
import sys

import pytest
import yaml

import codesign
from codesign.cli import main
from codesign.config import ConfigError
from hw_models import DenseLayer, Design, DesignError

DESIGN = {"board": "pynq-z2", "style": "finn", "input_bits": 8, "layers": [
    {"kind": "dense", "in": 64, "out": 64, "weight_bits": 4, "act_bits": 4, "pe": 4, "simd": 8},
    {"kind": "dense", "in": 64, "out": 10, "weight_bits": 4, "act_bits": 32, "pe": 1, "simd": 4}]}


def test_importing_the_package_starts_nothing_heavy():
    code = "import sys, codesign; print([m for m in ('torch', 'ray', 'finn', 'hls4ml', 'da4ml') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_estimate_equals_the_cli_for_a_file_and_a_design(tmp_path, capsys):
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(DESIGN))
    assert main(["estimate", str(path), "--coefficients", "yosys-xc7", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    est = codesign.estimate(path, coefficients="yosys-xc7")
    assert est.as_dict() == cli and est.source == "calibrated"
    design = Design((DenseLayer(64, 64, 4, 4, pe=4, simd=8), DenseLayer(64, 10, 4, 32, pe=1, simd=4)))
    assert codesign.estimate(design, board="pynq-z2", coefficients="yosys-xc7").total == est.total
    with pytest.raises(DesignError, match="no board"):
        codesign.estimate(design)


def test_fit_names_boards_and_checks_them(tmp_path):
    design = Design((DenseLayer(64, 64, 4, 4), DenseLayer(64, 10, 4, 32)))
    results = codesign.fit(design, boards=["pynq-z2", "zcu104"])
    assert [r.board for r in results] == ["pynq-z2", "zcu104"] and all(r.fits and r.max_fps > 0 for r in results)
    from boards import BoardError
    with pytest.raises(BoardError, match="unknown board 'nope'"):
        codesign.fit(design, boards=["nope"])


def test_search_takes_a_mapping_and_checks_overrides_first(ray_local, tmp_path):
    config = {"name": "api", "training": {"epochs": 1, "patience": 1}, "flows": [],
              "space": {"hidden_layers": [1], "width": [16]}, "search": {"num_samples": 5},
              "output_dir": str(tmp_path / "runs")}
    with pytest.raises(ConfigError, match="--num-samples 0: must be >= 1"):
        codesign.search(config, num_samples=0)
    assert not (tmp_path / "runs").exists()  # checked before any folder
    result = codesign.search(config, num_samples=2, max_concurrent=2)
    assert result.summary["status"] == "complete" and result.summary["trials"] == 2
    assert result.run_dir.parent == tmp_path / "runs" and (result.run_dir / "trials.jsonl").is_file()
