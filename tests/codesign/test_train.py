import numpy as np
import pytest
import torch

from codesign.config import TrainingConfig
from codesign.data import load_dataset
from codesign.model import build_model
from codesign.space import DenseSpec, ModelSpec
from codesign.train import TrainingDiverged, train


def _spec(bits):
    return ModelSpec(kind="mlp", n_features=64, image_shape=None, n_classes=10, input_bits=8, activation="relu",
                     convs=(), dense=(DenseSpec(32, bits, bits), DenseSpec(10, bits, 32)))


def test_training_learns_digits_and_is_deterministic():
    data = load_dataset("digits")
    cfg = TrainingConfig(epochs=4, patience=4)
    r1 = train(build_model(_spec(4), seed=1), data, cfg, seed=1)
    r2 = train(build_model(_spec(4), seed=1), data, cfg, seed=1)
    assert r1.test_accuracy > 0.6  # chance is 0.1
    assert r1.history == r2.history and r1.test_accuracy == r2.test_accuracy
    assert torch.get_num_threads() == 1


def test_early_stopping_and_epoch_callback():
    data = load_dataset("digits")
    seen = []
    r = train(build_model(_spec(2)), data, TrainingConfig(epochs=50, patience=1, lr=1e-6), seed=0,
              on_epoch=lambda e, loss, acc: seen.append(e))
    assert r.stopped_early and r.epochs_run < 50 and seen == list(range(1, r.epochs_run + 1))


def test_divergence_is_detected():
    data = load_dataset("digits")
    bad = data.__class__(**{**data.__dict__, "x_train": np.full_like(data.x_train, np.nan)})
    with pytest.raises(TrainingDiverged):
        train(build_model(_spec(32)), bad, TrainingConfig(epochs=1), seed=0)


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.random((100, 6, 6)), y_train=rng.integers(0, 3, 100),
             x_test=rng.random((30, 6, 6)), y_test=rng.integers(0, 3, 30))
    d = load_dataset("npz", str(path))
    assert d.image_shape == (1, 6, 6) and d.n_classes == 3 and d.n_features == 36
    assert 0 <= d.x_train.min() and d.x_train.max() <= 1
    np.savez(tmp_path / "bad.npz", x=rng.random(3))
    from codesign.data import DatasetError
    with pytest.raises(DatasetError, match="lacks"):
        load_dataset("npz", str(tmp_path / "bad.npz"))


def test_digits_global_scaling_is_the_fixed_0_to_16_range():
    from sklearn.datasets import load_digits
    d = load_dataset("digits")
    raw = load_digits().data / 16.0
    rows = {tuple(r) for r in raw.astype(np.float32)}
    assert all(tuple(r) in rows for r in d.x_test[:20])  # every sample is a raw digit divided by 16


def test_minmax_scaling_gives_every_tabular_feature_its_own_range(tmp_path):
    """A wide feature (0..1000) next to a narrow one (0..1): one global range leaves the narrow one below
    one 8-bit step (1000 / 256 ~ 4 > 1); minmax maps each to [0, 1] on the training split."""
    rng = np.random.default_rng(1)

    def x(n):
        return np.stack([rng.uniform(0, 1000, n), rng.uniform(0, 1, n), np.full(n, 7.0)], axis=1)
    path = tmp_path / "tab.npz"
    np.savez(path, x_train=x(200), y_train=rng.integers(0, 2, 200), x_test=x(50) * 1.5,
             y_test=rng.integers(0, 2, 50))
    wide = load_dataset("npz", str(path))
    assert wide.x_train[:, 1].max() < 1 / 256  # the narrow feature is lost to 8-bit inputs
    per = load_dataset("npz", str(path), scaling="minmax")
    lo, hi = per.x_train.min(axis=0), per.x_train.max(axis=0)
    assert lo[:2] == pytest.approx([0, 0], abs=0.02) and hi[:2] == pytest.approx([1, 1], abs=0.02)
    assert np.all(per.x_train[:, 2] == 0)  # a constant feature maps to 0, no division by zero
    assert 0 <= per.x_test.min() and per.x_test.max() == 1.0  # beyond the training range: clipped
    from codesign.config import config_from_mapping
    from codesign.data import dataset_for
    cfg = config_from_mapping({"dataset": {"name": "npz", "path": str(path), "scaling": "minmax"}})
    assert np.array_equal(dataset_for(cfg).x_train, per.x_train)  # what every trial of such a search trains on


def test_no_scaling_takes_data_in_0_1_as_it_is_and_refuses_anything_else(tmp_path):
    from codesign.data import DatasetError
    rng = np.random.default_rng(2)
    path = tmp_path / "unit.npz"
    np.savez(path, x_train=rng.random((60, 4)), y_train=rng.integers(0, 2, 60), x_test=rng.random((20, 4)),
             y_test=rng.integers(0, 2, 20))
    d = load_dataset("npz", str(path), scaling="none")
    with np.load(path) as f:
        assert np.allclose(np.sort(d.x_test, axis=0), np.sort(f["x_test"].astype(np.float32), axis=0))
    with pytest.raises(DatasetError, match=r"scaling 'none': digits has \d+ value\(s\) outside \[0, 1\]"):
        load_dataset("digits", scaling="none")
    with pytest.raises(DatasetError, match=r"dataset.scaling: 'zscore' unknown; valid: \['global', 'minmax', 'standard', 'none'\]"):
        load_dataset("digits", scaling="zscore")


def test_mnist1d_is_generated_locally():
    d = load_dataset("mnist1d")
    assert d.n_features == 40 and d.n_classes == 10 and d.image_shape is None
    assert len(d.x_train) + len(d.x_val) + len(d.x_test) == 5000


def test_standard_scaling_feeds_a_signed_input_quantizer():
    from codesign.model import build_model
    from codesign.space import spec_from_params
    from codesign.config import config_from_mapping
    d = load_dataset("digits", scaling="standard")
    assert d.signed_input and abs(float(d.x_train.mean())) < 1e-3
    used = d.x_train.std(axis=0) > 0
    assert np.allclose(d.x_train.std(axis=0)[used], 1.0, atol=1e-3)
    assert (d.x_test < 0).any()  # a signed input, not [0, 1]
    cfg = config_from_mapping({"dataset": {"scaling": "standard"}})
    spec = spec_from_params({"kind": "mlp", "activation": "relu", "hidden_layers": 1, "fc0_width": 16,
                             "fc0_weight_bits": 4, "fc0_act_bits": 4, "out_weight_bits": 4}, cfg, n_features=d.n_features, image_shape=d.image_shape,
                            n_classes=10, input_signed=d.signed_input)
    assert spec.to_design("finn").input_signed
    model = build_model(spec, seed=0)
    assert bool(model.input_quant.act_quant.is_signed)
