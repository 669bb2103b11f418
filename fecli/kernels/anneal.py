"""Annealing and Gibbs sweeps of blocks of chains, fused into one Numba loop per block.

The path and the sweep are those of :mod:`fecli.kernels.gibbs`:

    ln f_t(v) = (1 - t) a_A.v + t beta a.v + sum_j softplus(t x_j),   x = beta (b + v^T W),
    h_j ~ Bernoulli(sigmoid(t x_j)),
    v_i ~ Bernoulli(sigmoid((1 - t) a_A,i + t beta (a_i + (W h)_i))).

Here a small block of chains runs a whole segment of the schedule by itself, so there
is no matrix product to hand to BLAS: states are 0/1, and a product with a 0/1 vector
is the sum of the rows of the active units (or the column sums minus the rows of the
inactive ones, when those are fewer), added four rows per pass over the accumulator.
Chains are independent, so a ``prange`` over blocks keeps the cores busy with no
barrier inside a segment. Each chain's arithmetic (its rows in increasing order, its
own generator) is the same in any block, so results do not depend on the thread count
or on the grouping.

Precision: the hidden fields x, and so every term of the log weights, are float64 sums
of the float64 weights. The visible fields (which only decide Bernoulli draws, never a
log weight) sum float32-rounded weights in float64: rounding moves a visible logit by
at most 6e-8 of the summed magnitudes of its weights, far below any sampling error, and
halves the memory the sweep reads.

The log-weight increment of a step t0 -> t1 needs softplus at both t for every hidden
unit. With e_t = exp(-t |x|), softplus(t x) = t max(x, 0) + ln(1 + e_t), so

    sum_j softplus(t1 x_j) - softplus(t0 x_j)
        = (t1 - t0) sum_j max(x_j, 0) + ln prod_j (1 + e_t1,j) / prod_j (1 + e_t0,j):

two exponentials per hidden unit (vectorised: fecli.kernels.vexp) and one logarithm per
block of 256 units (each factor lies in [1, 2], so a block's product stays below 2^256).
e_t1 also gives the sampling probability: sigmoid(t1 x) = 1 / (1 + e) for x >= 0 and
e / (1 + e) otherwise, and u < p is tested as u (1 + e) < 1 (or < e), with no division.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .gibbs import _next
from .primitives import add_rows
from .vexp import exp64

#: Hidden units per partial product in the log-weight increment (keeps it below 2^256).
_BLOCK = 256


@njit(cache=True)
def _split(bits, r, idx):
    """Units on in row r of bits at idx[:on] (increasing), units off at idx[on:]; returns on.
    Branch-free: both candidate slots are written, the counters move by the bit."""
    n = bits.shape[1]
    on = 0
    off = n
    for i in range(n):
        b = 1 if bits[r, i] != 0.0 else 0
        idx[on] = i
        idx[off - 1] = i
        on += b
        off -= 1 - b
    return on


@njit(cache=True)
def _binary_products(bits, lo, hi, w, colsum, out, idx):
    """out[r - lo] = bits[r] @ w for the 0/1 rows lo..hi-1 of bits, summed in float64 (idx: int64
    scratch as long as a row of bits).

    A row with more ones than zeros starts from the column sums and subtracts the rows of its
    zeros. Either way a chain's sum depends on its own bits only, never on the other rows.
    """
    n, k = w.shape
    for r in range(lo, hi):
        o = out[r - lo]
        on = _split(bits, r, idx)
        if on <= n - on:
            for j in range(k):
                o[j] = 0.0
            add_rows(o, w, idx, 0, on)
        else:  # -(-colsum + rows of the zeros) is exactly colsum - rows of the zeros
            for j in range(k):
                o[j] = -colsum[j]
            add_rows(o, w, idx, on, n)
            for j in range(k):
                o[j] = -o[j]


@njit(cache=True)
def _softplus_gap(x, t0, t1, e, e0, bits):
    """sum_j softplus(t1 x_j) - softplus(t0 x_j); leaves e_j = exp(-t1 |x_j|) in e (e0 and
    bits are scratch). Products and sums run in four interleaved partial results, so the
    loop is not one long chain of dependent multiplications."""
    nh = x.shape[0]
    for j in range(nh):
        a = abs(x[j])
        e[j] = -t1 * a
        e0[j] = -t0 * a
    exp64(e, e, bits)
    exp64(e0, e0, bits)
    positive = _sum_positive(x)
    logs = 0.0
    for start in range(0, nh, _BLOCK):
        stop = min(start + _BLOCK, nh)
        n0 = n1 = n2 = n3 = 1.0
        d0 = d1 = d2 = d3 = 1.0
        j = start
        while j + 4 <= stop:
            n0 *= 1.0 + e[j]
            n1 *= 1.0 + e[j + 1]
            n2 *= 1.0 + e[j + 2]
            n3 *= 1.0 + e[j + 3]
            d0 *= 1.0 + e0[j]
            d1 *= 1.0 + e0[j + 1]
            d2 *= 1.0 + e0[j + 2]
            d3 *= 1.0 + e0[j + 3]
            j += 4
        while j < stop:
            n0 *= 1.0 + e[j]
            d0 *= 1.0 + e0[j]
            j += 1
        logs += np.log(((n0 * n1) * (n2 * n3)) / ((d0 * d1) * (d2 * d3)))
    return (t1 - t0) * positive + logs


@njit(cache=True)
def _sum_positive(x):
    """sum_j max(x_j, 0), in four partial sums."""
    s0 = s1 = s2 = s3 = 0.0
    n = x.shape[0]
    j = 0
    while j + 4 <= n:
        s0 += max(x[j], 0.0)
        s1 += max(x[j + 1], 0.0)
        s2 += max(x[j + 2], 0.0)
        s3 += max(x[j + 3], 0.0)
        j += 4
    while j < n:
        s0 += max(x[j], 0.0)
        j += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def _dot(a, b, r):
    """a . b[r], in four partial sums."""
    s0 = s1 = s2 = s3 = 0.0
    n = a.shape[0]
    i = 0
    while i + 4 <= n:
        s0 += a[i] * b[r, i]
        s1 += a[i + 1] * b[r, i + 1]
        s2 += a[i + 2] * b[r, i + 2]
        s3 += a[i + 3] * b[r, i + 3]
        i += 4
    while i < n:
        s0 += a[i] * b[r, i]
        i += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def _draw(x, e, out, r, s0, s1, s2, s3):
    """out[r, j] = 1 with probability sigmoid(x_j), else 0, given e_j = exp(-|x_j|) (or
    exp(-t |x_j|) for sigmoid(t x_j), t >= 0). Returns the generator state."""
    for j in range(x.shape[0]):
        u, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
        ej = e[j]
        out[r, j] = 1.0 if u * (1.0 + ej) < (1.0 if x[j] >= 0.0 else ej) else 0.0
    return s0, s1, s2, s3


@njit(cache=True)
def _fields(v, lo, hi, w, wsum, hbias, t, x, e, bits, idx):
    """x[r] = beta (b + v[lo + r] W) and e[r] = exp(-t |x[r]|) for the chains of the block."""
    _binary_products(v, lo, hi, w, wsum, x, idx)
    for r in range(hi - lo):
        xr = x[r]
        er = e[r]
        for j in range(xr.shape[0]):
            xr[j] += hbias[j]
            er[j] = -t * abs(xr[j])
        exp64(er, er, bits)


@njit(cache=True)
def _block(lo, hi, v, states, logw, w, wsum, wt, wtsum, hbias, dvis, base_bias, vbias, ts, k_start, k_stop,
           sweeps, t_sweep, weight, h_out, g_out):
    """Move chains lo..hi-1.

    With ``weight``: steps k_start..k_stop-1 of the schedule ts (the weight update
    t_{k-1} -> t_k at the current state, then ``sweeps`` sweeps at t_k unless k is the last
    step). Without: ``sweeps`` sweeps at t_sweep; the hidden states of the last one go to
    h_out, and after each sweep d ln f_t / dt at the new state is added to g_out (each
    skipped when the array has no rows).
    """
    nv, nh = w.shape
    B = hi - lo
    x = np.empty((B, nh))
    e = np.empty((B, nh))
    h = np.empty((B, nh))
    y = np.empty((B, nv))
    ey = np.empty(nv)
    e0 = np.empty(nh)
    bits = np.empty(max(nv, nh), np.int64)
    idx = np.empty(max(nv, nh), np.int64)
    last = ts.shape[0] - 1
    record = not weight and g_out.shape[0] > 0
    fresh = False  # x and e already hold the fields of the current states at t
    steps = k_stop - k_start if weight else 1
    for step in range(steps):
        k = k_start + step
        t = ts[k] if weight else t_sweep
        for sweep in range(sweeps):
            if weight and sweep == 0:
                _binary_products(v, lo, hi, w, wsum, x, idx)
                for r in range(B):
                    xr = x[r]
                    for j in range(nh):
                        xr[j] += hbias[j]
                    d = _dot(dvis, v, lo + r)
                    logw[lo + r] += (ts[k] - ts[k - 1]) * d + _softplus_gap(xr, ts[k - 1], ts[k], e[r], e0, bits)
                if k == last:
                    break
            elif not fresh:
                _fields(v, lo, hi, w, wsum, hbias, t, x, e, bits, idx)
            for r in range(B):
                c = lo + r
                s0, s1, s2, s3 = _draw(x[r], e[r], h, r, states[c, 0], states[c, 1], states[c, 2], states[c, 3])
                states[c, 0], states[c, 1], states[c, 2], states[c, 3] = s0, s1, s2, s3
            _binary_products(h, 0, B, wt, wtsum, y, idx)
            for r in range(B):
                c = lo + r
                yr = y[r]
                for i in range(nv):
                    yr[i] = (1.0 - t) * base_bias[i] + t * (vbias[i] + yr[i])
                    ey[i] = -abs(yr[i])
                exp64(ey, ey, bits)
                s0, s1, s2, s3 = _draw(yr, ey, v, c, states[c, 0], states[c, 1], states[c, 2], states[c, 3])
                states[c, 0], states[c, 1], states[c, 2], states[c, 3] = s0, s1, s2, s3
            if record:
                _fields(v, lo, hi, w, wsum, hbias, t, x, e, bits, idx)
                fresh = True
                for r in range(B):
                    g_out[lo + r] += _dot(dvis, v, lo + r) + _field_times_sigmoid(x[r], e[r])
    if not weight and h_out.shape[0] > 0:
        for r in range(B):
            for j in range(nh):
                h_out[lo + r, j] = h[r, j]


@njit(cache=True)
def _field_times_sigmoid(x, e):
    """sum_j x_j sigmoid(t x_j), given e_j = exp(-t |x_j|)."""
    acc = 0.0
    for j in range(x.shape[0]):
        ej = e[j]
        acc += x[j] * ((1.0 if x[j] >= 0.0 else ej) / (1.0 + ej))
    return acc


@njit(cache=True, parallel=True)
def _blocks_par(bounds, v, states, logw, w, wsum, wt, wtsum, hbias, dvis, base_bias, vbias, ts, k_start, k_stop,
                sweeps, t_sweep, weight, h_out, g_out):
    for b in prange(bounds.shape[0] - 1):
        _block(bounds[b], bounds[b + 1], v, states, logw, w, wsum, wt, wtsum, hbias, dvis, base_bias, vbias, ts,
               k_start, k_stop, sweeps, t_sweep, weight, h_out, g_out)


@njit(cache=True)
def _blocks_ser(bounds, v, states, logw, w, wsum, wt, wtsum, hbias, dvis, base_bias, vbias, ts, k_start, k_stop,
                sweeps, t_sweep, weight, h_out, g_out):
    for b in range(bounds.shape[0] - 1):
        _block(bounds[b], bounds[b + 1], v, states, logw, w, wsum, wt, wtsum, hbias, dvis, base_bias, vbias, ts,
               k_start, k_stop, sweeps, t_sweep, weight, h_out, g_out)


# One compiled loop of each kind serves annealing and sweeps alike (a parallel loop costs
# seconds to compile); these arrays fill the slots a call does not use.
_NO_LOGW = np.zeros(0)
_NO_TS = np.zeros(1)
_NO_HIDDEN = np.zeros((0, 0))


def anneal(bounds, v, states, logw, w, wsum, wt, wtsum, hbias, dvis, base_bias, vbias, ts, k_start, k_stop,
           sweeps, parallel=True):
    """Steps k_start..k_stop-1 (1 <= k <= len(ts) - 1) of annealing along ts for every chain:
    logw[c] += ln f_{t_k}(v_c) - ln f_{t_{k-1}}(v_c), then ``sweeps`` block Gibbs sweeps at t_k
    (none after the last step). Chains bounds[b]..bounds[b+1]-1 form block b (blocks run in
    parallel, or one after the other with ``parallel=False``: same numbers). v (C, nv) 0/1
    float64 and states (C, 4) are updated in place; w (nv, nh) float64, wt (nh, nv) float32."""
    run = _blocks_par if parallel else _blocks_ser
    run(bounds, v, states, logw, w, wsum, wt, wtsum, hbias, dvis, base_bias, vbias, ts, k_start, k_stop, sweeps,
        0.0, True, _NO_HIDDEN, _NO_LOGW)


def sweep(bounds, v, states, w, wsum, wt, wtsum, hbias, dvis, base_bias, vbias, t, count, h_out, g_out,
          parallel=True):
    """``count`` block Gibbs sweeps v -> h -> v at t for every chain (in place). h_out (C, nh)
    receives the hidden states drawn in the last sweep, g_out (C,) the sum over the sweeps of
    d ln f_t / dt = (beta a - a_A).v + sum_j x_j sigmoid(t x_j) at the new states (thermodynamic
    integration's integrand); pass arrays with no rows to skip either."""
    run = _blocks_par if parallel else _blocks_ser
    run(bounds, v, states, _NO_LOGW, w, wsum, wt, wtsum, hbias, dvis, base_bias, vbias, _NO_TS, 0, 0, count,
        t, False, h_out, g_out)


#: Largest block of chains moved together (its accumulators stay in the L1 cache).
MAX_BLOCK = 8


def block_bounds(n: int, threads: int, max_block: int = MAX_BLOCK) -> np.ndarray:
    """Chain ranges for the blocks: a multiple of ``threads`` blocks of near-equal size <= max_block."""
    per_thread = -(-n // (threads * max_block))
    blocks = max(1, min(n, threads * per_thread))
    return np.linspace(0, n, blocks + 1).round().astype(np.int64)
