"""The fused annealing kernels (fecli.kernels.anneal) and their vector exp (fecli.kernels.vexp)."""

from __future__ import annotations

import numpy as np
import pytest

from fecli.estimators._sampling_common import AnnealingPath, Chains, base_samples, chain_states, kernel_states
from fecli.kernels import anneal
from fecli.kernels.vexp import exp_array
from fecli.model import RBM


def test_vector_exp_is_within_one_ulp_of_libm():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-708.0, 709.0, 200_000), rng.uniform(-2.0, 2.0, 200_000),
                        rng.uniform(-1e-9, 1e-9, 1000),
                        [0.0, -0.0, -708.0, 709.0, -np.log(2) / 2, np.log(2) / 2, -np.log(2), -1.0, 1.0, -1e-300]])
    got, want = exp_array(x), np.exp(x)
    assert np.all(np.abs(got - want) <= np.spacing(want))
    assert exp_array(np.array([0.0]))[0] == 1.0


def test_vector_exp_float32_is_within_two_ulp():
    x = np.random.default_rng(1).uniform(-87.0, 88.0, 100_000).astype(np.float32)
    got, want = exp_array(x), np.exp(x.astype(np.float64))
    assert got.dtype == np.float32
    assert np.all(np.abs(got - want) <= 2 * np.spacing(want.astype(np.float32)))


def test_vector_exp_clamps_far_tails_and_keeps_nan():
    got = exp_array(np.array([-709.0, -1e300, -np.inf, 710.0, np.inf, np.nan]))
    assert np.all(got[:3] > 0) and np.all(got[:3] < 1e-307)
    assert np.all(np.isfinite(got[3:5])) and np.all(got[3:5] > 1e307)
    assert np.isnan(got[5])


def _model(nv=30, nh=20, seed=0, vbias=0.0):
    rng = np.random.default_rng(seed)
    return RBM(rng.normal(0, 0.4, (nv, nh)), rng.normal(vbias, 1.0, nv), rng.normal(0, 1.0, nh))


def _args(path):
    return (path.w_scaled, path.w_colsum, path.wt32, path.wt32_colsum, path.hbias_scaled, path.dvis,
            path.base_bias, path.vbias_scaled)


@pytest.mark.parametrize("density", [0.1, 0.9])  # a product from the active rows, and from the complement
def test_one_step_weight_is_the_log_f_difference(density):
    m = _model()
    path = AnnealingPath(m, 0.9, np.random.default_rng(1).normal(size=m.n_visible))
    v = (np.random.default_rng(2).random((5, m.n_visible)) < density).astype(float)
    ts = np.array([0.3, 0.7])
    logw = np.zeros(5)
    states = kernel_states(chain_states(3, 5))
    anneal.anneal(np.array([0, 2, 5]), v.copy(), states, logw, *_args(path), ts, 1, 2, 1, parallel=False)
    np.testing.assert_allclose(logw, path.log_f(v, 0.7) - path.log_f(v, 0.3), rtol=1e-13, atol=1e-12)


def test_results_do_not_depend_on_blocks_or_threads():
    """Every chain's arithmetic is its own: any grouping, serial or parallel, gives the same bits."""
    m = _model(nv=40, nh=24, vbias=-1.0)
    path = AnnealingPath(m, 1.0, np.full(m.n_visible, -1.0))
    ts = np.linspace(0.0, 1.0, 31)
    runs = []
    for parallel, bounds in [(False, [0, 37]), (False, list(range(38))), (True, anneal.block_bounds(37, 2)),
                             (True, [0, 5, 6, 20, 37])]:
        states = kernel_states(chain_states(5, 37))
        v = base_samples(path, states)
        logw = np.zeros(37)
        anneal.anneal(np.array(bounds, dtype=np.int64), v, states, logw, *_args(path), ts, 1, 31, 2, parallel=parallel)
        runs.append((logw, v, states))
    for logw, v, states in runs[1:]:
        assert np.array_equal(logw, runs[0][0]) and np.array_equal(v, runs[0][1])
        assert np.array_equal(states, runs[0][2])


def test_sweep_kernels_agree_and_return_the_hidden_states():
    m = _model(nv=40, nh=24)
    path = AnnealingPath(m, 1.0, np.zeros(m.n_visible))
    out = []
    for parallel, bounds in [(False, np.array([0, 9])), (True, anneal.block_bounds(9, 2, 2))]:
        states = kernel_states(chain_states(6, 9))
        v = base_samples(path, states)
        h = np.full((9, m.n_hidden), -1.0)
        g = np.zeros(9)
        anneal.sweep(bounds, v, states, *_args(path), 0.8, 3, h, g, parallel=parallel)
        out.append((v, h, g))
    for a, b in zip(out[0], out[1]):
        assert np.array_equal(a, b)
    assert set(np.unique(out[0][1])) <= {0.0, 1.0}


def test_recorded_derivative_is_that_of_log_f():
    """sweep_recording adds d ln f_t / dt at the state each sweep leaves."""
    m = _model(nv=12, nh=7)
    path = AnnealingPath(m, 0.7, np.random.default_rng(4).normal(size=12))
    states = kernel_states(chain_states(8, 6))
    walkers = Chains(path, base_samples(path, states), states)
    t, eps = 0.6, 1e-6
    g = walkers.sweep_recording(t, 1)
    slope = (path.log_f(walkers.v, t + eps) - path.log_f(walkers.v, t - eps)) / (2 * eps)
    np.testing.assert_allclose(g, slope, rtol=1e-7, atol=1e-7)


def test_block_bounds_cover_the_chains_evenly():
    for n in (1, 2, 7, 16, 100, 1000):
        for threads in (1, 2, 8):
            b = anneal.block_bounds(n, threads)
            sizes = np.diff(b)
            assert b[0] == 0 and b[-1] == n and sizes.min() >= 1 and sizes.max() <= anneal.MAX_BLOCK
            assert sizes.max() - sizes.min() <= 1
