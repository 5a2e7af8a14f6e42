"""search.dnas.derive: finetune: the derived Brevitas network starts from the supernet's weights."""
import pytest
import torch

from codesign.config import ConfigError, config_from_mapping
from codesign.dnas import SuperMLP, _one_hot, choices_for, cost_tables, expected_cost, train_supernet, warm_start
from codesign.trial import candidate_spec


def _cfg(scaling="po2", space=None, **dnas):
    return config_from_mapping({
        "style": "hls4ml", "coefficients": "yosys-xc7", "folding": {"target_fps": None},
        "space": {"kind": ["mlp"], "hidden_layers": [2], "width": [8, 16], "weight_bits": [2, 4],
                  "act_bits": [2, 4], "scaling": scaling, **(space or {})},
        "training": {"epochs": 7, "patience": 10}, "flows": [],
        "search": {"algorithm": "dnas", "dnas": {"epochs": 2, "warmup_epochs": 1, "derive": "finetune", **dnas}}})


def _float_sample(sample):
    for name in ("width", "weight_bits", "act_bits", "neuron_weight", "neuron_act"):
        if getattr(sample, name) is not None:
            setattr(sample, name, [t.float() for t in getattr(sample, name)])
    return sample


def _transfer(cfg, lam=0.1, brevitas_init=()):
    """Logits on the test split of the trained supernet at its derived one-hot sample, of the Brevitas
    network warm-started from it, and of the same network at Brevitas' own initialisation."""
    from codesign.data import dataset_for
    from codesign.model import build_model
    from codesign.train import set_determinism
    data = dataset_for(cfg)
    set_determinism(0)
    choices = choices_for(cfg, data.n_features, data.n_classes)
    tables = [torch.from_numpy(t) for t in cost_tables(cfg, cfg.resolve_board(), choices)]
    net = SuperMLP(choices)
    train_supernet(cfg, data, net, lambda s: expected_cost(tables, s), lam, 0)
    params = net.derived_params()
    model, fresh = (build_model(candidate_spec(cfg, params), seed=0) for _ in range(2))
    assert warm_start(net, model, params) == list(brevitas_init)  # every other part mapped
    x = torch.from_numpy(data.x_test)
    with torch.no_grad():
        return (net.eval()(x, _float_sample(_one_hot(choices, params))), model.eval()(x), fresh.eval()(x),
                torch.from_numpy(data.y_test))


def _rel(a, b):
    return float((a - b).norm() / a.norm())


def test_warm_started_network_computes_the_supernets_derived_sample_with_float_scales():
    # scaling float: every Brevitas scale is the supernet's (weights max|w| / levels, activations
    # clip / max code, input 1 / max code); what differs is rounding at code boundaries (the weights'
    # scale is computed in a different order), a few per cent of the logits' norm
    sup, warm, fresh, _ = _transfer(_cfg("float"))
    assert _rel(sup, warm) < 0.05
    assert (sup.argmax(1) == warm.argmax(1)).float().mean() >= 0.95
    assert _rel(sup, fresh) > 0.5  # Brevitas' own initialisation computes something else


def test_one_bit_weights_transfer_up_to_the_classifiers_scale():
    # 1-bit weights: the supernet scales sign(w) by mean|w|, Brevitas by a constant; the hidden layers'
    # batch norms absorb the ratio, the classifier's logits keep it (said in the returned list): the
    # logits are a multiple of the supernet's, up to code-boundary rounding
    sup, warm, _, _ = _transfer(_cfg("float", space={"weight_bits": [1]}), brevitas_init=["out 1-bit weight scale"])
    k = float((sup * warm).sum() / (warm * warm).sum())
    assert _rel(sup, k * warm) < 0.05 and _rel(sup, warm) > 0.3
    assert (sup.argmax(1) == warm.argmax(1)).float().mean() >= 0.95


@pytest.mark.parametrize("channel_bits, activation", [(False, "relu"), (True, "relu"), (False, "hardtanh")])
def test_warm_started_network_with_po2_scales_is_close_to_the_supernet(channel_bits, activation):
    # scaling po2: Brevitas rounds every scale to a power of two (the supernet's are free floats: up
    # to a factor sqrt(2) per quantizer, other codes), so the logits differ by ~40-50% of their norm;
    # the transfer is still real: most predictions agree and the accuracy is the supernet's, where
    # Brevitas' own initialisation is at chance
    # (hardtanh: Brevitas' signed codes step 2**-(b-1) over [-1, 1), the supernet's 1 / (2**(b-1) - 1))
    sup, warm, fresh, y = _transfer(_cfg("po2", space={"activation": [activation]}, channel_bits=channel_bits))
    assert _rel(sup, warm) < 0.7 < _rel(sup, fresh)
    assert (sup.argmax(1) == warm.argmax(1)).float().mean() >= 0.7
    accuracy = {k: float((v.argmax(1) == y).float().mean())
                for k, v in (("sup", sup), ("warm", warm), ("fresh", fresh))}
    assert accuracy["warm"] >= accuracy["sup"] - 0.1 and accuracy["fresh"] < 0.3, accuracy


def test_derive_finetune_config_errors():
    with pytest.raises(ConfigError, match="derive finetune"):
        config_from_mapping({"search": {"algorithm": "nsga2", "dnas": {"derive": "finetune"}}})
    with pytest.raises(ConfigError, match="finetune_epochs"):
        config_from_mapping({"search": {"algorithm": "dnas", "dnas": {"finetune_epochs": 0}}})


def test_derive_finetune_config_error_for_a_user_space():
    from pathlib import Path
    spaces = Path(__file__).parent / "fixtures" / "dnas_spaces.py"
    with pytest.raises(ConfigError, match="derive finetune.*user space"):
        config_from_mapping({"model": f"{spaces}:tiny", "folding": {"target_fps": None}, "flows": [],
                             "search": {"algorithm": "dnas", "dnas": {"derive": "finetune"}}})


def test_tiny_dnas_search_with_finetune_trains_finetune_epochs_and_re_estimates_to_the_records(tmp_path):
    from codesign import runfolder
    from codesign.model import build_model, weight_csd_digits
    from codesign.scoring import estimate_spec
    from codesign.tune import run_search
    cfg = _cfg(space={"hidden_layers": [1]}, lambdas=[0.0, 30.0], finetune_epochs=2)
    run_dir, summary = run_search(cfg, output_dir=str(tmp_path), quiet=True)
    records = sorted(runfolder.read_records(run_dir), key=lambda r: r.user_attrs["dnas"]["lambda"])
    assert summary["status"] == "complete" and len(records) == 2
    board = cfg.resolve_board()
    for r in records:
        assert r.status == "ok", r.failure_reason
        dnas = r.user_attrs["dnas"]
        assert dnas["derive"] == "finetune" and dnas["finetune_epochs"] == 2 and dnas["brevitas_init"] == []
        assert r.epochs_run == 2 and len(r.history) == 2  # not training.epochs (7)
        spec = candidate_spec(cfg, dict(r.params))
        model = build_model(spec)
        model.load_state_dict(torch.load(run_dir / r.artifacts[0], weights_only=True))
        est = estimate_spec(cfg, spec, board, csd_digits=weight_csd_digits(model.eval()))
        assert est.total == r.estimates["calibrated"].total and r.metrics["lut"] == est.total.lut
