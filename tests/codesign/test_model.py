"""Brevitas models for every bit-width: forward/backward, binary quantizers used for 1 bit."""
import numpy as np
import pytest
import torch
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst

from codesign.model import build_model
from codesign.space import ConvSpec, DenseSpec, ModelSpec
from hw_models.design import ALLOWED_BITS


def _mlp(wbits, abits, activation="relu"):
    return ModelSpec(kind="mlp", n_features=64, image_shape=None, n_classes=10, input_bits=8,
                     activation=activation, convs=(), dense=(DenseSpec(32, wbits, abits), DenseSpec(10, wbits, 32)))


def _cnn(wbits, abits):
    return ModelSpec(kind="cnn", n_features=64, image_shape=(1, 8, 8), n_classes=10, input_bits=8,
                     activation="relu", convs=(ConvSpec(4, 3, True, wbits, abits),),
                     dense=(DenseSpec(16, wbits, abits), DenseSpec(10, wbits, 32)))


@pytest.mark.parametrize("bits", ALLOWED_BITS)
@pytest.mark.parametrize("make", [_mlp, _cnn], ids=["mlp", "cnn"])
def test_forward_backward_every_precision(make, bits):
    torch.manual_seed(0)
    model = build_model(make(bits, bits))
    x = torch.rand(16, 64)
    out = model(x)
    assert out.shape == (16, 10) and torch.isfinite(out).all()
    loss = torch.nn.functional.cross_entropy(out, torch.randint(0, 10, (16,)))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_binary_layers_use_binary_quantizers_and_are_bipolar():
    model = build_model(_mlp(1, 1)).eval()
    linears = [m for m in model.modules() if isinstance(m, QuantLinear)]
    assert linears
    for lin in linears:
        w = lin.quant_weight().value.detach()
        assert torch.isfinite(w).all()
        magnitudes = np.unique(w.abs().numpy())
        assert len(magnitudes) == 1 and magnitudes[0] > 0  # +-s only, never NaN or 0
        assert issubclass(lin.weight_quant.quant_injector, SignedBinaryWeightPerTensorConst)
    acts = [m for m in model.modules() if isinstance(m, QuantIdentity)][1:]  # [0] is the input quantizer
    assert acts and not any(isinstance(m, QuantReLU) for m in model.modules())
    assert all(issubclass(a.act_quant.quant_injector, SignedBinaryActPerTensorConst) for a in acts)
    captured = []
    acts[0].register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    model(torch.rand(32, 64))
    values = np.unique(captured[0].numpy())
    assert len(values) == 2 and values[0] == -values[1] != 0  # bipolar: -s or +s, never {0, s}


def test_quantized_weights_take_at_most_2_to_the_bits_levels():
    for bits in (2, 3, 4):
        model = build_model(_mlp(bits, bits))
        w = next(m for m in model.modules() if isinstance(m, QuantLinear)).quant_weight()
        assert len(torch.unique(w.value)) <= 2 ** bits
        assert int(w.bit_width) == bits


def test_float_layers_are_plain_torch():
    model = build_model(_mlp(32, 32))
    assert not any(isinstance(m, QuantLinear) for m in model.modules())
    assert any(isinstance(m, torch.nn.Linear) for m in model.modules())


def test_hardtanh_activation_builds():
    out = build_model(_mlp(4, 4, activation="hardtanh"))(torch.rand(4, 64))
    assert out.shape == (4, 10)
