"""hls4ml from our QONNX export: reuse factors from the design point, C simulation vs Brevitas."""
import shutil

import pytest

from boards import get_board
from flows.hls4ml import Hls4mlError, ToolMissing, csim_agreement
from flows.qonnx import export_and_verify
from hw_models.estimate import folded_design

BOARD = get_board("pynq-z2")
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed (hls4ml C simulation)")


def _run(trained, digits, specs, spec, tmp_path, **kw):
    model = trained(spec)
    onnx = export_and_verify(model, digits.x_test, tmp_path, samples=16).onnx_path
    design = folded_design(spec.to_design("hls4ml"), BOARD)
    x = digits.x_test[:32]
    return csim_agreement(onnx, design, BOARD.part, x, specs.outputs(model, x), image_shape=spec.image_shape, **kw), design


@needs_gxx
def test_mlp_csim_is_bit_exact_with_reuse_factors(trained, digits, specs, tmp_path):
    from dataclasses import replace
    spec = replace(specs.mlp(2, 2), target_fps=2e7)  # 5 cycles at 100 MHz: reuse factors > 1
    result, design = _run(trained, digits, specs, spec, tmp_path, keep_dir=tmp_path / "prj")
    assert result.agreement == 1.0 and result.max_abs_diff == 0.0
    assert [rf for _, _, rf in result.layers] == [l.reuse_factor for l in design.layers]
    assert any(rf > 1 for _, _, rf in result.layers)
    assert (tmp_path / "prj" / "hls4ml_prj").is_dir()


@needs_gxx
def test_cnn_csim_is_bit_exact(trained, digits, specs, tmp_path):
    result, _ = _run(trained, digits, specs, specs.cnn(4, 4), tmp_path)
    assert result.agreement == 1.0
    assert [cls for _, cls, _ in result.layers] == ["Conv2D", "Dense", "Dense"]


def test_missing_gxx_is_reported_not_crashed(trained, digits, specs, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ToolMissing, match="g\\+\\+ not found"):
        _run(trained, digits, specs, specs.mlp(2, 2), tmp_path)


def test_layer_count_mismatch_is_an_error(trained, digits, specs, tmp_path):
    model = trained(specs.mlp(2, 2))
    onnx = export_and_verify(model, digits.x_test, tmp_path, samples=8).onnx_path
    wrong = folded_design(specs.cnn(2, 2).to_design("hls4ml"), BOARD)
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed")
    with pytest.raises(Hls4mlError, match="MatMul/Conv nodes"):
        csim_agreement(onnx, wrong, BOARD.part, digits.x_test[:4], specs.outputs(model, digits.x_test[:4]))
