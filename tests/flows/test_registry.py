"""Flows as named steps: the registry, ordering, skipping, options in the config, and a flow added by a test."""
from dataclasses import replace

import pytest
from pydantic import Field

from codesign.cli import main
from codesign.config import config_from_mapping, load_config
from codesign.trial import evaluate_candidate
from flows import registry
from flows.base import Flow, FlowOptions, FlowResult, FlowSkipped
from hw_models import estimate

PARAMS = {"kind": "mlp", "activation": "relu", "hidden_layers": 1, "fc0_width": 16, "fc0_weight_bits": 2,
          "fc0_act_bits": 2, "out_weight_bits": 2, "target_fps": 1e5}


class CountingOptions(FlowOptions):
    lut: int = Field(default=123, ge=0)


class CountingFlow(Flow):
    """A flow of a user's own: reports a fixed LUT count as its own source, after the export."""

    name = "counting"
    description = "test flow"
    requires = ("qonnx",)
    Options = CountingOptions
    seen: list = []

    def run(self, ctx, options):
        self.seen.append(ctx.onnx_path)
        est = estimate(ctx.design, ctx.board)
        est = replace(est, source=self.name, total=replace(est.total, lut=float(options.lut)))
        return FlowResult(self.name, {"onnx": ctx.onnx_path.name}, estimates={self.name: est})


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setitem(registry.FLOWS, CountingFlow.name, CountingFlow())
    CountingFlow.seen = []
    return CountingFlow


def test_resolve_puts_required_flows_first_once():
    assert registry.resolve(["yosys", "finn-estimate", "hls4ml", "qonnx"]) == ["yosys", "qonnx", "finn-estimate",
                                                                               "hls4ml"]
    with pytest.raises(ValueError, match="unknown flow 'nope'; valid: \\['finn-estimate', 'hls4ml', 'pnr', 'qonnx'"):
        registry.resolve(["nope"])


def test_run_flows_records_a_skip_and_propagates_a_failure():
    class Skips(Flow):
        name, description = "skips", "x"

        def run(self, ctx, options):
            raise FlowSkipped("no tool here")

    class Fails(Flow):
        name, description = "fails", "x"

        def run(self, ctx, options):
            raise RuntimeError("boom")
    seen = []
    [result] = registry.run_flows([(Skips(), FlowOptions())], ctx=None, on_result=seen.append)
    assert not result.ran and result.skipped == "FlowSkipped: no tool here" and seen == [result]
    with pytest.raises(RuntimeError, match="boom"):
        registry.run_flows([(Skips(), FlowOptions()), (Fails(), FlowOptions())], ctx=None)


def test_a_registered_flow_runs_in_a_trial_and_scores_it_as_feedback(tmp_path, counting):
    cfg = config_from_mapping({"feedback": "counting", "flows": [{"counting": {"lut": 77}}],
                               "training": {"epochs": 1}, "space": {"hidden_layers": [1], "width": [16]}})
    assert [f.name for f, _ in cfg.flow_steps()] == ["qonnx", "counting"]
    record = evaluate_candidate(cfg, PARAMS, trial_id="t1", run_dir=tmp_path)
    assert record.status == "ok", record.failure_reason
    assert counting.seen == [tmp_path / "trials" / "t1" / "model.onnx"]  # after the export, which it requires
    assert record.flows["counting"].detail == {"onnx": "model.onnx"} and record.flows["qonnx"].detail["agreement"] == 1.0
    assert record.source == "counting" and record.metrics["lut"] == 77
    assert record.estimates["counting"].total.lut == 77


def test_legacy_flows_section_of_an_old_run_folder_still_loads(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "style: hls4ml\nfeedback: yosys\nfolding: {mode: derive, target_fps: null}\n"
        "flows: {export: false, verify_samples: 16, min_agreement: 0.5, finn: false, hls4ml_csim: true,\n"
        "        hls4ml_strategy: Resource, hls4ml_min_agreement: 0.9, timeout_s: 60, synthesis: false,\n"
        "        yosys: false, yosys_simulate: true, synthesis_timeout_s: 900}\n")
    cfg = load_config(tmp_path / "config.yaml")
    steps = {f.name: o.model_dump() for f, o in cfg.flow_steps()}
    assert list(steps) == ["qonnx", "hls4ml", "yosys"]
    assert steps["qonnx"] == {"verify_samples": 16, "min_agreement": 0.5}
    assert steps["hls4ml"] == {"strategy": "Resource", "verify_samples": 16, "min_agreement": 0.9, "timeout_s": 60}
    assert steps["yosys"] == {"simulate": True, "verify_samples": 16, "timeout_s": 900}


def test_doctor_walks_the_registry(capsys, counting):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "flows (config `flows:`, `feedback:`)" in out
    for name in ("qonnx", "finn-estimate", "hls4ml", "vivado", "yosys", "counting"):
        assert any(line.startswith(name) for line in out.splitlines()), name


def test_the_yosys_flow_shares_the_run_folders_cache(tmp_path, monkeypatch):
    """Identical RTL is synthesised once per run: the flow hands Yosys the run's cache folder."""
    import numpy as np

    from boards import get_board
    from flows import yosys_flow
    from flows.base import FlowContext
    from flows.yosys_stat import stat_from_cells
    from hw_models import DenseLayer, Design
    seen = {}

    def fake(net, family, work_dir, **kwargs):
        seen.update(kwargs, family=family)
        return stat_from_cells({"LUT6": 10, "FDRE": 4}), 3, None
    monkeypatch.setattr(yosys_flow, "synthesize_mlp_stat", fake)
    monkeypatch.setattr(yosys_flow, "call_with_timeout", lambda fn, *a, timeout_s, **k: fn(*a, **k))  # in-process
    ctx = FlowContext(model=None, forward=None, network=lambda: "net", design=Design((DenseLayer(4, 2, 2, 2),)),
                      board=get_board("pynq-z2"), clock_mhz=100.0, work_dir=tmp_path / "trials" / "t1",
                      x_check=np.zeros((1, 4)), image_shape=None, cycles_per_frame=1, latency_cycles=3,
                      cache_dir=tmp_path / "cache")
    result = yosys_flow.YosysFlow().run(ctx, yosys_flow.YosysOptions())
    assert seen["cache_dir"] == tmp_path / "cache" / "yosys" and seen["family"] == "xc7"
    assert result.estimates["yosys"].total.lut == 10 and result.detail["latency_cycles"] == 3
