"""Spin units: x in {-1, +1}, E(x) = -theta x.

    Gamma_beta(I) = ln(2 cosh(beta (theta + I))),   mean tanh(beta (theta + I)),   variance 1 - m^2.

With x = 2y - 1 a spin layer is a 0/1 layer with doubled couplings and shifted biases; see
:func:`fecli.model.binary_equivalent` for the exact map of a whole model and its ln Z offset.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataFileError
from ..numerics import log2cosh, sigmoid, xlogx
from .base import Layer


class Spin(Layer):
    """Units in {-1, +1} with biases theta (n,)."""

    name = "spin"
    values = np.array([-1.0, 1.0])

    def energy(self, x, beta=1.0):
        return -beta * (np.asarray(x, dtype=np.float64) @ self.bias)

    def cgf(self, field, beta=1.0):
        return log2cosh(beta * (field + self.bias)).sum(axis=-1)

    def mean(self, field, beta=1.0):
        return np.tanh(beta * (field + self.bias))

    def var(self, field, beta=1.0):
        m = self.mean(field, beta)
        return 1.0 - m * m

    def sample(self, field, rng, beta=1.0):
        p_up = sigmoid(2.0 * beta * (field + self.bias))
        return np.where(rng.random(p_up.shape) < p_up, 1.0, -1.0)

    def neg_conjugate(self, m, var=None, beta=1.0):
        m = np.asarray(m, dtype=np.float64)
        p = 0.5 * (1.0 + m)
        return -(xlogx(p) + xlogx(1.0 - p)).sum(axis=-1) + beta * (m @ self.bias)

    def tilted(self, b, a, beta=1.0):
        # x^2 = 1: the quadratic term is a constant.
        m = np.tanh(beta * self.bias + b + 0.0 * np.asarray(a))
        return m, 1.0 - m * m

    def natural(self, m, beta=1.0):
        return np.arctanh(np.clip(m, -1.0 + 1e-16, 1.0 - 1e-16))

    def moment_variance(self, m):
        return 1.0 - m * m

    def log_prob_factorized(self, x, lam, beta=1.0):
        return (np.asarray(x, dtype=np.float64) * lam).sum(axis=-1) - log2cosh(lam).sum(axis=-1)

    def check_data(self, x, where):
        x = self._check_width(x, where)
        if not np.all((x == -1) | (x == 1)):
            if np.all((x == 0) | (x == 1)):
                raise DataFileError(f"{where} holds 0/1 values, but the model's units are spins (+-1); "
                                    f"map them with 2x - 1, or use a bernoulli model.")
            lo, hi = float(x.min()), float(x.max())
            raise DataFileError(f"{where} has values in [{lo:g}, {hi:g}] that are not spins -1/+1.")
        return x
