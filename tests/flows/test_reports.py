"""flows.reports: Vivado report_utilization and HLS csynth XML parsers, on checked-in fixtures."""
import dataclasses
from pathlib import Path

import pytest

from boards import Resources
from flows.reports import (
    HlsSynthesis,
    ReportError,
    VivadoUtilization,
    parse_hls_csynth_xml,
    parse_hls_csynth_xml_file,
    parse_vivado_utilization,
    parse_vivado_utilization_file,
)

FIXTURES = Path(__file__).parent / "fixtures"
XC7 = FIXTURES / "vivado_utilization_synth_xc7z020.rpt"
XCUP = FIXTURES / "vivado_utilization_synth_xczu7ev.rpt"
VIVADO_HLS = FIXTURES / "hls_csynth_vivado_hls.xml"
VITIS_HLS = FIXTURES / "hls_csynth_vitis_hls.xml"


def _mini_report(memory_rows: str, *, prohibited: bool = False, extra: str = "") -> str:
    """A small report_utilization text: LUT/FF/DSP tables plus the given Memory table rows."""
    p_head, p_rule, p_cell = ("| Prohibited ", "+------------", "|          0 ") if prohibited else ("", "", "")
    rule = f"+-------------------+------+-------{p_rule}+-----------+-------+"
    head = f"|     Site Type     | Used | Fixed {p_head}| Available | Util% |"

    def row(name, used, avail, util):
        return f"| {name:<17} | {used:>4} |     0 {p_cell}| {avail:>9} | {util:>5} |"

    return "\n".join([
        "| Tool Version : Vivado v.2022.2 (lin64) Build 3671981 Fri Oct 14 04:59:54 MDT 2022",
        "| Device       : xc7a35ticsg324-1L",
        "| Design State : Fully Placed",
        "", "1. Slice Logic", "--------------", "", rule, head, rule,
        row("Slice LUTs", 1200, 20800, "5.77"), row("Slice Registers", 2400, 41600, "5.77"), rule, "",
        "2. Memory", "---------", "", rule, head, rule, memory_rows.format(p=p_cell), rule, "",
        "3. DSP", "------", "", rule, head, rule, row("DSPs", 4, 90, "4.44"), rule, "", extra,
    ])


BRAM_TILE_ONLY = "| Block RAM Tile    |  2.5 |     0 {p}|        50 |  5.00 |"


# --- Vivado report_utilization ------------------------------------------------------------------

def test_xc7_post_synthesis_fixture():
    rep = parse_vivado_utilization_file(XC7)
    assert isinstance(rep, VivadoUtilization)
    assert rep.resources == Resources(lut=5755, ff=6526, bram18=8, uram=0, dsp=94)
    assert rep.lut_as_memory == 144
    assert rep.tool_version == "2020.2"
    assert rep.device == "7z020clg400-1"  # Vivado 2020.x prints 7-series parts without "xc"
    assert rep.design_state == "Synthesized"


def test_ultrascale_plus_fixture_with_prohibited_column_and_uram():
    text = XCUP.read_text()
    assert "| Prohibited |" in text and "Speed File" in text
    rep = parse_vivado_utilization(text)
    # Block RAM Tile 12.5 = 10 RAMB36 + 5 RAMB18 -> 25 halves
    assert rep.resources == Resources(lut=41872, ff=38115, bram18=25, uram=4, dsp=160)
    assert rep.lut_as_memory == 1662
    assert rep.tool_version == "2023.1"
    assert rep.device == "xczu7ev-ffvc1156-2-e"
    assert rep.design_state == "Synthesized"


def test_older_report_has_no_prohibited_column():
    assert "Prohibited" not in XC7.read_text()


@pytest.mark.parametrize("prohibited", [False, True])
def test_used_column_found_by_header(prohibited):
    rep = parse_vivado_utilization(_mini_report(BRAM_TILE_ONLY, prohibited=prohibited))
    assert rep.resources == Resources(lut=1200, ff=2400, bram18=5, uram=0, dsp=4)
    assert rep.tool_version == "2022.2"
    assert rep.device == "xc7a35ticsg324-1L"
    assert rep.design_state == "Fully Placed"
    assert rep.lut_as_memory == 0


def test_fractional_block_ram_tile_without_sub_rows():
    rep = parse_vivado_utilization(_mini_report(BRAM_TILE_ONLY))
    assert rep.resources.bram18 == 5.0  # 2 * 2.5


def test_ramb_sub_rows_take_precedence_over_tile_count():
    rows = "\n".join([
        "| Block RAM Tile    |    3 |     0 {p}|        50 |  6.00 |",
        "|   RAMB36/FIFO*    |    2 |     0 {p}|        50 |  4.00 |",
        "|   RAMB18          |    1 |     0 {p}|       100 |  1.00 |",
    ])
    assert parse_vivado_utilization(_mini_report(rows)).resources.bram18 == 5  # 2 * 2 + 1, not 2 * 3


def test_first_occurrence_wins_over_later_per_slr_table():
    slr = "\n".join([
        "+------------+------+------+--------+--------+",
        "|  Site Type | SLR0 | SLR1 | SLR0 % | SLR1 % |",
        "+------------+------+------+--------+--------+",
        "| Slice LUTs |    7 |    9 |   0.00 |   0.00 |",
        "| DSPs       |    1 |    2 |   0.00 |   0.00 |",
        "+------------+------+------+--------+--------+",
    ])
    rep = parse_vivado_utilization(_mini_report(BRAM_TILE_ONLY, extra=slr))
    assert (rep.resources.lut, rep.resources.dsp) == (1200, 4)


def _fixture_util_rows(path: Path):
    """(name, used, available, util%) of every Site Type row that has an Available value."""
    head = None
    for line in path.read_text().splitlines():
        if not line.startswith(("|", "+")):
            head = None
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] == "Site Type":
                head = cells
            elif head and cells[head.index("Available")]:
                yield (cells[0], float(cells[head.index("Used")]), float(cells[head.index("Available")]),
                       cells[head.index("Util%")])


@pytest.mark.parametrize("path", [XC7, XCUP], ids=["xc7z020", "xczu7ev"])
def test_fixture_util_percentages_are_consistent(path):
    rows = list(_fixture_util_rows(path))
    assert len(rows) > 20
    for name, used, avail, util in rows:
        assert util == f"{100 * used / avail:.2f}", name


def test_truncated_report_names_missing_rows():
    text = XC7.read_text()
    truncated = text[: text.index("2. Memory\n---------")]
    with pytest.raises(ReportError) as err:
        parse_vivado_utilization(truncated)
    msg = str(err.value)
    assert "DSPs" in msg and "Block RAM Tile" in msg
    assert "LUTs" not in msg and "registers" not in msg


def test_report_cut_inside_a_row_is_an_error_not_a_zero():
    text = XC7.read_text()
    cut = text[: text.index("| DSPs           |") + len("| DSPs        ")]
    with pytest.raises(ReportError, match="DSPs"):
        parse_vivado_utilization(cut)


def test_html_file_is_rejected():
    html = ("<!DOCTYPE html><html><head><title>Utilization</title></head><body><table>"
            "<tr><th>Site Type</th><th>Used</th></tr><tr><td>Slice LUTs</td><td>5755</td></tr>"
            "</table></body></html>")
    with pytest.raises(ReportError, match="not a Vivado report_utilization"):
        parse_vivado_utilization(html)


@pytest.mark.parametrize("text", ["", "   \n\n"])
def test_empty_report_is_rejected(text):
    with pytest.raises(ReportError, match="empty"):
        parse_vivado_utilization(text)


def test_report_error_is_a_value_error():
    assert issubclass(ReportError, ValueError)


def test_missing_utilization_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "top_utilization_synth.rpt"
    with pytest.raises(ReportError, match="not found") as err:
        parse_vivado_utilization_file(missing)
    assert str(missing) in str(err.value)


def test_file_parse_error_names_the_path(tmp_path):
    bad = tmp_path / "timing.rpt"
    bad.write_text("Timing Report\n\nSlack (MET) : 1.234ns\n")
    with pytest.raises(ReportError) as err:
        parse_vivado_utilization_file(bad)
    assert str(bad) in str(err.value)


def test_results_are_frozen():
    rep = parse_vivado_utilization_file(XC7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.device = "xc7z020clg400-1"


# --- HLS csynth XML -----------------------------------------------------------------------------

def test_vivado_hls_csynth_with_dsp48e_tag():
    rep = parse_hls_csynth_xml_file(VIVADO_HLS)
    assert isinstance(rep, HlsSynthesis)
    assert rep.resources == Resources(lut=11935, ff=9052, bram18=4, uram=0, dsp=96)
    assert rep.available == Resources(lut=53200, ff=106400, bram18=280, uram=0, dsp=220)
    assert (rep.latency_cycles_best, rep.latency_cycles_worst) == (9, 9)
    assert (rep.interval_min, rep.interval_max) == (1, 1)
    assert rep.target_clock_ns == 10.0
    assert rep.estimated_clock_ns == pytest.approx(8.751)
    assert rep.part == "xc7z020-clg400-1"  # HLS writes the part with a dash after the device name
    assert rep.top == "myproject"
    assert rep.version == "2020.1"


def test_vitis_hls_csynth_with_dsp_tag_uram_and_undef_latency():
    rep = parse_hls_csynth_xml(VITIS_HLS.read_text())
    # top-level AreaEstimates, not the per-module ones under ModuleInformation
    assert rep.resources == Resources(lut=38490, ff=35210, bram18=26, uram=4, dsp=160)
    assert rep.available == Resources(lut=230400, ff=460800, bram18=624, uram=96, dsp=1728)
    assert rep.latency_cycles_best == 1163
    assert rep.latency_cycles_worst is None  # "undef"
    assert (rep.interval_min, rep.interval_max) == (784, 785)
    assert rep.target_clock_ns == 5.0
    assert rep.estimated_clock_ns == pytest.approx(3.962)
    assert rep.part == "xczu7ev-ffvc1156-2-e"
    assert rep.top == "myproject"
    assert rep.version == "2023.2"


def test_xml_declaration_is_accepted():
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + VIVADO_HLS.read_text()
    assert parse_hls_csynth_xml(text).resources.lut == 11935


@pytest.mark.parametrize("text", ["", "<profile><AreaEstimates>", VITIS_HLS.read_text()[:2000]],
                         ids=["empty", "unclosed", "truncated"])
def test_malformed_xml_is_rejected(text):
    with pytest.raises(ReportError, match="malformed HLS csynth XML"):
        parse_hls_csynth_xml(text)


def test_wrong_root_element_is_rejected():
    with pytest.raises(ReportError, match="<profile>"):
        parse_hls_csynth_xml("<html><body>csynth</body></html>")


def test_missing_top_level_area_estimates_is_an_error_even_with_module_ones():
    text = VITIS_HLS.read_text()
    start, end = text.index("    <AreaEstimates>"), text.index("</AreaEstimates>") + len("</AreaEstimates>")
    stripped = text[:start] + text[end:]
    assert "<AreaEstimates>" in stripped  # the per-module blocks are still there
    with pytest.raises(ReportError, match="AreaEstimates"):
        parse_hls_csynth_xml(stripped)


def test_missing_dsp_tag_names_both_spellings():
    text = VIVADO_HLS.read_text().replace("<DSP48E>96</DSP48E>\n", "", 1)
    with pytest.raises(ReportError) as err:
        parse_hls_csynth_xml(text)
    assert "AreaEstimates/Resources/DSP" in str(err.value) and "DSP48E" in str(err.value)


def test_missing_csynth_file_names_the_path(tmp_path):
    missing = tmp_path / "myproject_prj" / "solution1" / "syn" / "report" / "myproject_csynth.xml"
    with pytest.raises(ReportError) as err:
        parse_hls_csynth_xml_file(missing)
    assert str(missing) in str(err.value)
