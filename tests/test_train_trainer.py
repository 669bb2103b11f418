"""The training loop: learning, monitoring, checkpoints and bit-exact resume (library level)."""

from __future__ import annotations

import numpy as np
import pytest

from fecli.errors import DataFileError, EstimationFailedError, InvalidOptionError, ModelFileError
from fecli.estimators.exact import log_partition
from fecli.io import load_model
from fecli.training import TrainSettings, resume, train
from fecli.training.monitor import pseudo_log_likelihood, reconstruction_error


def prototypes_data(n_rows=300, seed=0):
    """Three 12-unit prototypes with 10% flip noise: structure an RBM can learn."""
    rng = np.random.default_rng(seed)
    protos = np.array([[1] * 6 + [0] * 6, [0] * 6 + [1] * 6, [1, 0] * 6], dtype=float)
    rows = protos[rng.integers(0, 3, n_rows)]
    flip = rng.random(rows.shape) < 0.1
    return np.abs(rows - flip)


def mean_ll(model, data):
    return float(np.mean(-model.free_energy(data)) - log_partition(model))


@pytest.mark.parametrize("method", ["pcd", "cd"])
def test_training_increases_exact_log_likelihood(method):
    data = prototypes_data()
    base = train(data, hidden=6, epochs=1, lr=1e-12, momentum=0.0, seed=1, method=method)  # ~ the initial model
    out = train(data, hidden=6, epochs=30, seed=1, method=method, batch_size=20, lr=0.1)
    ll0, ll = mean_ll(base.model, data), mean_ll(out.model, data)
    assert ll > ll0 + 1.5, (ll0, ll)
    # the monitored value is the exact log-likelihood of the returned model
    assert out.history["log_likelihood"][-1] == pytest.approx(ll, abs=1e-9)
    assert out.history["log_likelihood"][-1] > out.history["log_likelihood"][0]
    assert out.history["epoch"] == list(range(1, 31))


def test_initialisation_is_customary():
    data = prototypes_data()
    out = train(data, hidden=5, epochs=1, lr=1e-12, momentum=0.0, seed=3)
    from fecli.data import base_rate_bias

    np.testing.assert_allclose(out.model.visible_bias, base_rate_bias(data), atol=1e-6)
    assert np.abs(out.model.weights).max() < 0.06
    assert 0.005 < out.model.weights.std() < 0.02


def test_monitor_metrics_match_independent_computation():
    data = prototypes_data()
    out = train(data, hidden=4, epochs=3, seed=2, validation=0.2, dtype="float64")
    model = out.model
    h = out.history
    assert h["recon_error"][-1] == pytest.approx(reconstruction_error(model, out_train_rows(out, data)), rel=1e-9)
    assert h["log_z"][-1] == pytest.approx(log_partition(model), abs=1e-9)
    assert "val_log_likelihood" in h and "val_pll" in h
    info = out.model.training["data"]
    assert info["training_rows"] + info["validation_rows"] == len(data)
    assert info["validation_rows"] == 60
    # PLL summed over all units is below 0 and at least the exact log-likelihood scale
    assert h["pll"][-1] < 0
    assert pseudo_log_likelihood(model, data[:5]) < 0


def out_train_rows(out, data):
    """The training rows of a run with a validation split (recomputed from the seed)."""
    from fecli.training.trainer import STREAM_SPLIT, generator

    s = out.model.training["settings"]
    n_val = int(round(s["validation"] * len(data)))
    perm = generator(s["seed"], STREAM_SPLIT).permutation(len(data))
    return data[np.sort(perm[n_val:])]


def test_large_layers_get_a_tracked_not_an_enumerated_log_likelihood():
    rng = np.random.default_rng(0)
    data = (rng.random((60, 22)) < 0.3).astype(float)
    out = train(data, hidden=21, epochs=2, seed=0)
    # ln Z by sequential Monte Carlo along the run (fecli.training.tracking), with its error bar
    assert len(out.history["log_likelihood"]) == 2 and len(out.history["log_z_stderr"]) == 2
    assert all(np.isfinite(out.history["log_z"]))
    assert "pll" in out.history and "recon_error" in out.history


def sparse_data(n_rows=250, seed=0):
    """Rows with ~10% ones: the trainer picks its sparse binary products."""
    rng = np.random.default_rng(seed)
    return (rng.random((n_rows, 12)) < np.linspace(0.02, 0.2, 12)).astype(float)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", ["pcd", "cd"])
@pytest.mark.parametrize("sparse", [False, True])
def test_resume_is_bit_for_bit(tmp_path, dtype, method, sparse):
    from fecli.training import Trainer

    data = sparse_data() if sparse else prototypes_data(250)
    assert Trainer(data, TrainSettings(hidden=2, seed=0)).products.sparse == sparse
    opts = dict(hidden=5, epochs=4, seed=7, dtype=dtype, method=method, k=2, batch_size=32,
                momentum=0.7, weight_decay=1e-3, lr_decay=0.3, validation=0.1)
    full = train(data, **opts)
    calls = iter(range(10**6))
    stop_at = 13  # mid-epoch (8 batches per epoch)
    path = tmp_path / "ckpt.h5"
    part = train(data, output=path, should_stop=lambda: next(calls) == stop_at - 1, **opts)
    assert part.interrupted and part.epochs_done == 1 and part.batches_done == 5
    stored = load_model(path)  # a checkpoint is a valid plain model
    assert not stored.training["complete"] and stored.training["epochs_done"] == 1
    # a second interruption inside the resumed run, at an epoch boundary
    calls2 = iter(range(10**6))
    part2 = resume(path, data, should_stop=lambda: next(calls2) == 2)
    assert part2.interrupted and part2.epochs_done == 1 and part2.batches_done == 8
    rest = resume(path, data)
    assert not rest.interrupted and rest.epochs_done == 4
    for name in ("weights", "visible_bias", "hidden_bias"):
        np.testing.assert_array_equal(getattr(rest.model, name), getattr(full.model, name))
    for key in ("epoch", "log_likelihood", "val_log_likelihood", "pll", "recon_error"):
        assert rest.history[key] == full.history[key]
    final = load_model(path)
    np.testing.assert_array_equal(final.weights, full.model.weights)
    assert final.training["epochs_done"] == 4


def test_resume_extends_epochs_and_refuses_changes(tmp_path):
    data = prototypes_data(120)
    path = tmp_path / "m.h5"
    train(data, hidden=3, epochs=2, seed=1, output=path)
    longer = train(data, hidden=3, epochs=3, seed=1)
    with pytest.raises(InvalidOptionError, match="already trained for 2"):
        resume(path, data)
    with pytest.raises(InvalidOptionError, match="--lr cannot change"):
        resume(path, data, epochs=3, lr=0.5)
    out = resume(path, data, epochs=3, lr=0.05)  # same value as stored: accepted
    np.testing.assert_array_equal(out.model.weights, longer.model.weights)


def test_resume_refuses_plain_model_and_other_width(tmp_path):
    data = prototypes_data(100)
    with pytest.raises(ModelFileError, match="no training state"):
        resume("sample_models/weak_24x12.h5", np.zeros((10, 24)) + np.eye(10, 24))
    path = tmp_path / "m.h5"
    train(data, hidden=3, epochs=1, seed=1, output=path)
    with pytest.raises(DataFileError, match="12 visible units"):
        resume(path, data[:, :10], epochs=2)


def test_trained_model_loads_as_plain_model_and_estimates(tmp_path):
    from fecli.api import estimate

    data = prototypes_data(100)
    path = tmp_path / "m.h5"
    out = train(data, hidden=3, epochs=2, seed=1, output=path)
    model = load_model(path)
    assert model.weights.dtype == np.float64
    result = estimate(model, "exact")
    assert result.log_z == pytest.approx(out.history["log_z"][-1], abs=1e-9)
    t = model.training
    assert t["fecli_version"] and t["seed"] == 1 and t["epochs_done"] == 2 and t["wall_time_s"] > 0
    assert t["data"]["rows"] == 100 and len(t["data"]["array_sha256"]) == 64


def test_divergence_is_reported():
    data = prototypes_data(100)
    with pytest.raises(EstimationFailedError, match="diverged"):
        train(data, hidden=3, epochs=3, seed=1, lr=1e300, momentum=0.0)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"hidden": 0}, "--hidden must be an integer >= 1, got 0"),
        ({"lr": -0.1}, "--lr must be a finite number > 0"),
        ({"lr": float("nan")}, "--lr must be a finite number"),
        ({"momentum": 1.0}, "--momentum must be a finite number in"),
        ({"k": 0}, "--k must be"),
        ({"epochs": 0}, "--epochs must be"),
        ({"batch_size": 0}, "--batch-size must be"),
        ({"method": "tap9"}, "--method must be one of"),
        ({"dtype": "float16"}, "--dtype must be one of"),
        ({"validation": 1.0}, "--validation must be"),
        ({"seed": -1}, "--seed must be"),
    ],
)
def test_invalid_settings(options, message):
    with pytest.raises(InvalidOptionError, match=message.replace("(", r"\(").replace("[", r"\[")):
        TrainSettings(**options)


def test_bad_data_in_memory():
    with pytest.raises(DataFileError, match="only 1 row"):
        train(np.ones((1, 4)), hidden=2, epochs=1)
    with pytest.raises(DataFileError, match="not binary"):
        train(np.full((3, 4), 0.5), hidden=2, epochs=1)
    with pytest.raises(DataFileError, match="NaN or inf"):
        train(np.array([[0, 1], [np.nan, 1]]), hidden=2, epochs=1)


def test_batch_larger_than_data_warns():
    out = train(prototypes_data(30), hidden=2, epochs=1, batch_size=100, seed=0)
    assert any("larger than the 30 training rows" in w for w in out.warnings)


def test_random_seed_is_stored_and_repeats_the_run():
    data = prototypes_data(60)
    first = train(data, hidden=3, epochs=2)
    seed = first.model.training["seed"]
    assert isinstance(seed, int) and seed >= 0
    again = train(data, hidden=3, epochs=2, seed=seed)
    np.testing.assert_array_equal(first.model.weights, again.model.weights)
