"""Datasets: generated or shipped locally (no downloads). Inputs are scaled to [0, 1]."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    pass


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    image_shape: tuple[int, int, int] | None  # (channels, h, w) when the samples are square images

    @property
    def n_features(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))


def _split(x, y, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split
    return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y)


def _scale01(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)


def _digits(val_fraction: float, test_fraction: float, seed: int) -> Dataset:
    from sklearn.datasets import load_digits
    d = load_digits()
    x = _scale01(d.data, 0.0, 16.0)
    y = d.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = _split(x, y, test_fraction, seed)
    x_train, x_val, y_train, y_val = _split(x_rest, y_rest, val_fraction, seed)
    return Dataset("digits", x_train, y_train, x_val, y_val, x_test, y_test, 10, (1, 8, 8))


def _mnist1d(val_fraction: float, test_fraction: float, seed: int) -> Dataset:
    import tempfile

    from mnist1d.data import get_dataset, get_dataset_args
    args = get_dataset_args()
    args.seed = seed
    with tempfile.TemporaryDirectory() as tmp:  # regenerate=True never reads it, but the API wants a path
        data = get_dataset(args, path=str(Path(tmp) / "mnist1d.pkl"), download=False, regenerate=True)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    lo, hi = float(np.percentile(x, 0.5)), float(np.percentile(x, 99.5))
    x = _scale01(x, lo, hi)
    x_rest, x_test, y_rest, y_test = _split(x, y, test_fraction, seed)
    x_train, x_val, y_train, y_val = _split(x_rest, y_rest, val_fraction, seed)
    return Dataset("mnist1d", x_train, y_train, x_val, y_val, x_test, y_test, 10, None)


def _npz(path: str, val_fraction: float, seed: int) -> Dataset:
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"dataset file {path!r} does not exist")
    try:
        with np.load(p, allow_pickle=False) as f:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
            if missing:
                raise DatasetError(f"dataset file {path!r} lacks array(s) {sorted(missing)}; "
                                   "needs x_train, y_train, x_test, y_test")
            x_tr, y_tr, x_te, y_te = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"dataset file {path!r} is not a readable .npz: {exc}") from None
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise DatasetError(f"dataset file {path!r}: x and y lengths differ")
    lo, hi = float(min(x_tr.min(), x_te.min())), float(max(x_tr.max(), x_te.max()))
    hi = hi if hi > lo else lo + 1.0
    x_tr, x_te = _scale01(x_tr, lo, hi), _scale01(x_te, lo, hi)
    image_shape = None
    shape = x_tr.shape[1:]
    if len(shape) == 2 and shape[0] == shape[1]:
        image_shape = (1, shape[0], shape[1])
    elif len(shape) == 3 and shape[1] == shape[2]:
        image_shape = tuple(int(s) for s in shape)
    x_tr, x_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
    n_classes = int(max(y_tr.max(), y_te.max())) + 1
    x_train, x_val, y_train, y_val = _split(x_tr, y_tr, val_fraction, seed)
    return Dataset(p.stem, x_train, y_train, x_val, y_val, x_te, y_te, n_classes, image_shape)


def dataset_for(cfg) -> Dataset:
    """The dataset of a search config (`cfg.dataset` split with `cfg.seed`)."""
    d = cfg.dataset
    return load_dataset(d.name, d.path, d.val_fraction, d.test_fraction, cfg.seed)


@lru_cache(maxsize=4)
def load_dataset(name: str, path: str | None = None, val_fraction: float = 0.2, test_fraction: float = 0.25,
                 seed: int = 0) -> Dataset:
    """Load a dataset by name (cached per process: trial workers are reused)."""
    if name == "digits":
        return _digits(val_fraction, test_fraction, seed)
    if name == "mnist1d":
        return _mnist1d(val_fraction, test_fraction, seed)
    if name == "npz":
        if not path:
            raise DatasetError("dataset 'npz' needs a path")
        return _npz(path, val_fraction, seed)
    raise DatasetError(f"unknown dataset {name!r}; valid: digits, mnist1d, npz")
