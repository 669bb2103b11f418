"""Numeric primitives on numpy arrays, defined once for all of fecli (float64, log domain).

The compiled (Numba) scalar versions of the same functions, for kernels, live in
:mod:`fecli.kernels.primitives`; this module does not import Numba, so the model type and
the file readers stay cheap to import.

* ``softplus(x) = ln(1 + e^x)``, as max(x, 0) + log1p(exp(-|x|)) (no overflow);
* ``sigmoid(x) = 1 / (1 + e^-x)``, stable for large |x|;
* ``log2cosh(x) = ln(2 cosh x)``, as |x| + log1p(exp(-2|x|));
* ``logsumexp(x, axis)`` and ``log_mean_exp(x)``, shifted by the maximum;
* ``xlogx(p) = p ln p`` with 0 ln 0 = 0, and ``logit(p)``.
"""

from __future__ import annotations

import math

import numpy as np


def softplus(x: np.ndarray) -> np.ndarray:
    """softplus(x) = ln(1 + e^x), computed as max(x, 0) + log1p(exp(-|x|)) (no overflow)."""
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + e^-x), stable for large |x|."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def log2cosh(x: np.ndarray) -> np.ndarray:
    """ln(2 cosh x) = |x| + log1p(exp(-2|x|)): the log-partition of a +-1 spin in the field x."""
    a = np.abs(np.asarray(x, dtype=np.float64))
    return a + np.log1p(np.exp(-2.0 * a))


def logsumexp(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """ln sum exp(x) along ``axis`` (all entries when None), shifted by the maximum.

    A slice that is all -inf gives -inf (not NaN).
    """
    x = np.asarray(x, dtype=np.float64)
    if axis is None:
        top = float(np.max(x))
        if not math.isfinite(top):
            return top
        return top + math.log(float(np.sum(np.exp(x - top))))
    top = np.max(x, axis=axis, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    out = np.log(np.sum(np.exp(x - safe), axis=axis, keepdims=True)) + safe
    return np.squeeze(out, axis=axis)


def log_mean_exp(x: np.ndarray) -> float:
    """ln mean exp(x) over all entries, shifted by the maximum."""
    x = np.asarray(x, dtype=np.float64)
    m = float(np.max(x))
    if not math.isfinite(m):
        return m
    return m + math.log(float(np.mean(np.exp(x - m))))


def xlogx(p: np.ndarray) -> np.ndarray:
    """p ln p elementwise, with 0 ln 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


def logit(p: np.ndarray) -> np.ndarray:
    """ln p - ln(1 - p)."""
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)
