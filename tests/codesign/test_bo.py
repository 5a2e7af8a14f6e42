"""The seed's GP BO (`search.algorithm: bo`): acquisitions, the encoding of conditional layers, and that
the configured acquisition is the one the sampler uses."""
import math

import numpy as np
import optuna
import pytest

from codesign import bo
from codesign.config import ConfigError, config_from_mapping
from codesign.samplers import make_sampler
from codesign.space import sample_spec

SPACE = {"kind": ["mlp"], "hidden_layers": {"min": 1, "max": 3}, "width": [8, 16, 32],
         "weight_bits": [2, 4], "act_bits": [2, 4]}


def _cfg(**search):
    return config_from_mapping({"space": SPACE, "dataset": {"name": "digits"},
                                "search": {"algorithm": "bo", "startup_trials": 3, **search}})


def _objective(trial):
    spec = sample_spec(trial, CFG.space, CFG.folding, n_features=64, image_shape=None, n_classes=10)
    hidden = spec.dense[:-1]
    return sum(math.log2(d.width) + d.weight_bits for d in hidden) - 3 * abs(len(hidden) - 2)


CFG = _cfg()


def test_ei_matches_closed_form_and_log_ei_is_its_log():
    mu, sd = np.array([0.0, 1.0, -3.0, -40.0]), np.array([1.0, 0.5, 1.0, 1.0])
    ei = bo.expected_improvement(mu, sd, 0.0)
    assert ei[0] == pytest.approx(1 / math.sqrt(2 * math.pi))  # z = 0: sigma * phi(0)
    assert np.allclose(np.log(ei[:3]), bo.log_expected_improvement(mu, sd, 0.0)[:3])
    assert ei[3] == 0.0 and np.isfinite(bo.log_expected_improvement(mu, sd, 0.0)[3])  # where EI underflows
    assert bo.log_expected_improvement(mu, sd, 0.0)[3] < bo.log_expected_improvement(mu, sd, 0.0)[2]


def test_encoding_keeps_inactive_layers_apart():
    enc = bo.encoding_for(CFG, None)
    one = {"kind": "mlp", "activation": "relu", "hidden_layers": 1, "fc0_width": 8, "fc0_weight_bits": 2,
           "fc0_act_bits": 2, "out_weight_bits": 2}
    point = {**enc.random_point(np.random.default_rng(0)), **one}
    assert enc.active(point) == set(one)  # the replayed space asks only for the layers that exist
    x1 = enc.encode(one)
    x2 = enc.encode({**one, "hidden_layers": 2, "fc1_width": 8, "fc1_weight_bits": 2, "fc1_act_bits": 2})
    assert x1.shape == (enc.dim,) and (x1 == bo.INACTIVE).sum() > (x2 == bo.INACTIVE).sum()


@pytest.mark.parametrize("acq", ["ei", "log_ei", "ucb"])
def test_configured_acquisition_reaches_the_sampler(acq, monkeypatch):
    used = []
    for name in ("expected_improvement", "log_expected_improvement", "upper_confidence_bound"):
        real = getattr(bo, name)
        monkeypatch.setattr(bo, name, lambda *a, _r=real, _n=name, **k: used.append(_n) or _r(*a, **k))
    sampler = make_sampler(_cfg(acquisition=acq))
    assert isinstance(sampler, bo.GPBOSampler) and sampler.acquisition == acq
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(_objective, n_trials=6)
    expected = {"ei": "expected_improvement", "log_ei": "log_expected_improvement",
                "ucb": "upper_confidence_bound"}[acq]
    assert used and set(used) == {expected}
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 6  # no point proposed twice


def test_bo_multi_objective_with_constraints_runs():
    sampler = make_sampler(_cfg(acquisition="log_ei"))
    study = optuna.create_study(sampler=sampler, directions=["maximize", "minimize"])
    for i in range(7):
        trial = study.ask()
        v = _objective(trial)
        trial.set_constraint("fit_lut", float(trial.params["hidden_layers"] - 2.5))
        study.tell(trial, [v, trial.params["hidden_layers"]])
    assert sampler.last_acquisition == "log_ei"


def test_qnehvi_goes_to_botorch():
    pytest.importorskip("optuna_integration")
    pytest.importorskip("botorch")
    from optuna_integration import BoTorchSampler
    from optuna_integration.botorch import qnehvi_candidates_func
    sampler = make_sampler(_cfg(acquisition="qnehvi"))
    assert isinstance(sampler, BoTorchSampler) and sampler._candidates_func is qnehvi_candidates_func


def test_acquisition_checks():
    with pytest.raises(ConfigError, match="qnehvi' needs two or more objectives"):
        _cfg(acquisition="qnehvi", objectives=[{"metric": "accuracy"}])
    with pytest.raises(ConfigError, match="option of algorithm 'bo'"):
        config_from_mapping({"search": {"algorithm": "tpe", "acquisition": "ucb"}})
    with pytest.raises(ConfigError, match="acquisition"):
        _cfg(acquisition="pi")
