"""codesign calibrate / codesign regress on a golden CSV of hand-written design files."""
import json
import xml.etree.ElementTree as ET

import pytest
import yaml

from codesign.cli import main

DESIGNS = {
    "small.yaml": {"style": "finn", "input_bits": 8, "layers": [
        {"kind": "dense", "in": 64, "out": 32, "weight_bits": 2, "act_bits": 2, "pe": 4, "simd": 8},
        {"kind": "dense", "in": 32, "out": 10, "weight_bits": 2, "act_bits": 32, "pe": 1, "simd": 4}]},
    "wide.yaml": {"style": "finn", "input_bits": 8, "layers": [
        {"kind": "dense", "in": 64, "out": 64, "weight_bits": 4, "act_bits": 4, "pe": 8, "simd": 16}]},
    "binary.yaml": {"style": "finn", "input_bits": 1, "layers": [
        {"kind": "dense", "in": 128, "out": 64, "weight_bits": 1, "act_bits": 1, "pe": 16, "simd": 32}]},
    "conv.yaml": {"style": "finn", "input_bits": 8, "layers": [
        {"kind": "conv", "in_ch": 1, "out_ch": 8, "kernel": 3, "in_dim": 8, "weight_bits": 4, "act_bits": 4,
         "pe": 2, "simd": 1}]},
}


@pytest.fixture
def golden(tmp_path):
    """Designs and a golden CSV whose 'synthesised' numbers are the analytic ones scaled: LUT x1.1, FF x0.9."""
    from boards import get_board
    from hw_models import design_from_mapping, estimate
    (tmp_path / "designs").mkdir()
    lines = ["design,source,family,lut,ff,bram18,uram,dsp"]
    for name, doc in DESIGNS.items():
        (tmp_path / "designs" / name).write_text(yaml.safe_dump(doc))
        t = estimate(design_from_mapping(doc)[0], get_board("pynq-z2")).total
        lines.append(f"designs/{name},yosys-0.70,xc7,{round(t.lut * 1.1)},{round(t.ff * 0.9)},{t.bram18:.0f},,{t.dsp:.0f}")
    (tmp_path / "golden.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_regress_passes_within_tolerance_and_writes_junit(golden, capsys):
    junit = golden / "out.xml"
    code = main(["regress", "--golden", str(golden / "golden.csv"), "--model", "analytic",
                 "--tolerance", "lut=0.15,ff=0.15,dsp=0,bram18=0", "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "16 passed, 0 failed" in out  # 4 designs x (lut, ff, bram18, dsp); uram not measured
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "16" and suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == 16


def test_regress_fails_beyond_tolerance(golden, capsys):
    junit = golden / "out.xml"
    code = main(["regress", "--golden", str(golden / "golden.csv"), "--tolerance", "lut=0.05", "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1 and "FAIL" in out and "12 passed, 4 failed" in out
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "4" and suite.find("testcase/failure") is not None


def test_calibrate_then_regress_with_the_fitted_model(golden, capsys):
    coeffs = golden / "cal.json"
    assert main(["calibrate", str(golden / "golden.csv"), "--out", str(coeffs), "--validation-fraction", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "calibrated xc7" in out and "lut" in out
    from hw_models.coefficients import load_coefficients
    prov = load_coefficients(str(coeffs)).provenance
    assert prov["family"] == "xc7" and prov["samples"] == 4 and prov["tools"] == ["yosys-0.70"]
    code = main(["regress", "--golden", str(golden / "golden.csv"), "--model", str(coeffs),
                 "--tolerance", "lut=0.05,ff=0.05", "--junit", str(golden / "o.xml")])
    assert code == 0, capsys.readouterr().out


@pytest.mark.parametrize("csv_text,match", [
    ("design,family,lut\nx.yaml,xc7,1\n", "missing column"),
    ("design,source,family,lut\ndesigns/small.yaml,v,stratix,1\n", "family 'stratix' unknown"),
    ("design,source,family,lut\ndesigns/none.yaml,v,xc7,1\n", "does not exist"),
    ("design,source,family,lut\ndesigns/small.yaml,v,xc7,many\n", "not a number"),
])
def test_bad_golden_files_are_clear_errors(golden, capsys, csv_text, match):
    bad = golden / "bad.csv"
    bad.write_text(csv_text)
    assert main(["regress", "--golden", str(bad), "--junit", str(golden / "x.xml")]) == 2
    assert match in capsys.readouterr().err


def test_unknown_model_and_tolerance(golden, capsys):
    assert main(["regress", "--golden", str(golden / "golden.csv"), "--model", "nope"]) == 2
    assert "valid names" in capsys.readouterr().err
    assert main(["regress", "--golden", str(golden / "golden.csv"), "--tolerance", "luts=1"]) == 2
    assert "unknown resource" in capsys.readouterr().err


def _swg_rows(scale_lut: float, scale_ff: float) -> list[str]:
    """Block samples whose 'synthesised' numbers are the analytic sliding-window model's, scaled."""
    from hw_models.calibrate import BlockSample
    from hw_models.coefficients import load_coefficients
    coeffs = load_coefficients("analytic")
    rows = ["name,family,channels,ifm_dim,kernel,simd,bits,ram_style,yosys_lut,yosys_ff,yosys_bram18"]
    for i, (c, d, k, simd, bits) in enumerate([(4, 8, 3, 1, 4), (16, 16, 3, 4, 4), (8, 32, 5, 2, 2),
                                               (32, 28, 3, 4, 8), (64, 14, 3, 8, 8), (3, 32, 3, 3, 8)]):
        params = dict(channels=c, ifm_dim=d, kernel=k, simd=simd, bits=bits, ram_style="distributed")
        r = BlockSample("finn.swu", params, {}).terms(coeffs).resources(coeffs)
        rows.append(f"swg{i},xc7,{c},{d},{k},{simd},{bits},distributed,{round(r.lut * scale_lut)},"
                    f"{round(r.ff * scale_ff)},{r.bram18:.0f}")
    return rows


def test_calibrate_fits_a_block_synthesised_alone(golden, capsys):
    (golden / "swg.csv").write_text("\n".join(_swg_rows(0.6, 0.7)) + "\n")
    coeffs = golden / "cal.json"
    assert main(["calibrate", str(golden / "golden.csv"), "--out", str(coeffs),
                 "--block", f"finn.swu={golden / 'swg.csv'}"]) == 0
    out = capsys.readouterr().out
    assert "block finn.swu: fitted on 4, validated on 2" in out
    from hw_models.calibrate import BlockSample
    from hw_models.coefficients import load_coefficients
    fitted, analytic = load_coefficients(str(coeffs)), load_coefficients("analytic")
    assert fitted.provenance["blocks"]["finn.swu"]["samples"] == 6
    sample = BlockSample("finn.swu", dict(channels=16, ifm_dim=12, kernel=3, simd=2, bits=4, ram_style="distributed"), {})
    before, after = sample.terms(analytic).resources(analytic), sample.terms(fitted).resources(fitted)
    assert after.lut == pytest.approx(0.6 * before.lut, rel=0.05) and after.ff == pytest.approx(0.7 * before.ff, rel=0.05)


@pytest.mark.parametrize("block_arg,match", [
    ("finn.swu", "expected BLOCK=CSV"),
    ("finn.nope={csv}", "block 'finn.nope' unknown"),
    ("finn.swu={golden}/none.csv", "does not exist"),
])
def test_bad_block_arguments_are_clear_errors(golden, capsys, block_arg, match):
    (golden / "swg.csv").write_text("\n".join(_swg_rows(1, 1)) + "\n")
    arg = block_arg.format(csv=golden / "swg.csv", golden=golden)
    assert main(["calibrate", str(golden / "golden.csv"), "--out", str(golden / "c.json"), "--block", arg]) == 2
    assert match in capsys.readouterr().err


def test_samples_can_point_at_synthesis_reports(golden, capsys):
    """A `report` column fills the empty cells from a Vivado report_utilization or a Yosys stat."""
    import shutil
    from pathlib import Path

    from codesign.calibration import read_samples
    fixtures = Path(__file__).resolve().parents[1] / "flows" / "fixtures"
    for name in ("vivado_utilization_synth_xc7z020.rpt", "yosys_stat_xc7_flat_yowasp070.json"):
        shutil.copy(fixtures / name, golden / name)
    (golden / "reports.csv").write_text(
        "design,source,family,lut,ff,bram18,uram,dsp,report\n"
        "designs/small.yaml,,xc7,,,,,,vivado_utilization_synth_xc7z020.rpt\n"
        "designs/wide.yaml,,xc7,,,,,,yosys_stat_xc7_flat_yowasp070.json\n"
        "designs/binary.yaml,vivado-2024.2,xc7,1234,,,,,vivado_utilization_synth_xc7z020.rpt\n")
    small, wide, binary = read_samples(golden / "reports.csv")
    assert small.measured == {"lut": 5755, "ff": 6526, "bram18": 8, "uram": 0, "dsp": 94} and small.source == "vivado-2020.2"
    assert wide.measured["lut"] == 1958 and wide.measured["ff"] == 812 and wide.source == "yosys-0.70"
    assert binary.measured["lut"] == 1234 and binary.measured["ff"] == 6526 and binary.source == "vivado-2024.2"
    (golden / "bad.csv").write_text("design,source,family,lut,report\ndesigns/small.yaml,,xc7,,missing.rpt\n"
                                    "designs/small.yaml,,xc7,,designs/small.yaml\n")
    assert main(["regress", "--golden", str(golden / "bad.csv"), "--junit", str(golden / "x.xml")]) == 2
    assert "bad.csv:2: report: Vivado utilization report not found" in capsys.readouterr().err
    (golden / "bad.csv").write_text("design,source,family,lut,report\ndesigns/small.yaml,,xc7,,designs/small.yaml\n")
    assert main(["regress", "--golden", str(golden / "bad.csv"), "--junit", str(golden / "x.xml")]) == 2
    assert "expected a Vivado report_utilization (.rpt) or a Yosys stat" in capsys.readouterr().err


def test_regress_with_nothing_to_compare_fails(golden, capsys):
    (golden / "empty.csv").write_text("design,source,family,lut,ff,bram18,uram,dsp\ndesigns/small.yaml,v,xc7,,,,,\n")
    assert main(["regress", "--golden", str(golden / "empty.csv"), "--junit", str(golden / "r.xml")]) == 2
    err = capsys.readouterr().err
    assert "nothing to compare" in err and err.count("\n") == 1
    assert not (golden / "r.xml").exists()


def test_calibrate_reports_no_validation_metrics_without_validation_samples(golden, capsys):
    text = (golden / "golden.csv").read_text().splitlines()
    (golden / "one.csv").write_text("\n".join(text[:2]) + "\n")
    out = golden / "one.json"
    assert main(["calibrate", str(golden / "one.csv"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "validated on 0" in printed and "no validation metrics" in printed
    assert "MAPE" not in printed and "R2" not in printed  # no metrics of the training sample passed off as validation
    provenance = json.loads(out.read_text())["provenance"]
    assert provenance["validation"] == 0 and provenance["validation_metrics"] == {}


def test_junit_into_a_new_folder_is_created(golden, capsys):
    target = golden / "reports" / "ci" / "regress.xml"
    assert main(["regress", "--golden", str(golden / "golden.csv"), "--junit", str(target)]) == 0
    assert ET.parse(target).getroot().tag == "testsuite"
    assert main(["regress", "--golden", str(golden / "golden.csv"), "--junit", str(golden)]) == 2
    assert f"--junit {golden}: cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["golden", "design", "report"])
def test_binary_inputs_of_a_golden_file_are_not_text_files(golden, capsys, where):
    csv_path, binary = golden / "golden.csv", golden / "designs" / "small.yaml"
    if where == "golden":
        binary = csv_path
    elif where == "report":
        binary = golden / "util.rpt"
        csv_path = golden / "with_report.csv"
        csv_path.write_text("design,source,family,lut,ff,bram18,uram,dsp,report\ndesigns/wide.yaml,,xc7,,,,,,util.rpt\n")
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    assert main(["regress", "--golden", str(csv_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(binary) in err, err
    # reports are read leniently (tools write odd bytes): a binary one is "not a report"
    assert err.endswith("not a text file\n" if where != "report" else "no 'Site Type | Used' table found\n"), err
