"""The fused sparse CD / PCD path (two parallel Numba regions per update, no BLAS): its sigmoid,
its agreement with the BLAS path draw for draw, its update against gradient + momentum step,
and bits that do not depend on the thread count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fecli.estimators.exact import log_partition
from fecli.kernels.training import momentum_step, sigmoid_rows
from fecli.training import Trainer, TrainSettings, train
from fecli.training.trainer import Params

ROOT = Path(__file__).resolve().parents[1]


def sparse_rows(n_rows=120, n_visible=14, seed=0):
    """0/1 rows with 3-25% ones per unit (mean ~0.14) and one unit that is never on."""
    rng = np.random.default_rng(seed)
    p = np.linspace(0.03, 0.25, n_visible)
    p[5] = 0.0
    return (rng.random((n_rows, n_visible)) < p).astype(float)


def random_params(n_visible, n_hidden, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return Params(rng.normal(0, 0.8, (n_visible, n_hidden)).astype(dtype),
                  rng.normal(-1, 1, n_visible).astype(dtype), rng.normal(0, 1, n_hidden).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorised_sigmoid_is_accurate_and_saturates(dtype):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 6, 20000), np.linspace(-750, 750, 3001),
                        [0.0, -1e30, 1e30, -88.0, 88.0, -710.0, 710.0]]).astype(dtype)
    with np.errstate(over="ignore"):
        exact = 1.0 / (1.0 + np.exp(-x.astype(np.longdouble)))
    got = x.copy()[None, :]
    sigmoid_rows(got, np.empty(x.size, np.int64))
    got = got[0]
    assert np.all(np.isfinite(got)) and got.min() >= 0.0 and got.max() <= 1.0
    eps = np.finfo(dtype).eps
    normal = exact > np.finfo(dtype).tiny * 1e3  # away from the subnormal range
    rel = np.abs(got.astype(np.longdouble)[normal] - exact[normal]) / exact[normal]
    assert float(rel.max()) < 3 * eps
    # saturated ends: essentially 0 and exactly 1
    assert got[x == -1e30][0] < 1e-37 and got[x == 1e30][0] == 1.0
    assert got[x == 0][0] == 0.5


def _trainer(data, method, k, dtype, products, batch_size=40):
    settings = TrainSettings(hidden=7, method=method, k=k, batch_size=batch_size, seed=3, dtype=dtype,
                             monitor_every=0)
    return Trainer(data, settings, products=products)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method, k", [("pcd", 1), ("pcd", 3), ("cd", 1), ("cd", 2)])
def test_fused_path_draws_what_the_blas_path_draws(method, k, dtype):
    """Same random streams (keys and counters) as the BLAS path: the same samples, so the same
    chains and, up to the order of the additions, the same gradient, several updates in a row."""
    data = sparse_rows()
    fused, blas = _trainer(data, method, k, dtype, "sparse"), _trainer(data, method, k, dtype, "dense")
    assert fused.fused and not blas.fused
    params = random_params(data.shape[1], 7, dtype)
    for trainer in (fused, blas):
        trainer.initial_state()
    if method == "pcd":
        np.testing.assert_array_equal(fused.negative.chains, blas.negative.chains)
    rows = np.random.default_rng(5).permutation(len(data))
    tol = 2e-5 if dtype == "float32" else 1e-12
    for step in range(4):
        batch = rows[step * 30:(step + 1) * 30]  # 30 data rows, 40 persistent chains for PCD
        g1 = fused.gradient(params, batch, fused.keys(step))
        g1 = Params(g1.weights.copy(), g1.visible_bias.copy(), g1.hidden_bias.copy())
        g2 = blas.gradient(params, batch, blas.keys(step))
        if method == "pcd":
            np.testing.assert_array_equal(fused.negative.chains, blas.negative.chains)
        np.testing.assert_allclose(g1.visible_bias, g2.visible_bias, rtol=tol, atol=tol)
        np.testing.assert_allclose(g1.weights, g2.weights, rtol=tol, atol=tol)
        np.testing.assert_allclose(g1.hidden_bias, g2.hidden_bias, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", ["pcd", "cd"])
def test_fused_update_is_gradient_plus_momentum_step(method, dtype):
    data = sparse_rows()
    settings = dict(hidden=7, method=method, k=2, batch_size=25, seed=4, dtype=dtype, monitor_every=0,
                    lr=0.3, momentum=0.6, weight_decay=0.01)
    fused, check = Trainer(data, TrainSettings(**settings)), Trainer(data, TrainSettings(**settings))
    assert fused.fused
    state = fused.initial_state()
    state.params = random_params(data.shape[1], 7, dtype)
    state.velocity = random_params(data.shape[1], 7, dtype, seed=2)
    check.initial_state()
    rows = np.arange(25)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for _ in range(3):
        before = Params(*(np.copy(a) for a in (state.params.weights, state.params.visible_bias,
                                                  state.params.hidden_bias)))
        vel = Params(*(np.copy(a) for a in (state.velocity.weights, state.velocity.visible_bias,
                                               state.velocity.hidden_bias)))
        g = check.gradient(before, rows, check.keys(state.step))
        fused.update(state, rows)
        s = fused.settings
        momentum_step(before.weights, g.weights, vel.weights, s.lr, s.momentum, s.weight_decay)
        momentum_step(before.visible_bias[None], g.visible_bias[None], vel.visible_bias[None], s.lr, s.momentum, 0.0)
        momentum_step(before.hidden_bias[None], g.hidden_bias[None], vel.hidden_bias[None], s.lr, s.momentum, 0.0)
        for name in ("weights", "visible_bias", "hidden_bias"):
            np.testing.assert_allclose(getattr(state.params, name), getattr(before, name), rtol=tol, atol=tol)
            np.testing.assert_allclose(getattr(state.velocity, name), getattr(vel, name), rtol=tol, atol=tol)
        # the trainer's W^T follows the in-place updates exactly
        np.testing.assert_array_equal(fused._weights_t, state.params.weights.T)


@pytest.mark.parametrize("method", ["pcd", "cd"])
def test_fused_training_learns_like_the_blas_path(method):
    rng = np.random.default_rng(2)
    protos = np.zeros((3, 14))
    protos[0, :3] = protos[1, 4:7] = protos[2, 9:12] = 1.0
    rows = protos[rng.integers(0, 3, 300)]
    data = np.abs(rows - (rng.random(rows.shape) < 0.03))  # ~0.24 ones: sparse
    opts = dict(hidden=6, epochs=15, seed=1, method=method, batch_size=20, lr=0.3, monitor_every=0)
    lls = {}
    for products in ("sparse", "dense"):
        trainer = Trainer(data, TrainSettings(**opts), products=products)
        state = trainer.initial_state()
        trainer.run(state)
        model = trainer.model(state)
        lls[products] = float(np.mean(-model.free_energy(data)) - log_partition(model))
    base = train(data, hidden=6, epochs=1, lr=1e-12, momentum=0.0, seed=1, method=method, monitor_every=0)
    ll0 = float(np.mean(-base.model.free_energy(data)) - log_partition(base.model))
    assert lls["sparse"] > ll0 + 0.6, (ll0, lls)
    assert abs(lls["sparse"] - lls["dense"]) < 0.05, lls


_SUBPROCESS = """
import json, sys
import numpy as np
from fecli.training import Trainer, TrainSettings
rng = np.random.default_rng(0)
data = (rng.random((300, 40)) < np.linspace(0.02, 0.3, 40)).astype(float)
out = {}
for method, k in (("pcd", 1), ("cd", 2)):
    trainer = Trainer(data, TrainSettings(hidden=23, method=method, k=k, epochs=2, batch_size=32, seed=5,
                                          momentum=0.5, weight_decay=1e-3, monitor_every=0))
    assert trainer.fused
    state = trainer.initial_state()
    trainer.run(state)
    p = state.params
    out[method] = [p.weights.tobytes().hex(), p.visible_bias.tobytes().hex(), p.hidden_bias.tobytes().hex(),
                   trainer.negative.state_dict().get("chains", np.zeros(0)).tobytes().hex()]
import numba
out["threads"] = numba.get_num_threads()
json.dump(out, sys.stdout)
"""


def test_fused_path_gives_the_same_bits_whatever_the_thread_count():
    results = []
    for threads in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": threads}
        proc = subprocess.run([sys.executable, "-c", _SUBPROCESS], capture_output=True, text=True, timeout=300,
                              env=env, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        results.append(json.loads(proc.stdout))
    assert [r.pop("threads") for r in results] == [1, 2]
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8])
def test_column_counts_in_one_pass(dtype):
    from fecli.data import base_rate_bias, base_rate_from_sums
    from fecli.training.trainer import column_counts

    data = sparse_rows(n_rows=301).astype(dtype)
    counts, other = column_counts(data)
    np.testing.assert_array_equal(counts, (data == 1).sum(axis=0))
    assert other == 0
    np.testing.assert_array_equal(base_rate_from_sums(counts, len(data)), base_rate_bias(data))
    bad = data.copy()
    bad[7, 3] = 2
    if dtype != np.int8:
        bad[100, 0] = np.nan
        bad[300, 13] = 0.5
    assert column_counts(bad)[1] == (1 if dtype == np.int8 else 3)
    assert column_counts(np.asfortranarray(bad))[1] == column_counts(bad)[1]  # the numpy fallback
