import pytest

from boards import BoardError, Resources, board_from_mapping, catalog, get_board, load_board_file

REQUIRED = ["pynq-z1", "pynq-z2", "ultra96-v2", "kv260", "zcu102", "zcu104", "vcu118",
            "u50", "u200", "u250", "u55c", "u280"]


def test_catalog_has_required_boards_with_datasheet_totals():
    boards = catalog()
    assert set(REQUIRED) <= set(boards)
    z2 = boards["pynq-z2"]
    assert z2.part == "xc7z020clg400-1" and z2.family == "xc7"
    assert z2.capacity == Resources(lut=53200, ff=106400, bram18=280, uram=0, dsp=220)
    assert boards["kv260"].capacity.uram == 64
    assert boards["u250"].capacity.bram18 == 2 * 2688


def test_default_fill_limits_and_usable():
    b = get_board("PYNQ-Z2")
    assert b.fill_limits == Resources(lut=0.7, ff=0.5, bram18=0.8, uram=0.8, dsp=0.8)
    assert b.usable().lut == pytest.approx(0.7 * 53200)


def test_fits_and_violations_follow_fill_limits():
    b = get_board("pynq-z2")
    assert b.fits(Resources(lut=0.7 * 53200, ff=100, bram18=10))
    assert not b.fits(Resources(lut=0.71 * 53200))
    v = b.violations(Resources(ff=0.6 * 106400))
    assert v["ff"] == pytest.approx(0.6 / 0.5 - 1)
    # no URAM on a Zynq-7000: any URAM use violates
    assert b.violations(Resources(uram=1))["uram"] > 0


def test_unknown_board_lists_valid_names():
    with pytest.raises(BoardError, match="valid: .*pynq-z2"):
        get_board("pynq-z9")


def test_board_file_and_inline_board(tmp_path):
    f = tmp_path / "my.yaml"
    f.write_text("boards:\n  myboard:\n    part: xc7a35t\n    family: xc7\n    clock_mhz: 100\n"
                 "    resources: {lut: 20800, ff: 41600, bram18: 100, uram: 0, dsp: 90}\n"
                 "    fill_limits: {lut: 0.9}\n")
    extra = load_board_file(f)
    b = get_board("myboard", extra)
    assert b.capacity.dsp == 90 and b.fill_limits.lut == 0.9 and b.fill_limits.ff == 0.5
    with pytest.raises(BoardError, match="unknown key"):
        board_from_mapping("x", {"part": "p", "family": "xc7", "clock_mhz": 1, "resources": {}, "lutz": 1})
    with pytest.raises(BoardError, match="family"):
        board_from_mapping("x", {"part": "p", "family": "stratix", "clock_mhz": 1, "resources": {}})
    with pytest.raises(BoardError, match="unknown resource"):
        board_from_mapping("x", {"part": "p", "family": "xc7", "clock_mhz": 1, "resources": {"luts": 3}})


def test_board_file_errors(tmp_path):
    with pytest.raises(BoardError, match="does not exist"):
        load_board_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("boards: [1, 2]\n")
    with pytest.raises(BoardError, match="boards"):
        load_board_file(bad)


def test_inline_board_without_defaults_gets_catalog_fill_limits():
    b = board_from_mapping("x", {"part": "p", "family": "xc7", "clock_mhz": 100, "resources": {"lut": 1000}})
    assert b.fill_limits == get_board("pynq-z2").fill_limits
    assert b.fits(Resources(lut=500))


def test_lattice_boards_count_lut4_ebr_and_multipliers():
    from boards import FAMILIES
    cat = catalog()
    # device-database totals (nextpnr's `available`) of the parts the boards carry
    assert cat["ulx3s-85f"].capacity == Resources(lut=83640, ff=83640, bram18=208, uram=0, dsp=156)
    assert cat["orangecrab-25f"].capacity == Resources(lut=24288, ff=24288, bram18=56, uram=0, dsp=28)
    assert cat["ecp5-5g-evn"].part.startswith("LFE5UM5G-85F")
    assert cat["crosslink-nx-evn"].capacity == Resources(lut=32256, ff=32256, bram18=84, uram=2, dsp=56)
    assert {b.family for b in cat.values()} >= {"ecp5", "nexus"}
    assert FAMILIES["ecp5"].lut.startswith("LUT4") and FAMILIES["xc7"].lut.startswith("LUT6")
    assert "LRAM" in FAMILIES["nexus"].uram and "DP16KD" in FAMILIES["ecp5"].bram18
    assert {f.fmax for f in FAMILIES.values()} == {"assumed", "place-and-route"}
