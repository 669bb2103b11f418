"""Bernoulli units: x in {0, 1}, E(x) = -theta x.

    Gamma_beta(I) = softplus(beta (theta + I)),   mean sigmoid(beta (theta + I)),   variance m (1 - m).
"""

from __future__ import annotations

import numpy as np

from ..numerics import logit, sigmoid, softplus, xlogx
from .base import Layer


class Bernoulli(Layer):
    """Units in {0, 1} with biases theta (n,)."""

    name = "bernoulli"
    values = np.array([0.0, 1.0])

    def energy(self, x, beta=1.0):
        return -beta * (np.asarray(x, dtype=np.float64) @ self.bias)

    def cgf(self, field, beta=1.0):
        return softplus(beta * (field + self.bias)).sum(axis=-1)

    def mean(self, field, beta=1.0):
        return sigmoid(beta * (field + self.bias))

    def var(self, field, beta=1.0):
        m = self.mean(field, beta)
        return m * (1.0 - m)

    def sample(self, field, rng, beta=1.0):
        p = self.mean(field, beta)
        return (rng.random(p.shape) < p).astype(np.float64)

    def neg_conjugate(self, m, var=None, beta=1.0):
        m = np.asarray(m, dtype=np.float64)
        return -(xlogx(m) + xlogx(1.0 - m)).sum(axis=-1) + beta * (m @ self.bias)

    def tilted(self, b, a, beta=1.0):
        # x^2 = x: the quadratic term is linear.
        m = sigmoid(beta * self.bias + b - 0.5 * np.asarray(a))
        return m, m * (1.0 - m)

    def natural(self, m, beta=1.0):
        return logit(np.clip(m, 1e-300, 1.0 - 1e-16))

    def moment_variance(self, m):
        return m * (1.0 - m)

    def log_prob_factorized(self, x, lam, beta=1.0):
        return (np.asarray(x, dtype=np.float64) * lam).sum(axis=-1) - softplus(lam).sum(axis=-1)

    def check_data(self, x, where):
        from ..data import prepare

        return prepare(x, where)
