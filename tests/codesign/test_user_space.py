"""User search spaces (`model: PATH.py:FUNCTION`), user networks and float models to quantize:
the graph they build, its hardware design, and one-line errors before Ray starts."""
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from codesign.config import ConfigError, config_from_mapping, load_config
from codesign.data import load_dataset
from codesign.net import Add, Conv1d, Conv2d, Dense, GlobalAvgPool, Input, MaxPool, NetError, NetSpec, Network
from codesign.userspace import SpaceError, check_space

DIGITS = load_dataset("digits")


def residual(trial, data):
    x = Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(Input(data))
    y = Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(x)
    x = GlobalAvgPool()(Add(act_bits=2)(x, y))
    return Network(Dense(data.n_classes, weight_bits=4)(x), lr=trial.suggest_float("lr", 1e-3, 1e-2, log=True))


def test_a_residual_network_becomes_a_graph_design_and_a_model():
    import optuna
    spec = NetSpec.from_output(residual(optuna.trial.FixedTrial({"lr": 0.005}), DIGITS), DIGITS)
    design = spec.to_design("finn")
    assert [l.kind for l in design.layers] == ["conv", "conv", "add", "globalavgpool", "dense"]
    assert design.inputs == ((-1,), (0,), (0, 1), (2,), (3,))
    assert design.layers[3].in_dim == (8, 8) and design.layers[4].in_features == 4
    assert design.input_bits_per_layer() == [8, 2, 2, 2, 2 + 6]  # the pool sums 64 pixels
    assert spec.training_overrides() == {"lr": 0.005}
    from codesign.model import build_model, weight_csd_digits
    model = build_model(spec, seed=0)
    out = model(torch.from_numpy(DIGITS.x_test[:5]))
    assert out.shape == (5, 10)
    assert len(weight_csd_digits(model)) == 3  # conv, conv, dense: the design's weighted layers
    assert design.with_csd_digits(weight_csd_digits(model)).layers[0].csd_digits is not None


def test_a_chain_stays_a_chain_and_flatten_is_free():
    x = Input(DIGITS)
    x = MaxPool(2)(Conv2d(4, 3, weight_bits=2, act_bits=2)(x))
    spec = NetSpec.from_output(Dense(10)(x), DIGITS)
    design = spec.to_design("hls4ml")
    assert design.is_chain and [l.kind for l in design.layers] == ["conv", "maxpool", "dense"]
    assert design.layers[2].in_features == 4 * 3 * 3


def test_conv1d_on_signals():
    data = load_dataset("mnist1d")
    assert data.sample_shape == (1, 40)
    x = MaxPool(2)(Conv1d(8, 5, padding=2, weight_bits=2, act_bits=2)(Input(data)))
    assert x.shape == (8, 20)
    design = NetSpec.from_output(Dense(10)(x), data).to_design("finn")
    assert design.layers[0].in_dim == (1, 40) and design.layers[0].kernel == (1, 5)
    assert design.layers[1].pool == (1, 2) and design.layers[2].in_features == 160


@pytest.mark.parametrize("build,match", [
    (lambda d: Dense(7)(Input(d)), "output has 7 values .* 10 classes"),
    (lambda d: Conv2d(4, 9)(Input(d)), r"Conv2d\(channels=4, kernel=9.*does not fit the input \(1, 8, 8\)"),
    (lambda d: Add()(Input(d), Conv2d(4, 3)(Input(d))), "adds tensors of different shapes"),
    (lambda d: Dense(10, weight_bits=7)(Input(d)), "7 is not an allowed bit-width"),
    (lambda d: Conv1d(4, 3)(Input(d)), "expects a signal"),
])
def test_bad_networks_name_the_layer(build, match):
    with pytest.raises(NetError, match=match):
        NetSpec.from_output(build(DIGITS), DIGITS)


def _space_file(tmp_path, body: str) -> Path:
    path = tmp_path / "space.py"
    path.write_text("from codesign.net import *\n" + textwrap.dedent(body))
    return path


@pytest.mark.parametrize("body,ref,match", [
    ("", "missing.py:build", "missing.py: no such file"),
    ("def other(trial, data):\n    pass\n", "space.py:build", r"has no function 'build'; its functions: \['other'\]"),
    ("def build(trial, data):\n    raise RuntimeError('oops')\n", "space.py:build", r"raised RuntimeError: oops \(space.py:3\)"),
    ("def build(trial, data):\n    return Dense(3)(Input(data))\n", "space.py:build", "3 values .* 10 classes"),
    ("def build(trial, data):\n    return 5\n", "space.py:build", "must return the output of the network's last layer"),
])
def test_bad_spaces_stop_with_one_line_before_any_work(tmp_path, body, ref, match):
    _space_file(tmp_path, body)
    (tmp_path / "cfg.yaml").write_text(f"model: {ref}\noutput_dir: {tmp_path / 'runs'}\n")
    cfg = load_config(tmp_path / "cfg.yaml")  # the path is relative to the config file
    from codesign.tune import run_search
    with pytest.raises(ConfigError, match=match) as err:
        run_search(cfg, quiet=True)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_user_space_refuses_grow_and_searched_folding():
    with pytest.raises(ConfigError, match="'grow' splits the built-in space"):
        config_from_mapping({"model": "x.py:build", "search": {"algorithm": "grow"}})
    config_from_mapping({"model": "x.py:build", "search": {"algorithm": "dnas"}})  # docs/dnas.md#user-spaces-model
    with pytest.raises(ConfigError, match="folding.mode 'search'"):
        config_from_mapping({"model": "x.py:build", "folding": {"mode": "search"}})
    with pytest.raises(ConfigError, match="not PATH.py:FUNCTION"):
        config_from_mapping({"model": "space.py"})


CONDITIONAL_SPACE = """
from codesign.net import Conv2d, Dense, Flatten, Input, MaxPool

def build(trial, data):
    x = Input(data)
    if trial.suggest_categorical("kind", ["mlp", "cnn"]) == "cnn":
        x = Conv2d(trial.suggest_categorical("channels", [4, 8]), 3, weight_bits=2, act_bits=2)(x)
        if trial.suggest_categorical("pool", [False, True]):
            x = MaxPool(trial.suggest_int("pool_size", 2, 3))(x)
        x = Flatten()(x)
    for i in range(trial.suggest_int("depth", 1, 3)):
        x = Dense(trial.suggest_int(f"fc{i}_width", 8, 32, step=8), weight_bits=trial.suggest_categorical(f"fc{i}_bits", [2, 4]),
                  act_bits=2)(x)
    return Dense(data.n_classes, weight_bits=4)(x)
"""


def _space_cfg(tmp_path, source, **search):
    (tmp_path / "space.py").write_text(textwrap.dedent(source))
    return config_from_mapping({"model": str(tmp_path / "space.py:build"), "dataset": {"name": "digits"},
                                "search": {"num_samples": 4, **search}})


def test_walking_a_user_space_finds_every_conditional_parameter(tmp_path):
    from codesign.userspace import asked_params, space_values
    cfg = _space_cfg(tmp_path, CONDITIONAL_SPACE)
    space = space_values(cfg, DIGITS)
    assert space == {"kind": ["mlp", "cnn"], "channels": [4, 8], "pool": [False, True], "pool_size": [2, 3],
                     "depth": [1, 2, 3], **{f"fc{i}_width": [8, 16, 24, 32] for i in range(3)},
                     **{f"fc{i}_bits": [2, 4] for i in range(3)}}
    point = {k: v[-1] for k, v in space.items()} | {"kind": "mlp", "depth": 2}
    assert asked_params(cfg, DIGITS, point) == ["kind", "depth", "fc0_width", "fc0_bits", "fc1_width", "fc1_bits"]


def test_a_continuous_float_stops_a_grid_with_one_line(tmp_path):
    from codesign.tune import run_search
    cfg = _space_cfg(tmp_path, """
        from codesign.net import Dense, Input, Network

        def build(trial, data):
            return Network(Dense(data.n_classes)(Input(data)), lr=trial.suggest_float("lr", 1e-3, 1e-1, log=True))
        """, algorithm="grid")
    with pytest.raises(ConfigError, match="'lr' is a continuous float") as err:
        run_search(cfg, output_dir=str(tmp_path / "runs"), quiet=True)
    assert "\n" not in str(err.value) and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("algorithm", ["grid", "bo"])
def test_grid_and_bo_sample_user_spaces(tmp_path, algorithm):
    import optuna
    from codesign.samplers import make_sampler
    from codesign.userspace import sample
    cfg = _space_cfg(tmp_path, CONDITIONAL_SPACE, algorithm=algorithm, startup_trials=2)
    study = optuna.create_study(sampler=make_sampler(cfg, DIGITS.image_shape, DIGITS), directions=["maximize"])
    seen = set()
    for i in range(6):
        trial = study.ask()
        spec = sample(cfg, trial, DIGITS)
        seen.add(tuple(sorted(trial.params.items())))
        study.tell(trial, [float(len(spec.layers))])
    assert len(seen) == 6  # six different points of the walked space


FLOAT_MODEL = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, act=nn.ReLU):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.act = act()
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.act(self.bn(self.conv(x))), 1))

def make():
    torch.manual_seed(0)
    return Net()

def make_gelu():
    return Net(nn.GELU)
"""


def test_a_float_model_is_quantized_from_its_weights(tmp_path):
    (tmp_path / "m.py").write_text(FLOAT_MODEL)
    (tmp_path / "cfg.yaml").write_text("model: {float: m.py:make}\nspace: {weight_bits: [2, 4], act_bits: [3]}\n")
    cfg = load_config(tmp_path / "cfg.yaml")
    spec = check_space(cfg, DIGITS)
    design = spec.to_design("finn")
    assert [l.kind for l in design.layers] == ["conv", "dense"]
    assert design.layers[0].act_bits == 3 and design.layers[1].act_bits == 32
    from codesign.userspace import float_model as load
    from codesign.model import build_model
    from codesign.userspace import initialise
    model = build_model(spec, seed=1)
    initialise(model, cfg)
    source = load(cfg.model.float_model).modules["conv"]
    conv = next(m for m in model.layers[0].modules() if isinstance(m, torch.nn.Conv2d))
    assert torch.equal(conv.weight, source.weight)


def test_an_unmappable_float_module_is_named(tmp_path):
    (tmp_path / "m.py").write_text(FLOAT_MODEL)
    cfg = config_from_mapping({"model": {"float": f"{tmp_path / 'm.py'}:make_gelu"}})
    with pytest.raises(SpaceError, match=r"module 'act' \(GELU\) has no mapping to FPGA layers; supported:"):
        check_space(cfg, DIGITS)


def test_signal_layout_of_npz_files(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "sig.npz"
    np.savez(path, x_train=rng.random((40, 2, 16)), y_train=np.arange(40) % 2, x_test=rng.random((10, 2, 16)),
             y_test=np.arange(10) % 2, layout="signal")
    data = load_dataset("npz", str(path))
    assert data.sample_shape == (2, 16) and data.image_shape is None
    np.savez(path, x_train=rng.random((40, 4, 6)), y_train=np.arange(40) % 2, x_test=rng.random((10, 4, 6)),
             y_test=np.arange(10) % 2)
    load_dataset.cache_clear()
    assert load_dataset("npz", str(path)).sample_shape == (1, 4, 6)  # a non-square image


def test_a_width_multiplier_narrows_every_layer_but_the_output(tmp_path):
    import yaml

    from codesign.config import dump_config
    (tmp_path / "m.py").write_text(FLOAT_MODEL)
    cfg = config_from_mapping({"model": {"float": f"{tmp_path / 'm.py'}:make", "width_multipliers": [0.5, 1.0]},
                               "space": {"weight_bits": [4], "act_bits": [4]}})
    assert config_from_mapping(yaml.safe_load(dump_config(cfg))) == cfg  # saved with the run, read on resume
    from codesign.userspace import spec_from_params
    spec = spec_from_params(cfg, {"width_multiplier": 0.5, "conv_weight_bits": 4, "conv_act_bits": 4,
                                  "fc_weight_bits": 4}, DIGITS)
    design = spec.to_design("finn")
    assert design.layers[0].out_ch == 2 and design.layers[1].in_features == 2 * 64 and design.layers[1].out_features == 10
    from codesign.model import build_model
    from codesign.userspace import float_model as load
    from codesign.userspace import initialise
    model = build_model(spec, seed=0)
    initialise(model, cfg)
    conv = next(m for m in model.layers[0].modules() if isinstance(m, torch.nn.Conv2d))
    assert torch.equal(conv.weight, load(cfg.model.float_model).modules["conv"].weight[:2])


def test_the_layers_feeding_a_residual_add_share_one_quantizer():
    """Both inputs of an add on one scale (FINN's integer ElementwiseAdd), an add's output among them;
    a producer of other bits keeps its own quantizer."""
    from codesign.model import build_model
    x = Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(Input(DIGITS))
    y = Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(x)
    a = Add(act_bits=2)(x, y)
    z = Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(a)
    b = Add(act_bits=2)(a, z)
    w = Conv2d(4, 3, padding=1, weight_bits=2, act_bits=4)(b)
    c = Add(act_bits=4)(b, w)
    model = build_model(NetSpec.from_output(Dense(10)(GlobalAvgPool()(c)), DIGITS), seed=0)
    conv0, conv1, add0, conv2, add1, conv3, add2 = model.layers[:7]
    assert conv0[-1] is conv1[-1] and add0.post is conv2[-1]  # x and y; a and z
    assert add0.post is not conv0[-1] and conv3[-1] is not add1.post  # b and w: 2 vs 4 bits
    assert model(torch.from_numpy(DIGITS.x_test[:3])).shape == (3, 10)
