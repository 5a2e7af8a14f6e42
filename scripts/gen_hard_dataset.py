#!/usr/bin/env python
"""A harder image data set than digits for the sampler benchmark, generated from scikit-learn's digits
(no download): every 8x8 digit is placed 3 times at a random offset in a 12x12 canvas, with a random
contrast (0.5..1), 10% of its pixels dropped and Gaussian noise (sigma 0.2 of full scale) added.
Train and test copies come from different original images (75/25 split by original, stratified).

    .venv/bin/python scripts/gen_hard_dataset.py      # writes scripts/data/digits12_noisy.npz (uint8 pixels)
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "scripts" / "data" / "digits12_noisy.npz"
SIDE, COPIES = 12, 3


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros((len(images) * COPIES, SIDE, SIDE), dtype=np.float32)
    for i, img in enumerate(np.repeat(images, COPIES, axis=0)):
        dy, dx = rng.integers(0, SIDE - 8 + 1, size=2)
        digit = img / 16.0 * rng.uniform(0.5, 1.0)
        digit = digit * (rng.random((8, 8)) >= 0.1)
        out[i, dy:dy + 8, dx:dx + 8] = digit
    out += rng.normal(0.0, 0.2, size=out.shape).astype(np.float32)
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def main() -> int:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)
    rng = np.random.default_rng(0)
    np.savez_compressed(OUT, x_train=augment(x_tr, rng), y_train=np.repeat(y_tr, COPIES).astype(np.int64),
                        x_test=augment(x_te, rng), y_test=np.repeat(y_te, COPIES).astype(np.int64))
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1024:.0f} KiB): "
          f"{len(y_tr) * COPIES} train, {len(y_te) * COPIES} test images of {SIDE}x{SIDE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
