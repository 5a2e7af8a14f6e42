"""The optional PYNQ shell term and the design keys that select the FINN memory layout and the shell."""
import json

import pytest

from boards import get_board
from hw_models import DenseLayer, Design, estimate
from hw_models.design import DesignError, design_from_mapping, design_to_mapping

BOARD = get_board("pynq-z1")
DESIGN = Design(layers=(DenseLayer(64, 16, 2, 2, pe=4, simd=16), DenseLayer(16, 10, 2, 32, pe=1, simd=16)), input_bits=2)


def test_shell_adds_its_constants_to_the_total_only():
    """analytic pynq shell: LUT 3000, FF 4500, BRAM18 4 (hw_models/data/analytic.yaml), once per design."""
    from dataclasses import replace
    bare, whole = estimate(DESIGN, BOARD), estimate(replace(DESIGN, shell="pynq"), BOARD)
    assert whole.total.lut - bare.total.lut == 3000 and whole.total.ff - bare.total.ff == 4500
    assert whole.total.bram18 - bare.total.bram18 == 4 and whole.total.dsp == bare.total.dsp
    assert [l.resources for l in whole.per_layer] == [l.resources for l in bare.per_layer]
    assert any("shell pynq" in n for n in whole.notes)


def test_shell_is_exact_not_a_fitted_term():
    from dataclasses import replace
    from hw_models.estimate import design_terms
    t = design_terms(replace(DESIGN, shell="pynq"), BOARD)
    assert not [k for k in t.linear if k.startswith("shell.")]
    bare = design_terms(DESIGN, BOARD)
    assert (t.exact.lut - bare.exact.lut, t.exact.ff - bare.exact.ff) == (3000, 4500)


def test_design_keys_round_trip_and_bad_values_are_named():
    data = {**design_to_mapping(DESIGN), "mem_mode": "internal_embedded", "shell": "pynq"}
    design, _ = design_from_mapping(data)
    assert (design.mem_mode, design.shell) == ("internal_embedded", "pynq")
    assert design_to_mapping(design)["shell"] == "pynq"
    assert "shell" not in design_to_mapping(DESIGN)  # defaults are not written
    with pytest.raises(DesignError, match="shell: 'zcu' unknown; valid"):
        design_from_mapping({**data, "shell": "zcu"})
    with pytest.raises(DesignError, match="mem_mode: 'const' unknown; valid"):
        design_from_mapping({**data, "mem_mode": "const"})


def test_cli_with_shell(tmp_path, capsys):
    import yaml
    from codesign.cli import main
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({**design_to_mapping(DESIGN), "board": "pynq-z1"}))
    assert main(["estimate", str(path), "--json"]) == 0
    bare = json.loads(capsys.readouterr().out)["total"]
    assert main(["estimate", str(path), "--json", "--with-shell"]) == 0
    whole = json.loads(capsys.readouterr().out)["total"]
    assert whole["lut"] - bare["lut"] == 3000 and whole["bram18"] - bare["bram18"] == 4
