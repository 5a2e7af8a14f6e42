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


@pytest.mark.slow
def test_finn_own_estimates_are_finn_plus_on_the_same_layers():
    """finn_estimates.csv is what finn-plus estimates today for the designs' layers and folding."""
    pytest.importorskip("finn")
    import importlib.util
    spec = importlib.util.spec_from_file_location("gen", DATA.parents[1] / "gen_published_finn_estimates.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    with open(DATA / "finn_estimates.csv", newline="", encoding="utf-8") as f:
        recorded = {r["design"]: {k: (v if k in ("design", "tool") else int(v)) for k, v in r.items()}
                    for r in csv.DictReader(f)}
    assert {r["design"]: r for r in gen.measure()} == recorded


def test_finn_plus_sees_the_folding_of_the_design():
    """Hand-computed finn-plus MVAU_hls LUTs (FINN-R): cybsec layer 2, PE 4, SIMD 16, W2 A2 unsigned,
    MW 64: mult 16*(2*ceil(4/6)-1)*4 = 64, adder tree 4*(2*16-1) = 124, accumulator
    ceil(9 + log2(1 + 2^-9) + 1) = 11 -> int(300 + 1.1 * 4 * 199) = 1175."""
    pytest.importorskip("finn")
    from finn.analysis.fpgadataflow.res_estimation import res_estimation
    from flows.finn import design_hw_graph
    from hw_models.design import DenseLayer, Design
    design = Design((DenseLayer(64, 64, 2, 2, pe=4, simd=16),), input_bits=2)
    (node,) = res_estimation(design_hw_graph(design), "xc7z020clg400-1").values()
    assert node["LUT"] == 1175 and node["DSP"] == 0


def test_finn_plus_sees_convolutions_and_pools():
    """A padded conv and a max-pool become FINN's window generator + MVAU and window + Pool nodes;
    finn-plus' SWG_rtl LUT estimate is 300 per window (no LUTRAM under ram_style auto)."""
    pytest.importorskip("finn")
    from finn.analysis.fpgadataflow.res_estimation import res_estimation
    from flows.finn import design_hw_graph
    from hw_models.design import ConvLayer, Design, MaxPoolLayer
    design = Design((ConvLayer(4, 8, 3, 8, 2, 2, padding=1, pe=2, simd=4), MaxPoolLayer(8, 8, 2, pe=8)), input_bits=2)
    graph = design_hw_graph(design)
    assert [n.op_type for n in graph.graph.node] == ["ConvolutionInputGenerator_rtl", "MVAU_hls",
                                                       "ConvolutionInputGenerator_rtl", "Pool_hls"]
    from qonnx.custom_op.registry import getCustomOp
    assert getCustomOp(graph.graph.node[0]).get_nodeattr("IFMDim") == [10, 10]
    res = res_estimation(graph, "xc7z020clg400-1")
    assert [r["LUT"] for name, r in res.items() if name.startswith("Conv")] == [300, 300]
