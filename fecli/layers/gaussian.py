"""Gaussian units: x real, E(x) = gamma x^2 / 2 - theta x, precision gamma > 0.

    Gamma_beta(I) = beta (theta + I)^2 / (2 gamma) + (1/2) ln(2 pi / (beta gamma)),
    mean (theta + I) / gamma,   variance 1 / (beta gamma).

A density, not a probability: ln p(v) of Gaussian visible units is in nats per unit volume.
"""

from __future__ import annotations

import math

import numpy as np

from .base import Layer

LOG_2PI = math.log(2.0 * math.pi)


class Gaussian(Layer):
    """Real units with biases theta (n,) and precisions gamma (n,) > 0."""

    name = "gaussian"
    finite = False
    values = np.zeros(0)

    def __init__(self, bias, precision):
        super().__init__(bias)
        self.precision = np.ascontiguousarray(precision, dtype=np.float64)
        if self.precision.shape != self.bias.shape:
            raise ValueError(f"precision must have shape {self.bias.shape}, got {self.precision.shape}")
        if not np.all(self.precision > 0):
            raise ValueError("precision must be > 0 for every unit")

    def parameters(self):
        return {"bias": self.bias, "precision": self.precision}

    def describe(self):
        p = self.precision
        return {**super().describe(), "precision_min": float(p.min()), "precision_max": float(p.max())}

    def energy(self, x, beta=1.0):
        x = np.asarray(x, dtype=np.float64)
        return beta * ((0.5 * x * x) @ self.precision - x @ self.bias)

    def cgf(self, field, beta=1.0):
        u = field + self.bias
        return (beta * 0.5 * (u * u / self.precision)).sum(axis=-1) + 0.5 * np.log(
            2.0 * math.pi / (beta * self.precision)).sum()

    def mean(self, field, beta=1.0):
        return (field + self.bias) / self.precision

    def var(self, field, beta=1.0):
        return np.broadcast_to(1.0 / (beta * self.precision), np.shape(field)).copy()

    def sample(self, field, rng, beta=1.0):
        m = self.mean(field, beta)
        return m + rng.standard_normal(m.shape) / np.sqrt(beta * self.precision)

    def neg_conjugate(self, m, var=None, beta=1.0):
        m = np.asarray(m, dtype=np.float64)
        p = beta * self.precision
        c = 1.0 / p if var is None else np.asarray(var, dtype=np.float64)
        return (-0.5 * p * (m * m + c) + beta * self.bias * m + 0.5 * (np.log(c) + LOG_2PI + 1.0)).sum(axis=-1)

    def tilted(self, b, a, beta=1.0):
        p = beta * self.precision + a
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(p > 0, 1.0 / np.where(p > 0, p, 1.0), np.nan)
        return (beta * self.bias + b) * inv, np.broadcast_to(inv, np.shape(b)).copy()

    def natural(self, m, beta=1.0):
        return beta * self.precision * m

    def moment_variance(self, m):
        return None

    def log_prob_factorized(self, x, lam, beta=1.0):
        """ln q(x) for q ~ exp(lam x - beta gamma x^2 / 2): Gaussian with this layer's precision at beta."""
        x = np.asarray(x, dtype=np.float64)
        p = beta * self.precision
        return (lam * x - 0.5 * p * x * x - 0.5 * lam * lam / p + 0.5 * np.log(p) - 0.5 * LOG_2PI).sum(axis=-1)

    def check_data(self, x, where):
        return self._check_width(x, where)
