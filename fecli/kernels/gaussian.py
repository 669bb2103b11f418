"""0/1 row sums of a lower-triangular matrix (the Cholesky factor of the Gaussian layer's
coupling matrix; see :class:`fecli.estimators.layered_sampling.GaussianSummedOut`).

``out[r] = bits[r] @ lower`` where row i of ``lower`` is zero beyond column i, so each selected row
adds only its first i + 1 entries: half the additions (and half the matrix read) of a dense 0/1 row
sum. As in :mod:`fecli.kernels.anneal`, a row with more ones than zeros starts from the column sums
and subtracts the rows of its zeros; sums are float64 and in increasing row order, so a chain's
result depends on its own bits only.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _add_lower_rows(o, lower, idx, count):
    """o += the rows lower[idx[t]] (t < count, idx increasing), each only up to its diagonal; four
    rows per pass over o where they overlap."""
    t = 0
    while t + 4 <= count:
        i0, i1, i2, i3 = idx[t], idx[t + 1], idx[t + 2], idx[t + 3]
        r0, r1, r2, r3 = lower[i0], lower[i1], lower[i2], lower[i3]
        for j in range(i0 + 1):
            o[j] += (r0[j] + r1[j]) + (r2[j] + r3[j])
        for j in range(i0 + 1, i1 + 1):
            o[j] += r1[j] + (r2[j] + r3[j])
        for j in range(i1 + 1, i2 + 1):
            o[j] += r2[j] + r3[j]
        for j in range(i2 + 1, i3 + 1):
            o[j] += r3[j]
        t += 4
    while t < count:
        i = idx[t]
        row = lower[i]
        for j in range(i + 1):
            o[j] += row[j]
        t += 1


@njit(cache=True)
def lower_binary_products(bits, lower, colsum, out):
    """out (rows, n) = bits (rows, n) 0/1 @ lower (n, n) lower-triangular; colsum = lower.sum(axis=0)."""
    rows, n = bits.shape
    on_idx = np.empty(n, np.int64)
    off_idx = np.empty(n, np.int64)
    for r in range(rows):
        o = out[r]
        on = 0
        off = 0
        for i in range(n):
            if bits[r, i] != 0.0:
                on_idx[on] = i
                on += 1
            else:
                off_idx[off] = i
                off += 1
        if on <= off:
            for j in range(n):
                o[j] = 0.0
            _add_lower_rows(o, lower, on_idx, on)
        else:
            for j in range(n):
                o[j] = -colsum[j]
            _add_lower_rows(o, lower, off_idx, off)
            for j in range(n):
                o[j] = -o[j]
