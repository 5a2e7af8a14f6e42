"""One trial end to end without Ray: hls4ml-style numbers come from the trained weights."""
import torch

from codesign.config import config_from_mapping
from codesign.model import build_model, weight_csd_digits
from codesign.trial import candidate_spec, evaluate_candidate
from hw_models import estimate

PARAMS = {"kind": "mlp", "activation": "relu", "hidden_layers": 1, "fc0_width": 16, "fc0_weight_bits": 2,
          "fc0_act_bits": 2, "out_weight_bits": 2}


def _cfg(style):
    return config_from_mapping({"style": style, "coefficients": "yosys-xc7", "folding": {"target_fps": None},
                                "training": {"epochs": 2, "patience": 2}, "flows": [],
                                "space": {"hidden_layers": [1], "width": [16]}})


def test_hls4ml_trial_is_scored_with_its_trained_weights(tmp_path):
    cfg = _cfg("hls4ml")
    record = evaluate_candidate(cfg, PARAMS, trial_id="t1", run_dir=tmp_path)
    assert record.status == "ok", record.failure_reason
    spec = candidate_spec(cfg, PARAMS)
    model = build_model(spec)
    model_pt = next(a for a in record.artifacts if a.endswith("model.pt"))
    assert model_pt == "trials/t1/model.pt"  # relative to the run folder: a moved folder stays whole
    model.load_state_dict(torch.load(tmp_path / model_pt, weights_only=True))
    design = spec.to_design("hls4ml", cfg.clock_mhz).with_csd_digits(weight_csd_digits(model.eval()))
    expected = estimate(design, cfg.resolve_board(), "yosys-xc7", source="calibrated")
    assert record.metrics["lut"] == expected.total.lut and record.source == "calibrated"
    assert record.estimates["calibrated"].total == expected.total
    before = estimate(spec.to_design("hls4ml", cfg.clock_mhz), cfg.resolve_board(), "yosys-xc7").total
    assert record.estimate_before_training == before != expected.total


def test_finn_trial_keeps_its_shape_only_estimate(tmp_path):
    record = evaluate_candidate(_cfg("finn"), PARAMS, trial_id="t2", run_dir=tmp_path)
    assert record.status == "ok" and record.estimate_before_training is None  # weights sit in memories
