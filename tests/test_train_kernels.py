"""Training kernels: the counter-based generator, fused sampling, exact pseudo-likelihood,
and the CD/PCD gradient estimates against the exact log-likelihood gradient."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fecli.estimators.exact import log_partition
from fecli.kernels.training import (
    call_key,
    colsum_difference,
    momentum_step,
    pseudo_log_likelihood_rows,
    scale_stats_colsum,
    sigmoid_sample,
    uniforms,
)
from fecli.model import RBM, sigmoid
from fecli.training import Trainer, TrainSettings
from fecli.training.trainer import Params


def test_uniforms_are_uniform_and_keyed():
    u = uniforms(np.uint64(12345), 200_000)
    assert u.min() >= 0.0 and u.max() < 1.0
    # mean and variance of U(0,1) within ~5 standard errors
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)
    counts, _ = np.histogram(u, bins=20, range=(0, 1))
    chi2 = ((counts - u.size / 20) ** 2 / (u.size / 20)).sum()
    assert chi2 < 60  # 19 degrees of freedom; p ~ 1e-6 at 60
    # neighbours are uncorrelated
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01
    # other keys give other streams; the same key the same stream
    v = uniforms(np.uint64(12346), 1000)
    assert not np.allclose(u[:1000], v)
    np.testing.assert_array_equal(uniforms(np.uint64(12345), 1000), u[:1000])


def test_call_keys_differ_per_step_and_stream():
    keys = {int(call_key(7, step, stream)) for step in range(50) for stream in range(4)}
    assert len(keys) == 200


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_sample_frequencies_match_probabilities(dtype):
    rng = np.random.default_rng(0)
    n_rows, n = 4000, 6
    bias = np.linspace(-2, 2, n).astype(dtype)
    pre = np.zeros((n_rows, n), dtype=dtype)
    probs = pre.copy()
    samples = np.empty_like(pre)
    sigmoid_sample(probs, bias, np.uint64(99), True, samples)
    expected = sigmoid(bias.astype(np.float64))
    np.testing.assert_allclose(probs[0], expected, rtol=1e-6)
    assert set(np.unique(samples)) <= {0.0, 1.0}
    freq = samples.mean(axis=0)
    se = np.sqrt(expected * (1 - expected) / n_rows)
    assert np.all(np.abs(freq - expected) < 5 * se)
    # in-place sampling draws the same numbers as sampling into a second array
    inplace = pre.copy()
    sigmoid_sample(inplace, bias, np.uint64(99), False, inplace)
    np.testing.assert_array_equal(inplace, samples)
    # probabilities only: no sampling, x becomes sigmoid
    only = rng.normal(size=(3, n)).astype(dtype)
    ref = sigmoid(only.astype(np.float64) + bias)
    sigmoid_sample(only, bias, np.uint64(0), True, np.empty((0, n), dtype=dtype))
    np.testing.assert_allclose(only, ref, rtol=1e-6)


def test_sigmoid_saturates_without_nan():
    x = np.array([[-1e4, 1e4, -800.0, 800.0]])
    s = np.empty_like(x)
    sigmoid_sample(x, np.zeros(4), np.uint64(1), True, s)
    assert np.all(np.isfinite(x))
    np.testing.assert_array_equal(x[0], [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(s[0], [0.0, 1.0, 0.0, 1.0])


def test_statistics_helpers():
    rng = np.random.default_rng(1)
    stats = rng.random((7, 4))
    out = np.empty(4)
    expected = stats[:3].mean(axis=0) - stats[3:].mean(axis=0)
    colsum_difference(stats, 3, out)
    np.testing.assert_allclose(out, expected)
    scaled = stats.copy()
    scale_stats_colsum(scaled, 3, out)
    np.testing.assert_allclose(out, expected)
    np.testing.assert_allclose(scaled[:3], stats[:3] / 3)
    np.testing.assert_allclose(scaled[3:], -stats[3:] / 4)


def test_momentum_step():
    p = np.array([[1.0, -2.0]])
    g = np.array([[0.5, 0.5]])
    v = np.array([[0.1, 0.0]])
    momentum_step(p, g, v, 0.1, 0.5, 0.01)
    expected_v = 0.5 * np.array([0.1, 0.0]) + 0.1 * (np.array([0.5, 0.5]) - 0.01 * np.array([1.0, -2.0]))
    np.testing.assert_allclose(v[0], expected_v)
    np.testing.assert_allclose(p[0], np.array([1.0, -2.0]) + expected_v)


def test_pseudo_log_likelihood_matches_brute_force():
    rng = np.random.default_rng(2)
    nv, nh = 7, 5
    model = RBM(rng.normal(0, 1, (nv, nh)), rng.normal(0, 1, nv), rng.normal(0, 1, nh))
    v = (rng.random((9, nv)) < 0.5).astype(float)
    field = v @ model.weights + model.hidden_bias
    out = np.empty(9)
    pseudo_log_likelihood_rows(v, field, model.weights, model.visible_bias, out)
    brute = np.zeros(9)
    for i in range(nv):
        flipped = v.copy()
        flipped[:, i] = 1 - flipped[:, i]
        f, g = model.free_energy(v), model.free_energy(flipped)
        brute += -f - np.logaddexp(-f, -g)
    np.testing.assert_allclose(out, brute, rtol=1e-12, atol=1e-12)


# -- gradient estimates against the exact log-likelihood gradient ----------------------------------


def _tiny_problem():
    rng = np.random.default_rng(3)
    nv, nh = 6, 4
    w, a, b = rng.normal(0, 0.6, (nv, nh)), rng.normal(0, 0.5, nv), rng.normal(0, 0.5, nh)
    data = (rng.random((40, nv)) < np.linspace(0.2, 0.7, nv)).astype(float)
    model = RBM(w, a, b)
    states = np.array(list(itertools.product([0.0, 1.0], repeat=nv)))
    p = np.exp(-model.free_energy(states) - log_partition(model))

    def stats(v, weight):
        ph = sigmoid(v @ w + b)
        return np.concatenate([((v * weight[:, None]).T @ ph).ravel(), weight @ v, weight @ ph])

    exact = stats(data, np.full(len(data), 1 / len(data))) - stats(states, p)
    return data, (w, a, b), exact


def _estimates(method, k, n_steps, burn_in, products="dense"):
    data, (w, a, b), exact = _tiny_problem()
    trainer = Trainer(data, TrainSettings(hidden=w.shape[1], method=method, k=k, batch_size=len(data),
                                          seed=11, dtype="float64", monitor_every=0), products=products)
    assert trainer.products.sparse == (products == "sparse")
    trainer.initial_state()
    params = Params(w.copy(), a.copy(), b.copy())
    rows = np.arange(len(data))
    draws = []
    for step in range(n_steps):
        g = trainer.gradient(params, rows, trainer.keys(step))
        if step >= burn_in:
            draws.append(np.concatenate([g.weights.ravel(), g.visible_bias, g.hidden_bias]))
    draws = np.array(draws)
    # batch means: robust to the autocorrelation of persistent chains
    batches = draws.reshape(25, -1, draws.shape[1]).mean(axis=1)
    mean = batches.mean(axis=0)
    se = batches.std(axis=0, ddof=1) / np.sqrt(len(batches))
    return (mean - exact) / se


@pytest.mark.parametrize("products", ["dense", "sparse"])
@pytest.mark.parametrize("method, k", [("pcd", 1), ("pcd", 3), ("cd", 25)])
def test_gradient_estimates_agree_with_exact_gradient(method, k, products):
    z = _estimates(method, k, n_steps=2600 if method == "pcd" else 1000, burn_in=100 if method == "pcd" else 0,
                   products=products)
    assert np.max(np.abs(z)) < 4.5, z


def test_cd1_bias_is_detected():
    """The same check has the power to see CD-1's known bias on this model."""
    z = _estimates("cd", 1, n_steps=1000, burn_in=0)
    assert np.max(np.abs(z)) > 6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_products_match_blas(dtype):
    from fecli.kernels.training import binary_matmul, binary_transpose_matmul

    rng = np.random.default_rng(4)
    v = (rng.random((37, 23)) < 0.2).astype(dtype)
    v[3] = 0.0  # an empty row
    v[:, 5] = 0.0  # an empty column
    w = rng.normal(size=(23, 9)).astype(dtype)
    h = rng.random((37, 9)).astype(dtype)
    ptr, idx = np.empty(24, np.int64), np.empty(37 * 23, np.int64)
    out = np.full((37, 9), np.nan, dtype=dtype)
    binary_matmul(v, w, out, ptr, idx)
    np.testing.assert_allclose(out, v @ w, rtol=1e-5, atol=1e-5)
    grad = np.full((23, 9), np.nan, dtype=dtype)
    binary_transpose_matmul(v, h, grad, ptr, idx)
    np.testing.assert_allclose(grad, v.T @ h, rtol=1e-5, atol=1e-5)
