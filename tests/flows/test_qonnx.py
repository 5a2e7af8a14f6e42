"""QONNX export verified against Brevitas for every precision, and the classic 1-bit trap caught."""
import pytest
from brevitas import nn as qnn

from flows.qonnx import ExportError, ExportMismatch, compare_outputs, export_and_verify, load_clean


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 32])
def test_export_agrees_with_brevitas(trained, digits, specs, tmp_path, bits):
    model = trained(specs.mlp(bits, bits))
    result = export_and_verify(model, digits.x_test, tmp_path, samples=48)
    assert result.onnx_path.is_file() and result.exporter == "torchscript"
    assert result.agreement == 1.0 and result.argmax_agreement == 1.0 and result.samples == 48
    ops = {n.op_type for n in load_clean(result.onnx_path).graph.node}
    if bits == 1:
        assert "BipolarQuant" in ops
    elif bits == 32:
        assert ops & {"Quant"} and "BipolarQuant" not in ops  # only the input quantizer
    else:
        assert "Quant" in ops


@pytest.mark.parametrize("bits", [1, 4])
def test_cnn_export_agrees(trained, digits, specs, tmp_path, bits):
    result = export_and_verify(trained(specs.cnn(bits, bits)), digits.x_test, tmp_path, samples=32)
    assert result.agreement == 1.0


def test_quantrelu_one_bit_export_mismatch_is_caught(trained, digits, specs, tmp_path):
    """QuantReLU(bit_width=1) computes {0, s} in PyTorch but exports as a bipolar {-s, +s}: our
    verification must fail such a model, and keep the files for inspection."""
    model = trained(specs.mlp(4, 4))
    bad = type(model)(model.spec)
    bad.load_state_dict(model.state_dict())
    relus = [i for i, m in enumerate(bad.body) if isinstance(m, qnn.QuantReLU)]
    bad.body[relus[0]] = qnn.QuantReLU(bit_width=1)
    bad.eval()
    with pytest.raises(ExportMismatch, match="export mismatch"):
        export_and_verify(bad, digits.x_test, tmp_path, samples=32)
    assert (tmp_path / "model.onnx").is_file()


def test_compare_outputs_counts_ties_as_argmax_agreement():
    import numpy as np
    ref = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    ours = np.array([[0.9, 1.0, 0.0], [0.0, 2.0, 1.0]])
    agreement, argmax_agreement, max_diff = compare_outputs(ours, ref)
    assert agreement == 0.5 and argmax_agreement == 1.0 and max_diff == pytest.approx(0.1)


def test_malformed_onnx_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file at all")
    with pytest.raises(ExportError, match="not a loadable ONNX"):
        load_clean(bad)


def test_batched_execution_equals_row_by_row(trained, digits, specs, tmp_path):
    import numpy as np
    from qonnx.core.onnx_exec import execute_onnx

    from flows.qonnx import run_qonnx
    result = export_and_verify(trained(specs.cnn(2, 2)), digits.x_test, tmp_path, samples=8)
    wrapper = load_clean(result.onnx_path)
    x = digits.x_test[:12]
    iname, oname = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    rows = [execute_onnx(wrapper, {iname: r.reshape(1, 1, 8, 8)})[oname][0] for r in x]
    assert np.allclose(run_qonnx(wrapper, x), np.asarray(rows), atol=1e-6)
