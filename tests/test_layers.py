"""Each unit type defined once (fecli.layers): its cgf, moments, sampling, Legendre transform and data checks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fecli.errors import DataFileError
from fecli.layers import Bernoulli, Gaussian, Potts, Spin, make_layer

BETAS = (1.0, 0.6)


def layers(rng):
    return {
        "bernoulli": Bernoulli(rng.normal(size=3)),
        "spin": Spin(rng.normal(size=3)),
        "gaussian": Gaussian(rng.normal(size=3), rng.uniform(0.5, 2.0, size=3)),
        "potts": Potts(rng.normal(size=(3, 4))),
    }


def brute_cgf(layer, field, beta):
    """ln sum_x exp(-beta E(x) + beta field.phi(x)) by enumeration, or by a fine grid per Gaussian unit."""
    if layer.finite:
        states = np.array(list(itertools.product(layer.values, repeat=layer.n)))
        x = -layer.energy(states, beta) + beta * layer.features(states) @ field
        top = x.max()
        return top + math.log(np.exp(x - top).sum())
    total = 0.0
    for i in range(layer.n):
        grid = np.linspace(-40, 40, 400001)
        g, t = layer.precision[i], layer.bias[i]
        y = -beta * (0.5 * g * grid**2 - t * grid) + beta * field[i] * grid
        top = y.max()
        total += top + math.log(np.trapezoid(np.exp(y - top), grid))
    return total


@pytest.mark.parametrize("name", ["bernoulli", "spin", "gaussian", "potts"])
@pytest.mark.parametrize("beta", BETAS)
def test_cgf_is_the_log_partition_and_its_derivatives_the_moments(name, beta):
    rng = np.random.default_rng(1)
    layer = layers(rng)[name]
    field = rng.normal(size=layer.dim)
    assert layer.cgf(field, beta) == pytest.approx(brute_cgf(layer, field, beta), abs=1e-8)
    # mean = dGamma / d(beta I), variance = the second derivative (central differences)
    h = 1e-5
    for k in range(layer.dim):
        e = np.zeros(layer.dim)
        e[k] = h
        up, down, mid = layer.cgf(field + e, beta), layer.cgf(field - e, beta), layer.cgf(field, beta)
        assert layer.mean(field, beta)[k] == pytest.approx((up - down) / (2 * h * beta), abs=1e-6)
        assert layer.var(field, beta)[k] == pytest.approx((up - 2 * mid + down) / (h * beta) ** 2, abs=2e-4)


@pytest.mark.parametrize("name", ["bernoulli", "spin", "gaussian", "potts"])
def test_samples_have_the_layer_mean(name):
    rng = np.random.default_rng(2)
    layer = layers(rng)[name]
    field = rng.normal(size=layer.dim)
    x = layer.sample(np.broadcast_to(field, (40000, layer.dim)), np.random.default_rng(3), 0.8)
    assert x.shape == (40000, layer.n)
    if layer.finite:
        assert set(np.unique(x)) <= set(layer.values)
    mean = layer.features(x).mean(axis=0)
    se = np.sqrt(layer.var(field, 0.8) / x.shape[0])
    assert np.all(np.abs(mean - layer.mean(field, 0.8)) < 5 * se + 1e-12)


@pytest.mark.parametrize("name", ["bernoulli", "spin", "gaussian", "potts"])
def test_neg_conjugate_is_the_legendre_transform(name):
    """At q = p(x | I): E_q[-beta E] + H(q) = Gamma(I) - beta I.m (the variational identity mean field uses)."""
    rng = np.random.default_rng(4)
    layer = layers(rng)[name]
    field = rng.normal(size=layer.dim)
    m = layer.mean(field, 0.7)
    var = layer.var(field, 0.7) if name == "gaussian" else None
    assert layer.neg_conjugate(m, var, 0.7) == pytest.approx(layer.cgf(field, 0.7) - 0.7 * field @ m, abs=1e-10)
    # the tilted distribution with a = 0 is the conditional distribution
    mean, v = layer.tilted(0.7 * field, 0.0, 0.7)
    np.testing.assert_allclose(mean, m, atol=1e-12)
    np.testing.assert_allclose(v, layer.var(field, 0.7), atol=1e-12)


@pytest.mark.parametrize("name", ["bernoulli", "spin", "gaussian", "potts"])
def test_factorized_log_prob_is_normalised_and_natural_inverts_the_mean(name):
    rng = np.random.default_rng(5)
    layer = layers(rng)[name]
    m = layer.mean(rng.normal(size=layer.dim), 1.0)
    lam = layer.natural(m, 1.0)
    if layer.finite:
        states = np.array(list(itertools.product(layer.values, repeat=layer.n)))
        p = np.exp(layer.log_prob_factorized(states, lam, 1.0))
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(p @ layer.features(states), m, atol=1e-10)
    else:
        # one unit, by quadrature: normalised, with mean m
        one = Gaussian(layer.bias[:1], layer.precision[:1])
        xs = np.linspace(-40, 40, 400001)
        vals = np.exp(one.log_prob_factorized(xs[:, None], lam[:1]))
        assert np.trapezoid(vals, xs) == pytest.approx(1.0, abs=1e-8)
        assert np.trapezoid(vals * xs, xs) == pytest.approx(m[0], abs=1e-8)


def test_potts_projection_equals_one_hot_product():
    rng = np.random.default_rng(6)
    layer = Potts(rng.normal(size=(5, 3)))
    w = rng.normal(size=(layer.dim, 4))
    x = rng.integers(0, 3, size=(7, 5)).astype(float)
    np.testing.assert_allclose(layer.project(x, w), layer.features(x) @ w, atol=1e-12)


@pytest.mark.parametrize("layer, rows, message", [
    (Bernoulli(np.zeros(3)), [[1, -1, 1]], "holds \\+-1 values, but the model's units are bernoulli"),
    (Spin(np.zeros(3)), [[1, 0, 1]], "holds 0/1 values, but the model's units are spins"),
    (Spin(np.zeros(3)), [[1, 2, 1]], "not spins"),
    (Potts(np.zeros((3, 4))), [[0, 4, 1]], "row 0, column 1 holds 4, which is not a Potts state 0..3"),
    (Potts(np.zeros((3, 4))), [[0, 1.5, 1]], "not a Potts state"),
    (Gaussian(np.zeros(3), np.ones(3)), [[0, np.nan, 1]], "NaN or inf"),
])
def test_data_checks_say_what_is_wrong_in_one_line(layer, rows, message):
    with pytest.raises(DataFileError, match=message) as info:
        layer.check_data(np.array(rows, dtype=float), "data 'x.npy'")
    assert "\n" not in str(info.value)


def test_make_layer_and_bad_parameters():
    assert make_layer("spin", np.zeros(2)).name == "spin"
    with pytest.raises(ValueError, match="unknown unit type 'ising'"):
        make_layer("ising", np.zeros(2))
    with pytest.raises(ValueError, match="precision must be > 0"):
        Gaussian(np.zeros(2), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="q >= 2"):
        Potts(np.zeros((3, 1)))


def test_registry_names_the_same_unit_types_without_importing_numpy():
    import subprocess
    import sys

    from fecli import layers
    from fecli.estimators import units

    assert units.UNIT_TYPES == layers.UNIT_TYPES and units.HIDDEN_UNIT_TYPES == layers.HIDDEN_UNIT_TYPES
    code = "import sys, fecli.cli; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
