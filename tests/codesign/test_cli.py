import json

import numpy as np
import pytest
import yaml

from codesign.cli import main

DESIGN = {"board": "pynq-z2", "style": "finn", "input_bits": 8, "layers": [
    {"kind": "dense", "in": 64, "out": 64, "weight_bits": 4, "act_bits": 4, "pe": 4, "simd": 8},
    {"kind": "dense", "in": 64, "out": 10, "weight_bits": 4, "act_bits": 32, "pe": 1, "simd": 4}]}


def _write(tmp_path, data, name="d.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return str(p)


def test_boards_lists_catalog(capsys):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in ("pynq-z2", "ultra96-v2", "kv260", "zcu104", "u280"):
        assert name in out
    assert main(["boards", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pynq-z2"]["resources"]["bram18"] == 280 and data["zcu104"]["fill_limits"]["ff"] == 0.5


def test_estimate_json_contract(tmp_path, capsys):
    assert main(["estimate", _write(tmp_path, DESIGN), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "analytic"
    assert set(out["total"]) == {"lut", "ff", "bram18", "uram", "dsp"}
    assert len(out["per_layer"]) == 2 and out["cycles_per_frame"] == 160
    assert out["fps"] == pytest.approx(100e6 / 160) and out["fits"] is True
    assert set(out["utilization"]) == {"lut", "ff", "bram18", "uram", "dsp"}


def test_estimate_text_and_board_override(tmp_path, capsys):
    assert main(["estimate", _write(tmp_path, DESIGN), "--board", "zcu104"]) == 0
    out = capsys.readouterr().out
    assert "board: zcu104" in out and "200 MHz" in out and "fits: yes" in out


def test_estimate_with_calibrated_coefficients(tmp_path, capsys):
    design = {"style": "hls4ml", "board": "pynq-z2", "layers": [
        {"kind": "dense", "in": 64, "out": 32, "weight_bits": 2, "act_bits": 2, "reuse_factor": 1, "csd_digits": 0.4},
        {"kind": "dense", "in": 32, "out": 10, "weight_bits": 2, "act_bits": 32, "reuse_factor": 1}]}
    path = _write(tmp_path, design)
    outs = {}
    for coeffs in ("analytic", "yosys-xc7"):
        assert main(["estimate", path, "--coefficients", coeffs, "--json"]) == 0
        outs[coeffs] = json.loads(capsys.readouterr().out)
    assert outs["analytic"]["source"] == "analytic" and outs["yosys-xc7"]["source"] == "calibrated"
    assert outs["yosys-xc7"]["total"]["lut"] < outs["analytic"]["total"]["lut"] / 3  # published values: ~5x too high
    assert outs["yosys-xc7"]["per_layer"][0]["detail"]["csd_digits"] == 0.4
    assert main(["estimate", path, "--coefficients", "nope"]) == 2
    from hw_models.coefficients import COEFFICIENT_FILES
    assert f"valid names: {sorted(COEFFICIENT_FILES)}" in capsys.readouterr().err
    assert {"analytic", "yosys-xc7", "pnr-ecp5"} <= set(COEFFICIENT_FILES)


def test_estimate_derives_missing_folding(tmp_path, capsys):
    design = {"layers": [{"kind": "dense", "in": 64, "out": 10, "weight_bits": 4, "act_bits": 32}]}
    assert main(["estimate", _write(tmp_path, design), "--board", "pynq-z2", "--target-fps", "1e6", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["per_layer"][0]["folding"] == {"pe": 1, "simd": 8} and out["fps"] >= 1e6


@pytest.mark.parametrize("data,match", [
    ({**DESIGN, "layers": [{**DESIGN["layers"][0], "pe": 3}]}, "pe=3 does not divide"),
    ({**DESIGN, "board": "nope"}, "unknown board 'nope'"),
    ({k: v for k, v in DESIGN.items() if k != "board"}, "no board"),
    ([1, 2], "must be a mapping"),
])
def test_estimate_errors_exit_2_with_a_message(tmp_path, capsys, data, match):
    assert main(["estimate", _write(tmp_path, data)]) == 2
    assert match in capsys.readouterr().err


def test_missing_files_are_clear_errors(tmp_path, capsys):
    assert main(["estimate", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_search_rejects_bad_config_before_any_work(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("search: {algoritm: nsga2}\n")
    assert main(["search", str(cfg), "--output", str(tmp_path / "runs")]) == 2
    assert "search.algoritm: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_search_and_report_end_to_end(ray_local, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('name = "cli"\n[training]\nepochs = 1\n[space]\nhidden_layers = [1]\nwidth = [16]\n'
                   '[search]\nnum_samples = 2\n')
    assert main(["search", str(cfg), "--output", str(tmp_path / "runs"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front" in out and "run folder:" in out
    run_dir = next((tmp_path / "runs").iterdir())
    assert main(["report", str(run_dir), "--all"]) == 0
    assert "all trials:" in capsys.readouterr().out


def test_vivado_feedback_without_vivado_stops_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("feedback: vivado\n")
    assert main(["search", str(cfg), "--output", str(tmp_path / "runs")]) == 2
    assert "feedback 'vivado': Vivado not found" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("config, says", [
    ("feedback: pnr\nstyle: hls4ml\nboard: pynq-z2\nfolding: {target_fps: null}\n",
     "feedback 'pnr': nextpnr places families ['ecp5', 'nexus']; board pynq-z2 is 'xc7'"),
    ("feedback: yosys\nstyle: hls4ml\nboard: ulx3s-85f\nfolding: {target_fps: null}\n",
     "feedback 'yosys': Yosys synth_xilinx has no family 'ecp5'"),
    ("feedback: finn-estimate\nboard: ulx3s-85f\n", "feedback 'finn-estimate': finn-plus estimates Xilinx parts"),
])
def test_a_feedback_flow_that_cannot_take_the_board_stops_before_any_work(tmp_path, capsys, config, says):
    from flows.pnr import PnrFlow
    from flows.yosys_flow import YosysFlow
    if "pnr" in config and not PnrFlow().check("hls4ml").available or "yosys" in config and not YosysFlow().check("hls4ml").available:
        pytest.skip("the flow's tools are absent: the tool check answers first")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config)
    assert main(["search", str(cfg), "--output", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_doctor(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "finn-plus" in out and "vivado" in out and "enables:" in out


def _exported_cnn(tmp_path):
    from codesign.data import load_dataset
    from codesign.model import build_model
    from codesign.space import ConvSpec, DenseSpec, ModelSpec
    from flows.qonnx import export_and_verify
    spec = ModelSpec(kind="cnn", n_features=64, image_shape=(1, 8, 8), n_classes=10, input_bits=8,
                     activation="relu", convs=(ConvSpec(4, 3, True, 4, 4),),
                     dense=(DenseSpec(16, 2, 2), DenseSpec(10, 2, 32)))
    model = build_model(spec, seed=0).eval()
    return export_and_verify(model, load_dataset("digits").x_test, tmp_path, samples=4, min_agreement=0).onnx_path


def test_estimate_a_qonnx_model(tmp_path, capsys):
    onnx = _exported_cnn(tmp_path)
    assert main(["estimate", str(onnx), "--board", "pynq-z2", "--target-fps", "1e5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [l["kind"] for l in out["per_layer"]] == ["conv", "maxpool", "dense", "dense"]
    assert out["fps"] >= 1e5 and out["fits"] is True
    assert main(["estimate", str(onnx), "--board", "zcu104", "--style", "hls4ml"]) == 0
    assert "style: hls4ml" in capsys.readouterr().out


def test_estimate_rejects_float_and_malformed_onnx(tmp_path, capsys):
    import torch
    float_path = tmp_path / "float.onnx"
    torch.onnx.export(torch.nn.Sequential(torch.nn.Linear(8, 4)), torch.zeros(1, 8), str(float_path), dynamo=False)
    assert main(["estimate", str(float_path), "--board", "pynq-z2"]) == 2
    assert "float" in capsys.readouterr().err.lower()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    assert main(["estimate", str(bad), "--board", "pynq-z2"]) == 2
    assert "error" in capsys.readouterr().err


def test_fit_lists_boards_with_max_throughput(tmp_path, capsys):
    onnx = _exported_cnn(tmp_path)
    assert main(["fit", str(onnx), "--json"]) == 0
    results = {r["board"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"pynq-z2", "zcu104", "u280"} <= set(results)
    assert all(r["fits"] for r in results.values())
    assert results["u280"]["max_fps"] >= results["pynq-z2"]["max_fps"]
    assert main(["fit", str(onnx), "--boards", "pynq-z2,kv260"]) == 0
    out = capsys.readouterr().out
    assert "pynq-z2" in out and "kv260" in out and "u280" not in out


# ---------------------------------------------------------------- checks before any work (issue 10)

SMALL_SEARCH = "training: {epochs: 1}\nspace: {hidden_layers: [1], width: [16]}\nsearch: {num_samples: 2}\n"


def _search_errors(tmp_path, capsys, config: str, *extra: str) -> str:
    """Run `codesign search`, expect exit 2 with one error line and no run folder; return the line."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config)
    out = tmp_path / "runs"
    assert main(["search", str(cfg), "--output", str(out), "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("codesign search: error: ") and "\n" not in err and "Traceback" not in err, err
    assert not out.exists(), "a run folder was created before the error"
    return err


@pytest.mark.parametrize("flags,match", [
    (["--num-samples", "0"], "--num-samples 0: must be >= 1"),
    (["--num-samples", "-1"], "--num-samples -1: must be >= 1"),
    (["--max-concurrent", "0"], "--max-concurrent 0: must be >= 1"),
])
@pytest.mark.timeout(120)  # before the check, --num-samples -1 searched forever
def test_search_overrides_are_checked_before_any_work(tmp_path, capsys, flags, match):
    assert match in _search_errors(tmp_path, capsys, SMALL_SEARCH, *flags)


def test_search_output_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(SMALL_SEARCH)
    assert main(["search", str(cfg), "--output", str(tmp_path / "taken"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and err.count("\n") == 1
    assert main(["search", str(cfg), "--output", str(tmp_path / "taken" / "sub"), "--quiet"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def _npz(tmp_path, name="d.npz", **arrays):
    rng = np.random.default_rng(0)
    data = {"x_train": rng.random((40, 16)), "y_train": np.arange(40) % 4,
            "x_test": rng.random((12, 16)), "y_test": np.arange(12) % 4, **arrays}
    np.savez(tmp_path / name, **data)
    return f"dataset: {{name: npz, path: {tmp_path / name}}}\n"


@pytest.mark.parametrize("arrays,match", [
    ({"y_train": np.r_[np.arange(39) % 4, 1000]}, "y_train has 5 distinct label(s) from 0 to 1000; labels must be 0..C-1"),
    ({"y_train": np.arange(40) % 4 + 0.5}, "y_train has 40 non-integer label(s)"),
    ({"y_test": np.arange(12) % 5}, "y_test has 2 label(s) outside 0..3"),
    ({"y_train": -(np.arange(40) % 4)}, "labels must be 0..C-1"),
    ({"x_train": np.zeros((0, 16)), "y_train": np.zeros(0)}, "x_train is empty"),
    ({"x_test": np.full((12, 16), np.nan)}, "x_test has 192 NaN/inf value(s)"),
    ({"x_train": np.r_[np.ones((39, 16)), np.full((1, 16), np.inf)]}, "x_train has 16 NaN/inf value(s)"),
])
def test_bad_datasets_stop_before_any_work(tmp_path, capsys, arrays, match):
    assert match in _search_errors(tmp_path, capsys, SMALL_SEARCH + _npz(tmp_path, **arrays))


def test_cnn_space_the_dataset_cannot_serve_stops_before_any_work(tmp_path, capsys):
    cnn = SMALL_SEARCH + "space: {kind: [cnn], hidden_layers: [1], width: [16], conv: {kernel: [5]}}\n"
    cnn = cnn.replace("space: {hidden_layers: [1], width: [16]}\n", "")
    flat = _npz(tmp_path)  # 16 flat features, no image
    assert "'cnn' needs a dataset of square images" in _search_errors(tmp_path, capsys, cnn + flat)
    small_images = _npz(tmp_path, "img.npz", x_train=np.random.default_rng(0).random((40, 4, 4)),
                        x_test=np.random.default_rng(1).random((12, 4, 4)))
    err = _search_errors(tmp_path, capsys, cnn + small_images)
    assert "space.conv.kernel: the smallest kernel (5) is larger than the 4x4 images" in err


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_target_fps_must_be_finite_and_positive(tmp_path, capsys, value):
    for command in ("estimate", "fit"):
        assert main([command, _write(tmp_path, DESIGN), "--target-fps", value]) == 2
        assert f"--target-fps {float(value)}: must be a finite number > 0" in capsys.readouterr().err


@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_config_numbers_must_be_finite(tmp_path, capsys, value):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(SMALL_SEARCH + f"folding: {{target_fps: {value}}}\n")
    assert main(["search", str(cfg), "--output", str(tmp_path / "runs")]) == 2
    assert "folding.target_fps: Input should be a finite number" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv_of", [
    lambda f: ["search", f],
    lambda f: ["boards", "--board-file", f],
    lambda f: ["estimate", f, "--board", "pynq-z2"],
])
def test_binary_files_are_not_text_files(tmp_path, capsys, argv_of):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81binary")
    assert main(argv_of(str(path))) == 2
    err = capsys.readouterr().err
    assert err.endswith(f": {path}: not a text file\n") and err.count("\n") == 1, err


def test_empty_onnx_file_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty.onnx").write_bytes(b"")
    assert main(["estimate", str(tmp_path / "empty.onnx"), "--board", "pynq-z2"]) == 2
    assert "empty.onnx: empty file, not an ONNX/QONNX model" in capsys.readouterr().err


@pytest.mark.timeout(60)  # it used to spin in divisors() for minutes
def test_fit_on_an_absurd_design_returns_promptly_with_an_error(tmp_path, capsys):
    import time
    huge = {"board": "pynq-z2", "style": "hls4ml", "layers": [
        {"kind": "dense", "in": 10 ** 12, "out": 10 ** 12, "weight_bits": 4, "act_bits": 4}]}
    started = time.monotonic()
    for command in ("fit", "estimate"):
        assert main([command, _write(tmp_path, {**huge, "style": "finn"})]) == 2
        assert main([command, _write(tmp_path, huge)]) == 2
    assert time.monotonic() - started < 10
    assert "more than 2^31, beyond any FPGA" in capsys.readouterr().err


def test_report_names_a_run_folder_problem_in_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("search: {num_samples: 0}\n")
    for path, match in ((tmp_path / "nope", "does not exist"), (tmp_path / "file", "a file"),
                        (tmp_path, "no config.yaml"), (tmp_path / "run", "damaged run folder")):
        for command in ("report", "compare"):
            assert main([command, str(path)]) == 2
            err = capsys.readouterr().err
            assert f"{str(path)!r}: not a run folder" in err or match in err
            assert match in err and err.count("\n") == 1, err
