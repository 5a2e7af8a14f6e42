"""The coefficient sets fitted to published Vivado results (scripts/gen_vivado_coefficients.py)."""
import importlib.util
import json
from importlib import resources
from pathlib import Path

import pytest

from hw_models.coefficients import COEFFICIENT_FILES, load_coefficients

ROOT = Path(__file__).resolve().parents[2]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_vivado", ROOT / "scripts" / "gen_vivado_coefficients.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name,rows,designs", [("vivado-finn", 7, 4), ("vivado-hls4ml", 2, 2)])
def test_sets_say_what_stands_behind_them(name, rows, designs):
    prov = load_coefficients(name).provenance
    assert (prov["samples"], prov["designs"]) == (rows, designs)
    assert prov["validation"] == "leave-one-design-out"
    assert {"lut", "ff"} <= set(prov["validation_metrics"]) and prov["validation_metrics"]["lut"]["n"] == rows
    fitted = json.loads(resources.files("hw_models").joinpath(COEFFICIENT_FILES[name]).read_text())
    paths = {f"{s}.{b}.{r}.{t}" for s, blocks in fitted.items() if s not in ("base", "provenance")
             for b, res in blocks.items() if b != "rules" for r, ts in res.items() for t in ts}
    assert paths == set(prov["designs_per_term"])  # every fitted coefficient with its count of designs
    assert all(1 <= n <= designs for n in prov["designs_per_term"].values())
    # HLS builds: hls4ml's schedule, not the da4ml pipeline of the yosys-xc7 base
    assert load_coefficients(name).section("hls4ml", "rules")["pipeline"] == "hls"


def test_a_search_config_can_use_them():
    from codesign.config import config_from_mapping
    assert config_from_mapping({"coefficients": "vivado-finn"}).estimate_source == "calibrated"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vivado-finn", "vivado-hls4ml"])
def test_shipped_sets_are_the_fit_of_today(name):
    """A model change that moves the fit shows here: rerun scripts/gen_vivado_coefficients.py."""
    text, prov = _gen().fit_set(name)
    shipped = json.loads(resources.files("hw_models").joinpath(COEFFICIENT_FILES[name]).read_text())
    fresh = json.loads(text)
    for doc in (shipped, fresh):
        doc["provenance"].pop("date")
    assert fresh == shipped
