import numpy as np
import pytest
import torch

from codesign.config import TrainingConfig
from codesign.data import load_dataset
from codesign.model import build_model
from codesign.space import ConvSpec, DenseSpec, ModelSpec
from codesign.train import train


def mlp_spec(wbits, abits, width=32, scaling="po2"):
    return ModelSpec(kind="mlp", n_features=64, image_shape=None, n_classes=10, input_bits=8, activation="relu",
                     convs=(), dense=(DenseSpec(width, wbits, abits), DenseSpec(10, wbits, 32)), scaling=scaling)


def cnn_spec(wbits, abits):
    return ModelSpec(kind="cnn", n_features=64, image_shape=(1, 8, 8), n_classes=10, input_bits=8,
                     activation="relu", convs=(ConvSpec(4, 3, True, wbits, abits),),
                     dense=(DenseSpec(16, wbits, abits), DenseSpec(10, wbits, 32)))


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def trained(digits):
    """Briefly trained models (BN statistics and scales away from their initial ties), cached per spec."""
    cache = {}

    def get(spec):
        if spec not in cache:
            model = build_model(spec, seed=0)
            train(model, digits, TrainingConfig(epochs=2, patience=2), seed=0)
            cache[spec] = model.eval()
        return cache[spec]
    return get


def brevitas_outputs(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()


@pytest.fixture(scope="session")
def specs():
    """Spec builders for the tests: specs.mlp(wbits, abits), specs.cnn(wbits, abits)."""
    from types import SimpleNamespace
    return SimpleNamespace(mlp=mlp_spec, cnn=cnn_spec, outputs=brevitas_outputs)
