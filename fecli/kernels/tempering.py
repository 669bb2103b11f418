"""Replica exchange (parallel tempering) along the annealing path, one Numba loop per ladder.

The path is that of :mod:`fecli.kernels.anneal`:

    ln f_t(v) = (1 - t) a_A.v + t beta a.v + sum_j softplus(t x_j),   x = beta (b + v^T W).

A ladder holds K chains ("slots") at rungs t_0 = 0 < ... < t_{K-1} = 1, one chain per rung.
A round is, for every chain, ``sweeps`` block Gibbs sweeps at its rung's t, then the
log-ratios to the neighbouring rungs at its new state,

    up_k   = ln f_{t_{k+1}}(v) - ln f_{t_k}(v),     down_k = ln f_{t_{k-1}}(v) - ln f_{t_k}(v),

(the works that BAR needs, recorded by rung), then exchange proposals between rungs
(k, k+1) with k of the round's parity, accepted with probability

    min(1, f_{k+1}(v_a) f_k(v_b) / (f_k(v_a) f_{k+1}(v_b))) = min(1, exp(up_k(v_a) + down_{k+1}(v_b))),

v_a the chain at rung k, v_b the one at k + 1. An accepted exchange swaps the rungs of the
two chains, not their states, so each chain keeps its own state and random stream. Each
ladder draws its exchange uniforms from a stream of its own and never reads another
ladder's arrays, so ladders run on threads (``prange``) with the same numbers for any
thread count or order.

Besides the works, a round can record the state of the chain at the top rung (t = 1: an
approximate sample of the target), the mean exchange probability of each pair (the
Rao-Blackwellised acceptance rate, lower variance than counting accepted swaps) and the
trips of each chain between the ends of the ladder.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .anneal import _binary_products, _dot, _draw, _sum_positive
from .gibbs import _next
from .vexp import exp64

#: Hidden units per partial product of (1 + e_j) (keeps it below 2^256, as in fecli.kernels.anneal).
_BLOCK = 256


@njit(cache=True)
def _softplus_sum(x, t, e, bits):
    """sum_j softplus(t x_j) for t >= 0, as t sum_j max(x_j, 0) + ln prod_j (1 + e_j); leaves
    e_j = exp(-t |x_j|) in e (bits: int64 scratch)."""
    nh = x.shape[0]
    for j in range(nh):
        e[j] = -t * abs(x[j])
    exp64(e, e, bits)
    logs = 0.0
    for start in range(0, nh, _BLOCK):
        stop = min(start + _BLOCK, nh)
        p0 = p1 = p2 = p3 = 1.0
        j = start
        while j + 4 <= stop:
            p0 *= 1.0 + e[j]
            p1 *= 1.0 + e[j + 1]
            p2 *= 1.0 + e[j + 2]
            p3 *= 1.0 + e[j + 3]
            j += 4
        while j < stop:
            p0 *= 1.0 + e[j]
            j += 1
        logs += np.log((p0 * p1) * (p2 * p3))
    return t * _sum_positive(x) + logs


@njit(cache=True)
def _hidden_fields(V, c, w, wsum, hbias, x, idx):
    """x[0] = beta (b + V[c] W) (float64 sums of the rows of the active units)."""
    _binary_products(V, c, c + 1, w, wsum, x, idx)
    xr = x[0]
    for j in range(xr.shape[0]):
        xr[j] += hbias[j]


@njit(cache=True)
def _ladder(r, K, V, states, rung_of, chain_at, ts, swap_states, w, wsum, wt, wtsum, hbias, dvis, base_bias,
            vbias, sweeps, first_round, rounds, up_out, down_out, top_out, top_lf, acc_sum, acc_n, last_end,
            half_trips, count_trips):
    """``rounds`` rounds of ladder r (see the module docstring). Slots 0..K-1 of V[r], states[r],
    rung_of[r] are its chains; chain_at[r, k] is the slot at rung k. Round i has parity
    (first_round + i) % 2. When up_out has rows, round i writes the works of rung k to
    up_out[i, r, k] / down_out[i, r, k], the top rung's state to top_out[i, r] and its
    ln f_1 = -F_beta(v) to top_lf[i, r]."""
    nv, nh = w.shape
    Vr = V[r]
    st = states[r]
    e = np.empty(nh)
    h = np.empty((1, nh))
    y = np.empty((1, nv))
    ey = np.empty(nv)
    bits = np.empty(max(nv, nh), np.int64)
    idx = np.empty(max(nv, nh), np.int64)
    X = np.empty((K, nh))  # X[c] = beta (b + V[c] W), kept current as the chains move
    for c in range(K):
        _hidden_fields(Vr, c, w, wsum, hbias, X[c:c + 1], idx)
    up = np.zeros(K)
    down = np.zeros(K)
    lf_top = 0.0
    record = up_out.shape[0] > 0
    q0, q1, q2, q3 = swap_states[r, 0], swap_states[r, 1], swap_states[r, 2], swap_states[r, 3]
    for i in range(rounds):
        for c in range(K):
            k = rung_of[r, c]
            t = ts[k]
            x = X[c:c + 1]
            xr = X[c]
            for _ in range(sweeps):
                for j in range(nh):
                    e[j] = -t * abs(xr[j])
                exp64(e, e, bits)
                s0, s1, s2, s3 = _draw(xr, e, h, 0, st[c, 0], st[c, 1], st[c, 2], st[c, 3])
                _binary_products(h, 0, 1, wt, wtsum, y, idx)
                yr = y[0]
                for m in range(nv):
                    yr[m] = (1.0 - t) * base_bias[m] + t * (vbias[m] + yr[m])
                    ey[m] = -abs(yr[m])
                exp64(ey, ey, bits)
                s0, s1, s2, s3 = _draw(yr, ey, Vr, c, s0, s1, s2, s3)
                st[c, 0], st[c, 1], st[c, 2], st[c, 3] = s0, s1, s2, s3
                _hidden_fields(Vr, c, w, wsum, hbias, x, idx)
            d = _dot(dvis, Vr, c)
            here = _softplus_sum(xr, t, e, bits)
            up[k] = (ts[k + 1] - t) * d + _softplus_sum(xr, ts[k + 1], e, bits) - here if k + 1 < K else 0.0
            down[k] = (ts[k - 1] - t) * d + _softplus_sum(xr, ts[k - 1], e, bits) - here if k > 0 else 0.0
            if k == K - 1:  # t = 1: ln f_1(v) = beta a.v + sum_j softplus(x_j) = -F_beta(v)
                lf_top = _dot(vbias, Vr, c) + here
        if record:
            for k in range(K):
                up_out[i, r, k] = up[k]
                down_out[i, r, k] = down[k]
            top = chain_at[r, K - 1]
            for m in range(nv):
                top_out[i, r, m] = np.uint8(Vr[top, m])
            top_lf[i, r] = lf_top
        for k in range((first_round + i) % 2, K - 1, 2):
            log_ratio = up[k] + down[k + 1]
            p = 1.0 if log_ratio >= 0.0 else np.exp(log_ratio)
            u, q0, q1, q2, q3 = _next(q0, q1, q2, q3)
            if p == p:  # NaN (a broken model) never swaps; the caller reports the non-finite works
                acc_sum[r, k] += p
                acc_n[r, k] += 1
                if u < p:
                    a = chain_at[r, k]
                    b = chain_at[r, k + 1]
                    chain_at[r, k] = b
                    chain_at[r, k + 1] = a
                    rung_of[r, a] = k + 1
                    rung_of[r, b] = k
        if count_trips:
            bottom = chain_at[r, 0]
            if last_end[r, bottom] == 1:
                half_trips[r, bottom] += 1
            last_end[r, bottom] = 0
            top = chain_at[r, K - 1]
            if last_end[r, top] == 0:
                half_trips[r, top] += 1
            last_end[r, top] = 1
    swap_states[r, 0], swap_states[r, 1], swap_states[r, 2], swap_states[r, 3] = q0, q1, q2, q3


@njit(cache=True, parallel=True)
def run_ladders(K, V, states, rung_of, chain_at, ts, swap_states, w, wsum, wt, wtsum, hbias, dvis, base_bias,
                vbias, sweeps, first_round, rounds, up_out, down_out, top_out, top_lf, acc_sum, acc_n, last_end,
                half_trips, count_trips):
    """``rounds`` replica-exchange rounds of every ladder r = 0..R-1 (R = V.shape[0]), one thread
    per ladder. Shapes: V (R, S, nv) 0/1 float64 and states (R, S, 4) uint64 for S >= K slots;
    rung_of, chain_at, acc_sum, acc_n, last_end, half_trips (R, S); ts (K,) with ts[0] = 0,
    ts[K-1] = 1; swap_states (R, 4); w (nv, nh) float64 = beta W with column sums wsum,
    wt (nh, nv) float32 with column sums wtsum; hbias = beta b, dvis = beta a - a_A,
    base_bias = a_A, vbias = beta a. up_out, down_out (rounds, R, S) float64, top_out
    (rounds, R, nv) uint8 and top_lf (rounds, R) float64, or arrays with no rows to record
    nothing. Everything is updated in place."""
    for r in prange(V.shape[0]):
        _ladder(r, K, V, states, rung_of, chain_at, ts, swap_states, w, wsum, wt, wtsum, hbias, dvis, base_bias,
                vbias, sweeps, first_round, rounds, up_out, down_out, top_out, top_lf, acc_sum, acc_n, last_end,
                half_trips, count_trips)
