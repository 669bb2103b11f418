"""Cumulant series: analytic joint cumulants against brute-force enumeration, the TAP terms at the
mean-field point, the order of each partial sum, and sampled k-statistics against exact cumulants."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fecli.errors import InvalidOptionError
from fecli.estimators.cumulant import (
    estimate_cumulant,
    joint_cumulants,
    kstatistics,
    partial_sums,
    sample_u,
)
from fecli.estimators.exact import log_partition
from fecli.estimators.meanfield import ScaledParams, sigmoid, tap_fixed_points
from fecli.model import RBM


def random_model(seed: int, nv: int, nh: int, w_scale: float = 1.0) -> RBM:
    rng = np.random.default_rng(seed)
    return RBM(rng.normal(0, w_scale, (nv, nh)), rng.normal(0, 1, nv), rng.normal(0, 1, nh))


def states(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def exact_cumulants(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    mean = weights @ u
    d = u - mean
    m2, m3, m4 = weights @ d**2, weights @ d**3, weights @ d**4
    return np.array([mean, m2, m3, m4 - 3 * m2**2])


def log_q(states_: np.ndarray, p: np.ndarray) -> np.ndarray:
    return states_ @ np.log(p) + (1 - states_) @ np.log1p(-p)


@pytest.mark.parametrize("seed", range(6))
def test_joint_cumulants_match_enumeration(seed):
    """Orders 1-4 (order 4 = the derived 4-cycle formula) at arbitrary, non-stationary (x, y)."""
    rng = np.random.default_rng(100 + seed)
    nv, nh = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    model = random_model(seed, nv, nh, w_scale=1.5)
    beta = float(rng.uniform(0.3, 2.0))
    x, y = rng.uniform(0.02, 0.98, nv), rng.uniform(0.02, 0.98, nh)
    v, h = states(nv), states(nh)
    vv, hh = np.repeat(v, len(h), axis=0), np.tile(h, (len(v), 1))
    lq = log_q(vv, x) + log_q(hh, y)
    u = beta * model.energy(vv, hh) + lq
    expected = exact_cumulants(u, np.exp(lq))
    got = joint_cumulants(ScaledParams.of(model, beta, 1), x, y)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


def test_joint_series_at_mean_field_point_gives_the_tap_terms():
    model = random_model(21, 9, 7, w_scale=0.8)
    fp = tap_fixed_points(model, np.full(9, 0.5), order=1, tol=1e-14, max_iter=20000)
    assert fp.converged[0]
    x, y = fp.x[0], fp.y[0]
    k = joint_cumulants(ScaledParams.of(model, 1.0, 1), x, y)
    from fecli.estimators.meanfield import neg_gamma_terms

    terms = neg_gamma_terms(ScaledParams.of(model, 1.0, 3), x, y, 3)[0]
    assert -k[0] == pytest.approx(terms[0], rel=1e-13)
    assert k[1] / 2 == pytest.approx(terms[1], rel=1e-10)
    assert -k[2] / 6 == pytest.approx(terms[2], rel=1e-8, abs=1e-12)
    # A non-stationary reference does NOT give the TAP terms (the check can fail).
    k_off = joint_cumulants(ScaledParams.of(model, 1.0, 1), np.clip(x + 0.05, 0, 1), y)
    off_terms = neg_gamma_terms(ScaledParams.of(model, 1.0, 3), np.clip(x + 0.05, 0, 1), y, 3)[0]
    assert abs(k_off[1] / 2 - off_terms[1]) > 1e-3


def test_joint_partial_sums_have_the_matching_orders():
    """Around the naive-MF point the order-n partial sum has an error O(eps^(n+1))."""
    rng = np.random.default_rng(7)
    w0, a, b = rng.normal(0, 1, (8, 6)), rng.normal(0, 1, 8), rng.normal(0, 1, 6)
    eps = np.geomspace(0.02, 0.08, 5)
    errors = []
    for e in eps:
        model = RBM(e * w0, a, b)
        fp = tap_fixed_points(model, sigmoid(a), order=1, tol=1e-14, max_iter=20000)
        sums = partial_sums(joint_cumulants(ScaledParams.of(model, 1.0, 1), fp.x[0], fp.y[0]))
        errors.append(sums - log_partition(model))
    errors = np.array(errors)
    for n in range(4):
        slope = np.polyfit(np.log(eps), np.log(np.abs(errors[:, n])), 1)[0]
        assert abs(slope - (n + 2)) < 0.3, (n + 1, slope)


@pytest.mark.parametrize("reference", ["mf", "tap"])
def test_marginal_kstatistics_agree_with_exact_cumulants(reference):
    model = random_model(31, 8, 5, w_scale=0.8)
    beta = 1.2
    result = estimate_cumulant(model, beta=beta, order=4, variant="marginal", reference=reference,
                               samples=20000, seed=5)
    assert reference == result.diagnostics["reference"]
    # Recover the reference magnetisations the estimator used, then enumerate q(v).
    fp_order = 1 if reference == "mf" else 3
    fp = tap_fixed_points(model, sigmoid(beta * model.visible_bias), order=fp_order, beta=beta)
    x = fp.x[0]
    assert np.mean(x) == pytest.approx(result.diagnostics["mean_x"], abs=1e-6)
    v = states(8)
    lq = log_q(v, x)
    u = model.free_energy(v, beta) + lq
    expected = exact_cumulants(u, np.exp(lq))
    got = np.array(result.diagnostics["cumulants"])
    se = np.array(result.diagnostics["cumulants_stderr"])
    assert np.all(se > 0)
    assert np.all(np.abs(got - expected) < 4 * se), (got, expected, se)
    # The whole series is the importance estimate, which converges to ln Z.
    exact = log_partition(model, beta)
    assert result.diagnostics["importance_log_z"] == pytest.approx(exact, abs=0.01)
    sums_se = np.array(result.diagnostics["partial_sums_stderr"])
    assert abs(result.log_z - partial_sums(expected)[3]) < 4 * sums_se[3]


def test_kstatistics_are_unbiased_formulas():
    rng = np.random.default_rng(0)
    u = rng.gamma(2.0, size=500)
    k, se, reps = kstatistics(u)
    n = u.size
    d = u - u.mean()
    m2, m3, m4 = (d**2).mean(), (d**3).mean(), (d**4).mean()
    assert k[0] == pytest.approx(u.mean())
    assert k[1] == pytest.approx(u.var(ddof=1))
    assert k[2] == pytest.approx(n**2 * m3 / ((n - 1) * (n - 2)))
    assert k[3] == pytest.approx(n**2 * ((n + 1) * m4 - 3 * (n - 1) * m2**2) / ((n - 1) * (n - 2) * (n - 3)))
    # 100-group jackknife: its own relative noise is about sqrt(2 / 99) = 14%.
    assert se[0] == pytest.approx(u.std(ddof=1) / np.sqrt(n), rel=0.35)
    assert reps.shape == (100, 4)
    # Shift invariance of k2..k4.
    k_shift, _, _ = kstatistics(u + 1000.0)
    np.testing.assert_allclose(k_shift[1:], k[1:], rtol=1e-7)


def test_sampling_is_seeded():
    model = random_model(2, 6, 4)
    x = np.full(6, 0.4)
    np.testing.assert_array_equal(sample_u(model, 1.0, x, 5000, seed=3), sample_u(model, 1.0, x, 5000, seed=3))
    assert not np.array_equal(sample_u(model, 1.0, x, 5000, seed=3), sample_u(model, 1.0, x, 5000, seed=4))


def test_kinds_and_bounds():
    model = random_model(41, 7, 6, w_scale=1.0)
    exact = log_partition(model)
    joint1 = estimate_cumulant(model, order=1)
    assert joint1.kind == "lower_bound" and joint1.stderr is None
    assert joint1.log_z <= exact
    marg1 = estimate_cumulant(model, order=1, variant="marginal", seed=1)
    assert marg1.kind == "stochastic_lower_bound"
    assert marg1.stderr > 0 and marg1.ci_low < marg1.log_z < marg1.ci_high
    # Summing the hidden units exactly tightens the bound (same x): within its error bar or better.
    assert marg1.log_z > joint1.log_z - 4 * marg1.stderr
    for variant in ("joint", "marginal"):
        r = estimate_cumulant(model, order=3, variant=variant)
        assert r.kind == "approximation" and r.stderr is None and r.ci_low is None
        assert len(r.diagnostics["partial_sums"]) == 3
        assert r.log_z == r.diagnostics["partial_sums"][-1]
    four = estimate_cumulant(model, order=4)
    assert four.diagnostics["partial_sums"][:1] == [joint1.log_z]


def test_base_rate_reference_needs_data():
    model = random_model(3, 6, 4)
    with pytest.raises(InvalidOptionError, match="needs data"):
        estimate_cumulant(model, reference="base-rate")
    data = (np.random.default_rng(1).uniform(size=(50, 6)) < 0.4).astype(float)
    r = estimate_cumulant(model, reference="base-rate", data=data, order=2, variant="marginal", seed=0)
    assert r.diagnostics["reference"] == "base-rate"
    assert r.diagnostics["importance_log_z"] == pytest.approx(log_partition(model), abs=0.05)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"order": 0}, "order"),
        ({"order": 5}, "order"),
        ({"order": 2.5}, "order"),
        ({"reference": "exact"}, "reference"),
        ({"variant": "both"}, "variant"),
        ({"variant": "marginal", "samples": 3}, "samples"),
        ({"damping": 1.5}, "damping"),
        ({"tol": 0}, "tol"),
    ],
)
def test_invalid_options(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        estimate_cumulant(random_model(1, 4, 3), **options)
