import optuna
import pytest

from codesign.config import config_from_mapping
from codesign.space import grid_space, sample_spec, spec_from_params
from hw_models.design import ALLOWED_BITS, ConvLayer, MaxPoolLayer, check_folding

ALL_BITS = list(ALLOWED_BITS)


def _sample_many(cfg, n=40, image_shape=(1, 8, 8), sampler=None):
    study = optuna.create_study(sampler=sampler or optuna.samplers.RandomSampler(seed=0))
    specs = []
    for _ in range(n):
        t = study.ask()
        spec = sample_spec(t, cfg.space, cfg.folding, n_features=64, image_shape=image_shape, n_classes=10)
        specs.append((t.params, spec))
        study.tell(t, 0.0)
    return specs


def test_sampling_covers_kinds_and_every_bit_width():
    cfg = config_from_mapping({"space": {"kind": ["mlp", "cnn"], "weight_bits": ALL_BITS, "act_bits": ALL_BITS}})
    specs = [s for _, s in _sample_many(cfg, n=150)]
    assert {s.kind for s in specs} == {"mlp", "cnn"}
    wbits = {d.weight_bits for s in specs for d in s.dense} | {c.weight_bits for s in specs for c in s.convs}
    assert wbits == set(ALL_BITS)
    for s in specs:
        assert s.dense[-1].width == 10 and s.dense[-1].act_bits == 32
        assert 1 <= len(s.dense) - 1 <= 3
        design = s.to_design("finn")
        check_folding(design)


def test_replay_gives_the_same_spec():
    cfg = config_from_mapping({"space": {"kind": ["mlp", "cnn"]}, "folding": {"target_fps": [1e4, 1e6]}})
    for params, spec in _sample_many(cfg, n=30):
        assert spec_from_params(params, cfg, n_features=64, image_shape=(1, 8, 8), n_classes=10) == spec


def test_define_by_run_samples_only_existing_layers():
    cfg = config_from_mapping({"space": {"hidden_layers": [1, 3]}})
    for params, spec in _sample_many(cfg, n=30):
        n = params["hidden_layers"]
        assert ("fc2_width" in params) == (n == 3)
        assert len(spec.dense) == n + 1


def test_tied_bits_use_one_width_everywhere():
    cfg = config_from_mapping({"space": {"tie_bits": True, "hidden_layers": [3]}})
    for params, spec in _sample_many(cfg, n=10):
        assert {d.weight_bits for d in spec.dense} == {params["weight_bits"]}
        assert {d.act_bits for d in spec.dense[:-1]} == {params["act_bits"]}


def test_cnn_design_chains_and_pools():
    cfg = config_from_mapping({"space": {"kind": ["cnn"], "conv": {"blocks": [2], "pool": [True]}}})
    for _, spec in _sample_many(cfg, n=10):
        design = spec.to_design("finn")
        assert isinstance(design.layers[0], ConvLayer) and isinstance(design.layers[1], MaxPoolLayer)
        from hw_models.design import shape_warnings
        assert shape_warnings(design) == []


def test_cnn_on_flat_data_is_a_clear_error():
    cfg = config_from_mapping({"space": {"kind": ["cnn"]}})
    with pytest.raises(ValueError, match="needs a dataset of square images"):
        _sample_many(cfg, n=1, image_shape=None)


def test_folding_search_mode_gives_valid_folding_for_both_styles():
    for style in ("finn", "hls4ml"):
        cfg = config_from_mapping({"style": style, "folding": {"mode": "search"}, "space": {"kind": ["mlp", "cnn"]}})
        for _, spec in _sample_many(cfg, n=30):
            design = spec.to_design(style)
            check_folding(design)
            key = "reuse_factor" if style == "hls4ml" else "pe"
            assert all(getattr(l, key) for l in design.layers if not isinstance(l, MaxPoolLayer))


def test_grid_space_covers_every_parameter_sampled():
    cfg = config_from_mapping({"space": {"kind": ["mlp", "cnn"], "hidden_layers": [1, 2], "width": [8, 16],
                                         "weight_bits": [1, 4], "act_bits": [2]},
                               "folding": {"target_fps": [1e4, 1e5]}})
    grid = grid_space(cfg, image_shape=(1, 8, 8))
    sampler = optuna.samplers.GridSampler(grid, seed=0)
    for params, _ in _sample_many(cfg, n=20, sampler=sampler):
        for k, v in params.items():
            assert k in grid and v in grid[k]


def test_grid_space_lists_only_parameters_some_network_asks_for():
    cfg = config_from_mapping({"space": {"kind": ["mlp", "cnn"], "conv": {"blocks": [1, 2], "kernel": [3, 5]},
                                         "hidden_layers": [1, 2]}, "folding": {"mode": "search"}})
    grid = grid_space(cfg, image_shape=(1, 8, 8))
    asked = {k for params, _ in _sample_many(cfg, n=400) for k in params}
    assert set(grid) == asked
    assert "conv1_pool" in grid  # only under two blocks, an unpooled first block and a 3x3 second kernel
    assert grid["hw0_pe"] == [0.0, 0.5, 1.0] and "hw7_pe" not in grid  # at most 7 hardware layers on 8x8


@pytest.mark.parametrize("style", ["finn", "hls4ml"])
def test_the_built_in_space_is_two_space_functions(style):
    """sample_spec asks `codesign.spaces.mlp` / `cnn`; the same functions run as a user space build the
    same hardware for the same parameters."""
    import warnings

    from codesign.net import NetSpec
    from codesign.spaces import BUILTIN_SPACES, DataShape
    cfg = config_from_mapping({"space": {"kind": ["mlp", "cnn"], "activation": ["relu", "hardtanh"],
                                         "weight_bits": [1, 2, 4], "act_bits": [1, 2, 32]}})
    kinds = set()
    for params, spec in _sample_many(cfg, n=60):
        data = DataShape((1, 8, 8) if spec.kind == "cnn" else (64,), 10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = BUILTIN_SPACES[spec.kind](optuna.trial.FixedTrial(params), data, cfg.space)
        as_user = NetSpec.from_output(net, data, target_fps=spec.target_fps)
        assert as_user.to_design(style) == spec.to_design(style)
        assert {a["activation"] for k, a, _ in as_user.layers if k in ("dense", "conv2d")} == {spec.activation}
        kinds.add(spec.kind)
    assert kinds == {"mlp", "cnn"}


def test_a_built_in_space_function_is_a_user_space():
    from codesign.data import load_dataset
    from codesign.userspace import check_space, space_values
    cfg = config_from_mapping({"model": "codesign.spaces:cnn", "dataset": {"name": "digits"}})
    data = load_dataset("digits")
    assert check_space(cfg, data).kind == "net"
    assert set(space_values(cfg, data)) == set(grid_space(config_from_mapping({"space": {"kind": ["cnn"]}}),
                                                          image_shape=data.image_shape)) - {"kind"}
