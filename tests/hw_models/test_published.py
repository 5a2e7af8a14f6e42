"""Our models held against published Vivado results (scripts/data/published, docs/published.md).

The tolerances are today's per-row errors (scripts/gen_published_tolerances.py writes them), so any
model change that makes a row worse fails here; a deliberate change reruns the script."""
import csv
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest
import yaml

from codesign.calibration import parse_tolerances, read_samples, regress
from codesign.cli import main
from hw_models.coefficients import COEFFICIENT_FILES

DATA = Path(__file__).resolve().parents[2] / "scripts" / "data" / "published"


def _tolerances() -> dict:
    """(golden, model) -> {(design, resource): tolerance}."""
    out = defaultdict(dict)
    with open(DATA / "tolerances.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out[row["golden"], row["model"]][row["design"], row["resource"]] = float(row["tolerance"])
    return dict(out)


TOLERANCES = _tolerances()


def _compared(golden: str) -> int:
    """Comparisons a golden file must yield: one per measured cell."""
    return sum(len(s.measured) for s in read_samples(DATA / golden))


def _drifted(golden: str, model: str, coefficients: str | None = None) -> list[str]:
    """Rows of `golden` whose error under `coefficients` (default: `model`'s) exceeds `model`'s tolerance."""
    tol = TOLERANCES[golden, model]
    rows = regress(DATA / golden, coefficients or model, parse_tolerances(None))
    assert len(rows) == _compared(golden) and {(c.design, c.resource) for c in rows} == set(tol)
    return [f"{c.design}[{c.resource}]: error {100 * c.error:.1f}% > {100 * tol[c.design, c.resource]:.0f}%"
            for c in rows if c.error > tol[c.design, c.resource] + 1e-12]


def test_every_golden_file_is_held_to_its_tolerances():
    goldens = {g for g, _ in TOLERANCES}
    assert goldens == {p.name for p in DATA.glob("golden_*.csv")}
    # the published sets are small: a file that loses rows (or a row that loses its numbers) fails here
    assert _compared("golden_finn.csv") >= 12 and _compared("golden_finn_shell.csv") >= 12
    assert _compared("golden_hls4ml.csv") >= 8 and _compared("golden_hls4ml_csynth.csv") >= 44


@pytest.mark.parametrize("golden,model", sorted(TOLERANCES))
def test_published_errors_do_not_grow(golden, model):
    drifted = _drifted(golden, model)
    assert not drifted, "\n".join(drifted)


@pytest.mark.parametrize("golden,model", sorted(TOLERANCES))
def test_cli_regress_passes_at_the_recorded_tolerances(golden, model, tmp_path, capsys):
    worst = defaultdict(float)
    for (_, resource), t in TOLERANCES[golden, model].items():
        worst[resource] = max(worst[resource], t)
    tol = ",".join(f"{r}={t}" for r, t in sorted(worst.items()))
    assert main(["regress", "--golden", str(DATA / golden), "--model", model, "--tolerance", tol,
                 "--junit", str(tmp_path / "j.xml")]) == 0, capsys.readouterr().out


def test_a_model_change_fails(tmp_path):
    """The check can fail: the analytic set with the FINN MVAU's LUT coefficients doubled drifts."""
    data = yaml.safe_load(resources.files("hw_models").joinpath(COEFFICIENT_FILES["analytic"]).read_text())
    data["finn"]["mvau"]["lut"] = {k: 2 * v for k, v in data["finn"]["mvau"]["lut"].items()}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(data))
    for golden in ("golden_finn.csv", "golden_finn_shell.csv"):
        assert _drifted(golden, "analytic", coefficients=str(changed)), golden
