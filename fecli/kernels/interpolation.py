"""Log-weight increments along a linear interpolation between two RBMs (ln Z along training).

For theta_s = (1 - s) theta_a + s theta_b, with hidden units summed out,

    ln f_s(v) = a_s.v + sum_j softplus(x_s,j),   x_s = b_s + v^T W_s = (1 - s) x_a + s x_b,

so the increment of a step s0 -> s1 at a state v needs the two hidden fields x_a and x_b
once. They come from one product of the 0/1 row v with the stacked matrix [W_a | W_b]
(nv, 2 nh), computed as sums of the rows of the active units (or column sums minus the
rows of the inactive ones) by :func:`fecli.kernels.anneal._binary_products`: no BLAS call,
so many small steps cost no thread start-up, and each chain's sum depends on its own bits
only (same numbers for any grouping of the chains or thread count).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .anneal import _binary_products


@njit(cache=True)
def _softplus(x):
    return max(x, 0.0) + np.log1p(np.exp(-abs(x)))


@njit(cache=True)
def _increments_block(lo, hi, v, stacked, colsum, hbias_a, hbias_b, dvis, s0, s1, out):
    nh = hbias_a.shape[0]
    nv = v.shape[1]
    x = np.empty((hi - lo, 2 * nh))
    idx = np.empty(nv, np.int64)
    _binary_products(v, lo, hi, stacked, colsum, x, idx)
    for r in range(hi - lo):
        xr = x[r]
        acc = 0.0
        for j in range(nh):
            xa = xr[j] + hbias_a[j]
            xb = xr[nh + j] + hbias_b[j]
            acc += _softplus((1.0 - s1) * xa + s1 * xb) - _softplus((1.0 - s0) * xa + s0 * xb)
        d = 0.0
        for i in range(nv):
            d += dvis[i] * v[lo + r, i]
        out[lo + r] = (s1 - s0) * d + acc


@njit(cache=True, parallel=True)
def _increments_par(bounds, v, stacked, colsum, hbias_a, hbias_b, dvis, s0, s1, out):
    for b in prange(bounds.shape[0] - 1):
        _increments_block(bounds[b], bounds[b + 1], v, stacked, colsum, hbias_a, hbias_b, dvis, s0, s1, out)


@njit(cache=True)
def _increments_ser(bounds, v, stacked, colsum, hbias_a, hbias_b, dvis, s0, s1, out):
    for b in range(bounds.shape[0] - 1):
        _increments_block(bounds[b], bounds[b + 1], v, stacked, colsum, hbias_a, hbias_b, dvis, s0, s1, out)


def interpolation_increments(bounds, v, stacked, colsum, hbias_a, hbias_b, dvis, s0, s1, out, parallel=True):
    """out[c] = ln f_{s1}(v_c) - ln f_{s0}(v_c) along theta_a -> theta_b for the 0/1 rows v (C, nv).

    stacked = [W_a | W_b] (nv, 2 nh) float64, colsum its column sums; hbias_a, hbias_b (nh,);
    dvis = a_b - a_a (nv,). Chains bounds[b]..bounds[b+1]-1 form block b (blocks in parallel,
    or one after the other with ``parallel=False``: same numbers).
    """
    run = _increments_par if parallel else _increments_ser
    run(bounds, v, stacked, colsum, hbias_a, hbias_b, dvis, float(s0), float(s1), out)
