"""QONNX files exported by Brevitas read back into the `Design` they were built from."""
import numpy as np
import onnx
import pytest
import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from onnx import helper
from torch import nn

from boards.catalog import get_board
from flows.onnx_design import (ABSORBED_OPS, LAYER_HANDLERS, QUANT_BITS, NotQuantized, UnsupportedModel,
                               allowed_bits, design_from_qonnx)
from codesign.model import weight_csd_digits
from flows.qonnx import export_and_verify
from hw_models import ConvLayer, DenseLayer, DesignError, MaxPoolLayer, estimate

LAYER_FIELDS = {
    "dense": ("in_features", "out_features", "weight_bits", "act_bits"),
    "conv": ("in_ch", "out_ch", "kernel", "in_dim", "stride", "padding", "weight_bits", "act_bits"),
    "maxpool": ("channels", "in_dim", "pool"),
}


def assert_same_layers(got, expected):
    assert len(got.layers) == len(expected.layers), (got.layers, expected.layers)
    for i, (g, e) in enumerate(zip(got.layers, expected.layers)):
        assert g.kind == e.kind, f"layer {i}: {g.kind} != {e.kind}"
        for name in LAYER_FIELDS[e.kind]:
            assert getattr(g, name) == getattr(e, name), f"layer {i} ({e.kind}).{name}: {getattr(g, name)} != {getattr(e, name)}"


@pytest.fixture(scope="module")
def exported(trained, digits, specs, tmp_path_factory):
    """spec -> path of its verified QONNX export (one export per spec for the module)."""
    cache = {}

    def get(spec):
        if spec not in cache:
            out = tmp_path_factory.mktemp("qonnx")
            cache[spec] = export_and_verify(trained(spec), digits.x_test, out, samples=16).onnx_path
        return cache[spec]
    return get


@pytest.mark.parametrize("wbits,abits", [(1, 1), (2, 2), (4, 4), (8, 8), (32, 32)])
@pytest.mark.parametrize("style", ["finn", "hls4ml"])
def test_mlp_round_trip(exported, trained, specs, wbits, abits, style):
    spec = specs.mlp(wbits, abits)
    design = design_from_qonnx(exported(spec), style=style)
    expected = spec.to_design(style)
    assert_same_layers(design, expected)
    assert design.input_bits == 8 and design.style == style
    # the trained weights' CSD digits, read from QONNX's Quant nodes, equal Brevitas' integer weights'
    assert design == expected.with_csd_digits(weight_csd_digits(trained(spec)))  # no folding, clock or target invented
    result = estimate(design, get_board("pynq-z2"))
    assert result.total.lut > 0 and result.fps > 0


@pytest.mark.parametrize("style", ["finn", "hls4ml"])
def test_cnn_round_trip(exported, specs, style):
    spec = specs.cnn(4, 4)
    design = design_from_qonnx(exported(spec), style=style)
    assert_same_layers(design, spec.to_design(style))
    assert [l.kind for l in design.layers] == ["conv", "maxpool", "dense", "dense"]
    assert design.input_bits == 8
    assert estimate(design, get_board("zcu104")).fps > 0


def test_arguments_are_carried_over(exported, specs):
    design = design_from_qonnx(exported(specs.mlp(4, 4)), input_bits=4, target_fps=1e5, clock_mhz=150)
    assert design.input_bits == 4 and design.target_fps == 1e5 and design.clock_mhz == 150.0
    est = estimate(design, get_board("pynq-z2"))
    assert est.clock_mhz == 150.0 and est.fps >= 1e5


@pytest.mark.parametrize("kwargs", [{"style": "vivado"}, {"input_bits": 7}, {"target_fps": 0}, {"clock_mhz": -1}])
def test_bad_arguments(exported, specs, kwargs):
    with pytest.raises(DesignError):
        design_from_qonnx(exported(specs.mlp(4, 4)), **kwargs)


class ForeignNet(nn.Module):
    """Not one of ours: biases (Gemm), padding, odd bit widths, a functional flatten."""

    def __init__(self, head=None):
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=7, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(3, 8, 3, padding=1, bias=True, weight_bit_width=3)
        self.relu = qnn.QuantReLU(bit_width=5)
        self.pool = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(8 * 4 * 4, 10, bias=True, weight_bit_width=6)
        self.head = head or nn.Identity()

    def forward(self, x):
        x = self.pool(self.relu(self.conv(self.inp(x))))
        return self.head(self.fc(torch.flatten(x, 1)))


def _export_foreign(path, head=None):
    torch.manual_seed(0)
    export_qonnx(ForeignNet(head).eval(), input_t=torch.rand(1, 3, 8, 8), export_path=str(path), dynamo=False)
    return path


def test_foreign_brevitas_model(tmp_path):
    design = design_from_qonnx(_export_foreign(tmp_path / "foreign.onnx"))  # raw export, not pre-cleaned
    assert design.input_bits == 8  # 7-bit input rounded up to the next allowed width
    conv, pool, fc = design.layers
    assert isinstance(conv, ConvLayer) and (conv.in_ch, conv.out_ch, conv.kernel, conv.in_dim, conv.padding,
                                            conv.stride, conv.weight_bits, conv.act_bits) == (3, 8, (3, 3), (8, 8), (1, 1),
                                                                                             (1, 1), 3, 5)
    assert isinstance(pool, MaxPoolLayer) and (pool.channels, pool.in_dim, pool.pool) == (8, (8, 8), (2, 2))
    assert isinstance(fc, DenseLayer) and (fc.in_features, fc.out_features, fc.weight_bits, fc.act_bits) == (128, 10, 6, 32)
    assert estimate(design, get_board("pynq-z2")).fps > 0


def test_brevitas_sigmoid_is_unsupported(tmp_path):
    path = _export_foreign(tmp_path / "sigmoid.onnx", head=nn.Sigmoid())
    with pytest.raises(UnsupportedModel, match="Sigmoid") as info:
        design_from_qonnx(path)
    assert isinstance(info.value, DesignError)


def test_inserted_unsupported_ops_are_all_listed(exported, specs, tmp_path):
    """Edit our exported graph: a Sigmoid after the first Relu and a Softmax on the output."""
    model = onnx.load(str(exported(specs.mlp(4, 4))))
    graph = model.graph
    relu = next(n for n in graph.node if n.op_type == "Relu")
    for n in graph.node:  # rewire the Relu's consumers to the Sigmoid's output
        for i, name in enumerate(n.input):
            if name == relu.output[0]:
                n.input[i] = "sig_out"
    graph.node.append(helper.make_node("Sigmoid", [relu.output[0]], ["sig_out"], name="my_sigmoid"))
    out = graph.output[0].name
    last = next(n for n in graph.node if out in n.output)
    last.output[list(last.output).index(out)] = "logits"
    graph.node.append(helper.make_node("Softmax", ["logits"], [out], name="my_softmax", axis=-1))
    path = tmp_path / "edited.onnx"
    onnx.save(model, str(path))
    with pytest.raises(UnsupportedModel) as info:
        design_from_qonnx(path)
    msg = str(info.value)
    assert "['Sigmoid', 'Softmax']" in msg and "my_sigmoid" in msg and "my_softmax" in msg


def test_float_onnx_is_not_quantized(tmp_path):
    path = tmp_path / "float.onnx"
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    torch.onnx.export(net, torch.zeros(1, 64), str(path), dynamo=False)
    with pytest.raises(NotQuantized, match="export_qonnx"):
        design_from_qonnx(path)


def test_truncated_file_is_a_design_error(exported, specs, tmp_path):
    path = tmp_path / "truncated.onnx"
    path.write_bytes(exported(specs.mlp(2, 2)).read_bytes()[:100])
    with pytest.raises(DesignError, match="not a readable"):
        design_from_qonnx(path)


def test_text_file_is_a_design_error(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("this is not an ONNX model\n" * 10)
    with pytest.raises(DesignError):
        design_from_qonnx(path)


def test_empty_file_is_a_design_error(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")  # parses as an empty ModelProto
    with pytest.raises(DesignError):
        design_from_qonnx(path)


def test_missing_file_is_a_design_error(tmp_path):
    with pytest.raises(DesignError, match="no such file"):
        design_from_qonnx(tmp_path / "nope.onnx")


def test_bits_round_up_to_allowed_widths():
    assert [allowed_bits(b) for b in (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17, 24, 32, 64)] == \
        [1, 2, 3, 4, 5, 6, 8, 8, 16, 16, 16, 32, 32, 32, 32]
    assert allowed_bits(np.float32(4.0)) == 4 and allowed_bits(3.5) == 4


def test_registries_are_disjoint():
    assert not set(ABSORBED_OPS) & set(LAYER_HANDLERS) and not set(QUANT_BITS) & set(ABSORBED_OPS)


class _Residual(nn.Module):
    """A quantized MLP block with a skip connection: y = x + fc2(relu(fc1(x)))."""

    def __init__(self, bias: bool):
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=4, return_quant_tensor=False)
        self.fc1 = qnn.QuantLinear(8, 8, bias=bias, weight_bit_width=4)
        self.act = qnn.QuantReLU(bit_width=4)
        self.fc2 = qnn.QuantLinear(8, 8, bias=bias, weight_bit_width=4)

    def forward(self, x):
        x = self.inp(x)
        return x + self.fc2(self.act(self.fc1(x)))


@pytest.mark.parametrize("bias", [False, True])
def test_a_residual_add_is_estimated_with_its_stream_duplication(tmp_path, bias):
    path = tmp_path / "residual.onnx"
    export_qonnx(_Residual(bias).eval(), torch.zeros(1, 8), str(path))
    design = design_from_qonnx(path)
    # the add reads the input (the graph input through its quantizer) and fc2; fc1 reads the input too
    assert [l.kind for l in design.layers] == ["dense", "dense", "add"]
    assert design.inputs == ((-1,), (0,), (-1, 1))
    assert design.input_bits == 4 and design.layers[0].act_bits == 4
    est = estimate(design, get_board("pynq-z2"))
    assert [l.kind for l in est.per_layer] == ["duplicate", "dense", "dense", "add"]
    assert est.per_layer[3].detail["skip_fifos"][0]["input"] == 0  # the duplicate's copy waits for fc1 + fc2
    hls = estimate(design_from_qonnx(path, style="hls4ml"), get_board("pynq-z2"))
    assert [l.kind for l in hls.per_layer] == ["dense", "dense", "add"]


class _ResBlock(nn.Module):
    """A ResNet-style block on 8x8 images: stem conv, two 3x3 convs, add, global average pool, classifier."""

    def __init__(self, depthwise: bool = False):
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=8)
        self.stem = qnn.QuantConv2d(1, 8, 3, padding=1, bias=False, weight_bit_width=4)
        self.relu0 = qnn.QuantReLU(bit_width=4)
        self.a = qnn.QuantConv2d(8, 8, 3, padding=1, groups=8 if depthwise else 1, bias=False, weight_bit_width=4)
        self.bn = nn.BatchNorm2d(8)
        self.relu1 = qnn.QuantReLU(bit_width=4)
        self.b = qnn.QuantConv2d(8, 8, 3, padding=1, bias=False, weight_bit_width=4)
        self.quant_b = qnn.QuantIdentity(bit_width=4)
        self.relu2 = qnn.QuantReLU(bit_width=4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = qnn.QuantLinear(8, 10, bias=False, weight_bit_width=4)

    def forward(self, x):
        x = self.relu0(self.stem(self.inp(x)))
        y = self.quant_b(self.b(self.relu1(self.bn(self.a(x)))))
        x = self.relu2(x + y)
        return self.fc(torch.flatten(self.pool(x), 1))


@pytest.mark.parametrize("depthwise", [False, True])
def test_a_brevitas_resnet_block_reads_as_a_graph(tmp_path, depthwise):
    path = tmp_path / "resblock.onnx"
    export_qonnx(_ResBlock(depthwise).eval(), torch.zeros(1, 1, 8, 8), str(path))
    design = design_from_qonnx(path)
    mid = "dwconv" if depthwise else "conv"
    assert [l.kind for l in design.layers] == ["conv", mid, "conv", "add", "globalavgpool", "dense"]
    assert design.inputs == ((-1,), (0,), (1,), (0, 2), (3,), (4,))
    add = design.layers[3]
    assert add.shape == (8, 8, 8) and add.act_bits == 4
    assert design.layers[0].padding == (1, 1) and design.layers[4].in_dim == (8, 8)
    est = estimate(design, get_board("pynq-z2"))
    assert [l.kind for l in est.per_layer] == ["conv", "duplicate", mid, "conv", "add", "globalavgpool", "dense"]


class _Difference(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=4)
        self.fc = qnn.QuantLinear(8, 8, bias=False, weight_bit_width=4)

    def forward(self, x):
        x = self.inp(x)
        return x - self.fc(x)


def test_a_sub_of_two_branches_is_an_error_naming_it(tmp_path):
    path = tmp_path / "difference.onnx"
    export_qonnx(_Difference().eval(), torch.zeros(1, 8), str(path))
    with pytest.raises(UnsupportedModel, match=r"unsupported op type\(s\) \['Sub'\] in node\(s\) [^,]+ \(Sub\); "
                                               r"an elementwise Sub/Mul/Div of two computed tensors"):
        design_from_qonnx(path)
