"""Exact enumeration of a finite layer of any unit type, the other layer summed out by its cgf.

The enumerated layer has k units with r states each (r = 2 for bernoulli and spin units, q for
Potts units). With the other layer's log-partition Gamma_O summed in closed form,

    ln Z = logsumexp_s [ sum_j own[j, s_j] + Gamma_O(field0 + sum_j cols[j, s_j]) ] (+ constants),

where cols[j, s] (already times beta) is the field unit j in state s sends to the other layer and
own[j, s] = -beta E_j(s). The states are visited in the modular r-ary Gray code
g_j = (n_j - n_{j+1}) mod r of the counter n: from n to n + 1 exactly one digit changes, by +1
(mod r), the one where the counter's increment stops carrying. So each state costs one column
update of the field (O(n_other)) and one evaluation of Gamma_O. For r = 2 this is the binary Gray
code of :mod:`fecli.kernels.enumeration` (the bernoulli-bernoulli kernel, kept as the fast path).

The other layer's cgf by kind (field f = beta (theta + I), one entry per feature):

    bernoulli  softplus(f)          spin  ln 2 cosh(f)
    gaussian   coef * f^2           (coef = 1 / (2 beta gamma); the constant 1/2 ln(2 pi / (beta gamma))
                                     is added by the caller)
    potts      logsumexp over each group of ``group`` consecutive entries

Chunks of r^c consecutive counter values recompute their starting field from scratch (rounding
drift bounded by the chunk length) and return a streaming log-sum-exp pair; the partition does
not depend on the thread count, so results are identical for any NUMBA_NUM_THREADS.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .primitives import log2cosh, softplus

KIND_BERNOULLI, KIND_SPIN, KIND_GAUSSIAN, KIND_POTTS = 0, 1, 2, 3


@njit(cache=True)
def other_cgf(kind, field, coef, group):
    """sum of the other layer's per-unit cgf at the scaled fields ``field`` (see the module docstring)."""
    total = 0.0
    n = field.shape[0]
    if kind == 0:
        for i in range(n):
            total += softplus(field[i])
    elif kind == 1:
        for i in range(n):
            total += log2cosh(field[i])
    elif kind == 2:
        for i in range(n):
            total += coef[i] * field[i] * field[i]
    else:
        for start in range(0, n, group):
            top = field[start]
            for i in range(start + 1, start + group):
                if field[i] > top:
                    top = field[i]
            s = 0.0
            for i in range(start, start + group):
                s += np.exp(field[i] - top)
            total += top + np.log(s)
    return total


@njit(cache=True)
def _chunk(cols, delta, own, own_delta, field0, kind, coef, group, start, length, field, digits, gray):
    """Streaming (max, scaled sum) over counter values start .. start + length - 1."""
    k, r, d = cols.shape
    n = start
    for j in range(k):
        digits[j] = n % r
        n //= r
    for j in range(k):
        nxt = digits[j + 1] if j + 1 < k else 0
        gray[j] = (digits[j] - nxt) % r
    for i in range(d):
        field[i] = field0[i]
    o = 0.0
    for j in range(k):
        s = gray[j]
        o += own[j, s]
        for i in range(d):
            field[i] += cols[j, s, i]
    m = -np.inf
    acc = 0.0
    for step in range(length):
        if step > 0:
            j = 0
            while digits[j] == r - 1:
                digits[j] = 0
                j += 1
            digits[j] += 1
            s = gray[j]
            o += own_delta[j, s]
            for i in range(d):
                field[i] += delta[j, s, i]
            gray[j] = s + 1 if s + 1 < r else 0
        total = o + other_cgf(kind, field, coef, group)
        if total > m:
            acc = acc * np.exp(m - total) + 1.0
            m = total
        else:
            acc += np.exp(total - m)
    return m, acc


@njit(cache=True, parallel=True)
def gray_logsumexp_layers(cols, own, field0, kind, coef, group, first_chunk, n_chunks, chunk_len, out_m, out_s):
    """out_m/out_s[c]: the log-sum-exp pair of chunk first_chunk + c (chunk_len = r^c counter values).

    cols (k, r, d): scaled field of unit j in state s; own (k, r): -beta E_j(s); field0 (d,): the
    other layer's scaled bias; kind, coef, group: the other layer's cgf (module docstring).
    """
    k, r, d = cols.shape
    delta = np.empty((k, r, d))
    own_delta = np.empty((k, r))
    for j in range(k):
        for s in range(r):
            t = s + 1 if s + 1 < r else 0
            own_delta[j, s] = own[j, t] - own[j, s]
            for i in range(d):
                delta[j, s, i] = cols[j, t, i] - cols[j, s, i]
    for c in prange(n_chunks):
        field = np.empty(d)
        digits = np.zeros(k, np.int64)
        gray = np.zeros(k, np.int64)
        m, s = _chunk(cols, delta, own, own_delta, field0, kind, coef, group, (first_chunk + c) * chunk_len,
                      chunk_len, field, digits, gray)
        out_m[c] = m
        out_s[c] = s
