"""train-rbm --snapshots and the tracked ln Z of large models: bit-for-bit resume, agreement with
exact enumeration (forcing the tracker on an enumerable model), and refusals."""

from __future__ import annotations

import numpy as np
import pytest

import fecli.training.monitor as monitor
from fecli.errors import InvalidOptionError, ModelFileError
from fecli.estimators.exact import log_partition
from fecli.io import load_model, read_snapshots
from fecli.training import TrainSettings, resume, train

from .conftest import ROOT

DIGITS = ROOT / "sample_models" / "data" / "digits8x8_binary.npy"


@pytest.fixture
def tracked(monkeypatch):
    """Treat every model as too large to enumerate, so the monitor tracks ln Z by SMC."""
    monkeypatch.setattr(monitor, "EXACT_MONITOR_MAX_UNITS", 2)


def test_tracked_log_likelihood_agrees_with_exact_enumeration(tracked):
    data = np.load(DIGITS)[:600]
    out = train(data, hidden=10, epochs=6, seed=5, snapshots=10, lr=0.1)
    h = out.history
    assert h["epoch"] == [1, 2, 3, 4, 5, 6] and len(h["log_z_stderr"]) == 6
    exact = log_partition(out.model)  # the final monitored point is the returned model
    assert abs(h["log_z"][-1] - exact) < 4 * h["log_z_stderr"][-1] + 0.02, (h["log_z"][-1], exact)
    mean_neg_f = float(np.mean(-out.model.free_energy(data)))
    assert h["log_likelihood"][-1] == pytest.approx(mean_neg_f - h["log_z"][-1], abs=1e-9)


@pytest.mark.parametrize("with_tracker", [False, True])
def test_resume_keeps_snapshots_and_tracked_metrics_bit_for_bit(tmp_path, monkeypatch, with_tracker):
    if with_tracker:
        monkeypatch.setattr(monitor, "EXACT_MONITOR_MAX_UNITS", 2)
    data = np.load(DIGITS)[:300]
    opts = dict(hidden=6, epochs=4, seed=9, snapshots=9, batch_size=20, validation=0.1)
    full = train(data, **opts)
    path = tmp_path / "ckpt.h5"
    calls = iter(range(10**6))
    part = train(data, output=path, should_stop=lambda: next(calls) == 20, **opts)  # mid-epoch 2 (14 batches/epoch)
    assert part.interrupted and part.epochs_done == 1
    assert read_snapshots(path).updates[-1] <= 21
    calls2 = iter(range(10**6))
    resume(path, data, should_stop=lambda: next(calls2) == 11)  # a second interruption
    rest = resume(path, data)
    assert not rest.interrupted
    np.testing.assert_array_equal(rest.model.weights, full.model.weights)
    stored, expected = read_snapshots(path), full.snapshots
    assert stored.updates.tolist() == expected.updates.tolist()
    for name in ("weights", "visible_bias", "hidden_bias"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(expected, name))
    keys = ["log_z", "log_likelihood", "val_log_likelihood"] + (["log_z_stderr"] if with_tracker else [])
    for key in keys:
        assert rest.history[key] == full.history[key], key


def test_snapshot_settings_are_checked_and_cannot_change_on_resume(tmp_path):
    with pytest.raises(InvalidOptionError, match="--snapshots must be 0 .* at least 2"):
        TrainSettings(snapshots=1)
    with pytest.raises(InvalidOptionError, match="--snapshots must be an integer >= 0"):
        TrainSettings(snapshots=-3)
    data = np.load(DIGITS)[:200]
    path = tmp_path / "m.h5"
    train(data, hidden=4, epochs=1, seed=1, output=path, monitor_every=0)
    with pytest.raises(InvalidOptionError, match="--snapshots cannot change when resuming"):
        resume(path, data, epochs=2, snapshots=5)


def test_resume_with_more_epochs_keeps_the_taken_snapshots_and_extends_the_plan(tmp_path):
    data = np.load(DIGITS)[:200]
    path = tmp_path / "m.h5"
    first = train(data, hidden=4, epochs=2, seed=1, snapshots=6, output=path, monitor_every=0)
    taken = first.snapshots.updates.tolist()
    assert taken[-1] == 2 * first.n_batches
    more = resume(path, data, epochs=4)
    updates = more.snapshots.updates.tolist()
    assert updates[:len(taken)] == taken and updates[-1] == 4 * first.n_batches
    assert np.all(np.diff(updates) > 0)


def test_missing_snapshots_group_is_refused_on_resume(tmp_path):
    import h5py

    data = np.load(DIGITS)[:200]
    path = tmp_path / "m.h5"
    calls = iter(range(10**6))
    train(data, hidden=4, epochs=3, seed=1, snapshots=6, output=path, monitor_every=0,
          should_stop=lambda: next(calls) == 12)
    with h5py.File(path, "a") as f:
        del f["snapshots"]
    with pytest.raises(ModelFileError, match="has no snapshots group"):
        resume(path, data)
    load_model(path)  # still a plain model


def test_training_warns_when_the_tracked_replicates_disagree(tracked, monkeypatch):
    import fecli.training.trainer as trainer

    monkeypatch.setattr(trainer, "LOST_TRACK_NATS", 0.0)  # any spread at all counts as losing track
    out = train(np.load(DIGITS)[:200], hidden=5, epochs=2, seed=3)
    assert any("tracked ln Z was unreliable at epoch(s) 1, 2" in w for w in out.warnings), out.warnings
    monkeypatch.setattr(trainer, "LOST_TRACK_NATS", 1.0)
    assert not any("tracked ln Z" in w for w in train(np.load(DIGITS)[:200], hidden=5, epochs=2, seed=3).warnings)
