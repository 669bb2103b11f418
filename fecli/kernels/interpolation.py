"""ln f along a linear interpolation between two RBMs (ln Z along training).

For theta_s = (1 - s) theta_a + s theta_b, with hidden units summed out,

    ln f_s(v) = a_s.v + sum_j softplus(x_s,j),   x_s = b_s + v^T W_s = (1 - s) x_a + s x_b,

so ln f at any s needs the two hidden fields x_a and x_b of a state once.
:func:`interpolation_fields` computes them as one product of the 0/1 row v with the stacked
matrix [W_a | W_b] (nv, 2 nh), by sums of the rows of the active units (or column sums minus
the rows of the inactive ones; :func:`fecli.kernels.anneal._binary_products`): no BLAS call, so
many small steps cost no thread start-up, and each chain's sum depends on its own bits only
(same numbers for any grouping of the chains or thread count). :func:`interpolation_log_f` then
evaluates ln f_s at a few values of s from the stored fields.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .anneal import _binary_products


@njit(cache=True)
def _softplus(x):
    return max(x, 0.0) + np.log1p(np.exp(-abs(x)))


@njit(cache=True)
def _fields_block(lo, hi, v, stacked, colsum, hbias_a, hbias_b, avis, bvis, fields, vis):
    nh = hbias_a.shape[0]
    nv = v.shape[1]
    idx = np.empty(nv, np.int64)
    _binary_products(v, lo, hi, stacked, colsum, fields[lo:hi], idx)
    for c in range(lo, hi):
        f = fields[c]
        for j in range(nh):
            f[j] += hbias_a[j]
            f[nh + j] += hbias_b[j]
        da = 0.0
        db = 0.0
        for i in range(nv):
            da += avis[i] * v[c, i]
            db += bvis[i] * v[c, i]
        vis[c, 0] = da
        vis[c, 1] = db


@njit(cache=True, parallel=True)
def _fields_par(bounds, v, stacked, colsum, hbias_a, hbias_b, avis, bvis, fields, vis):
    for b in prange(bounds.shape[0] - 1):
        _fields_block(bounds[b], bounds[b + 1], v, stacked, colsum, hbias_a, hbias_b, avis, bvis, fields, vis)


@njit(cache=True)
def _fields_ser(bounds, v, stacked, colsum, hbias_a, hbias_b, avis, bvis, fields, vis):
    for b in range(bounds.shape[0] - 1):
        _fields_block(bounds[b], bounds[b + 1], v, stacked, colsum, hbias_a, hbias_b, avis, bvis, fields, vis)


def interpolation_fields(bounds, v, stacked, colsum, hbias_a, hbias_b, avis, bvis, fields, vis, parallel=True):
    """fields[c] = [x_a | x_b] (2 nh) and vis[c] = [a_a.v, a_b.v] for the 0/1 rows v (C, nv).

    stacked = [W_a | W_b] (nv, 2 nh) float64 and colsum its column sums. Chains
    bounds[b]..bounds[b+1]-1 form block b (blocks in parallel, or one after the other with
    ``parallel=False``: same numbers).
    """
    run = _fields_par if parallel else _fields_ser
    run(bounds, v, stacked, colsum, hbias_a, hbias_b, avis, bvis, fields, vis)


@njit(cache=True)
def _log_f_chain(fields, vis, c, ss, out):
    nh = fields.shape[1] // 2
    f = fields[c]
    for k in range(ss.shape[0]):
        s = ss[k]
        acc = 0.0
        for j in range(nh):
            acc += _softplus((1.0 - s) * f[j] + s * f[nh + j])
        out[c, k] = (1.0 - s) * vis[c, 0] + s * vis[c, 1] + acc


@njit(cache=True, parallel=True)
def _log_f_par(fields, vis, ss, out):
    for c in prange(fields.shape[0]):
        _log_f_chain(fields, vis, c, ss, out)


@njit(cache=True)
def _log_f_ser(fields, vis, ss, out):
    for c in range(fields.shape[0]):
        _log_f_chain(fields, vis, c, ss, out)


def interpolation_log_f(fields, vis, ss, out, parallel=True):
    """out[c, k] = ln f_{ss[k]}(v_c) from the fields and visible terms of :func:`interpolation_fields`."""
    run = _log_f_par if parallel else _log_f_ser
    run(fields, vis, np.ascontiguousarray(ss, dtype=np.float64), out)
