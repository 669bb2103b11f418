"""Naive mean field, TAP2 and TAP3: the physics is the test.

Checked against exact enumeration: the mean-field bound holds on many random models, the error
shrinks like eps^2 / eps^3 / eps^4 when W is scaled by eps (a wrong 4/3 TAP3 coefficient or a
missing TAP3 term fails this), fixed points satisfy stationarity, and the EMF gradients match
finite differences of the converged free energy.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fecli.errors import EstimationFailedError, InvalidOptionError
from fecli.estimators.exact import log_partition
from fecli.estimators.meanfield import (
    ScaledParams,
    estimate_mf,
    estimate_tap2,
    estimate_tap3,
    naive_mean_field,
    neg_gamma,
    neg_gamma_terms,
    sigmoid,
    solve_multistart,
    stationarity_residual,
    tap_fixed_points,
    tap_gradients,
)
from fecli.model import RBM


def random_model(seed: int, nv: int = 8, nh: int = 6, w_scale: float = 1.0, bias_scale: float = 1.0) -> RBM:
    rng = np.random.default_rng(seed)
    return RBM(rng.normal(0, w_scale, (nv, nh)), rng.normal(0, bias_scale, nv), rng.normal(0, bias_scale, nh))


def fitted_slope(eps: np.ndarray, errors: np.ndarray) -> float:
    return float(np.polyfit(np.log(eps), np.log(np.abs(errors)), 1)[0])


# ---------------------------------------------------------------------------------------------
# The bound


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    nv=st.integers(1, 7),
    nh=st.integers(1, 7),
    w_scale=st.floats(0.0, 3.0),
    bias_scale=st.floats(0.0, 3.0),
    beta=st.floats(0.2, 3.0),
)
def test_mean_field_never_exceeds_exact(seed, nv, nh, w_scale, bias_scale, beta):
    model = random_model(seed, nv, nh, w_scale, bias_scale)
    exact = log_partition(model, beta)
    result = estimate_mf(model, beta=beta, starts=3, max_iter=300, seed=seed)
    assert result.kind == "lower_bound"
    assert result.log_z <= exact + 1e-9 * max(1.0, abs(exact))
    # The Gibbs bound holds at ANY magnetisations, not only at fixed points.
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(size=(5, nv)), rng.uniform(size=(5, nh))
    assert np.all(neg_gamma(model, x, y, order=1, beta=beta) <= exact + 1e-9 * max(1.0, abs(exact)))


@pytest.mark.parametrize("name", ["weak_24x12", "strong_24x12", "digits_64x16"])
def test_shipped_models_mf_below_exact_and_tap_closer_on_weak(name):
    from fecli.io import load_model

    model = load_model(f"sample_models/{name}.h5")
    exact = log_partition(model)
    mf = estimate_mf(model)
    assert mf.log_z <= exact
    tap2, tap3 = estimate_tap2(model), estimate_tap3(model)
    assert tap2.kind == tap3.kind == "approximation"
    assert tap2.stderr is None and tap3.stderr is None
    if name == "weak_24x12":
        assert abs(tap2.log_z - exact) < 0.01 * abs(mf.log_z - exact)
        assert abs(tap3.log_z - exact) < 0.01 * abs(mf.log_z - exact)


# ---------------------------------------------------------------------------------------------
# eps-scaling: the order of each approximation


EPS = np.geomspace(0.01, 0.06, 5)


def _errors_vs_eps(order: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    w0, a, b = rng.normal(0, 1, (8, 6)), rng.normal(0, 1, 8), rng.normal(0, 1, 6)
    errors, terms = [], []
    for eps in EPS:
        model = RBM(eps * w0, a, b)
        fp = tap_fixed_points(model, sigmoid(a), order=order, tol=1e-14, max_iter=20000)
        assert fp.converged[0]
        exact = log_partition(model)
        errors.append(fp.neg_gamma[0] - exact)
        terms.append(fp.terms[0])
    return np.array(errors), np.array(terms)


@pytest.mark.parametrize("order,slope", [(1, 2.0), (2, 3.0), (3, 4.0)])
def test_error_scales_with_the_order(order, slope):
    errors, _ = _errors_vs_eps(order)
    assert abs(fitted_slope(EPS, errors) - slope) < 0.25


def test_published_tap3_mistakes_break_the_scaling():
    """A 4/3 coefficient, or the TAP3 term left out of the value, leaves an eps^3 error."""
    errors, terms = _errors_vs_eps(3)
    assert fitted_slope(EPS, errors) > 3.75
    coefficient_4_3 = errors + terms[:, 2]  # 4/3 = 2/3 + 2/3
    term_left_out = errors - terms[:, 2]
    assert fitted_slope(EPS, coefficient_4_3) < 3.4
    assert fitted_slope(EPS, term_left_out) < 3.4


# ---------------------------------------------------------------------------------------------
# Fixed points


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("tol", [1e-5, 1e-10])
def test_fixed_points_satisfy_stationarity(order, tol):
    model = random_model(11, 10, 7, w_scale=0.8)
    fp = solve_multistart(model, order, beta=1.3, tol=tol, max_iter=5000, damping=0.5, starts=4, data=None, seed=1)
    assert fp.converged.all()
    residual = stationarity_residual(model, fp.x, fp.y, order, beta=1.3)
    assert np.all(residual < tol)
    np.testing.assert_allclose(residual, fp.residual, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_fixed_point_is_a_stationary_point_of_minus_gamma(order):
    """Independent of the update formula: the finite-difference gradient of -Gamma vanishes."""
    model = random_model(5, 6, 5, w_scale=0.7)
    fp = tap_fixed_points(model, np.full(6, 0.5), order=order, tol=1e-13, max_iter=20000)
    assert fp.converged[0]
    x, y = fp.x[0], fp.y[0]
    h = 1e-6
    for layer, vec in (("x", x), ("y", y)):
        for i in range(vec.size):
            up, down = vec.copy(), vec.copy()
            up[i] += h
            down[i] -= h
            args_up = (up, y) if layer == "x" else (x, up)
            args_down = (down, y) if layer == "x" else (x, down)
            grad = (neg_gamma(model, *args_up, order=order) - neg_gamma(model, *args_down, order=order)) / (2 * h)
            assert abs(grad) < 1e-6


@pytest.mark.parametrize("order", [1, 2, 3])
def test_emf_gradients_match_the_total_derivative(order):
    """tap_gradients = d ln Z_TAP / d(parameters), the fixed point re-solved after each nudge."""
    model = random_model(3, 5, 4, w_scale=0.6)
    beta = 1.4
    x0 = np.full(5, 0.5)
    fp = tap_fixed_points(model, x0, order=order, beta=beta, tol=1e-13, max_iter=20000)
    grads = tap_gradients(model, fp.x, fp.y, order=order, beta=beta)
    h = 1e-5

    def value(m):
        return tap_fixed_points(m, fp.x, fp.y, order=order, beta=beta, tol=1e-13, max_iter=20000).neg_gamma[0]

    for (i, j) in [(0, 0), (2, 3), (4, 1)]:
        wp, wm = model.weights.copy(), model.weights.copy()
        wp[i, j] += h
        wm[i, j] -= h
        fd = (value(RBM(wp, model.visible_bias, model.hidden_bias))
              - value(RBM(wm, model.visible_bias, model.hidden_bias))) / (2 * h)
        assert fd == pytest.approx(grads["weights"][i, j], abs=1e-6)
    ap, am = model.visible_bias.copy(), model.visible_bias.copy()
    ap[1] += h
    am[1] -= h
    fd = (value(RBM(model.weights, ap, model.hidden_bias)) - value(RBM(model.weights, am, model.hidden_bias))) / (2 * h)
    assert fd == pytest.approx(grads["visible_bias"][1], abs=1e-6)


def test_tap_fixed_points_batch_from_persistent_starts():
    model = random_model(2, 6, 4, w_scale=0.5)
    rng = np.random.default_rng(0)
    starts = rng.uniform(size=(7, 6))
    fp = tap_fixed_points(model, starts, order=2, tol=1e-10)
    assert fp.x.shape == (7, 6) and fp.y.shape == (7, 4)
    assert fp.converged.all()
    assert fp.matvecs > 0
    # Restarting from the fixed points needs no further sweep.
    again = tap_fixed_points(model, fp.x, fp.y, order=2, tol=1e-10)
    assert np.all(again.iterations == 0)
    with pytest.raises(InvalidOptionError):
        tap_fixed_points(model, np.full(5, 0.5))
    with pytest.raises(InvalidOptionError):
        tap_fixed_points(model, np.full(6, 1.5))


def test_naive_mean_field_api():
    model = random_model(4, 6, 5, w_scale=0.5)
    sol = naive_mean_field(model, tol=1e-12)
    x, y = sol
    assert x is sol.x and y is sol.y
    assert x.shape == (6,) and y.shape == (5,)
    assert sol.converged and sol.residual < 1e-12
    assert sol.log_z_bound <= log_partition(model)
    assert sol.log_z_bound == pytest.approx(neg_gamma(model, x, y, order=1))
    # Naive MF stationarity written out: x = sigma(a + W y), y = sigma(b + W^T x).
    np.testing.assert_allclose(x, sigmoid(model.visible_bias + model.weights @ y), atol=1e-11)
    np.testing.assert_allclose(y, sigmoid(model.hidden_bias + model.weights.T @ x), atol=1e-11)
    from_x = naive_mean_field(model, start=np.full(6, 0.3), tol=1e-12)
    from_pair = naive_mean_field(model, start=(np.full(6, 0.3), np.full(5, 0.7)), tol=1e-12)
    np.testing.assert_allclose(from_x.x, x, atol=1e-9)
    np.testing.assert_allclose(from_pair.x, x, atol=1e-9)
    hot = naive_mean_field(model, beta=0.5)
    assert hot.log_z_bound <= log_partition(model, 0.5)
    unfinished = naive_mean_field(random_model(4, 6, 5, w_scale=2.0), max_iter=1)
    assert not unfinished.converged and unfinished.iterations == 1


def test_beta_scales_the_parameters():
    model = random_model(8, 6, 5, w_scale=0.7)
    scaled = RBM(2.0 * model.weights, 2.0 * model.visible_bias, 2.0 * model.hidden_bias)
    for est in (estimate_mf, estimate_tap2, estimate_tap3):
        assert est(model, beta=2.0).log_z == pytest.approx(est(scaled).log_z, abs=1e-9)
        assert est(model, beta=2.0).free_energy == pytest.approx(-est(scaled).log_z / 2.0, abs=1e-9)


def two_state_model() -> RBM:
    """A ferromagnet-like RBM with two symmetric mean-field states (all on / all off)."""
    nv, nh, j = 6, 5, 1.5
    w = np.full((nv, nh), j)
    return RBM(w, np.full(nv, -j * nh / 2), np.full(nh, -j * nv / 2))


def test_distinct_fixed_points_and_log_sum_exp():
    model = two_state_model()
    exact = log_partition(model)
    best = estimate_mf(model, starts=12, seed=3)
    fps = best.diagnostics["fixed_points"]
    assert best.diagnostics["distinct_fixed_points"] >= 2
    assert best.log_z == max(f["neg_gamma"] for f in fps)
    assert best.log_z <= exact
    combined = estimate_mf(model, starts=12, seed=3, combine="logsumexp")
    assert combined.kind == "approximation"
    assert combined.log_z > best.log_z
    assert abs(combined.log_z - exact) < abs(best.log_z - exact)
    assert any("not a bound" in w for w in combined.warnings)


def test_data_starts():
    model = random_model(9, 6, 4, w_scale=0.5)
    data = (np.random.default_rng(0).uniform(size=(20, 6)) < 0.3).astype(float)
    result = estimate_tap2(model, data=data, starts=6)
    labels = result.diagnostics["start_labels"]
    assert labels[0] == "base-rate"
    assert sum(label.startswith("data row") for label in labels) == 3
    assert labels[-1] == "random"
    from fecli.errors import DataFileError

    with pytest.raises(DataFileError):
        estimate_tap2(model, data=data[:, :5])


def test_non_convergence_is_reported_never_silent():
    model = two_state_model()
    with pytest.raises(EstimationFailedError, match=r"did not converge from any of 3 start\(s\) within 2 iterations"):
        estimate_tap3(model, max_iter=2, starts=3)
    mf = estimate_mf(model, max_iter=2, starts=3)
    assert mf.kind == "lower_bound"
    assert mf.diagnostics["converged_starts"] == 0
    assert mf.diagnostics["converged"] is False
    assert any("did not converge" in w for w in mf.warnings)
    assert mf.log_z <= log_partition(model)


def test_oscillating_tap_gets_more_damping_and_converges():
    from fecli.io import load_model

    model = load_model("sample_models/digits_64x16.h5")
    result = estimate_tap2(model, damping=0.5)
    assert result.diagnostics["converged"]
    assert result.diagnostics["final_damping"] > 0.5
    assert result.diagnostics["residual"] < 1e-7


@pytest.mark.parametrize(
    "options,message",
    [
        ({"damping": 0.0}, "damping"),
        ({"damping": 1.0}, "damping"),
        ({"tol": 0.0}, "tol"),
        ({"tol": -1e-3}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"starts": 0}, "starts"),
        ({"combine": "mean"}, "combine"),
        ({"beta": -1.0}, "beta"),
    ],
)
def test_invalid_options(options, message):
    model = random_model(1, 4, 3)
    with pytest.raises(InvalidOptionError, match=message):
        estimate_tap3(model, **options)


def test_terms_are_separate_and_coefficient_is_two_thirds():
    model = random_model(6, 5, 4)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(size=5), rng.uniform(size=4)
    terms = neg_gamma_terms(ScaledParams.of(model, 1.0, 3), x, y, 3)[0]
    d = lambda p: (0.5 - p) * p * (1 - p)  # noqa: E731
    c = lambda p: p * (1 - p)  # noqa: E731
    w = model.weights
    assert terms[1] == pytest.approx(0.5 * np.sum(w**2 * np.outer(c(x), c(y))))
    assert terms[2] == pytest.approx(2.0 / 3.0 * np.sum(w**3 * np.outer(d(x), d(y))))
    assert neg_gamma(model, x, y, order=3) == pytest.approx(terms.sum())


def test_slow_drift_is_not_mistaken_for_oscillation():
    """A start drifting slowly away from a saddle must keep its damping (raising it stalls the drift)."""
    rng = np.random.default_rng(0)
    model = RBM(rng.normal(0, 0.2, (784, 500)), rng.normal(-1, 1, 784), rng.normal(-0.5, 0.5, 500))
    fp = solve_multistart(model, 1, beta=1.0, tol=1e-7, max_iter=3000, damping=0.3, starts=3, data=None, seed=0)
    assert fp.converged.all()
    assert np.all(fp.final_damping == 0.3)


# ---------------------------------------------------------------------------------------------
# The two solvers (compiled start by start, BLAS over the batch) and duplicate starts


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("w_scale, damping", [(0.3, 0.3), (2.5, 0.05)])  # contracting; oscillating, then damped
def test_compiled_and_batched_solvers_agree(order, w_scale, damping):
    from fecli.estimators.meanfield import _solve_batched, _solve_compiled

    model = random_model(4, 9, 7, w_scale=w_scale)
    params = ScaledParams.of(model, 0.8, order)
    rng = np.random.default_rng(1)
    x0, y0 = rng.uniform(size=(6, 9)), rng.uniform(size=(6, 7))
    a = _solve_compiled(params, order, x0.copy(), y0.copy(), 1e-9, 400, damping)
    b = _solve_batched(params, order, x0.copy(), y0.copy(), 1e-9, 400, damping)
    np.testing.assert_array_equal(a.iterations, b.iterations)
    np.testing.assert_array_equal(a.converged, b.converged)
    np.testing.assert_array_equal(a.final_damping, b.final_damping)
    assert a.matvecs == b.matvecs
    np.testing.assert_allclose(a.x, b.x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.neg_gamma, b.neg_gamma, rtol=1e-13)
    if w_scale > 1 and order > 1:
        assert (a.final_damping > damping).any()  # the oscillation path was taken (TAP, strong couplings)


def test_identical_starts_are_solved_once_with_the_same_outcome():
    model = random_model(5, 8, 5, w_scale=1.0)
    rng = np.random.default_rng(2)
    distinct = rng.uniform(size=(3, 8))
    starts = distinct[[0, 1, 0, 2, 1, 0]]
    fp = tap_fixed_points(model, starts, order=3, tol=1e-10)
    alone = [tap_fixed_points(model, row, order=3, tol=1e-10) for row in distinct]
    for s, k in enumerate([0, 1, 0, 2, 1, 0]):
        np.testing.assert_array_equal(fp.x[s], alone[k].x[0])
        assert fp.iterations[s] == alone[k].iterations[0]
        assert fp.neg_gamma[s] == pytest.approx(alone[k].neg_gamma[0], rel=1e-14)
    assert fp.matvecs == sum(a.matvecs for a in alone)  # the products spent: each distinct start once


@pytest.mark.parametrize("order", [1, 2, 3])
def test_gradients_with_duplicate_rows_match_the_plain_average(order, monkeypatch):
    """tap_gradients (compiled, or BLAS over distinct rows) equals the average of every row's own gradient."""
    import fecli.estimators.meanfield as mf

    model = random_model(7, 6, 4, w_scale=0.8)
    rng = np.random.default_rng(3)
    distinct_x, distinct_y = rng.uniform(size=(3, 6)), rng.uniform(size=(3, 4))
    pick = [2, 0, 2, 2, 1, 0, 2]
    x, y = distinct_x[pick], distinct_y[pick]
    one_by_one = [tap_gradients(model, x[s], y[s], order=order, beta=0.7) for s in range(len(pick))]
    expected = {k: np.mean([g[k] for g in one_by_one], axis=0) for k in one_by_one[0]}
    compiled = tap_gradients(model, x, y, order=order, beta=0.7)
    monkeypatch.setattr(mf, "KERNEL_MAX_WORK", 0)
    batched = tap_gradients(model, x, y, order=order, beta=0.7)
    same = tap_gradients(model, x[[0, 0, 0]], y[[0, 0, 0]], order=order, beta=0.7)
    for key in expected:
        np.testing.assert_allclose(compiled[key], expected[key], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(batched[key], expected[key], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(same[key], one_by_one[0][key], rtol=1e-13, atol=1e-15)
