import pytest
import torch
from torch import nn

from codesign.config import ConfigError, PruneConfig, TrainingConfig, config_from_mapping
from codesign.data import load_dataset
from codesign.model import build_model, weight_csd_digits
from codesign.prune import (fisher_diagonal, layer_mask, obd_saliency, pruning_window, scheduled_sparsity,
                            trial_sparsity, weight_sparsity)
from codesign.space import DenseSpec, ModelSpec
from codesign.train import train


def _spec():
    return ModelSpec(kind="mlp", n_features=64, image_shape=None, n_classes=10, input_bits=8, activation="relu",
                     convs=(), dense=(DenseSpec(32, 4, 4), DenseSpec(10, 4, 32)))


def test_obd_saliency_on_a_hand_computed_case():
    # y = w . x, loss 0.5 y^2 with w = (1, 2), x = (3, 1): y = 5, dL/dw = y x = (15, 5),
    # empirical Fisher diagonal (one batch) = (225, 25), saliency 0.5 F w^2 = (112.5, 50).
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0]]))
    model = nn.Sequential(layer)
    fisher = fisher_diagonal(model, [(torch.tensor([[3.0, 1.0]]), torch.tensor([[0.0]]))],
                             loss_fn=lambda out, t: 0.5 * ((out - t) ** 2).sum())
    assert torch.allclose(fisher[0], torch.tensor([[225.0, 25.0]]))
    sal = obd_saliency(layer.weight, fisher[0])
    assert torch.allclose(sal, torch.tensor([[112.5, 50.0]]))
    # OBD removes the larger weight here, magnitude pruning the smaller one
    assert layer_mask(sal, 0.5).tolist() == [[1.0, 0.0]]
    assert layer_mask(layer.weight.abs(), 0.5).tolist() == [[0.0, 1.0]]


def test_schedules_end_at_the_target_on_the_last_epoch_at_the_latest():
    gradual = PruneConfig(sparsity=0.8, schedule="gradual", start=0.25, end=0.5)
    values = [scheduled_sparsity(gradual, 0.8, 8, e) for e in range(8)]
    assert values[:2] == [0.0, 0.0] and values[4:] == [0.8] * 4 and 0 < values[2] < values[3] < 0.8
    one = PruneConfig(sparsity=0.5, schedule="oneshot", start=0.9)
    assert pruning_window(one, 1) == (0, 0) and scheduled_sparsity(one, 0.5, 1, 0) == 0.5


@pytest.mark.parametrize("method", ["magnitude", "obd"])
def test_pruning_reaches_the_sparsity_and_lowers_the_weight_aware_lut_estimate(method):
    from boards import get_board
    from hw_models import estimate
    data = load_dataset("digits")
    board = get_board("pynq-z2")
    results = {}
    for sparsity in (None, 0.75):
        cfg = TrainingConfig(epochs=4, patience=4, prune=None if sparsity is None else
                             {"method": method, "sparsity": sparsity, "schedule": "gradual", "start": 0.25, "end": 0.5})
        model = build_model(_spec(), seed=0)
        r = train(model, data, cfg, seed=0)
        design = _spec().to_design("hls4ml").with_csd_digits(weight_csd_digits(model))
        results[sparsity] = (r, model, estimate(design, board).total.lut)
    r, model, lut = results[0.75]
    assert r.weight_sparsity == pytest.approx(weight_sparsity(model)) and r.weight_sparsity >= 0.75 - 1e-3
    for m in (model.body[0], model.body[3]):  # each layer reaches the sparsity (before quantization)
        assert (m.weight == 0).float().mean().item() >= 0.75 - 1e-3
        assert (m.quant_weight().int() == 0).float().mean().item() >= 0.75 - 1e-3
    assert r.test_accuracy > 0.5
    assert lut < 0.6 * results[None][2]
    assert results[None][0].weight_sparsity is None


def test_sparsity_list_is_a_search_dimension():
    from codesign.space import grid_space, spec_from_params
    cfg = config_from_mapping({"space": {"kind": ["mlp"], "hidden_layers": [1], "width": [16]},
                               "training": {"prune": {"sparsity": [0.0, 0.5, 0.9]}}})
    assert grid_space(cfg, image_shape=None)["prune_sparsity"] == [0.0, 0.5, 0.9]
    import optuna
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    from codesign.space import sample_spec
    sample_spec(trial, cfg.space, cfg.folding, n_features=64, image_shape=None, n_classes=10,
                prune=cfg.training.prune)
    assert trial.params["prune_sparsity"] in (0.0, 0.5, 0.9)
    params = dict(trial.params)
    spec_from_params(params, cfg, n_features=64, image_shape=None, n_classes=10)
    assert trial_sparsity(cfg.training, params) == params["prune_sparsity"]
    with pytest.raises(ValueError, match="prune_sparsity"):
        trial_sparsity(cfg.training, {})


def test_bad_prune_config_is_one_clear_line():
    with pytest.raises(ConfigError, match=r"training.prune.sparsity: .*\[0, 1\)"):
        config_from_mapping({"training": {"prune": {"sparsity": 1.0}}})
    with pytest.raises(ConfigError, match="training.prune.method"):
        config_from_mapping({"training": {"prune": {"method": "lottery"}}})
    with pytest.raises(ConfigError, match="end"):
        config_from_mapping({"training": {"prune": {"start": 0.5, "end": 0.4}}})


def test_a_pruned_trial_records_its_sparsity_and_is_scored_by_its_sparse_weights(tmp_path):
    from codesign.trial import evaluate_candidate
    params = {"kind": "mlp", "activation": "relu", "hidden_layers": 1, "fc0_width": 16, "fc0_weight_bits": 4,
              "fc0_act_bits": 4, "out_weight_bits": 4}
    records = {}
    for sparsity in (0.0, 0.8):
        cfg = config_from_mapping({"style": "hls4ml", "coefficients": "yosys-xc7", "folding": {"target_fps": None}, "flows": [],
                                   "training": {"epochs": 3, "patience": 3,
                                                "prune": {"sparsity": [0.0, 0.8], "method": "obd"}},
                                   "space": {"hidden_layers": [1], "width": [16]}})
        records[sparsity] = evaluate_candidate(cfg, {**params, "prune_sparsity": sparsity},
                                               trial_id=f"t{sparsity}", run_dir=tmp_path)
    assert all(r.status == "ok" for r in records.values()), [r.failure_reason for r in records.values()]
    assert "weight_sparsity" not in records[0.0].metrics
    assert records[0.8].metrics["weight_sparsity"] >= 0.8 - 1e-3
    assert records[0.8].metrics["lut"] < records[0.0].metrics["lut"]
