"""Vendor synthesis glue: tool detection, and report collection on checked-in report files."""
import json
import shutil
from pathlib import Path

import pytest

from boards import get_board
from flows.synthesis import (SynthesisToolMissing, collect_finn_ooc, collect_hls4ml, finn_ooc_synthesis,
                             hls4ml_synthesis, require_vivado)
from hw_models import DenseLayer, Design

FIXTURES = Path(__file__).parent / "fixtures"
BOARD = get_board("pynq-z2")


def test_missing_vivado_is_a_clear_skip(monkeypatch):
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    with pytest.raises(SynthesisToolMissing, match="XILINX_VIVADO"):
        require_vivado()
    design = Design(layers=(DenseLayer(64, 10, 4, 32, pe=1, simd=1),))
    with pytest.raises(SynthesisToolMissing, match="Vivado not found"):
        finn_ooc_synthesis("x.onnx", design, BOARD, Path("/nonexistent"), clock_mhz=100, cycles_per_frame=640,
                           latency_cycles=640)


def test_missing_vitis_hls_is_a_clear_skip(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    design = Design(layers=(DenseLayer(64, 10, 4, 32, reuse_factor=1),), style="hls4ml")
    with pytest.raises(SynthesisToolMissing, match="Vitis HLS"):
        hls4ml_synthesis("x.onnx", design, BOARD, Path("/nonexistent"), clock_mhz=100, cycles_per_frame=1,
                         latency_cycles=5)


def test_collect_hls4ml_reports_both_sources(tmp_path):
    report_dir = tmp_path / "myproject_prj" / "solution1" / "syn" / "report"
    report_dir.mkdir(parents=True)
    shutil.copy(FIXTURES / "hls_csynth_vivado_hls.xml", report_dir / "myproject_csynth.xml")
    shutil.copy(FIXTURES / "vivado_utilization_synth_xc7z020.rpt", tmp_path / "vivado_synth.rpt")
    out = collect_hls4ml(tmp_path, BOARD, clock_mhz=100, cycles_per_frame=1, latency_cycles=9)
    hls, viv = out["hls-estimate"], out["vivado"]
    assert hls.source == "hls-estimate" and hls.total.lut == 11935 and hls.total.dsp == 96
    assert hls.cycles_per_frame == 1 and hls.latency_cycles == 9
    assert viv.source == "vivado" and viv.total.lut == 5755 and viv.total.ff == 6526 and viv.total.dsp == 94
    assert viv.total.bram18 == 8 and viv.fits
    assert hls.total.lut > 2 * viv.total.lut * 0.9  # the HLS estimate over-states LUTs ~2x


def test_collect_finn_ooc(tmp_path):
    project = tmp_path / "vivado_ooc"
    project.mkdir()
    shutil.copy(FIXTURES / "vivado_utilization_synth_xczu7ev.rpt", project / "ooc_utilization.rpt")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "ooc_synth_and_timing.json").write_text(json.dumps(
        {"vivado_proj_folder": str(project), "LUT": 41872, "fmax_mhz": 312.5}))
    est = collect_finn_ooc(tmp_path, get_board("zcu104"), clock_mhz=200, cycles_per_frame=1000, latency_cycles=5000)
    assert est.source == "vivado" and est.total.lut == 41872 and est.total.uram == 4 and est.total.bram18 == 25
    assert est.fps == pytest.approx(200e6 / 1000) and any("fmax 312.5" in n for n in est.notes)


def test_collect_without_reports_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="ooc_synth_and_timing.json"):
        collect_finn_ooc(tmp_path, BOARD, clock_mhz=100, cycles_per_frame=1, latency_cycles=1)
    with pytest.raises(FileNotFoundError, match="no csynth XML"):
        collect_hls4ml(tmp_path, BOARD, clock_mhz=100, cycles_per_frame=1, latency_cycles=1)
