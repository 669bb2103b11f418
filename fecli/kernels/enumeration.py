"""Exact enumeration of one RBM layer in Gray-code order.

For enumerated units s in {0,1}^k (the smaller layer), with the other layer of
n units summed out analytically,

    ln Z = logsumexp_s [ beta c.s + sum_i softplus(beta (d_i + (M s)_i)) ],

where M (n, k) is the weight matrix seen from the other layer, c the enumerated
layer's bias and d the other layer's bias. Visiting the states in Gray-code order
changes one unit per step, so the field vector beta (d + M s) is updated with one
column of M: O(n) per state instead of O(n k).

The state space is cut into fixed chunks of 2^chunk_bits states. Each chunk
recomputes its starting field from scratch (so rounding drift is bounded by the
chunk length) and returns a streaming log-sum-exp pair (max, scaled sum). The
partition into chunks does not depend on the thread count and the pairs are
combined in a fixed order, so results are identical for any NUMBA_NUM_THREADS.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .primitives import softplus


@njit(cache=True)
def _chunk_logsumexp(scaled_cols, other_field0, own_bias_scaled, start, length, field):
    """Streaming log-sum-exp over Gray-code states start .. start+length-1.

    scaled_cols: (k, n) = beta * M^T, one contiguous row per enumerated unit.
    other_field0: (n,) = beta * d. own_bias_scaled: (k,) = beta * c.
    Returns (m, s) with logsumexp = m + ln(s).
    """
    k, n = scaled_cols.shape
    gray = start ^ (start >> 1)
    own = 0.0
    for i in range(n):
        field[i] = other_field0[i]
    for j in range(k):
        if (gray >> j) & 1:
            own += own_bias_scaled[j]
            for i in range(n):
                field[i] += scaled_cols[j, i]
    m = -np.inf
    s = 0.0
    for step in range(length):
        if step > 0:
            idx = start + step
            j = 0
            while ((idx >> j) & 1) == 0:
                j += 1
            gray ^= 1 << j
            sign = 1.0 if (gray >> j) & 1 else -1.0
            own += sign * own_bias_scaled[j]
            for i in range(n):
                field[i] += sign * scaled_cols[j, i]
        total = own
        for i in range(n):
            total += softplus(field[i])
        if total > m:
            s = s * np.exp(m - total) + 1.0
            m = total
        else:
            s += np.exp(total - m)
    return m, s


@njit(cache=True, parallel=True)
def gray_logsumexp_chunks(scaled_cols, other_field0, own_bias_scaled, first_chunk, n_chunks, chunk_bits, out_m, out_s):
    """Fill out_m/out_s[c] with the log-sum-exp pair of chunk first_chunk + c (parallel over chunks)."""
    n = scaled_cols.shape[1]
    length = 1 << chunk_bits
    for c in prange(n_chunks):
        field = np.empty(n)
        m, s = _chunk_logsumexp(
            scaled_cols, other_field0, own_bias_scaled, (first_chunk + c) << chunk_bits, length, field
        )
        out_m[c] = m
        out_s[c] = s


@njit(cache=True, parallel=True)
def softplus_floor(x, n_repeats, chunk_repeats, out):
    """Hardware floor: sum softplus(x_i + t) over i and n_repeats values of t, parallel over chunks.

    Performs exactly n_repeats * len(x) softplus evaluations plus one add each,
    the irreducible work of enumerating n_repeats states of a layer of len(x) units.
    """
    n_chunks = (n_repeats + chunk_repeats - 1) // chunk_repeats
    n = x.shape[0]
    for c in prange(n_chunks):
        acc = 0.0
        lo = c * chunk_repeats
        hi = min(lo + chunk_repeats, n_repeats)
        for t in range(lo, hi):
            shift = t * 1e-12
            for i in range(n):
                acc += softplus(x[i] + shift)
        out[c] = acc
