"""finn-plus as a library: our folding in, finn-plus' own per-layer estimates out."""
import os
import sys
from pathlib import Path

import pytest

from boards import get_board
from flows.finn import FinnError, apply_folding, finn_environment, finn_estimate, to_hw_dataflow
from flows.qonnx import export_and_verify
from hw_models import estimate
from hw_models.estimate import folded_design

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from finn_kinds_probe import tiny_network  # noqa: E402  (the probe's networks, one per layer kind)

BOARD = get_board("pynq-z2")


def _exported(trained, digits, spec, tmp_path):
    return export_and_verify(trained(spec), digits.x_test, tmp_path, samples=16).onnx_path


def test_mlp_estimate_equals_finn_plus_analyses(trained, digits, specs, tmp_path):
    from dataclasses import replace

    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer
    from finn.analysis.fpgadataflow.res_estimation import res_estimation
    spec = replace(specs.mlp(2, 2), target_fps=2e5)
    onnx = _exported(trained, digits, spec, tmp_path)
    design = folded_design(spec.to_design("finn"), BOARD)
    ours = finn_estimate(onnx, design, BOARD)
    # the same flow by hand: the numbers must be finn-plus' own
    with finn_environment() as build_dir:
        df = to_hw_dataflow(onnx, BOARD.part, build_dir)
        apply_folding(df, design)
        res = df.analysis(lambda m: res_estimation(m, BOARD.part))
        cycles = df.analysis(exp_cycles_per_layer)
    assert ours.source == "finn-estimate"
    assert [l.kind for l in ours.per_layer] == ["MVAU_hls", "MVAU_hls", "LabelSelect_hls"]
    for layer in ours.per_layer:
        node = layer.detail["node"]
        assert layer.resources.lut == res[node]["LUT"] and layer.resources.bram18 == res[node]["BRAM_18K"]
        assert layer.resources.dsp == res[node]["DSP"] and layer.cycles == cycles[node]
    assert ours.total.lut == sum(r["LUT"] for r in res.values())
    # our folding reached FINN, and FINN's MVAU cycles equal our analytic model's
    analytic = estimate(spec.to_design("finn"), BOARD)
    assert [l.folding for l in ours.per_layer[:2]] == [dict(l.folding) for l in analytic.per_layer]
    assert [l.cycles for l in ours.per_layer[:2]] == [l.cycles for l in analytic.per_layer]
    assert ours.cycles_per_frame == analytic.cycles_per_frame


def test_cnn_maps_conv_pool_and_cycles_match_the_analytic_model(trained, digits, specs, tmp_path):
    from dataclasses import replace
    spec = replace(specs.cnn(4, 4), target_fps=1.5e5)
    onnx = _exported(trained, digits, spec, tmp_path)
    design = folded_design(spec.to_design("finn"), BOARD)
    ours = finn_estimate(onnx, design, BOARD)
    kinds = [l.kind.split("_")[0] for l in ours.per_layer]
    assert kinds == ["ConvolutionInputGenerator", "MVAU", "ConvolutionInputGenerator", "Pool", "MVAU", "MVAU",
                     "LabelSelect"]
    analytic = estimate(spec.to_design("finn"), BOARD)
    # per design layer the slowest FINN node has the cycles of our analytic layer
    finn_cycles = [l.cycles for l in ours.per_layer]
    assert analytic.per_layer[0].cycles == max(finn_cycles[0:2])  # conv: SWU + MVAU
    assert analytic.per_layer[1].cycles == max(finn_cycles[2:4])  # maxpool: SWU + Pool
    assert [l.cycles for l in analytic.per_layer[2:]] == finn_cycles[4:6]


def test_host_input_quantization_removes_the_float_thresholding_stage(trained, digits, specs, tmp_path):
    onnx = _exported(trained, digits, specs.mlp(4, 4), tmp_path)
    est = finn_estimate(onnx, folded_design(specs.mlp(4, 4).to_design("finn"), BOARD), BOARD)
    assert not any(l.kind.startswith("Thresholding") for l in est.per_layer)


def test_float_layers_fail_with_finns_view(trained, digits, specs, tmp_path):
    onnx = _exported(trained, digits, specs.mlp(32, 32), tmp_path)
    with pytest.raises(FinnError, match="FINN cannot map these layers to hardware: MatMul"):
        finn_estimate(onnx, folded_design(specs.mlp(32, 32).to_design("finn"), BOARD), BOARD)


def test_finn_build_dir_is_private_and_removed(monkeypatch):
    monkeypatch.setenv("FINN_BUILD_DIR", "/somewhere/else")
    with finn_environment() as tmp:
        assert os.environ["FINN_BUILD_DIR"] == str(tmp) and tmp.is_dir()
        assert not os.path.exists(os.environ["FINN_SETTINGS"])
    assert os.environ["FINN_BUILD_DIR"] == "/somewhere/else" and not tmp.exists()


# --- user networks: each kind FINN maps, end to end on a tiny trained network

def _user_estimate(kind, data, tmp_path):
    from codesign.config import TrainingConfig
    from codesign.model import build_model
    from codesign.train import train
    from flows.qonnx import export_qonnx_file
    spec = tiny_network(kind, data)
    model = build_model(spec, seed=0)
    train(model, data, TrainingConfig(epochs=1, patience=1), seed=0)
    onnx, _ = export_qonnx_file(model.eval(), tmp_path / f"{kind}.onnx")
    design = folded_design(spec.to_design("finn"), BOARD)
    return finn_estimate(onnx, design, BOARD), design


def _positive_luts(est, unestimated=()):
    """Every node finn-plus has a LUT estimator for reports LUTs; the others are named in the notes."""
    assert {l.kind for l in est.per_layer if l.detail.get("no_estimate")} == set(unestimated)
    assert all(l.resources.lut > 0 for l in est.per_layer if not l.detail.get("no_estimate")), \
        [(l.kind, l.resources.lut, l.detail) for l in est.per_layer]
    if unestimated:
        assert any(all(k in n for k in unestimated) for n in est.notes)


def test_global_average_pool_maps_to_globalaccpool_with_our_pe(digits, tmp_path):
    est, design = _user_estimate("gap", digits, tmp_path)
    assert [l.kind for l in est.per_layer] == ["ConvolutionInputGenerator_rtl", "MVAU_hls", "GlobalAccPool_hls",
                                               "MVAU_hls", "LabelSelect_hls"]
    _positive_luts(est, unestimated=("GlobalAccPool_hls", "LabelSelect_hls"))
    gap = next(l for l in design.layers if l.kind == "globalavgpool")
    assert est.per_layer[2].folding == {"pe": gap.pe}
    # FINN's GlobalAccPool: H*W*C/PE cycles plus C/PE to emit the sums (ours: the first term)
    assert est.per_layer[2].cycles == gap.finn_cycles(gap.pe, None) + gap.channels // gap.pe


def test_conv1d_maps_as_a_one_pixel_wide_image(digits, tmp_path):
    from dataclasses import replace
    signals = replace(digits, image_shape=None, shape=(1, 64))  # the digits as 1-D signals (mnist1d: 30 s to make)
    est, design = _user_estimate("conv1d", signals, tmp_path)
    assert [l.kind for l in est.per_layer] == ["ConvolutionInputGenerator_rtl", "MVAU_hls",
                                               "ConvolutionInputGenerator_rtl", "Pool_hls", "MVAU_hls",
                                               "LabelSelect_hls"]
    _positive_luts(est, unestimated=("Pool_hls", "LabelSelect_hls"))
    conv, pool, dense = design.layers
    assert est.per_layer[1].folding == {"pe": conv.pe, "simd": conv.simd}
    assert est.per_layer[3].folding == {"pe": pool.pe} and est.per_layer[2].folding == {"simd": pool.pe}
    # the MVAUs' cycles are our analytic model's (a 1xK conv on a 1xL signal, FINN's Kx1 on Lx1)
    from hw_models.finn import mvau_cycles
    assert est.per_layer[1].cycles == mvau_cycles(conv, conv.pe, conv.simd)
    assert est.per_layer[4].cycles == dense.finn_cycles(dense.pe, dense.simd)


def test_depthwise_conv_maps_to_vvau_with_our_pe_and_simd(digits, tmp_path):
    est, design = _user_estimate("dw", digits, tmp_path)
    assert [l.kind for l in est.per_layer] == ["ConvolutionInputGenerator_rtl", "MVAU_hls",
                                               "ConvolutionInputGenerator_rtl", "VVAU_hls", "MVAU_hls",
                                               "LabelSelect_hls"]
    _positive_luts(est, unestimated=("LabelSelect_hls",))
    dw = design.layers[1]
    assert est.per_layer[3].folding == {"pe": dw.pe, "simd": dw.simd}
    assert est.per_layer[2].folding == {"simd": dw.pe}
    assert est.per_layer[3].cycles == (dw.channels // dw.pe) * (dw.mw // dw.simd) * dw.input_vectors


def test_residual_add_maps_to_elementwise_add_and_duplicate_streams(digits, tmp_path):
    est, design = _user_estimate("res", digits, tmp_path)
    assert [l.kind for l in est.per_layer] == [
        "FMPadding_rtl", "ConvolutionInputGenerator_rtl", "MVAU_hls", "DuplicateStreams_hls", "FMPadding_rtl",
        "ConvolutionInputGenerator_rtl", "MVAU_hls", "ElementwiseAdd_hls", "Thresholding_rtl",
        "ConvolutionInputGenerator_rtl", "Pool_hls", "MVAU_hls", "LabelSelect_hls"]
    _positive_luts(est, unestimated=("FMPadding_rtl", "DuplicateStreams_hls", "ElementwiseAdd_hls", "Pool_hls",
                                    "LabelSelect_hls"))
    kinds = [l.kind for l in design.layers]
    assert kinds == ["conv", "duplicate", "conv", "add", "maxpool", "dense"]
    dup, add = design.layers[1], design.layers[3]
    assert est.per_layer[3].folding == {"pe": dup.pe} and est.per_layer[7].folding == {"pe": add.pe}
    # the streams' cycles are our analytic model's: pixels * C/PE
    assert est.per_layer[3].cycles == dup.finn_cycles(dup.pe, None)
    assert est.per_layer[7].cycles == add.finn_cycles(add.pe, None)


def test_a_design_that_does_not_line_up_names_the_finn_node(digits, tmp_path):
    est, design = _user_estimate("gap", digits, tmp_path)  # the network of test_global_average_pool_...
    from dataclasses import replace
    wrong = replace(design, layers=tuple(replace(l, channels=8) if l.kind == "globalavgpool" else l
                                         for l in design.layers))
    with pytest.raises(FinnError, match=r"FINN node GlobalAccPool_hls_0 \(GlobalAccPool_hls, NumChannels=4\) "
                                        r"lines up with no design layer of kind globalavgpool"):
        finn_estimate(tmp_path / "gap.onnx", wrong, BOARD)
    missing = replace(design, layers=design.layers[:1] + design.layers[2:])  # no global pool
    with pytest.raises(FinnError, match=r"GlobalAccPool_hls_0 .*\(the design has none left\)"):
        finn_estimate(tmp_path / "gap.onnx", missing, BOARD)


def test_average_pool_maps_to_a_summing_pool_and_the_next_thresholds(digits, tmp_path):
    est, design = _user_estimate("avg", digits, tmp_path)
    assert [l.kind for l in est.per_layer] == ["ConvolutionInputGenerator_rtl", "MVAU_hls",
                                               "ConvolutionInputGenerator_rtl", "Pool_hls", "Thresholding_rtl",
                                               "MVAU_hls", "LabelSelect_hls"]
    _positive_luts(est, unestimated=("Pool_hls", "LabelSelect_hls"))
    pool = design.layers[1]
    assert pool.kind == "avgpool" and est.per_layer[3].folding == {"pe": pool.pe}


def test_a_1d_network_with_an_op_change3dto4d_refuses_fails_naming_it(digits, tmp_path):
    from dataclasses import replace
    signals = replace(digits, image_shape=None, shape=(1, 64))
    with pytest.raises(FinnError, match="Change3DTo4DTensors .* does not take AveragePool"):
        _user_estimate("avg1d", signals, tmp_path)


def test_concat_maps_to_streaming_concat_with_our_folding(digits, tmp_path):
    est, design = _user_estimate("cat", digits, tmp_path)
    kinds = [l.kind for l in est.per_layer]
    assert kinds[3] == "DuplicateStreams_hls" and kinds[7] == "StreamingConcat_hls"
    _positive_luts(est, unestimated=("FMPadding_rtl", "DuplicateStreams_hls", "StreamingConcat_hls", "Pool_hls",
                                     "LabelSelect_hls"))
    cat = next(l for l in design.layers if l.kind == "concat")
    assert est.per_layer[7].folding == {"simd": cat.pe}
    assert est.per_layer[7].cycles == cat.finn_cycles(cat.pe, None)


@pytest.mark.slow
def test_resnet_example_maps_and_an_add_of_two_scales_fails_naming_it(digits, tmp_path):
    """The ResNet example, with and without its downsampling stack (whose skip is a strided 1x1 conv),
    maps: the layers feeding an add share one quantizer (codesign.model.GraphNet). An add of a 2-bit and
    a 4-bit branch cannot share one, and FINN's streamlining leaves a scale on one input: named."""
    from codesign.config import TrainingConfig
    from codesign.model import build_model
    from codesign.net import Add, Conv2d, Dense, Input, MaxPool, NetSpec
    from codesign.train import train
    from finn_kinds_probe import network
    from flows.qonnx import export_qonnx_file
    x = Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(Input(digits))
    mixed = NetSpec.from_output(Dense(10, weight_bits=2)(MaxPool(2)(Add(act_bits=2)(
        x, Conv2d(4, 3, padding=1, weight_bits=2, act_bits=4)(x)))), digits, target_fps=1e5)
    for kind in ("resnet", "resnet-down", "mixed"):
        spec, data = (mixed, digits) if kind == "mixed" else network(kind, digits)
        model = build_model(spec, seed=0)
        train(model, data, TrainingConfig(epochs=1, patience=1), seed=0)
        onnx, _ = export_qonnx_file(model.eval(), tmp_path / f"{kind}.onnx")
        design = folded_design(spec.to_design("finn"), BOARD)
        if kind == "mixed":
            with pytest.raises(FinnError, match=r"residual add or concat whose inputs have different quantization "
                                                r"scales: ElementwiseAdd_0 \(Mul_\d+ scales one input\)"):
                finn_estimate(onnx, design, BOARD)
            continue
        est = finn_estimate(onnx, design, BOARD)
        kinds = [l.kind for l in est.per_layer]
        assert kinds.count("ElementwiseAdd_hls") == (2 if kind == "resnet-down" else 1)
        assert kinds.count("GlobalAccPool_hls") == 1
