"""`search.dnas.channel_bits`: every hidden neuron of the dnas supernet chooses its own weight and
activation bits; the cost is built from per-neuron shares of the per-layer table."""
import numpy as np
import pytest
import torch

from codesign.config import ConfigError, config_from_mapping
from codesign.dnas import SuperMLP, _one_hot, choices_for, cost_tables, expected_cost
from codesign.trial import candidate_spec
from hw_models import estimate


def _cfg(style="hls4ml", channel_bits=True, **dnas):
    return config_from_mapping({
        "style": style, "coefficients": "yosys-xc7", "folding": {"target_fps": None},
        "space": {"kind": ["mlp"], "hidden_layers": [1], "width": [8, 16], "weight_bits": [2, 4],
                  "act_bits": [2, 4]},
        "training": {"epochs": 2, "patience": 2}, "flows": [],
        "search": {"algorithm": "dnas", "dnas": {"channel_bits": channel_bits, **dnas}}})


def _params(width, wbits, abits):
    return {"kind": "mlp", "activation": "relu", "hidden_layers": 1, "fc0_width": width,
            "fc0_weight_bits": max(wbits), "fc0_act_bits": max(abits), "out_weight_bits": 2,
            "fc0_neuron_weight_bits": ",".join(map(str, wbits)), "fc0_neuron_act_bits": ",".join(map(str, abits))}


def _table_and_estimator(cfg, params):
    board = cfg.resolve_board()
    choices = choices_for(cfg, n_features=64, n_classes=10)
    tables = [torch.from_numpy(t) for t in cost_tables(cfg, board, choices)]
    spec = candidate_spec(cfg, params)
    est = estimate(spec.to_design(cfg.style, None), board, "yosys-xc7")
    exact = sum(layer.resources.lut for layer in est.per_layer) / board.capacity.lut
    return float(expected_cost(tables, _one_hot(choices, params))), exact, spec


@pytest.mark.parametrize("width, wb, ab", [(8, 2, 4), (16, 4, 2), (16, 2, 2)])
def test_one_width_per_layer_is_the_estimators_cost(width, wb, ab):
    table, exact, spec = _table_and_estimator(_cfg(), _params(width, [wb] * width, [ab] * width))
    assert spec.dense[0].neuron_weight_bits == () and spec.dense[0].weight_bits == wb  # the uniform layer
    assert table == pytest.approx(exact, rel=1e-12)


def test_mixed_neurons_are_close_and_cheaper():
    """Per-neuron shares are first-order: within 1% of the estimator on these mixes (hls4ml style; the
    accumulator of the layer after is as wide as its widest input makes it, docs/dnas.md)."""
    rng = np.random.default_rng(0)
    cfg = _cfg()
    for _ in range(3):
        wbits, abits = list(rng.choice([2, 4], 16)), list(rng.choice([2, 4], 16))
        table, exact, spec = _table_and_estimator(cfg, _params(16, wbits, abits))
        assert spec.dense[0].neuron_weight_bits == tuple(wbits) and spec.dense[0].neuron_act_bits == tuple(abits)
        assert table == pytest.approx(exact, rel=0.01)
        assert exact < _table_and_estimator(cfg, _params(16, [4] * 16, [4] * 16))[1]


def test_per_neuron_logits_get_gradients_from_cost_and_accuracy():
    cfg = _cfg()
    choices = choices_for(cfg, n_features=64, n_classes=10)
    tables = [torch.from_numpy(t) for t in cost_tables(cfg, cfg.resolve_board(), choices)]
    net = SuperMLP(choices)
    assert [tuple(a.shape) for a in net.alpha_nwbits] == [(16, 2)] and len(net.alpha_abits) == 0
    expected_cost(tables, net.sample(tau=1.0)).backward()
    for alpha in (*net.alpha_nwbits, *net.alpha_nabits):
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0
    net.zero_grad()
    out = net(torch.rand(4, 64), net.sample(tau=1.0))
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in (*net.alpha_nwbits, *net.alpha_nabits))
    params = net.derived_params()
    assert len(params["fc0_neuron_weight_bits"].split(",")) == params["fc0_width"]


@pytest.mark.parametrize("change, match", [
    ({"flows": ["hls4ml"]}, "search.dnas.channel_bits: the QONNX flows"),
    ({"space": {"tie_bits": False, "weight_bits": [1, 2]}}, "fixed-point widths of 2..16 bits"),
    ({"space": {"tie_bits": False, "activation": ["hardtanh"]}}, "need space.activation"),
    ({"search": {"algorithm": "dnas", "dnas": {"channel_bits": [2, 32]}}}, "channel_bits"),
])
def test_channel_bits_config_errors(change, match):
    base = {"style": "hls4ml", "folding": {"target_fps": None}, "flows": [],
            "space": {"tie_bits": False, "weight_bits": [2, 4], "act_bits": [2, 4]},
            "search": {"algorithm": "dnas", "dnas": {"channel_bits": True}}}
    with pytest.raises(ConfigError, match=match):
        config_from_mapping({**base, **change})


def test_tiny_dnas_search_with_channel_bits_re_estimates_to_the_records(tmp_path):
    from codesign import runfolder
    from codesign.model import build_model, weight_csd_digits
    from codesign.scoring import estimate_spec
    from codesign.tune import run_search
    cfg = _cfg(epochs=2, warmup_epochs=1, lambdas=[3.0], arch_lr=0.3)
    run_dir, summary = run_search(cfg, output_dir=str(tmp_path), quiet=True)
    assert summary["status"] == "complete"
    (r,) = runfolder.read_records(run_dir)
    assert r.status == "ok", r.failure_reason
    spec = candidate_spec(cfg, dict(r.params))
    width = r.params["fc0_width"]
    assert len(r.params["fc0_neuron_weight_bits"].split(",")) == width
    assert r.spec["dense"][0]["neuron_weight_bits"] == list(spec.dense[0].neuron_weight_bits)
    assert spec.dense[0].neuron_weight_bits or spec.dense[0].neuron_act_bits  # the search mixed widths
    model = build_model(spec)
    model.load_state_dict(torch.load(run_dir / r.artifacts[0], weights_only=True))
    est = estimate_spec(cfg, spec, cfg.resolve_board(), csd_digits=weight_csd_digits(model.eval()))
    assert est.total == r.estimates["calibrated"].total and r.metrics["lut"] == est.total.lut
    assert r.design.layers[0].neuron_weight_bits == spec.dense[0].neuron_weight_bits
    assert sum(r.user_attrs["dnas"]["probabilities"]["neuron_weight_bits"][0].values()) == pytest.approx(16)
