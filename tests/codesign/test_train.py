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


def test_mnist1d_is_generated_locally():
    d = load_dataset("mnist1d")
    assert d.n_features == 40 and d.n_classes == 10 and d.image_shape is None
    assert len(d.x_train) + len(d.x_val) + len(d.x_test) == 5000
