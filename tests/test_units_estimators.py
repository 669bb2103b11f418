"""Estimators on spin, Gaussian and Potts layers: bounds, TAP orders, sampling errors, refusals."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fecli.api import estimate
from fecli.errors import RefusedError
from fecli.estimators import METHODS
from fecli.estimators.cumulant_layers import joint_cumulants_layers
from fecli.estimators.exact import log_partition
from fecli.estimators.meanfield_layers import Scaled, initial_means, solve
from fecli.layers import Gaussian, Spin
from fecli.model import RBM, binary_equivalent

from .test_units_exact import COMBINATIONS, make_model, states


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), w_scale=st.sampled_from([0.2, 0.6, 1.5]), beta=st.sampled_from([1.0, 0.5]))
@pytest.mark.parametrize("vt, ht", COMBINATIONS)
def test_mean_field_is_a_lower_bound_for_every_combination(vt, ht, seed, w_scale, beta):
    model = make_model(vt, ht, 4, 3, seed, 1.0, w_scale)
    exact = log_partition(model, beta)
    mf = estimate(model, "mf", beta=beta, starts=3, seed=1)
    assert mf.kind == "lower_bound"
    assert mf.log_z <= exact + 1e-9
    c1 = estimate(model, "cumulant", beta=beta, order=1, starts=3, seed=1)
    assert c1.log_z <= exact + 1e-9


@pytest.mark.parametrize("vt, ht", COMBINATIONS)
def test_tap2_improves_on_mean_field_on_weak_couplings(vt, ht):
    model = make_model(vt, ht, 5, 4, 11, 1.0, 0.2)
    exact = log_partition(model)
    mf, tap2 = estimate(model, "mf", seed=1), estimate(model, "tap2", seed=1)
    assert tap2.kind == "approximation"
    assert abs(tap2.log_z - exact) < 0.2 * abs(mf.log_z - exact)


def _slope(eps, errors):
    return float(np.polyfit(np.log(eps), np.log(np.abs(errors)), 1)[0])


@pytest.mark.parametrize("method, slope", [("mf", 2.0), ("tap2", 3.0), ("tap3", 4.0)])
def test_spin_tap_errors_scale_with_the_order(method, slope):
    """Error of order n against exact ln Z when W is scaled by eps: eps^(n+1) (spin units)."""
    rng = np.random.default_rng(3)
    # fields large enough that the third-order term sum W^3 m (1 - m^2) m_h (1 - m_h^2) does not nearly cancel
    w, a, b = rng.normal(size=(7, 5)), 1.5 * rng.normal(size=7), 1.5 * rng.normal(size=5)
    eps = np.geomspace(0.015, 0.1, 5)
    errors = []
    for e in eps:
        model = RBM(Spin(a), Spin(b), e * w)
        errors.append(estimate(model, method, tol=1e-13, max_iter=20000, seed=1).log_z - log_partition(model))
    assert _slope(eps, errors) == pytest.approx(slope, abs=0.3)


def test_spin_tap2_through_the_01_map_is_the_standard_spin_expansion():
    """The registry runs spin models on their 0/1 equivalent; the value equals the textbook spin TAP2
    -Gamma = sum S(m) + a.m + b.m_h + m^T W m_h + 1/2 sum W^2 (1 - m^2)(1 - m_h^2) at its fixed point,
    which the layer solver finds natively."""
    rng = np.random.default_rng(5)
    model = RBM(Spin(0.3 * rng.normal(size=6)), Spin(0.3 * rng.normal(size=4)), 0.3 * rng.normal(size=(6, 4)))
    mapped = estimate(model, "tap2", tol=1e-12, seed=1)
    p = Scaled.of(model, 1.0)
    fp = solve(p, 2, initial_means(p, 4, None, 1)[0], 1e-12, 5000, 0.3)
    best = int(np.argmax(fp.neg_gamma))
    m, mh = fp.x[best], fp.y[best]

    def s(x):
        q = (1 + x) / 2
        return -(q * np.log(q) + (1 - q) * np.log(1 - q)).sum()

    textbook = (s(m) + s(mh) + model.visible_bias @ m + model.hidden_bias @ mh + m @ model.weights @ mh
                + 0.5 * ((1 - m**2) @ model.weights**2 @ (1 - mh**2)))
    assert mapped.log_z == pytest.approx(textbook, abs=1e-9)
    assert mapped.diagnostics["mean_x"] == pytest.approx(m.mean(), abs=1e-6)
    # tanh(a + W m_h - m sum W^2 (1 - m_h^2)) = m at the fixed point
    field = model.visible_bias + model.weights @ mh - m * (model.weights**2 @ (1 - mh**2))
    np.testing.assert_allclose(np.tanh(field), m, atol=1e-9)


def test_layer_solver_reproduces_the_bernoulli_path():
    rng = np.random.default_rng(6)
    model = RBM(0.5 * rng.normal(size=(8, 5)), rng.normal(size=8), rng.normal(size=5))
    for method, order in (("mf", 1), ("tap2", 2)):
        p = Scaled.of(model, 1.0)
        fp = solve(p, order, initial_means(p, 8, None, 0)[0], 1e-11, 5000, 0.3)
        assert fp.neg_gamma.max() == pytest.approx(estimate(model, method, tol=1e-11).log_z, abs=1e-9)


@pytest.mark.parametrize("vt, ht", [("potts", "bernoulli"), ("potts", "spin"), ("spin", "bernoulli"), ("bernoulli", "spin")])
def test_joint_cumulants_match_enumeration(vt, ht):
    """k1, k2 of U = beta E + ln q under a factorized q (any point, not only a fixed point)."""
    model = make_model(vt, ht, 3, 3, 7)
    rng = np.random.default_rng(8)
    p = Scaled.of(model, 0.8)
    mv = model.visible.mean(rng.normal(size=model.visible.dim))
    mh = model.hidden.mean(rng.normal(size=model.hidden.dim))
    k = joint_cumulants_layers(p, mv, mh)
    v, h = states(model.visible), states(model.hidden)
    lq = (model.visible.log_prob_factorized(v, model.visible.natural(mv))[:, None]
          + model.hidden.log_prob_factorized(h, model.hidden.natural(mh))[None, :])
    e = model.visible.energy(v)[:, None] + model.hidden.energy(h)[None, :] \
        - model.visible.features(v) @ model.weights2d @ model.hidden.features(h).T
    u, q = 0.8 * e + lq, np.exp(lq)
    mean = (q * u).sum()
    assert k[0] == pytest.approx(mean, abs=1e-10)
    assert k[1] == pytest.approx((q * (u - mean) ** 2).sum(), abs=1e-10)


SAMPLED = [("spin", "bernoulli"), ("gaussian", "bernoulli"), ("potts", "bernoulli"), ("bernoulli", "gaussian"),
           ("potts", "spin"), ("gaussian", "gaussian")]


@pytest.mark.parametrize("vt, ht", SAMPLED)
@pytest.mark.parametrize("method, options", [
    ("ais", {"chains": 64, "steps": 800}),
    ("reverse-ais", {"chains": 64, "steps": 800}),
    ("importance", {"samples": 4000}),
    ("ti", {"chains": 40, "steps": 60, "sweeps": 8}),
    ("pt", {"samples": 600, "burn_in": 200}),
])
def test_sampling_estimators_within_their_error_of_exact(vt, ht, method, options):
    model = make_model(vt, ht, 6, 4, 21, 1.0, 0.35)
    exact = log_partition(model)
    r = estimate(model, method, seed=3, **options)
    assert np.isfinite(r.stderr) and r.stderr > 0
    assert abs(r.log_z - exact) < 4 * r.stderr + 0.02
    if method == "reverse-ais":
        assert r.kind == "stochastic_upper_bound"
        assert r.diagnostics["forward_ais"]["seed"] == r.params["seed"]  # checked against forward AIS


def test_reverse_ais_reaches_down_to_a_forward_ais_below_its_interval():
    """A strongly coupled Potts model at beta 4 with 20 steps: reverse AIS lands 3.9 nats above
    exact with an interval that excludes it; forward AIS on the same path lies below that interval,
    so the result warns and its interval reaches down to forward AIS's."""
    model = make_model("potts", "bernoulli", 8, 6, 5, 1.0, 2.0)
    exact = log_partition(model, beta=4.0)
    r = estimate(model, "reverse-ais", beta=4.0, seed=3, chains=32, steps=20)
    assert r.log_z - exact > 2.0 and r.diagnostics["forward_ais"]["log_z"] < r.log_z - 2.0
    assert any("forward AIS along the same path" in w for w in r.warnings)
    assert r.ci_low <= exact <= r.ci_high


def test_same_seed_same_numbers_and_data_base_model():
    model = make_model("potts", "bernoulli", 5, 3, 4)
    a = estimate(model, "ais", chains=20, steps=100, seed=9)
    b = estimate(model, "ais", chains=20, steps=100, seed=9)
    assert a.log_z == b.log_z
    data = np.random.default_rng(0).integers(0, 3, size=(50, 5)).astype(float)
    c = estimate(model, "ais", chains=20, steps=300, seed=9, data=data)
    assert c.diagnostics["base_model"].startswith("data base rate")
    assert abs(c.log_z - log_partition(model)) < 4 * c.stderr + 0.02


def test_spin_models_run_on_the_bernoulli_kernels_with_the_offset():
    model = make_model("spin", "spin", 6, 5, 2)
    mapped, offset = binary_equivalent(model)
    r = estimate(model, "ais", chains=40, steps=300, seed=1)
    r01 = estimate(mapped, "ais", chains=40, steps=300, seed=1)
    assert r.log_z == pytest.approx(r01.log_z + offset, abs=1e-12)
    assert r.diagnostics["binary_equivalent"]["offset"] == pytest.approx(offset)
    # +-1 data for the base model are mapped to 0/1 for the equivalent model
    data = np.where(np.random.default_rng(1).random((30, 6)) < 0.5, -1.0, 1.0)
    d = estimate(model, "importance", samples=2000, seed=1, data=data)
    assert abs(d.log_z - log_partition(model)) < 4 * d.stderr + 0.02


def test_methods_refuse_combinations_they_do_not_support_in_one_line():
    from fecli.estimators.units import BINARY_UNITS, check_supported

    model = make_model("gaussian", "bernoulli", 3, 2, 0)
    for name in METHODS:  # every method takes every combination now
        assert METHODS[name].supports(model)
    with pytest.raises(RefusedError, match="method 'x' does not support gaussian-bernoulli models") as info:
        check_supported("x", BINARY_UNITS, model)
    assert "\n" not in str(info.value)
    with pytest.raises(RefusedError, match="has no parameter snapshots"):
        estimate(model, "trajectory")
    bad = RBM(Gaussian(np.zeros(2), np.ones(2)), Gaussian(np.zeros(1), np.ones(1)), np.array([[0.8], [0.8]]))
    for name in ("mf", "ais"):
        with pytest.raises(RefusedError, match="not normalisable"):
            estimate(bad, name)


def test_joint_series_is_capped_at_order_two_for_gaussian_and_potts_layers():
    from fecli.errors import InvalidOptionError

    model = make_model("potts", "bernoulli", 3, 2, 0)
    with pytest.raises(InvalidOptionError, match="goes to order 2; use --variant marginal"):
        estimate(model, "cumulant", order=3)
    r = estimate(model, "cumulant", order=4, variant="marginal", samples=20000, seed=1)
    assert abs(r.log_z - log_partition(model)) < 0.05


@pytest.mark.parametrize("method", ["exact", "gibbs"])
def test_samples_follow_the_model_for_potts_and_gaussian_layers(method):
    from fecli.sampling import sample

    model = make_model("potts", "bernoulli", 3, 4, 12)
    v = states(model.visible)
    p = np.exp(-model.free_energy(v) - log_partition(model))
    expected = p @ model.visible.features(v)
    drawn = sample(model, 20000, method=method, seed=2, chains=50, burn_in=100, thin=2)
    assert drawn.v.dtype == np.uint8
    got = model.visible.features(drawn.v.astype(float)).mean(axis=0)
    assert np.abs(got - expected).max() < 0.02
    gg = make_model("gaussian", "gaussian", 3, 2, 5)
    joint = np.block([[np.diag(gg.visible.precision), -gg.weights2d], [-gg.weights2d.T, np.diag(gg.hidden.precision)]])
    cov = np.linalg.inv(joint)[:3, :3]
    drawn = sample(gg, 20000, method=method, seed=3, chains=50, burn_in=100, thin=2)
    assert drawn.v.dtype == np.float64
    assert np.abs(np.cov(drawn.v.T) - cov).max() < 0.05 * np.abs(cov).max() + 0.01


@pytest.mark.parametrize("vt, ht", [("potts", "bernoulli"), ("gaussian", "bernoulli"), ("bernoulli", "gaussian")])
def test_ti_from_tempered_target_samples(vt, ht):
    """Where exact target samples are out of reach the downward TI chains start from the tempering ladders."""
    model = make_model(vt, ht, 6, 4, 21, 1.0, 0.35)
    r = estimate(model, "ti", chains=40, steps=60, sweeps=8, exact_max_units=0, burn_in=400, seed=5)
    assert r.diagnostics["down_start"].startswith("parallel tempering")
    assert abs(r.log_z - log_partition(model)) < 4 * r.stderr + 0.02


@pytest.mark.parametrize("vt, ht", [("potts", "bernoulli"), ("gaussian", "bernoulli"), ("potts", "gaussian")])
def test_ti_integrand_is_the_derivative_of_the_path(vt, ht):
    from fecli.estimators.layered_sampling import LayeredPath, base_layer, chunked_random

    model = make_model(vt, ht, 4, 3, 2)
    side = "hidden" if vt == "gaussian" else "visible"
    path = LayeredPath(model, 0.7, side, base_layer(model, 0.7, side, None)[0])
    s = path.base_samples(5, chunked_random(1, 5))
    parts = path.parts(s)
    for t in (0.0, 0.3, 0.9):
        h = 1e-6
        numeric = (path.log_f_rows(*parts, t + h) - path.log_f_rows(*parts, t - h)) / (2 * h)
        np.testing.assert_allclose(path.dlog_f_dt(*parts, t), numeric, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(path.log_f_rows(*parts, np.full(5, t)), path.log_f(s, t), atol=1e-10)


def test_pt_on_a_larger_gaussian_model_and_its_target_states():
    """Chains on the hidden layer (the visible one Gaussian): the states handed on (auto's AIS base)
    are visible rows drawn given them."""
    model = make_model("gaussian", "bernoulli", 12, 10, 5, 1.0, 0.4)
    r = estimate(model, "pt", samples=1500, burn_in=500, seed=2)
    assert abs(r.log_z - log_partition(model)) < 4 * r.stderr + 0.02
    assert r.diagnostics["rungs"] >= 2


def test_auto_runs_pt_and_ais_on_gaussian_and_potts_models(monkeypatch):
    import fecli.estimators.auto as auto

    monkeypatch.setattr(auto, "EXACT_SHARE", 0.0)  # small models: make it take the sampling routes
    for vt, ht in (("gaussian", "bernoulli"), ("potts", "bernoulli")):
        model = make_model(vt, ht, 6, 5, 3, 1.0, 0.4)
        r = estimate(model, "auto", target_error=0.2, budget=60, seed=1)
        assert {h["method"] for h in r.diagnostics["routes"]} == {"pt", "ais"}
        assert r.ci_low - 0.02 <= log_partition(model) <= r.ci_high + 0.02


def test_potts_tap_errors_scale_with_the_order():
    """Potts visible units: mf, tap2, tap3 errors go as eps^2, eps^3, eps^4 when W is scaled by eps."""
    from fecli.layers import Bernoulli, Potts

    rng = np.random.default_rng(3)
    w, a, b = rng.normal(size=(5, 3, 4)), 1.5 * rng.normal(size=(5, 3)), 1.5 * rng.normal(size=4)
    eps = np.geomspace(0.015, 0.1, 4)
    errors = {name: [] for name in ("mf", "tap2", "tap3")}
    for e in eps:
        model = RBM(Potts(a), Bernoulli(b), e * w)
        exact = log_partition(model)
        for name in errors:
            errors[name].append(estimate(model, name, tol=1e-13, max_iter=20000, seed=1).log_z - exact)
    for name, slope in (("mf", 2.0), ("tap2", 3.0), ("tap3", 4.0)):
        assert _slope(eps, errors[name]) == pytest.approx(slope, abs=0.3)


def test_tap3_of_two_state_potts_units_is_the_bernoulli_tap3_and_gaussian_tap3_is_tap2():
    from fecli.layers import Bernoulli, Potts

    rng = np.random.default_rng(3)
    w, a, b = 0.4 * rng.normal(size=(6, 5)), rng.normal(size=6), rng.normal(size=5)
    w2 = np.zeros((6, 2, 5))
    w2[:, 1] = w
    potts = RBM(Potts(np.stack([np.zeros(6), a], axis=1)), Bernoulli(b), w2)
    r = estimate(potts, "tap3", tol=1e-12)
    assert r.log_z == pytest.approx(estimate(RBM(w, a, b), "tap3", tol=1e-12).log_z, abs=1e-9)
    assert r.diagnostics["terms"]["tap3"] != 0.0
    gb = make_model("gaussian", "bernoulli", 5, 4, 1, 1.0, 0.3)
    g3 = estimate(gb, "tap3", tol=1e-12)
    assert g3.log_z == pytest.approx(estimate(gb, "tap2", tol=1e-12).log_z, abs=1e-12)
    assert g3.diagnostics["terms"]["tap3"] == 0.0


@pytest.mark.parametrize("vt, ht", [("gaussian", "bernoulli"), ("potts", "bernoulli")])
def test_pt_and_ti_with_a_data_base_model(vt, ht):
    """--data: the base model is fitted to the rows (and the ladders start from them when the chains
    hold the visible layer); the estimates stay within their error of exact."""
    model = make_model(vt, ht, 6, 4, 21, 1.0, 0.35)
    rng = np.random.default_rng(4)
    data = rng.normal(size=(40, 6)) if vt == "gaussian" else rng.integers(0, 3, size=(40, 6)).astype(float)
    exact = log_partition(model)
    pt = estimate(model, "pt", samples=600, burn_in=200, data=data, seed=1)
    ti = estimate(model, "ti", chains=40, steps=60, sweeps=8, data=data, seed=1)
    for r in (pt, ti):
        assert not r.diagnostics["base_model"].startswith("uniform")
        assert abs(r.log_z - exact) < 4 * r.stderr + 0.02
