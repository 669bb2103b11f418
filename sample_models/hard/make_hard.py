"""Regenerate the hard sample model and its exact ln Z.

    python sample_models/hard/make_hard.py      (needs scikit-learn and scipy; about 3 minutes)

``digits28_784x20.h5``: a 784 x 20 RBM trained by fecli train-rbm (PCD, 5 epochs, seed 1) on
scikit-learn's 8x8 digits upsampled to 28 x 28 (linear interpolation) and thresholded at 0.35,
repeated 8 times (14,376 rows). The repository ships no MNIST; this is a stand-in for the
MNIST-trained 784 x 20 model of the trust issue: a trained model with 784 visible units whose
ln Z is still exact (2^20 hidden states). Without --data, sampling estimators start far from it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def upsampled_digits() -> np.ndarray:
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    images = load_digits().images / 16.0
    big = np.stack([zoom(x, 28 / 8, order=1) for x in images])
    data = np.concatenate([(big > 0.35).astype(np.float32).reshape(len(images), 784)] * 8)
    np.random.default_rng(0).shuffle(data)
    return data


def main() -> None:
    from fecli import estimate, load_model
    from fecli.cli import main as fecli_main

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits28.npy"
        np.save(data, upsampled_digits())
        target = HERE / "digits28_784x20.h5"
        try:
            fecli_main(["train-rbm", str(data), "--hidden", "20", "--epochs", "5", "--seed", "1", "-q",
                        "-o", str(target), "--overwrite"])
        except SystemExit as exit_:
            if exit_.code:
                raise
    log_z = estimate(load_model(target), "exact").log_z
    (HERE / "reference.json").write_text(json.dumps({target.name: {"1.0": log_z}}, indent=2) + "\n")
    print(target, log_z)


if __name__ == "__main__":
    main()
