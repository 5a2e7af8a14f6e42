import pytest

from codesign.config import ConfigError, config_from_mapping, dump_config, load_config


def test_defaults_are_valid_and_resolve_pynq_z2():
    cfg = config_from_mapping({})
    assert cfg.resolve_board().name == "pynq-z2"
    assert cfg.search.algorithm == "nsga2"
    assert [o.direction for o in cfg.search.objectives] == ["max", "min"]


@pytest.mark.parametrize("data,match", [
    ({"serach": {}}, r"serach: unknown key"),
    ({"space": {"width": {"min": 64, "max": 8}}}, r"space\.width: min \(64\) must be <= max \(8\)"),
    ({"space": {"weight_bits": [1, 7]}}, r"space\.weight_bits: \[7\] not allowed; valid bit-widths"),
    ({"space": {"conv": {"kernal": [3]}}}, r"space\.conv\.kernal: unknown key"),
    ({"board": "pynq-z7"}, r"board: unknown board 'pynq-z7'; valid: .*kv260"),
    ({"dataset": {"name": "cifar10"}}, r"dataset\.name: must be one of 'digits', 'mnist1d', 'jetlike' or 'npz'"),
    ({"dataset": {"name": "npz"}}, r"needs a path"),
    ({"dataset": {"scaling": "zscore"}}, r"dataset\.scaling: must be one of 'global', 'minmax', 'standard' or 'none'"),
    ({"search": {"objectives": [{"metric": "luts"}]}}, r"unknown metric 'luts'; valid: .*lut"),
    ({"search": {"algorithm": "cmaes"}}, r"search\.algorithm: must be one of"),
    ({"search": {"scheduler": "asha"}}, r"asha' needs exactly one objective"),
    ({"search": {"budgets": {"lutz": 3}}}, r"unknown resource"),
    ({"training": {"epochs": 0}}, r"training\.epochs"),
    ({"feedback": "hls4ml"}, r"feedback 'hls4ml' needs style 'hls4ml'"),
    ({"feedback": "synplify"}, r"feedback: 'synplify' unknown; valid: \['analytic', 'finn-estimate', 'hls4ml', 'pnr', 'vivado', 'yosys'\]"),
    ({"feedback": "qonnx"}, r"feedback: 'qonnx' unknown"),
    ({"flows": {"min_agreement": 2}}, r"flows.*flow 'qonnx': min_agreement: Input should be less than or equal to 1"),
    ({"flows": {"export": True, "vivado": True}}, r"flows: unknown key\(s\) \['vivado'\]; flows is a list of flow names"),
    ({"flows": ["qonnx", "synplify"]}, r"flows\.1: unknown flow 'synplify'; valid: \['finn-estimate', 'hls4ml', 'pnr', 'qonnx'"),
    ({"style": "hls4ml", "flows": [{"yosys": {"simulat": True}}]}, r"flow 'yosys': simulat: unknown option"),
    ({"flows": ["yosys"]}, r"flow 'yosys' needs style 'hls4ml' \(the config has style 'finn'\)"),
    ({"flows": ["qonnx", "qonnx"]}, r"flows: a flow is listed twice"),
    ({"flows": {}, "feedback": []}, r"feedback: Input should be a valid string"),  # found by hypothesis
    ({"folding": {"target_fps": -1}}, r"target_fps must be > 0"),
    ({"board": {"name": "x", "part": "p", "family": "xc7", "clock_mhz": 100, "resources": {"lut": 5}, "bogus": 1}},
     r"board: board 'x': unknown key"),
])
def test_bad_configs_name_the_key_path(data, match):
    with pytest.raises(ConfigError, match=match):
        config_from_mapping(data)


def test_inline_board():
    cfg = config_from_mapping({"board": {"name": "Tiny", "part": "xc7a35t", "family": "xc7", "clock_mhz": 50,
                                         "resources": {"lut": 20800, "ff": 41600, "bram18": 100, "dsp": 90}}})
    b = cfg.resolve_board()
    assert b.name == "tiny" and b.clock_mhz == 50 and b.fill_limits.lut == 0.7


def test_toml_and_yaml_load_the_same(tmp_path):
    (tmp_path / "c.toml").write_text('name = "t"\n[search]\nnum_samples = 3\n[space]\nwidth = [8, 16]\n')
    (tmp_path / "c.yaml").write_text("name: t\nsearch: {num_samples: 3}\nspace: {width: [8, 16]}\n")
    assert load_config(tmp_path / "c.toml") == load_config(tmp_path / "c.yaml")


def test_resolved_config_round_trips(tmp_path):
    cfg = config_from_mapping({"space": {"width": {"min": 8, "max": 64, "log": True}}, "seed": 3})
    (tmp_path / "r.yaml").write_text(dump_config(cfg))
    assert load_config(tmp_path / "r.yaml") == cfg


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.toml").write_text("name = \n")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load_config(tmp_path / "bad.toml")


def test_coefficients_by_name_or_file(tmp_path):
    assert config_from_mapping({}).estimate_source == "analytic"
    f = tmp_path / "c.json"
    f.write_text('{"base": "analytic", "finn": {"mvau": {"lut": {"const": 100}}}}')
    cfg = config_from_mapping({"coefficients": str(f)})
    assert cfg.estimate_source == "calibrated"
    with pytest.raises(ConfigError, match="coefficients: .*valid names"):
        config_from_mapping({"coefficients": "nope"})


def test_yosys_feedback_needs_unfolded_hls4ml_designs():
    with pytest.raises(ConfigError, match="feedback 'yosys' needs style 'hls4ml'"):
        config_from_mapping({"feedback": "yosys"})
    with pytest.raises(ConfigError, match="reuse factor 1"):
        config_from_mapping({"feedback": "yosys", "style": "hls4ml"})
    assert config_from_mapping({"feedback": "yosys", "style": "hls4ml", "folding": {"target_fps": None}})


def test_the_hls4ml_strategy_of_the_flows_is_the_estimated_one():
    """A run whose hls4ml flow builds with Strategy Resource is estimated as that design (weights of
    RF > 1 layers in a ROM), not as the Latency default; flows that disagree are a config error."""
    from codesign.scoring import estimate_spec
    from codesign.space import DenseSpec, ModelSpec
    spec = ModelSpec(kind="mlp", n_features=256, image_shape=None, n_classes=10, input_bits=8, activation="relu",
                     convs=(), dense=(DenseSpec(128, 8, 4), DenseSpec(10, 8, 32)), target_fps=1e5)
    estimates = {}
    for strategy in ("Latency", "Resource"):
        cfg = config_from_mapping({"style": "hls4ml", "folding": {"target_fps": 1e5},
                                   "flows": [{"hls4ml": {"strategy": strategy}}]})
        assert cfg.hls4ml_strategy == strategy.lower() == cfg.design_of(spec).strategy
        estimates[strategy] = estimate_spec(cfg, spec, cfg.resolve_board())
    assert estimates["Resource"].total.bram18 > estimates["Latency"].total.bram18
    assert config_from_mapping({"style": "finn"}).design_of(spec).strategy == "latency"
    with pytest.raises(ConfigError, match="different strategies .*hls4ml: Resource, vivado: Latency"):
        config_from_mapping({"style": "hls4ml", "flows": [{"hls4ml": {"strategy": "Resource"}},
                                                          {"vivado": {"strategy": "Latency"}}]})
