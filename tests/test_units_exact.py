"""Exact ln Z for every combination of unit types, against brute force computed another way.

Finite layers: the sum over every joint state of exp(-beta E(v, h)) straight from the energy.
Gaussian layers: each Gaussian unit integrated numerically on a fine grid given the finite layer's
state (the units are independent given it); Gaussian-Gaussian: the determinant formula on the full
joint precision matrix (and a 2-D quadrature). Also: the spin <-> 0/1 identity, and the 2D Ising
torus written with spin units against Kaufman's finite-lattice formula.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fecli.errors import RefusedError
from fecli.estimators.exact import estimate_exact, log_partition
from fecli.layers import Bernoulli, Gaussian, Potts, Spin
from fecli.model import RBM, binary_equivalent

FINITE = ("bernoulli", "spin", "potts")
HIDDEN = ("bernoulli", "spin", "gaussian")


def make_layer(kind: str, n: int, rng: np.random.Generator, scale: float = 1.0, q: int = 3):
    if kind == "bernoulli":
        return Bernoulli(scale * rng.normal(size=n))
    if kind == "spin":
        return Spin(scale * rng.normal(size=n))
    if kind == "potts":
        return Potts(scale * rng.normal(size=(n, q)))
    return Gaussian(scale * rng.normal(size=n), rng.uniform(1.0, 3.0, size=n))


def make_model(vt: str, ht: str, nv: int, nh: int, seed: int, scale: float = 1.0, w_scale: float = 0.5) -> RBM:
    rng = np.random.default_rng(seed)
    vis, hid = make_layer(vt, nv, rng, scale), make_layer(ht, nh, rng, scale)
    w = w_scale * rng.normal(size=vis.weight_shape + hid.weight_shape)
    if vt == "gaussian" and ht == "gaussian":  # keep it normalisable
        w *= 0.5 * math.sqrt(min(vis.precision.min(), hid.precision.min())) / max(1.0, np.abs(w).sum(axis=1).max())
    return RBM(vis, hid, w, name=f"{vt}-{ht}")


def states(layer):
    return np.array(list(itertools.product(layer.values, repeat=layer.n)), dtype=float)


def gaussian_units_log_integral(layer: Gaussian, linear: np.ndarray, beta: float) -> float:
    """ln prod_i integral exp(beta (-gamma_i x^2 / 2 + linear_i x)) dx, each on a fine grid."""
    grid = np.linspace(-60.0, 60.0, 240001)
    total = 0.0
    for g, c in zip(layer.precision, linear):
        y = beta * (-0.5 * g * grid**2 + c * grid)
        top = y.max()
        total += top + math.log(np.trapezoid(np.exp(y - top), grid))
    return total


def brute_log_z(model: RBM, beta: float) -> float:
    vis, hid = model.visible, model.hidden
    if vis.finite and hid.finite:
        v, h = states(vis), states(hid)
        neg = -(vis.energy(v)[:, None] + hid.energy(h)[None, :]) + vis.features(v) @ model.weights2d @ hid.features(h).T
        x = beta * neg
        return float(x.max() + math.log(np.exp(x - x.max()).sum()))
    if vis.finite or hid.finite:
        fin, gau, w = (vis, hid, model.weights2d) if vis.finite else (hid, vis, model.weights2d.T)
        terms = [-beta * fin.energy(s[None])[0] + gaussian_units_log_integral(gau, gau.bias + fin.features(s[None])[0] @ w, beta)
                 for s in states(fin)]
        terms = np.array(terms)
        return float(terms.max() + math.log(np.exp(terms - terms.max()).sum()))
    # Gaussian-Gaussian: the full joint precision matrix
    p = beta * np.block([[np.diag(vis.precision), -model.weights2d], [-model.weights2d.T, np.diag(hid.precision)]])
    c = beta * np.concatenate([vis.bias, hid.bias])
    n = p.shape[0]
    return float(0.5 * n * math.log(2 * math.pi) - 0.5 * np.linalg.slogdet(p)[1] + 0.5 * c @ np.linalg.solve(p, c))


COMBINATIONS = [(v, h) for v in (*FINITE, "gaussian") for h in HIDDEN]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), nv=st.integers(1, 4), nh=st.integers(1, 3),
       scale=st.sampled_from([0.3, 1.0, 3.0]), beta=st.sampled_from([1.0, 0.5]))
@pytest.mark.parametrize("vt, ht", COMBINATIONS)
def test_exact_matches_brute_force_for_every_combination(vt, ht, seed, nv, nh, scale, beta):
    if "gaussian" in (vt, ht) and (vt, ht) != ("gaussian", "gaussian"):
        nv, nh = (min(nv, 3), min(nh, 2))  # the quadrature runs per finite state
    model = make_model(vt, ht, nv, nh, seed, scale, 0.5 * scale)
    got = log_partition(model, beta)
    assert got == pytest.approx(brute_log_z(model, beta), rel=1e-9, abs=1e-7)
    for layer in ("visible", "hidden"):
        if getattr(model, layer).finite:
            assert log_partition(model, beta, layer) == pytest.approx(got, rel=1e-10, abs=1e-9)


def test_gaussian_gaussian_against_2d_quadrature():
    model = RBM(Gaussian(np.array([0.4]), np.array([1.5])), Gaussian(np.array([-0.3]), np.array([2.0])),
                np.array([[0.9]]))
    x = np.linspace(-25, 25, 2501)
    v, h = np.meshgrid(x, x, indexing="ij")
    e = model.energy(v.reshape(-1, 1), h.reshape(-1, 1)).reshape(v.shape)
    z = np.trapezoid(np.trapezoid(np.exp(-e), x, axis=1), x)
    assert log_partition(model) == pytest.approx(math.log(z), abs=1e-8)


def test_non_normalisable_gaussian_gaussian_is_refused_never_a_number():
    model = RBM(Gaussian(np.zeros(2), np.ones(2)), Gaussian(np.zeros(1), np.ones(1)), np.array([[0.8], [0.8]]))
    with pytest.raises(RefusedError, match="not normalisable.*not positive definite"):
        log_partition(model)
    with pytest.raises(RefusedError, match="not normalisable"):
        estimate_exact(model)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("beta", [1.0, 0.4])
def test_spin_model_is_a_01_model_with_a_known_offset(seed, beta):
    """x = 2y - 1 maps a spin-spin RBM to the 0/1 RBM W' = 4W, a' = 2a - 2W1, b' = 2b - 2W^T 1, and
    -E_spin(x, h) = -E_01(y, z) + c with c = 1^T W 1 - sum a - sum b, so ln Z_spin = ln Z_01 + beta c."""
    rng = np.random.default_rng(seed)
    w, a, b = rng.normal(size=(5, 4)), rng.normal(size=5), rng.normal(size=4)
    spin = RBM(Spin(a), Spin(b), w)
    zero_one = RBM(4 * w, 2 * a - 2 * w.sum(axis=1), 2 * b - 2 * w.sum(axis=0))
    c = w.sum() - a.sum() - b.sum()
    assert brute_log_z(spin, beta) == pytest.approx(brute_log_z(zero_one, beta) + beta * c, rel=1e-12)
    assert log_partition(spin, beta) == pytest.approx(brute_log_z(spin, beta), rel=1e-12)
    mapped, offset = binary_equivalent(spin)
    np.testing.assert_allclose(mapped.weights, zero_one.weights)
    np.testing.assert_allclose(mapped.visible_bias, zero_one.visible_bias)
    np.testing.assert_allclose(mapped.hidden_bias, zero_one.hidden_bias)
    assert offset == pytest.approx(c)
    # free-energy differences (hence probabilities) are the same under the map
    x = np.where(rng.random((6, 5)) < 0.5, -1.0, 1.0)
    diff = spin.free_energy(x, beta) - mapped.free_energy((x + 1) / 2, beta)
    np.testing.assert_allclose(diff, diff[0], atol=1e-10)


def kaufman_log_z(k: float, m: int, n: int) -> float:
    """ln Z of the m x n Ising torus with coupling K = beta J (Kaufman 1949, Phys. Rev. 76, 1232):

        Z = 1/2 (2 sinh 2K)^(mn/2) (Z1 + Z2 + Z3 + Z4),
        Z1, Z2 = prod_{r<n} 2 cosh, 2 sinh (m gamma_{2r+1} / 2),  Z3, Z4 = the same with gamma_{2r},
        cosh gamma_l = cosh 2K coth 2K - cos(pi l / n) (gamma_l > 0),  gamma_0 = 2K + ln tanh K.
    """
    def gamma(l: int) -> float:
        if l == 0:
            return 2 * k + math.log(math.tanh(k))
        return math.acosh(math.cosh(2 * k) / math.tanh(2 * k) - math.cos(math.pi * l / n))

    logs, signs = [], []
    for parity, f in ((1, math.cosh), (1, math.sinh), (0, math.cosh), (0, math.sinh)):
        values = [2 * f(m * gamma(2 * r + parity) / 2) for r in range(n)]
        signs.append(math.prod(math.copysign(1.0, v) for v in values))
        logs.append(sum(math.log(abs(v)) for v in values))
    top = max(logs)
    total = sum(s * math.exp(lg - top) for lg, s in zip(logs, signs))
    return math.log(0.5) + 0.5 * m * n * math.log(2 * math.sinh(2 * k)) + top + math.log(total)


def ising_torus(side: int) -> RBM:
    """The side x side Ising torus (J = 1, no field) as a spin RBM: black sites visible, white hidden."""
    black = [(i, j) for i in range(side) for j in range(side) if (i + j) % 2 == 0]
    white = {s: k for k, s in enumerate((i, j) for i in range(side) for j in range(side) if (i + j) % 2 == 1)}
    w = np.zeros((len(black), len(white)))
    for row, (i, j) in enumerate(black):
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            w[row, white[((i + di) % side, (j + dj) % side)]] += 1.0
    return RBM(Spin(np.zeros(len(black))), Spin(np.zeros(len(white))), w, name=f"ising{side}")


@pytest.mark.parametrize("k", [0.25, 0.4406868, 0.7])
def test_ising_torus_with_spin_units_matches_kaufman(k):
    """Disordered, critical and ordered couplings on the 6 x 6 torus (2^18 states enumerated)."""
    assert log_partition(ising_torus(6), beta=k) == pytest.approx(kaufman_log_z(k, 6, 6), rel=1e-12)


def test_kaufman_formula_itself_against_enumeration():
    side, k = 4, 0.55
    s = np.array(list(itertools.product((-1.0, 1.0), repeat=side * side))).reshape(-1, side, side)
    e = -(s * np.roll(s, 1, 1)).sum(axis=(1, 2)) - (s * np.roll(s, 1, 2)).sum(axis=(1, 2))
    x = -k * e
    assert kaufman_log_z(k, side, side) == pytest.approx(x.max() + math.log(np.exp(x - x.max()).sum()), rel=1e-12)


def test_potts_enumeration_of_the_visible_layer_and_limits():
    model = make_model("potts", "gaussian", 4, 2, 0)
    assert estimate_exact(model).params["layer"] == "visible"
    assert estimate_exact(model).diagnostics["states"] == 3**4
    big = make_model("potts", "bernoulli", 30, 60, 1)
    with pytest.raises(RefusedError, match=r"3\^30 .*states of the visible layer"):
        estimate_exact(big)
    with pytest.raises(RefusedError, match="cannot enumerate the visible layer.*gaussian"):
        log_partition(make_model("gaussian", "bernoulli", 3, 2, 2), layer="visible")
