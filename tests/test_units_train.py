"""train-rbm on spin, Gaussian and Potts units: the exact log-likelihood rises, resume is exact."""

from __future__ import annotations

import numpy as np
import pytest

from fecli import load_model
from fecli.estimators.exact import log_partition
from fecli.training import TrainSettings, resume, train
from fecli.training.layered import LayeredTrainer


def prototypes(n: int, d: int, values, noise: float, seed: int) -> np.ndarray:
    """Rows copied from one of two random prototypes, each entry replaced by a random value w.p. ``noise``."""
    rng = np.random.default_rng(seed)
    protos = rng.choice(values, size=(2, d))
    x = protos[rng.integers(0, 2, n)].astype(float)
    flip = rng.random((n, d)) < noise
    x[flip] = rng.choice(values, size=int(flip.sum()))
    return x


def clusters(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = 1.5 * rng.normal(size=(2, d))
    return centres[rng.integers(0, 2, n)] + rng.normal(size=(n, d))


DATA = {
    "spin": lambda: prototypes(300, 10, [-1.0, 1.0], 0.1, 0),
    "gaussian": lambda: clusters(300, 8, 1),
    "potts": lambda: prototypes(300, 6, [0.0, 1.0, 2.0, 3.0], 0.1, 2),
    "bernoulli": lambda: prototypes(300, 10, [0.0, 1.0], 0.1, 3),
}


def mean_ll(model, data):
    return float(np.mean(-model.free_energy(data)) - log_partition(model))


@pytest.mark.parametrize("vt, ht, method, lr", [
    ("spin", "bernoulli", "pcd", 0.05), ("gaussian", "bernoulli", "pcd", 0.05), ("potts", "bernoulli", "pcd", 0.05),
    ("spin", "spin", "cd", 0.05), ("bernoulli", "gaussian", "cd", 0.05), ("potts", "spin", "cd", 0.05),
    ("gaussian", "gaussian", "cd", 0.01),
])
def test_training_raises_the_exact_log_likelihood(vt, ht, method, lr):
    data = DATA[vt]()
    settings = TrainSettings(hidden=3, method=method, epochs=15, batch_size=20, lr=lr, seed=5, visible_type=vt,
                             hidden_type=ht, learn_precision=vt == "gaussian", monitor_every=15)
    start = LayeredTrainer(data, TrainSettings(**settings.to_dict()))
    ll0 = mean_ll(start.model(start.initial_state()), data)
    out = train(data, settings)
    assert out.model.unit_types == (vt, ht)
    assert out.history["log_likelihood"][-1] == pytest.approx(mean_ll(out.model, data), abs=1e-9)
    assert out.history["log_likelihood"][-1] > ll0 + 0.1


def test_resume_is_bit_identical_for_layered_training(tmp_path):
    data = DATA["gaussian"]()
    options = dict(hidden=4, method="pcd", batch_size=25, lr=0.02, seed=3, visible_type="gaussian",
                   learn_precision=True, monitor_every=0)
    straight = train(data, epochs=4, **options).model
    train(data, epochs=2, output=tmp_path / "ck.h5", **options)
    resumed = resume(tmp_path / "ck.h5", data, epochs=4).model
    assert resumed.weights.tobytes() == straight.weights.tobytes()
    assert resumed.visible.precision.tobytes() == straight.visible.precision.tobytes()
    assert load_model(tmp_path / "ck.h5").weights.tobytes() == straight.weights.tobytes()


def test_unit_settings_are_checked():
    from fecli.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="--method tap2 \\(EMF\\) trains bernoulli-bernoulli models"):
        TrainSettings(visible_type="spin", method="tap2")
    with pytest.raises(InvalidOptionError, match="--learn-precision applies to gaussian units"):
        TrainSettings(visible_type="spin", learn_precision=True)
    with pytest.raises(InvalidOptionError, match="--states applies to potts"):
        TrainSettings(visible_type="spin", states=3)
    with pytest.raises(InvalidOptionError, match="--visible-type must be one of"):
        TrainSettings(visible_type="ising")
    with pytest.raises(InvalidOptionError, match="--snapshots .* applies to bernoulli-bernoulli models"):
        TrainSettings(visible_type="gaussian", snapshots=4)
