"""ln Z along training: snapshot schedule and file group, the interpolation kernel, the SMC
bookkeeping on cases with known answers, and agreement with exact enumeration at every snapshot."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from fecli.errors import InvalidOptionError, ModelFileError, RefusedError
from fecli.estimators.exact import log_partition
from fecli.estimators.trajectory import (
    ParticleState,
    Sampler,
    anchors_of,
    combine_replicates,
    effective_sample_size,
    interpolate,
    log_mean_exp_rows,
    resample_indices,
    run_trajectory,
    trajectory,
    trajectory_rows,
)
from fecli.io import Snapshots, load_model, read_snapshots, save_model
from fecli.model import RBM, softplus
from fecli.training import train
from fecli.training.snapshots import snapshot_schedule

from .conftest import ROOT, random_rbm

DIGITS = ROOT / "sample_models" / "data" / "digits8x8_binary.npy"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 64x8 RBM trained on the digits with 12 snapshots (8 hidden units: enumerable)."""
    path = tmp_path_factory.mktemp("traj") / "digits_64x8.h5"
    data = np.load(DIGITS)
    out = train(data, hidden=8, epochs=8, seed=2, snapshots=12, monitor_every=0, output=path)
    return path, out, data


# --------------------------------------------------------------------------- schedule and file
def test_schedule_starts_at_zero_ends_at_the_last_update_and_is_log_spaced():
    s = snapshot_schedule(12, 720)
    assert s.tolist() == sorted(set(s.tolist())) and s[0] == 0 and s[-1] == 720 and s.size == 12
    ratios = s[3:] / s[2:-1]
    assert np.all(ratios > 1.5) and np.ptp(ratios[2:]) < 0.3  # geometric once rounding stops mattering
    assert snapshot_schedule(2, 5).tolist() == [0, 5]
    assert snapshot_schedule(20, 7).tolist() == list(range(8))  # fewer updates than snapshots: every one
    dense = snapshot_schedule(30, 40)  # rounding collisions pushed apart: still exactly 30
    assert dense.size == 30 and np.all(np.diff(dense) >= 1) and dense[-1] == 40


def test_snapshots_round_trip_and_plain_readers_ignore_them(tmp_path, rng):
    model = random_rbm(rng, 6, 4)
    snaps = Snapshots(np.array([0, 3, 9]), rng.normal(size=(3, 6, 4)).astype(np.float32),
                      rng.normal(size=(3, 6)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32),
                      requested=3)
    path = tmp_path / "m.h5"
    save_model(model, path, snapshots=snaps)
    back = read_snapshots(path)
    assert back.updates.tolist() == [0, 3, 9] and back.requested == 3 and back.spacing == "log"
    for name in ("weights", "visible_bias", "hidden_bias"):
        np.testing.assert_array_equal(getattr(back, name), getattr(snaps, name))
    assert back.weights.dtype == np.float32  # stored in the training dtype, exactly
    np.testing.assert_array_equal(load_model(path).weights, model.weights)
    save_model(model, tmp_path / "plain.h5")
    assert read_snapshots(tmp_path / "plain.h5") is None


@pytest.mark.parametrize("damage, message", [
    (lambda g: g.__delitem__("hidden_bias"), "no dataset 'hidden_bias'"),
    (lambda g: (g.__delitem__("updates"), g.create_dataset("updates", data=[0, 5, 5])), "strictly increasing"),
    (lambda g: (g.__delitem__("weights"), g.create_dataset("weights", data=np.zeros((3, 6, 5)))), "shape"),
    (lambda g: (g.__delitem__("visible_bias"), g.create_dataset("visible_bias", data=np.full((3, 6), np.nan))),
     "NaN"),
])
def test_damaged_snapshots_are_refused_in_one_sentence(tmp_path, rng, damage, message):
    model = random_rbm(rng, 6, 4)
    snaps = Snapshots(np.array([0, 3, 9]), np.zeros((3, 6, 4)), np.zeros((3, 6)), np.zeros((3, 4)))
    path = tmp_path / "m.h5"
    save_model(model, path, snapshots=snaps)
    with h5py.File(path, "a") as f:
        damage(f["snapshots"])
    with pytest.raises(ModelFileError, match=message) as info:
        read_snapshots(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    load_model(path)  # the model itself still reads


def test_training_stores_the_scheduled_snapshots_and_the_final_model(trained):
    path, out, _ = trained
    snaps = read_snapshots(path)
    n_batches = out.n_batches
    assert snaps.updates.tolist() == snapshot_schedule(12, 8 * n_batches).tolist()
    model = load_model(path)
    np.testing.assert_array_equal(snaps.weights[-1].astype(np.float64), model.weights)
    assert np.abs(snaps.weights[0]).max() < 0.06  # update 0: the small random initialisation
    assert model.training["settings"]["snapshots"] == 12


# --------------------------------------------------------------------------- the increment kernel
@pytest.mark.parametrize("density", [0.2, 0.8])  # rows with few ones, and rows taking the column-sum path
def test_interpolation_log_f_matches_free_energies(rng, density):
    from fecli.kernels.interpolation import interpolation_fields, interpolation_log_f

    a, b = random_rbm(rng, 11, 7), random_rbm(rng, 11, 7)
    v = (rng.random((37, 11)) < density).astype(float)
    stacked = np.ascontiguousarray(np.concatenate([a.weights, b.weights], axis=1))
    fields, vis, out = np.empty((37, 14)), np.empty((37, 2)), np.empty((37, 3))
    bounds = np.array([0, 5, 20, 37])
    ss = (0.0, 0.3, 1.0)
    for parallel in (False, True):
        interpolation_fields(bounds, v, stacked, stacked.sum(axis=0), a.hidden_bias, b.hidden_bias,
                             a.visible_bias, b.visible_bias, fields, vis, parallel)
        interpolation_log_f(fields, vis, ss, out, parallel)
        for k, s in enumerate(ss):
            np.testing.assert_allclose(out[:, k], -interpolate(a, b, s).free_energy(v), rtol=0, atol=1e-11)


# --------------------------------------------------------------------------- SMC bookkeeping
def test_resampling_moves_the_weights_into_ln_z_and_copies_states_only(rng):
    log_w = np.log(np.array([[1.0, 3.0, 0.0001, 6.0]]))
    v = np.arange(4, dtype=float)[:, None] * np.ones((4, 3))
    state = ParticleState(v.copy(), log_w.copy(), np.array([2.5]), np.zeros(1, dtype=np.int64))
    before = state.log_z()
    sampler = Sampler(np.zeros((4, 4), np.uint64), [np.random.default_rng(0)], steps=1, sweeps=1,
                      resample_ess=0.5, resampling="systematic")
    sampler._resample(state, state.v, 0)
    assert state.log_z_resampled[0] == pytest.approx(2.5 + math.log(10.0001 / 4))
    assert state.log_z()[0] == pytest.approx(before[0])  # the estimate is unchanged by resampling itself
    assert np.all(state.log_weights == 0.0) and state.resamplings[0] == 1
    assert set(state.v[:, 0]) <= {0.0, 1.0, 3.0} and 3.0 in state.v[:, 0]


@pytest.mark.parametrize("scheme", ["systematic", "multinomial"])
def test_resampling_gives_offspring_in_proportion_to_the_weights(scheme):
    w = np.array([0.1, 0.4, 0.2, 0.3, 0.0])
    rng = np.random.default_rng(1)
    counts = np.zeros(5)
    for _ in range(4000):
        counts += np.bincount(resample_indices(np.log(w + 1e-300), rng, scheme), minlength=5)
    np.testing.assert_allclose(counts / counts.sum(), w, atol=0.01)
    if scheme == "systematic":  # low variance: each particle gets floor(n W_i) or ceil(n W_i) offspring
        w = np.array([0.5, 0.3, 0.15, 0.05])
        for seed in range(50):
            got = np.bincount(resample_indices(np.log(w), np.random.default_rng(seed), scheme), minlength=4)
            assert np.all((got == np.floor(4 * w)) | (got == np.ceil(4 * w))), got


def test_ess_and_log_mean_exp_rows():
    assert effective_sample_size(np.zeros((2, 8))).tolist() == [8.0, 8.0]
    assert effective_sample_size(np.array([[0.0, -np.inf, -np.inf]]))[0] == pytest.approx(1.0)
    assert log_mean_exp_rows(np.log([[1.0, 3.0]]))[0] == pytest.approx(math.log(2.0))


def factorised(a, b):
    return RBM(np.zeros((a.size, b.size)), a, b)


def exact_factorised_log_z(m):
    return float(softplus(m.visible_bias).sum() + softplus(m.hidden_bias).sum())


@pytest.mark.parametrize("resample_ess", [0.0, 0.5, 1.0])
def test_smc_is_unbiased_for_z_on_factorised_models_with_known_ln_z(rng, resample_ess):
    """W = 0 all along: ln Z is known in closed form at every point, while the visible biases
    move far enough for the weights to degenerate and resampling to happen (every step with 1.0)."""
    anchors = [factorised(rng.normal(size=12), rng.normal(size=3)) for _ in range(3)]
    truth = np.array([exact_factorised_log_z(m) for m in anchors])
    run = run_trajectory(anchors, chains=16, replicates=400, steps=2, resample_ess=resample_ess, seed=5,
                         initial="factorised")
    if resample_ess > 0:
        assert run.points[-1].resamplings > 0
    assert run.points[0].log_z_replicates == pytest.approx(np.full(400, truth[0]))  # W = 0: the start is exact
    for point, exact in zip(run.points[1:], truth[1:]):
        ratio = np.exp(point.log_z_replicates - exact)  # Z_hat / Z per replicate: mean 1 (unbiased)
        assert abs(ratio.mean() - 1.0) < 4 * ratio.std() / math.sqrt(ratio.size), (ratio.mean(), ratio.std())


def test_identical_snapshots_change_nothing(rng):
    m = random_rbm(rng, 8, 5, 0.5)
    run = run_trajectory([m, m, m], chains=8, replicates=2, steps=3, seed=1)
    exact = log_partition(m)
    for p in run.points:
        assert p.log_z_replicates == pytest.approx(np.full(2, exact), abs=1e-10)


def test_combined_estimate_and_student_t_interval():
    c = combine_replicates(np.log([1.0, 1.1, 1.2]))
    assert c.log_z == pytest.approx(math.log(1.1))
    delta = np.std([1.0, 1.1, 1.2], ddof=1) / (math.sqrt(3) * 1.1)
    assert c.stderr == pytest.approx(max(delta, np.std(np.log([1.0, 1.1, 1.2]), ddof=1) / math.sqrt(3)))
    assert c.stderr == pytest.approx(delta, rel=0.01)  # replicates that agree: both rules give the same
    assert c.ci_high - c.log_z == pytest.approx(4.302652729911275 * c.stderr)  # t_{0.975, 2}


def test_replicates_far_apart_give_a_wide_error_bar_not_a_saturated_one():
    far = np.array([100.0, 60.0, 55.0, 52.0])  # one replicate dominates the mean of Z_hat
    c = combine_replicates(far)
    assert c.log_z == pytest.approx(100.0 - math.log(4.0), abs=1e-9)
    assert c.stderr == pytest.approx(np.std(far, ddof=1) / 2.0) and c.stderr > 10  # the delta method says ~1
    assert c.ci_high - c.ci_low > 50.0


# --------------------------------------------------------------------------- against exact enumeration
@pytest.mark.parametrize("initial", ["exact", "factorised"])
def test_every_snapshot_agrees_with_exact_enumeration(trained, initial):
    path, out, data = trained
    model = load_model(path)
    rows, run = trajectory_rows(model, data=data, seed=4, initial=initial, steps=20)
    anchors, _ = anchors_of(read_snapshots(path), model)
    assert len(rows) == len(anchors) == 12 and run.start == initial
    for row, anchor in zip(rows, anchors):
        exact = log_partition(anchor)
        assert row.ci_low - 2 * row.stderr <= exact <= row.ci_high + 2 * row.stderr, (row.snapshot, row.log_z, exact)
        assert abs(row.log_z - exact) < 0.2
        ll = float(np.mean(-anchor.free_energy(data))) - exact
        assert row.log_likelihood == pytest.approx(ll, abs=abs(row.log_z - exact) + 1e-9)
    assert rows[0].kind == ("exact" if initial == "exact" else "stochastic_lower_bound")
    assert rows[-1].update == out.snapshots.updates[-1] and rows[-1].epoch == pytest.approx(8.0)


def test_estimate_method_reports_the_final_model_and_refuses_files_without_snapshots(trained, tmp_path, rng):
    path, _, _ = trained
    model = load_model(path)
    result = trajectory(model, seed=3, steps=20)
    assert result.method == "trajectory" and result.kind == "stochastic_lower_bound"
    assert abs(result.log_z - log_partition(model)) < 4 * result.stderr + 0.02
    assert result.diagnostics["snapshots"] == 12 and len(result.diagnostics["replicate_log_z"]) == 8
    plain = tmp_path / "plain.h5"
    save_model(random_rbm(rng, 5, 3), plain)
    with pytest.raises(RefusedError, match="no parameter snapshots.*train-rbm --snapshots N"):
        trajectory(load_model(plain))
    with pytest.raises(RefusedError, match="no parameter snapshots"):
        trajectory(random_rbm(rng, 5, 3))  # in memory: no file to read snapshots from


def test_an_interrupted_checkpoint_ends_the_trajectory_at_its_own_parameters(tmp_path):
    data = np.load(DIGITS)[:400]
    path = tmp_path / "ckpt.h5"
    calls = iter(range(10**6))
    part = train(data, hidden=6, epochs=4, seed=1, snapshots=8, monitor_every=0, output=path,
                 should_stop=lambda: next(calls) == 45)
    assert part.interrupted
    model = load_model(path)
    anchors, updates = anchors_of(read_snapshots(path), model)
    assert updates[-1] == 46 and anchors[-1] is model  # the checkpoint's step, after the last snapshot
    rows, _ = trajectory_rows(model, seed=0, steps=10)
    assert abs(rows[-1].log_z - log_partition(model)) < 4 * rows[-1].stderr + 0.05


@pytest.mark.parametrize("options, message", [
    ({"replicates": 1}, "replicates must be an integer >= 2"),
    ({"resample_ess": 1.5}, "resample_ess must be a finite number in \\[0, 1\\]"),
    ({"resampling": "stratified"}, "resampling must be one of"),
    ({"initial": "magic"}, "initial must be one of"),
    ({"steps": 0}, "steps must be an integer >= 1"),
])
def test_invalid_options(rng, options, message):
    m = random_rbm(rng, 5, 3)
    with pytest.raises(InvalidOptionError, match=message):
        run_trajectory([m, m], **options)


def test_exact_start_is_refused_for_a_wide_first_snapshot(rng):
    m = random_rbm(rng, 26, 25, 0.01)
    with pytest.raises(RefusedError, match="initial 'exact' enumerates 2\\^25"):
        run_trajectory([m, m], initial="exact")


@pytest.mark.slow
def test_coverage_of_the_95_percent_intervals_over_30_seeds(trained):
    path, _, _ = trained
    model = load_model(path)
    anchors, updates = anchors_of(read_snapshots(path), model)
    exact = np.array([log_partition(m) for m in anchors])
    inside, final = [], []
    for seed in range(30):
        run = run_trajectory(anchors, updates, seed=100 + seed, steps=20)
        for point, truth in zip(run.points[1:], exact[1:]):
            c = point.summary()
            inside.append(c.ci_low <= truth <= c.ci_high)
        final.append(run.points[-1].summary().ci_low <= exact[-1] <= run.points[-1].summary().ci_high)
    assert np.mean(inside) >= 0.9, np.mean(inside)
    assert np.mean(final) >= 0.9, np.mean(final)
