"""Per-input-feature bits as a search dimension: `space.feature_bits` in the built-in MLP space and
`codesign.net.Input(data, feature_bits=...)` in user spaces."""
import optuna
import pytest
import torch

from codesign.config import ConfigError, config_from_mapping
from codesign.net import Dense, Input, NetError, NetSpec
from codesign.space import sample_spec, spec_from_params
from codesign.spaces import DataShape, feature_bits_name
from hw_models.design import design_to_mapping

OPTIONS = [0, 2, 4, 8]


def _cfg(**extra):
    return config_from_mapping({
        "style": "hls4ml", "coefficients": "yosys-xc7", "folding": {"target_fps": None},
        "space": {"kind": ["mlp"], "hidden_layers": [1], "width": [8], "weight_bits": [2], "act_bits": [2],
                  "feature_bits": OPTIONS},
        "training": {"epochs": 1, "patience": 1}, "flows": [], **extra})


def _samples(cfg, n=5, n_features=64, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        t = study.ask()
        spec = sample_spec(t, cfg.space, cfg.folding, n_features=n_features, image_shape=None, n_classes=10)
        out.append((t.params, spec))
        study.tell(t, 0.0)
    return out


def test_seeded_samples_ask_one_categorical_per_feature_and_the_design_carries_them():
    cfg = _cfg()
    first = _samples(cfg)
    assert first == _samples(cfg)  # seeded: the same parameters and networks
    for params, spec in first:
        bits = tuple(params[feature_bits_name(i)] for i in range(64))
        assert set(bits) <= set(OPTIONS)
        assert spec.feature_bits == bits and spec.input_bits == max(bits)
        design = spec.to_design("hls4ml")
        assert design.feature_bits == bits
        assert design_to_mapping(design)["input_feature_bits"] == list(bits)
        assert design.with_narrowed_inputs().layers[0].in_features == sum(1 for b in bits if b)
        assert spec_from_params(params, cfg, n_features=64, image_shape=None, n_classes=10) == spec
    assert len({spec.feature_bits for _, spec in first}) == len(first)


def test_without_the_option_no_feature_parameter_is_asked():
    cfg = config_from_mapping({"space": {"kind": ["mlp"]}})
    for params, spec in _samples(cfg):
        assert not any(k.startswith("feature_bits") for k in params) and spec.feature_bits is None


@pytest.mark.parametrize("extra, match", [
    ({"search": {"algorithm": "grid"}}, "space.feature_bits: search.algorithm 'grid'"),
    ({"search": {"algorithm": "bo"}}, "space.feature_bits: search.algorithm 'bo'"),
    ({"search": {"algorithm": "dnas"}}, "search.dnas.feature_bits"),
    ({"flows": ["hls4ml"]}, "space.feature_bits: the QONNX flows"),
    ({"feedback": "hls4ml"}, "space.feature_bits: the QONNX flows"),
    ({"space": {"kind": ["mlp", "cnn"], "feature_bits": OPTIONS}}, "space.feature_bits: .*MLPs"),
    ({"space": {"feature_bits": [0, 7]}}, "feature_bits"),
    ({"space": {"feature_bits": [0]}}, "feature_bits"),
    ({"model": "codesign.spaces:mlp"}, "space.feature_bits is an option of the built-in space"),
])
def test_config_errors(extra, match):
    with pytest.raises(ConfigError, match=match):
        _cfg(**extra)


def test_signed_data_is_refused_before_any_work():
    from codesign.data import DatasetError, check_space_fits_data, load_dataset
    data = load_dataset("digits", None, 0.2, 0.2, 0, "standard")
    with pytest.raises(DatasetError, match="space.feature_bits"):
        check_space_fits_data(_cfg().space, data)


def test_tiny_random_search_records_feature_bits_and_re_estimates(tmp_path):
    from codesign import runfolder
    from codesign.model import build_model, weight_csd_digits
    from codesign.scoring import estimate_spec
    from codesign.trial import candidate_spec
    from codesign.tune import run_search
    cfg = _cfg(search={"algorithm": "random", "num_samples": 2}, name="fb")
    run_dir, summary = run_search(cfg, output_dir=str(tmp_path), quiet=True)
    records = runfolder.read_records(run_dir)
    assert summary["status"] == "complete" and len(records) == 2
    for r in records:
        assert r.status == "ok", r.failure_reason
        bits = tuple(r.params[feature_bits_name(i)] for i in range(64))
        spec = candidate_spec(cfg, dict(r.params))
        assert spec.feature_bits == bits and tuple(r.spec["feature_bits"]) == bits
        assert r.design.feature_bits == bits
        model = build_model(spec)
        model.load_state_dict(torch.load(run_dir / r.artifacts[0], weights_only=True))
        est = estimate_spec(cfg, spec, cfg.resolve_board(), csd_digits=weight_csd_digits(model.eval()))
        assert est.total == r.estimates["calibrated"].total and r.metrics["lut"] == est.total.lut


# --- user spaces: Input(data, feature_bits=...)

DATA = DataShape((6,), 3)


def test_user_input_with_feature_bits_reaches_the_design_and_the_model():
    bits = [4, 0, 2, 8, 0, 1]
    net = NetSpec.from_output(Dense(3, weight_bits=2)(Input(DATA, feature_bits=bits)), DATA)
    assert net.feature_bits == tuple(bits) and net.input_bits == 8
    design = net.to_design("hls4ml")
    assert design.feature_bits == tuple(bits) and design.with_narrowed_inputs().layers[0].in_features == 4
    from codesign.model import FeatureInputQuant, build_model
    model = build_model(net)
    assert isinstance(model.input_quant, FeatureInputQuant)
    x = torch.full((2, 6), 0.3)
    q = model.input_quant(x)
    assert q[0].tolist() == pytest.approx([5 / 16, 0.0, 1 / 4, 77 / 256, 0.0, 1 / 2])  # round(0.3 * 2**b) / 2**b


@pytest.mark.parametrize("kwargs, data, match", [
    ({"feature_bits": [4, 4]}, DATA, "2 values for 6 input features"),
    ({"feature_bits": [4, 7, 0, 0, 0, 0]}, DATA, r"feature_bits \[7\] not allowed"),
    ({"feature_bits": [0] * 6}, DATA, "drops every feature"),
    ({"feature_bits": [4, 2, 0, 0, 0, 0], "bits": 8}, DATA, "bits 8 but the widest of feature_bits is 4"),
    ({"feature_bits": [4] * 6}, DataShape((6,), 3, signed_input=True), "unsigned inputs"),
])
def test_user_input_feature_bits_errors_name_the_problem(kwargs, data, match):
    with pytest.raises(NetError, match=match):
        Input(data, **kwargs)


def test_user_space_with_feature_bits_and_a_qonnx_flow_stops_before_any_work(tmp_path):
    from codesign.userspace import SpaceError, check_space
    from codesign.data import dataset_for
    path = tmp_path / "space.py"
    path.write_text("from codesign.net import Dense, Flatten, Input\n"
                    "def build(trial, data):\n"
                    "    x = Input(data, feature_bits=[trial.suggest_categorical('b', [2, 4])] * 64)\n"
                    "    return Dense(data.n_classes, weight_bits=2)(Flatten()(x))\n")
    cfg = config_from_mapping({"model": f"{path}:build", "style": "hls4ml", "flows": ["hls4ml"],
                               "folding": {"target_fps": None}})
    with pytest.raises(SpaceError, match="QONNX flows"):
        check_space(cfg, dataset_for(cfg))
    ok = config_from_mapping({"model": f"{path}:build", "style": "hls4ml", "flows": [], "folding": {"target_fps": None}})
    spec = check_space(ok, dataset_for(ok))
    assert spec.feature_bits in ((2,) * 64, (4,) * 64)

