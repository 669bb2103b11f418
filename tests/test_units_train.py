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
    TrainSettings(visible_type="gaussian", snapshots=4)  # snapshots for every unit type


@pytest.mark.parametrize("vt, ht", [("gaussian", "bernoulli"), ("potts", "bernoulli"), ("spin", "gaussian"),
                                    ("spin", "spin")])
def test_trajectory_along_layered_training_matches_exact_at_every_snapshot(tmp_path, vt, ht):
    """train-rbm --snapshots for any unit types (learned precisions included), then ln Z along the
    snapshots by SMC: each point within its error of exact enumeration; the first one exact."""
    from fecli.api import estimate
    from fecli.estimators.trajectory import trajectory_rows
    from fecli.io import read_snapshots

    data = DATA[vt]()
    train(data, hidden=4, method="pcd", epochs=6, batch_size=25, lr=0.05, seed=2, visible_type=vt, hidden_type=ht,
          learn_precision="gaussian" in (vt, ht), snapshots=5, monitor_every=0, output=tmp_path / "m.h5")
    model = load_model(tmp_path / "m.h5")
    snaps = read_snapshots(tmp_path / "m.h5", model)
    assert len(snaps) == 5 and snaps.model(4).unit_types == (vt, ht)
    if "gaussian" in (vt, ht):  # the learned precisions are kept with each snapshot
        side = "visible" if vt == "gaussian" else "hidden"
        assert not np.array_equal(getattr(snaps.model(0), side).precision, getattr(snaps.model(4), side).precision)
    rows, _ = trajectory_rows(model, chains=32, replicates=4, steps=20, seed=1)
    for row, i in zip(rows, range(len(snaps))):
        exact = log_partition(snaps.model(i))
        assert abs(row.log_z - exact) < 4 * row.stderr + 0.01, (i, row.log_z, exact)
    assert rows[0].kind == "exact"
    r = estimate(model, "trajectory", chains=32, replicates=4, steps=20, seed=1)
    assert r.diagnostics.get("unclipped_log_z", r.log_z) == rows[-1].log_z  # (raised to a rigorous lower bound)


def test_layered_snapshots_continue_on_resume(tmp_path):
    """A resumed run keeps the snapshots (precisions included) it had and adds the later ones."""
    import shutil

    from fecli.io import read_snapshots

    data = DATA["gaussian"]()
    options = dict(hidden=3, method="pcd", batch_size=25, lr=0.02, seed=3, visible_type="gaussian",
                   learn_precision=True, monitor_every=0, snapshots=6)
    train(data, epochs=2, output=tmp_path / "ck.h5", **options)
    shutil.copy(tmp_path / "ck.h5", tmp_path / "before.h5")
    resume(tmp_path / "ck.h5", data, epochs=4)
    a, b = read_snapshots(tmp_path / "before.h5"), read_snapshots(tmp_path / "ck.h5")
    k = len(a)
    assert len(b) > k and b.updates[:k].tolist() == a.updates.tolist()
    for name in ("weights", "visible_bias", "hidden_bias", "visible_precision"):
        assert np.asarray(getattr(a, name)).tobytes() == np.asarray(getattr(b, name))[:k].tobytes()
    assert b.model(len(b) - 1).visible.precision.tobytes() == load_model(tmp_path / "ck.h5").visible.precision.tobytes()


def _large(kind: str) -> np.ndarray:
    """300 rows for a model whose smaller layer (21 hidden units) is too large for the exact monitor."""
    rng = np.random.default_rng(0)
    if kind == "gaussian":
        return 1.5 * rng.normal(size=(2, 10))[rng.integers(0, 2, 300)] + rng.normal(size=(300, 10))
    values = {"potts": [0.0, 1.0, 2.0, 3.0], "spin": [-1.0, 1.0]}[kind]
    return prototypes(300, 12 if kind == "potts" else 24, values, 0.2, 0)


@pytest.mark.parametrize("kind, lr", [("gaussian", 0.01), ("potts", 0.05), ("spin", 0.01)])
def test_layered_training_tracks_ln_z_of_models_too_large_to_enumerate(kind, lr):
    """The monitored ln Z of a model past the exact monitor's limit comes from the SMC tracker and
    agrees with exact enumeration (done here once, 2^21 states); its log-likelihood uses it."""
    data = _large(kind)
    settings = TrainSettings(hidden=21, method="pcd", epochs=4, batch_size=20, lr=lr, seed=3, visible_type=kind,
                             monitor_every=2)
    out = train(data, settings)
    exact = log_partition(out.model)
    tracked, stderr = out.history["log_z"][-1], out.history["log_z_stderr"][-1]
    assert len(out.history["log_z"]) == 2 and 0 < stderr < 0.05
    assert abs(tracked - exact) < 4 * stderr + 0.02
    assert out.history["log_likelihood"][-1] == pytest.approx(float(np.mean(-out.model.free_energy(data))) - tracked,
                                                              abs=1e-9)
    assert not out.warnings


def test_layered_tracker_resumes_bit_identically(tmp_path):
    data = _large("gaussian")
    options = dict(hidden=21, method="pcd", batch_size=20, lr=0.01, seed=3, visible_type="gaussian", monitor_every=1,
                   snapshots=5)
    whole = train(data, TrainSettings(epochs=3, **options))
    calls = iter(range(1000))
    part = train(data, TrainSettings(epochs=3, **options), output=tmp_path / "m.h5",
                 should_stop=lambda: next(calls) == 20)  # mid-epoch 2 (15 batches per epoch)
    assert part.interrupted
    resumed = resume(tmp_path / "m.h5", data)
    for key in ("log_z", "log_z_stderr", "log_likelihood"):
        assert len(whole.history[key]) == 3 and resumed.history[key] == whole.history[key]
    assert np.array_equal(resumed.model.weights, whole.model.weights)
