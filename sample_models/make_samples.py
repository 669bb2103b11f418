"""Regenerate fecli's sample models and their exact ln Z reference values.

    python sample_models/make_samples.py

Models (all enumerable, so every estimator can be checked against the truth):

* ``weak_24x12.h5``   random couplings, W ~ N(0, 0.1^2): mean field is accurate here.
* ``strong_24x12.h5`` random couplings, W ~ N(0, 1): mean-field methods struggle.
* ``digits_64x16.h5`` trained on binarized 8x8 digits (``data/digits8x8_binary.npy``)
  by exact-gradient maximum likelihood: the negative phase is computed exactly by
  enumerating the 2^16 hidden states, so the model is a true likelihood optimum
  reached without sampling noise.

``reference.json`` records exact ln Z at beta = 0.5, 1 and 2 for each model.

The data file is the UCI optical-recognition digits (1,797 images, 8x8, values 0..16;
Alpaydin & Kaynak 1998, CC BY 4.0, as shipped with scikit-learn), binarized at
pixel value > 7. It is rebuilt from scikit-learn when that is installed, otherwise
the committed copy is used.
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np

from fecli import RBM, save_model
from fecli.data import base_rate_bias
from fecli.estimators.exact import log_partition
from fecli.model import sigmoid, softplus

HERE = Path(__file__).resolve().parent
DIGITS = HERE / "data" / "digits8x8_binary.npy"
BETAS = (0.5, 1.0, 2.0)


def digits_data() -> np.ndarray:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return np.load(DIGITS).astype(np.float64)
    data = (load_digits().data > 7).astype(np.uint8)
    np.save(DIGITS, data)
    return data.astype(np.float64)


def random_model(rng: np.random.Generator, nv: int, nh: int, scale: float) -> RBM:
    return RBM(scale * rng.normal(size=(nv, nh)), 0.5 * rng.normal(size=nv), 0.5 * rng.normal(size=nh))


def mean_log_likelihood(model: RBM, data: np.ndarray) -> float:
    return float(-model.free_energy(data).mean() - log_partition(model))


def train_exact_ml(data: np.ndarray, n_hidden: int, steps: int, lr: float, seed: int) -> tuple[RBM, list[float]]:
    """Gradient ascent on the exact mean log-likelihood (Adam steps).

    d/dW <ln p(v)> = <v h^T>_data - <v h^T>_model, with the model term summed over all
    2^n_hidden hidden states h weighted by p(h) = exp(b.h + sum_i softplus(a_i + (W h)_i)) / Z.
    """
    rng = np.random.default_rng(seed)
    nv = data.shape[1]
    params = [0.01 * rng.normal(size=(nv, n_hidden)), base_rate_bias(data), np.zeros(n_hidden)]
    hidden_states = np.array(list(product((0.0, 1.0), repeat=n_hidden)))
    m = [np.zeros_like(p) for p in params]
    s = [np.zeros_like(p) for p in params]
    history = []
    for step in range(1, steps + 1):
        w, a, b = params
        ph_data = sigmoid(data @ w + b)
        field = hidden_states @ w.T + a
        log_ph = hidden_states @ b + softplus(field).sum(axis=1)
        p = np.exp(log_ph - log_ph.max())
        p /= p.sum()
        pv_given_h = sigmoid(field)
        grads = [
            data.T @ ph_data / len(data) - (pv_given_h * p[:, None]).T @ hidden_states,
            data.mean(axis=0) - p @ pv_given_h,
            ph_data.mean(axis=0) - p @ hidden_states,
        ]
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            s[i] = 0.999 * s[i] + 0.001 * g * g
            params[i] = params[i] + lr * (m[i] / (1 - 0.9**step)) / (np.sqrt(s[i] / (1 - 0.999**step)) + 1e-8)
        if step % 50 == 0 or step == steps:
            history.append(mean_log_likelihood(RBM(*params), data))
    return RBM(*params), history


def main() -> None:
    rng = np.random.default_rng(20261125)
    models = {
        "weak_24x12.h5": random_model(rng, 24, 12, 0.1),
        "strong_24x12.h5": random_model(rng, 24, 12, 1.0),
    }
    data = digits_data()
    trained, history = train_exact_ml(data, n_hidden=16, steps=600, lr=0.02, seed=1)
    trained.training = {
        "method": "exact-gradient maximum likelihood (Adam)",
        "data_file": "data/digits8x8_binary.npy",
        "data_shape": list(data.shape),
        "steps": 600,
        "learning_rate": 0.02,
        "seed": 1,
        "metrics": {"step": np.arange(50, 601, 50), "mean_log_likelihood": np.array(history)},
    }
    models["digits_64x16.h5"] = trained
    reference = {}
    for name, model in models.items():
        save_model(model, HERE / name)
        reference[name] = {str(beta): log_partition(model, beta) for beta in BETAS}
        print(f"{name}: ln Z(beta=1) = {reference[name]['1.0']:.10f}")
    print("digits mean log-likelihood every 50 steps:", np.round(history, 3).tolist())
    (HERE / "reference.json").write_text(json.dumps(reference, indent=2) + "\n")


if __name__ == "__main__":
    main()
