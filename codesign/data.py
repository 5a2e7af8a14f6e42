"""Datasets: generated or shipped locally (no downloads). Inputs are scaled to [0, 1], the range the
networks' unsigned input quantizer reads, or standardised for a signed one (`dataset.scaling`, see
`SCALINGS`)."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, replace
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
    shape: tuple[int, ...] | None = None  # one sample: (C, H, W) images, (C, L) signals; None: flat
    signed_input: bool = False  # standardised features: the input quantizer is signed

    @property
    def n_features(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample as a user network reads it (the arrays hold flat samples)."""
        return self.shape or self.image_shape or (self.n_features,)


def _split(x, y, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split
    try:
        return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y)
    except ValueError as exc:  # too few samples (per class) for the split
        raise DatasetError(f"cannot split {len(y)} samples into train/validation: {exc}") from None


def _scale01(x: np.ndarray, lo, hi) -> np.ndarray:
    return np.clip((x.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)


# how inputs reach [0, 1]: one range for the whole data set (the data set's own: digits 0..16, mnist1d
# its 0.5-99.5 percentiles, an npz file its min..max), per feature from the training split, or not at
# all; `standard` instead centres each feature and scales it to unit variance (a signed input)
SCALINGS: tuple[str, ...] = ("global", "minmax", "standard", "none")


def _scaled(name: str, scaling: str, bounds: tuple[float, float], *xs: np.ndarray) -> list[np.ndarray]:
    """`xs` (train first) in [0, 1]. minmax: each feature's training min..max (a constant feature maps
    to 0; values beyond the training range are clipped); standard: zero mean, unit variance instead;
    none: the data must already be in [0, 1]."""
    if scaling == "global":
        return [_scale01(x, *bounds) for x in xs]
    if scaling == "minmax":
        lo, hi = xs[0].min(axis=0), xs[0].max(axis=0)
        return [_scale01(x, lo, np.where(hi > lo, hi, lo + 1.0)) for x in xs]
    if scaling == "standard":  # the training split's mean and standard deviation per feature
        mean, std = xs[0].mean(axis=0), xs[0].std(axis=0)
        std = np.where(std > 0, std, 1.0)
        return [((x.astype(np.float32) - mean) / std).astype(np.float32) for x in xs]
    outside = sum(int(np.count_nonzero((x < 0) | (x > 1))) for x in xs)
    if outside:
        raise DatasetError(f"dataset.scaling 'none': {name} has {outside} value(s) outside [0, 1], the range of "
                           f"the networks' unsigned input quantizer; use scaling 'global' or 'minmax'")
    return [x.astype(np.float32) for x in xs]


def _digits(val_fraction: float, test_fraction: float, seed: int, scaling: str) -> Dataset:
    from sklearn.datasets import load_digits
    d = load_digits()
    x = d.data.astype(np.float32)
    y = d.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = _split(x, y, test_fraction, seed)
    x_train, x_val, y_train, y_val = _split(x_rest, y_rest, val_fraction, seed)
    x_train, x_val, x_test = _scaled("digits", scaling, (0.0, 16.0), x_train, x_val, x_test)
    return Dataset("digits", x_train, y_train, x_val, y_val, x_test, y_test, 10, (1, 8, 8))


def _mnist1d(val_fraction: float, test_fraction: float, seed: int, scaling: str) -> Dataset:
    import tempfile

    from mnist1d.data import get_dataset, get_dataset_args
    args = get_dataset_args()
    args.seed = seed
    with tempfile.TemporaryDirectory() as tmp:  # regenerate=True never reads it, but the API wants a path
        data = get_dataset(args, path=str(Path(tmp) / "mnist1d.pkl"), download=False, regenerate=True)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    bounds = float(np.percentile(x, 0.5)), float(np.percentile(x, 99.5))
    x_rest, x_test, y_rest, y_test = _split(x, y, test_fraction, seed)
    x_train, x_val, y_train, y_val = _split(x_rest, y_rest, val_fraction, seed)
    x_train, x_val, x_test = _scaled("mnist1d", scaling, bounds, x_train, x_val, x_test)
    return Dataset("mnist1d", x_train, y_train, x_val, y_val, x_test, y_test, 10, None, (1, x.shape[1]))


def _jetlike(val_fraction: float, test_fraction: float, seed: int, scaling: str) -> Dataset:
    """16 features, 5 classes, 10,000 samples shaped like hls4ml's jet-tagging inputs, generated
    (sklearn make_classification with a fixed seed): the MLP of hls4ml's tutorials, not LHC data."""
    from sklearn.datasets import make_classification
    x, y = make_classification(n_samples=10_000, n_features=16, n_informative=12, n_redundant=2, n_classes=5,
                               n_clusters_per_class=2, class_sep=1.0, random_state=1234)
    x, y = x.astype(np.float32), y.astype(np.int64)
    x_rest, x_test, y_rest, y_test = _split(x, y, test_fraction, seed)
    x_train, x_val, y_train, y_val = _split(x_rest, y_rest, val_fraction, seed)
    bounds = float(np.percentile(x, 0.5)), float(np.percentile(x, 99.5))
    x_train, x_val, x_test = _scaled("jetlike", scaling, bounds, x_train, x_val, x_test)
    return Dataset("jetlike", x_train, y_train, x_val, y_val, x_test, y_test, 5, None)


def _npz(path: str, val_fraction: float, seed: int, scaling: str) -> Dataset:
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
            layout = str(f["layout"]) if "layout" in f.files else None
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # what np.load raises on other files
        raise DatasetError(f"dataset file {path!r} is not a readable .npz: {exc or type(exc).__name__}") from None
    _check_arrays(path, x_tr, y_tr, x_te, y_te)
    lo, hi = float(min(x_tr.min(), x_te.min())), float(max(x_tr.max(), x_te.max()))
    bounds = lo, (hi if hi > lo else lo + 1.0)
    sample = _sample_shape(path, tuple(int(v) for v in x_tr.shape[1:]), tuple(int(v) for v in x_te.shape[1:]), layout)
    image_shape = sample if len(sample) == 3 and sample[1] == sample[2] else None
    x_tr, x_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
    n_classes = int(y_tr.max()) + 1
    x_train, x_val, y_train, y_val = _split(x_tr, y_tr, val_fraction, seed)
    x_train, x_val, x_te = _scaled(repr(path), scaling, bounds, x_train, x_val, x_te)
    return Dataset(p.stem, x_train, y_train, x_val, y_val, x_te, y_te, n_classes, image_shape,
                   sample if len(sample) > 1 else None)


LAYOUTS = ("image", "signal")


def _sample_shape(path: str, train: tuple[int, ...], test: tuple[int, ...], layout: str | None) -> tuple[int, ...]:
    """One sample's shape: (F,) flat; N x H x W -> (1, H, W) and N x C x H x W -> (C, H, W) images; with an
    array `layout` = "signal" in the file, N x C x L -> (C, L) signals (N x L -> (1, L))."""
    if train != test:
        raise DatasetError(f"dataset file {path!r}: x_train samples have shape {train}, x_test {test}")
    if layout is not None and layout not in LAYOUTS:
        raise DatasetError(f"dataset file {path!r}: layout {layout!r} unknown; valid: {list(LAYOUTS)}")
    if layout == "signal":
        if len(train) not in (1, 2):
            raise DatasetError(f"dataset file {path!r}: signals are N x L or N x C x L, got samples of shape {train}")
        return (1, train[0]) if len(train) == 1 else train
    if len(train) == 2:
        return (1, *train)
    if len(train) > 3:
        raise DatasetError(f"dataset file {path!r}: samples of shape {train}; expected flat, H x W or C x H x W")
    return train


def _check_arrays(path: str, x_tr, y_tr, x_te, y_te) -> None:
    """Everything that would otherwise train silently on wrong data: empty or ragged arrays, NaN/inf
    features, labels that are not the integers 0..C-1 (C = 1 + the largest training label, every
    class present in training)."""
    where = f"dataset file {path!r}"
    for name, arr in (("x_train", x_tr), ("y_train", y_tr), ("x_test", x_te), ("y_test", y_te)):
        if arr.ndim == 0 or arr.size == 0:
            raise DatasetError(f"{where}: {name} is empty")
        kind = "features" if name.startswith("x") else "labels"
        if arr.dtype.kind not in "biuf":
            raise DatasetError(f"{where}: {name} holds {arr.dtype} values; {kind} must be numbers")
    for name, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if y.ndim != 1:
            raise DatasetError(f"{where}: y_{name} must be one label per sample (shape {y.shape})")
        if len(x) != len(y):
            raise DatasetError(f"{where}: x_{name} has {len(x)} samples, y_{name} {len(y)}")
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise DatasetError(f"{where}: x_{name} has {bad} NaN/inf value(s)")
        fractional = int(np.count_nonzero(~np.isfinite(y) | (y != np.round(y)))) if y.dtype.kind == "f" else 0
        if fractional:
            raise DatasetError(f"{where}: y_{name} has {fractional} non-integer label(s); labels are class "
                               "numbers 0..C-1")
    classes = np.unique(y_tr.astype(np.int64))
    n = int(classes.max()) + 1
    if classes.min() < 0 or len(classes) != n:
        raise DatasetError(f"{where}: y_train has {len(classes)} distinct label(s) from {int(classes.min())} to "
                           f"{int(classes.max())}; labels must be 0..C-1 with every class present")
    outside = int(np.count_nonzero((y_te < 0) | (y_te >= n)))
    if outside:
        raise DatasetError(f"{where}: y_test has {outside} label(s) outside 0..{n - 1} (the classes of y_train)")


def check_space_fits_data(space, data: Dataset) -> None:
    """A space the dataset cannot serve fails before any work (it would otherwise degrade silently:
    CNN blocks whose kernel exceeds the image are dropped, leaving an MLP)."""
    if space.feature_bits is not None and data.signed_input:
        raise DatasetError("space.feature_bits: per-feature bits are for unsigned inputs in [0, 1]; "
                           f"{data.name!r} is standardised (dataset.scaling standard)")
    if "cnn" not in space.kind:
        return
    if data.image_shape is None:
        if set(space.kind) == {"cnn"}:
            raise DatasetError(f"space.kind: 'cnn' needs a dataset of square images (e.g. digits or an .npz of "
                               f"N x H x W / N x C x H x W); {data.name!r} has flat samples")
        return
    side = data.image_shape[1]
    if min(space.conv.kernel) > side:
        raise DatasetError(f"space.conv.kernel: the smallest kernel ({min(space.conv.kernel)}) is larger than "
                           f"the {side}x{side} images of {data.name!r}: no convolution fits")


def dataset_for(cfg) -> Dataset:
    """The dataset of a search config (`cfg.dataset` split with `cfg.seed`)."""
    d = cfg.dataset
    return load_dataset(d.name, d.path, d.val_fraction, d.test_fraction, cfg.seed, d.scaling)


@lru_cache(maxsize=4)
def load_dataset(name: str, path: str | None = None, val_fraction: float = 0.2, test_fraction: float = 0.25,
                 seed: int = 0, scaling: str = "global") -> Dataset:
    """Load a dataset by name (cached per process: trial workers are reused)."""
    if scaling not in SCALINGS:
        raise DatasetError(f"dataset.scaling: {scaling!r} unknown; valid: {list(SCALINGS)}")
    if name == "digits":
        data = _digits(val_fraction, test_fraction, seed, scaling)
    elif name == "mnist1d":
        data = _mnist1d(val_fraction, test_fraction, seed, scaling)
    elif name == "jetlike":
        data = _jetlike(val_fraction, test_fraction, seed, scaling)
    elif name == "npz":
        if not path:
            raise DatasetError("dataset 'npz' needs a path")
        data = _npz(path, val_fraction, seed, scaling)
    else:
        raise DatasetError(f"unknown dataset {name!r}; valid: digits, mnist1d, jetlike, npz")
    return replace(data, signed_input=scaling == "standard")
