"""Compiled numeric primitives shared by every kernel (the numpy versions are in fecli.numerics).

Scalars (inlined into their callers):

* ``softplus(x) = ln(1 + e^x)`` = max(x, 0) + log1p(exp(-|x|));
* ``sigmoid(x)``: 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) otherwise (both tails accurate);
* ``sigmoid_saturating(x) = 1 / (1 + e^-x)`` without a branch: for x << 0, e^-x overflows to
  inf and the result is exactly 0, never NaN (the training kernels' form; keeps float32 inputs
  on one code path);
* ``log2cosh(x) = ln(2 cosh x)`` = |x| + log1p(exp(-2|x|)) (the log-partition of a +-1 spin).

Row sums of a 0/1 product: ``add_rows(acc, matrix, idx, start, stop)`` adds the rows
matrix[idx[t]] for start <= t < stop, four rows per pass over ``acc``, each entry converted to
the accumulator's dtype first (float32 weights summed into a float64 accumulator are summed in
float64). The order of the additions depends only on ``idx``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def softplus(x):
    """ln(1 + e^x) = max(x, 0) + log1p(exp(-|x|))."""
    if x > 0.0:
        return x + np.log1p(np.exp(-x))
    return np.log1p(np.exp(x))


@njit(cache=True, inline="always")
def sigmoid(x):
    """1 / (1 + e^-x), accurate in both tails."""
    if x >= 0.0:
        return 1.0 / (1.0 + np.exp(-x))
    e = np.exp(x)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def sigmoid_saturating(x):
    """1 / (1 + e^-x) with no branch: for x << 0, e^-x overflows to inf and the result is exactly 0."""
    return 1.0 / (1.0 + np.exp(-x))


@njit(cache=True, inline="always")
def log2cosh(x):
    """ln(2 cosh x) = |x| + log1p(exp(-2|x|))."""
    a = abs(x)
    return a + np.log1p(np.exp(-2.0 * a))


@njit(cache=True)
def add_rows(acc, matrix, idx, start, stop):
    """acc += the rows matrix[idx[t]], start <= t < stop, in acc's dtype, four rows per pass over acc."""
    k = acc.shape[0]
    cast = acc.dtype.type
    t = start
    while t + 4 <= stop:
        r0, r1, r2, r3 = matrix[idx[t]], matrix[idx[t + 1]], matrix[idx[t + 2]], matrix[idx[t + 3]]
        for j in range(k):
            acc[j] += (cast(r0[j]) + cast(r1[j])) + (cast(r2[j]) + cast(r3[j]))
        t += 4
    while t < stop:
        r0 = matrix[idx[t]]
        for j in range(k):
            acc[j] += cast(r0[j])
        t += 1
