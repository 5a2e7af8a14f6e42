"""Property-based: no input makes config or design parsing escape with anything but a clean error."""
from pathlib import Path

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


# ---------------------------------------------------------------- random bytes into every file-reading command

GOOD_DESIGN = "board: pynq-z2\nlayers:\n  - {kind: dense, in: 16, out: 4, weight_bits: 4, act_bits: 4, pe: 1, simd: 1}\n"
GOOD_SAMPLES = "design,source,family,lut,ff,bram18,uram,dsp\nd.yaml,v,xc7,500,300,0,0,0\nd.yaml,v,xc7,510,310,0,0,0\n"


def _run_with(tmp, name: str, data: bytes) -> list[str]:
    """Lay out a workspace where file `name` holds `data`; return the command that reads it."""
    (tmp / "d.yaml").write_text(GOOD_DESIGN)
    (tmp / "s.csv").write_text(GOOD_SAMPLES)
    run = tmp / "run"
    run.mkdir(exist_ok=True)
    (run / "config.yaml").write_text("search: {num_samples: 2}\n")
    f = tmp / "f"
    f.write_bytes(data)
    csv_to = "design,source,family,lut,ff,bram18,uram,dsp,report\n{}\n"
    return {
        "config": lambda: ["search", str(f), "--output", str(tmp / "runs"), "--num-samples", "0"],
        "dataset": lambda: ["search", str(_write(tmp / "c.yaml", f"dataset: {{name: npz, path: {f}}}\n")),
                            "--output", str(tmp / "runs")],
        "resume config": lambda: ["search", "--resume", str(_write(tmp / "r" / "config.yaml", data).parent)],
        "run records": lambda: ["report", str(_write(run / "trials.jsonl", data).parent), "--all"],
        "run summary": lambda: ["report", str(_write(run / "summary.json", data).parent)],
        "board file": lambda: ["boards", "--board-file", str(f)],
        "design": lambda: ["estimate", str(f), "--board", "pynq-z2"],
        "design to fit": lambda: ["fit", str(f), "--boards", "pynq-z2"],
        "onnx": lambda: ["estimate", str(_write(tmp / "m.onnx", data)), "--board", "pynq-z2"],
        "coefficients": lambda: ["estimate", str(tmp / "d.yaml"), "--coefficients", str(f)],
        "golden": lambda: ["regress", "--golden", str(f), "--junit", str(tmp / "r.xml")],
        "model": lambda: ["regress", "--golden", str(tmp / "s.csv"), "--model", str(f), "--junit", str(tmp / "r.xml")],
        "samples": lambda: ["calibrate", str(f), "--out", str(tmp / "c.json")],
        "block samples": lambda: ["calibrate", str(tmp / "s.csv"), "--block", f"finn.swu={f}",
                                  "--out", str(tmp / "c.json")],
        "design in a csv": lambda: ["regress", "--golden", str(_write(tmp / "g.csv", csv_to.format("f,v,xc7,1,1,0,0,0,"))),
                                    "--junit", str(tmp / "r.xml")],
        "report in a csv": lambda: ["regress", "--junit", str(_write(tmp / "f.rpt", data).with_suffix(".xml")),
                                    "--golden", str(_write(tmp / "g.csv", csv_to.format("d.yaml,,xc7,,,,,,f.rpt")))],
    }[name]()


def _write(path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


FILE_ROLES = ["config", "dataset", "resume config", "run records", "run summary", "board file", "design",
              "design to fit", "onnx", "coefficients", "golden", "model", "samples", "block samples",
              "design in a csv", "report in a csv"]
PREFIXES = [b"", b"\xff\xfe", b"\x00", b"{}", b"boards:\n", b"layers: ", b"design,source,family\n",
            b"design,source,family,lut\nf,v,xc7,", b"PK\x03\x04", b"\x08\x07", b'{"trial_id": "x"', b"- 1\n"]
contents = st.one_of(st.binary(max_size=200), st.text(max_size=80).map(str.encode),
                     st.tuples(st.sampled_from(PREFIXES), st.binary(max_size=60)).map(b"".join))


@pytest.mark.parametrize("role", FILE_ROLES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=contents)
def test_random_bytes_give_one_line_errors(tmp_path_factory, capsys, role, data):
    from codesign.cli import main
    argv = _run_with(tmp_path_factory.mktemp("bytes"), role, data)
    code = main(argv)  # an exception escaping here is the failure this test looks for
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if code == 2:
        first, *rest = err.rstrip("\n").split("\n")
        assert first.startswith(f"codesign {argv[0]}: error: "), err
        assert all(line.startswith("  ") for line in rest), err  # config errors list one key path per line
    else:
        assert code in (0, 1), (code, err)
    if data.startswith(b"\xff\xfe") and role not in ("onnx", "dataset", "run records", "run summary",
                                                     "report in a csv"):
        assert err.endswith(": not a text file\n"), err
