"""Property-based: no input makes config or design parsing escape with anything but a clean error."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boards import BoardError, get_board
from codesign.config import ConfigError, config_from_mapping
from hw_models import DesignError, design_from_mapping, estimate

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=8), st.sampled_from(["mlp", "cnn", "relu", "digits", "pynq-z2", "finn", "asha"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                      max_leaves=12)

CONFIG_KEYS = {
    "": ["name", "seed", "board", "board_file", "style", "clock_mhz", "dataset", "space", "folding", "training",
         "search", "feedback", "flows", "output_dir", "bogus"],
    "space": ["kind", "hidden_layers", "width", "activation", "weight_bits", "act_bits", "tie_bits", "input_bits",
              "output_bits", "scaling", "conv"],
    "search": ["algorithm", "num_samples", "max_concurrent", "objectives", "scheduler", "budgets"],
    "training": ["epochs", "batch_size", "lr", "patience"],
    "folding": ["mode", "target_fps"],
    "dataset": ["name", "path", "val_fraction"],
}


@st.composite
def configs(draw):
    """Valid-looking configs with random keys replaced by random values (or random extra keys)."""
    cfg = {}
    for key in draw(st.lists(st.sampled_from(CONFIG_KEYS[""]), max_size=5, unique=True)):
        if key in CONFIG_KEYS and draw(st.booleans()):
            sub = CONFIG_KEYS[key]
            cfg[key] = {k: draw(values) for k in draw(st.lists(st.sampled_from(sub), max_size=3, unique=True))}
        else:
            cfg[key] = draw(values)
    return cfg


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_configs_are_accepted_or_cleanly_rejected(data):
    try:
        config_from_mapping(data)
    except ConfigError as exc:
        assert str(exc) and "Traceback" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(values)
def test_arbitrary_documents_are_cleanly_rejected(data):
    try:
        config_from_mapping(data)
    except ConfigError:
        pass


layer = st.fixed_dictionaries({"kind": st.sampled_from(["dense", "conv", "maxpool", "lstm", 3])}, optional={
    "in": st.one_of(st.integers(-2, 300), scalars), "out": st.one_of(st.integers(-2, 300), scalars),
    "in_ch": st.integers(-1, 64), "out_ch": st.integers(-1, 64), "kernel": st.integers(-1, 9),
    "in_dim": st.integers(-1, 32), "channels": st.integers(-1, 64), "pool": st.integers(-1, 5),
    "stride": st.integers(-1, 3), "padding": st.integers(-1, 2),
    "weight_bits": st.one_of(st.sampled_from([1, 2, 3, 4, 5, 6, 8, 16, 32]), scalars),
    "act_bits": st.one_of(st.sampled_from([1, 2, 4, 8, 32]), scalars),
    "pe": st.one_of(st.integers(-1, 64), scalars), "simd": st.one_of(st.integers(-1, 64), scalars),
    "reuse_factor": st.one_of(st.integers(-1, 128), scalars), "junk": scalars})
designs = st.fixed_dictionaries({"layers": st.one_of(st.lists(layer, max_size=4), scalars)}, optional={
    "style": st.sampled_from(["finn", "hls4ml", "vhdl"]), "board": st.sampled_from(["pynq-z2", "nope", 5]),
    "clock_mhz": st.one_of(st.floats(-10, 500), scalars), "input_bits": st.one_of(st.integers(-1, 40), scalars),
    "target_fps": st.one_of(st.floats(-1, 1e9), scalars), "ram_style": st.sampled_from(["auto", "ultra", "x"])})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(designs)
def test_design_files_are_estimated_or_cleanly_rejected(data):
    try:
        design, board_name = design_from_mapping(data)
        est = estimate(design, get_board(board_name or "pynq-z2"))
    except (DesignError, BoardError) as exc:
        assert str(exc)
        return
    assert est.cycles_per_frame >= 1 and est.total.lut >= 0


bits = st.sampled_from([1, 2, 3, 4, 5, 6, 8, 16, 32])
dense = st.fixed_dictionaries({"kind": st.just("dense"), "in": st.integers(1, 256), "out": st.integers(1, 64),
                               "weight_bits": bits, "act_bits": bits},
                              optional={"pe": st.integers(1, 16), "simd": st.integers(1, 16),
                                        "reuse_factor": st.integers(1, 64)})
conv = st.fixed_dictionaries({"kind": st.just("conv"), "in_ch": st.integers(1, 8), "out_ch": st.integers(1, 16),
                              "kernel": st.integers(1, 5), "in_dim": st.integers(1, 16), "weight_bits": bits,
                              "act_bits": bits},
                             optional={"stride": st.integers(1, 2), "padding": st.integers(0, 1),
                                       "pe": st.integers(1, 8), "simd": st.integers(1, 8)})
pool = st.fixed_dictionaries({"kind": st.just("maxpool"), "channels": st.integers(1, 16), "in_dim": st.integers(1, 16),
                              "pool": st.integers(1, 3)}, optional={"pe": st.integers(1, 8)})
plausible = st.fixed_dictionaries({"layers": st.lists(st.one_of(dense, conv, pool), min_size=1, max_size=4)}, optional={
    "style": st.sampled_from(["finn", "hls4ml"]), "input_bits": bits, "target_fps": st.floats(1, 1e8),
    "clock_mhz": st.floats(10, 500), "ram_style": st.sampled_from(["auto", "block", "distributed", "ultra"])})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plausible, st.sampled_from(["pynq-z2", "zcu104", "u250"]))
def test_plausible_designs_estimate_or_name_the_folding_problem(data, board):
    try:
        design, _ = design_from_mapping(data)
    except DesignError as exc:
        assert "does not divide" in str(exc) or "not valid" in str(exc) or "knob" in str(exc) or "fit" in str(exc) \
            or "larger than" in str(exc), str(exc)
        return
    est = estimate(design, get_board(board))
    assert est.cycles_per_frame >= 1 and est.fps > 0 and all(v >= 0 for v in est.total.as_dict().values())
    assert est.fits == all(v <= 0 for v in est.violations.values())
