"""Potts (categorical) units: x in {0, ..., q-1}, E(x) = -theta(x), one bias per state.

The feature map is the one-hot code of the state (dim = n q, unit i's features at i q .. i q + q-1),
so the weights of a Potts layer are W[i, x_i, mu] and the interaction is sum_i W[i, x_i, mu] h_mu.

    Gamma_beta(I) = logsumexp_x beta (theta(x) + I(x)),   mean = softmax, covariance diag(p) - p p^T.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataFileError
from ..numerics import logsumexp, xlogx
from .base import Layer


class Potts(Layer):
    """n units with q states each; biases theta (n, q)."""

    name = "potts"

    def __init__(self, bias):
        self.bias = np.ascontiguousarray(bias, dtype=np.float64)
        if self.bias.ndim != 2 or self.bias.shape[1] < 2:
            raise ValueError(f"a potts layer's bias must have shape (n_units, q) with q >= 2, got {self.bias.shape}")
        self.values = np.arange(self.q, dtype=np.float64)

    @property
    def q(self) -> int:
        return self.bias.shape[1]

    @property
    def dim(self):
        return self.n * self.q

    @property
    def weight_shape(self):
        return (self.n, self.q)

    def describe(self):
        return {**super().describe(), "states": self.q}

    def _sites(self, a):
        a = np.asarray(a, dtype=np.float64)
        return a.reshape(a.shape[:-1] + (self.n, self.q))

    def _codes(self, x):
        """Row-major feature indices i q + x_i, (..., n)."""
        return np.arange(self.n) * self.q + np.asarray(x).astype(np.intp)

    def features(self, x):
        x = np.asarray(x)
        out = np.zeros(x.shape[:-1] + (self.dim,))
        np.put_along_axis(out, self._codes(x), 1.0, axis=-1)
        return out

    def project(self, x, w2d):
        """sum_i w2d[i q + x_i]: gathered rows summed, in blocks of rows (about 2^22 floats at a time)."""
        codes = self._codes(np.atleast_2d(x))
        out = np.empty((codes.shape[0], w2d.shape[1]))
        block = max(1, (1 << 22) // max(1, self.n * w2d.shape[1]))
        for lo in range(0, codes.shape[0], block):
            out[lo:lo + block] = w2d[codes[lo:lo + block]].sum(axis=1)
        return out.reshape(np.shape(x)[:-1] + (w2d.shape[1],))

    def energy(self, x, beta=1.0):
        codes = self._codes(x)
        return -beta * np.take(self.bias.ravel(), codes).sum(axis=-1)

    def cgf(self, field, beta=1.0):
        return logsumexp(beta * (self._sites(field) + self.bias), axis=-1).sum(axis=-1)

    def _softmax(self, logits):
        z = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=-1, keepdims=True)
        return p.reshape(p.shape[:-2] + (self.dim,))

    def mean(self, field, beta=1.0):
        return self._softmax(beta * (self._sites(field) + self.bias))

    def var(self, field, beta=1.0):
        p = self.mean(field, beta)
        return p * (1.0 - p)

    def sample(self, field, rng, beta=1.0):
        """One uniform per site, the inverse CDF of softmax(beta (theta + I)) (a fused kernel)."""
        from ..kernels.categorical import categorical_draws

        logits = beta * (self._sites(field) + self.bias)
        shape = logits.shape[:-1]
        logits = np.ascontiguousarray(logits.reshape((-1,) + logits.shape[-2:]))
        u = np.ascontiguousarray(rng.random(shape + (1,)).reshape(logits.shape[:2]))
        out = np.empty(logits.shape[:2])
        categorical_draws(logits, u, out)
        return out.reshape(shape)

    def state_columns(self, w2d):
        return w2d.reshape(self.n, self.q, w2d.shape[1])

    def state_neg_energies(self):
        return self.bias.copy()

    def neg_conjugate(self, m, var=None, beta=1.0):
        m = np.asarray(m, dtype=np.float64)
        return -xlogx(m).sum(axis=-1) + beta * (m @ self.bias.ravel())

    def tilted(self, b, a, beta=1.0):
        logits = self._sites(b) + beta * self.bias - 0.5 * self._sites(np.broadcast_to(a, np.shape(b)))
        p = self._softmax(logits)
        return p, p * (1.0 - p)

    def natural(self, m, beta=1.0):
        return np.log(np.clip(m, 1e-300, None))

    def moment_variance(self, m):
        return m * (1.0 - m)

    def log_prob_factorized(self, x, lam, beta=1.0):
        codes = self._codes(x)
        lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), codes.shape[:-1] + (self.dim,))
        picked = np.take_along_axis(lam, codes, axis=-1).sum(axis=-1)
        return picked - logsumexp(self._sites(lam), axis=-1).sum(axis=-1)

    def check_data(self, x, where):
        x = self._check_width(x, where)
        bad = (x != np.round(x)) | (x < 0) | (x > self.q - 1)
        if bad.any():
            r, c = (int(i) for i in np.argwhere(bad)[0])
            raise DataFileError(f"{where}: row {r}, column {c} holds {x[r, c]:g}, which is not a Potts state "
                                f"0..{self.q - 1} (the model has q = {self.q}).")
        return x
