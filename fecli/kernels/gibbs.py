"""Block Gibbs sweeps for many chains at once along the annealing path (Numba).

All sampling estimators (AIS, reverse AIS, RAISE, TI, umbrella) move chains of
visible states v along one path of unnormalised marginals, indexed by t in [0, 1]:

    ln f_t(v) = (1 - t) a_A.v + t beta a.v + sum_j softplus(t beta (b_j + (v^T W)_j)),

the marginal of p_t(v, h) ~ exp((1 - t) a_A.v + t beta (a.v + b.h + v^T W h)).
t = 0 is the factorised base model (visible bias a_A, hidden uniform; its ln f_0
includes nh ln 2 through softplus(0)); t = 1 is the target RBM at inverse
temperature beta. A block Gibbs sweep at t draws

    h_j ~ Bernoulli(sigmoid(t beta (b_j + (v^T W)_j))),
    v_i ~ Bernoulli(sigmoid((1 - t) a_A,i + t beta (a_i + (W h)_i))).

The batched products V @ W and H @ W^T go through BLAS (the caller's job); the
kernels here do the fused elementwise work: softplus differences for the weights,
sigmoids, and Bernoulli draws, parallel over chains (prange).

Randomness: every chain owns a xoshiro256+ generator state (4 uint64 words,
seeded from numpy's SeedSequence, one per chunk of chains). A chain's numbers
depend only on its own state, so results are identical for any NUMBA_NUM_THREADS.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_U11 = np.uint64(11)
_U17 = np.uint64(17)
_U45 = np.uint64(45)
_U19 = np.uint64(19)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53


@njit(cache=True, inline="always")
def softplus(x):
    """ln(1 + e^x) = max(x, 0) + log1p(exp(-|x|))."""
    if x > 0.0:
        return x + np.log1p(np.exp(-x))
    return np.log1p(np.exp(x))


@njit(cache=True, inline="always")
def sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + np.exp(-x))
    e = np.exp(x)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def _next(s0, s1, s2, s3):
    """One xoshiro256+ step: returns (u in [0, 1), new state)."""
    result = s0 + s3
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << _U45) | (s3 >> _U19)
    return (result >> _U11) * _TO_UNIT, s0, s1, s2, s3


def seed_states(words: np.ndarray) -> np.ndarray:
    """Generator states (n, 4) uint64 from SeedSequence words; all-zero rows (invalid) are fixed."""
    states = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1, 4).copy()
    zero = ~states.any(axis=1)
    states[zero, 0] = np.uint64(0x9E3779B97F4A7C15)
    return states


@njit(cache=True, parallel=True)
def uniforms(states, out):
    """Fill out (n_chains, m) with uniforms from each chain's own stream (for tests and samplers)."""
    n, m = out.shape
    for c in prange(n):
        s0, s1, s2, s3 = states[c, 0], states[c, 1], states[c, 2], states[c, 3]
        for i in range(m):
            u, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
            out[c, i] = u
        states[c, 0], states[c, 1], states[c, 2], states[c, 3] = s0, s1, s2, s3


@njit(cache=True, parallel=True)
def sample_factorised(bias, states, v):
    """v[c, i] ~ Bernoulli(sigmoid(bias_i)) independently: exact samples of the base model."""
    n, nv = v.shape
    for c in prange(n):
        s0, s1, s2, s3 = states[c, 0], states[c, 1], states[c, 2], states[c, 3]
        for i in range(nv):
            u, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
            v[c, i] = 1.0 if u < sigmoid(bias[i]) else 0.0
        states[c, 0], states[c, 1], states[c, 2], states[c, 3] = s0, s1, s2, s3


@njit(cache=True, parallel=True)
def hidden_step(hfield, v, hbias_scaled, dvis, t_old, t_new, weight, sample, states, logw, h):
    """Weight update from t_old to t_new at the current v, then h ~ p_{t_new}(h | v).

    hfield (C, nh) = V @ (beta W); hbias_scaled = beta * b; dvis = beta * a - a_A.
    If ``weight``: logw[c] += ln f_{t_new}(v_c) - ln f_{t_old}(v_c).
    If ``sample``: h[c, j] ~ Bernoulli(sigmoid(t_new (beta b_j + hfield[c, j]))).
    """
    n, nh = hfield.shape
    nv = v.shape[1]
    for c in prange(n):
        acc = 0.0
        if weight:
            dot = 0.0
            for i in range(nv):
                dot += dvis[i] * v[c, i]
            acc = (t_new - t_old) * dot
        if sample:
            s0, s1, s2, s3 = states[c, 0], states[c, 1], states[c, 2], states[c, 3]
            for j in range(nh):
                x = hbias_scaled[j] + hfield[c, j]
                xn = t_new * x
                if weight:
                    acc += softplus(xn) - softplus(t_old * x)
                u, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
                h[c, j] = 1.0 if u < sigmoid(xn) else 0.0
            states[c, 0], states[c, 1], states[c, 2], states[c, 3] = s0, s1, s2, s3
        elif weight:
            for j in range(nh):
                x = hbias_scaled[j] + hfield[c, j]
                acc += softplus(t_new * x) - softplus(t_old * x)
        if weight:
            logw[c] += acc


@njit(cache=True, parallel=True)
def visible_step(vfield, base_bias, vbias_scaled, t, states, v):
    """v[c, i] ~ Bernoulli(sigmoid((1 - t) a_A,i + t (beta a_i + vfield[c, i]))).

    vfield (C, nv) = H @ (beta W)^T; vbias_scaled = beta * a; base_bias = a_A.
    """
    n, nv = vfield.shape
    for c in prange(n):
        s0, s1, s2, s3 = states[c, 0], states[c, 1], states[c, 2], states[c, 3]
        for i in range(nv):
            x = (1.0 - t) * base_bias[i] + t * (vbias_scaled[i] + vfield[c, i])
            u, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
            v[c, i] = 1.0 if u < sigmoid(x) else 0.0
        states[c, 0], states[c, 1], states[c, 2], states[c, 3] = s0, s1, s2, s3


@njit(cache=True, parallel=True)
def log_f(hfield, v, hbias_scaled, vbias_scaled, base_bias, t, out):
    """out[c] = ln f_t(v_c) with hfield = V @ (beta W) (hidden summed out)."""
    n, nh = hfield.shape
    nv = v.shape[1]
    for c in prange(n):
        acc = 0.0
        for i in range(nv):
            acc += ((1.0 - t) * base_bias[i] + t * vbias_scaled[i]) * v[c, i]
        for j in range(nh):
            acc += softplus(t * (hbias_scaled[j] + hfield[c, j]))
        out[c] = acc


@njit(cache=True, parallel=True)
def log_f_derivative(hfield, v, hbias_scaled, dvis, t, out):
    """out[c] = d ln f_t(v_c) / dt = (beta a - a_A).v + sum_j x_j sigmoid(t x_j), x = beta (b + v W)."""
    n, nh = hfield.shape
    nv = v.shape[1]
    for c in prange(n):
        acc = 0.0
        for i in range(nv):
            acc += dvis[i] * v[c, i]
        for j in range(nh):
            x = hbias_scaled[j] + hfield[c, j]
            acc += x * sigmoid(t * x)
        out[c] = acc


@njit(cache=True, parallel=True)
def log_f_ladder(hfield, v, hbias_scaled, vbias_scaled, base_bias, ts, out):
    """out[c, k] = ln f_{ts[k]}(v_c) for every t of a ladder (MBAR's reduced potentials)."""
    n, nh = hfield.shape
    nv = v.shape[1]
    K = ts.shape[0]
    for c in prange(n):
        va = 0.0
        vb = 0.0
        for i in range(nv):
            va += base_bias[i] * v[c, i]
            vb += vbias_scaled[i] * v[c, i]
        for k in range(K):
            t = ts[k]
            acc = (1.0 - t) * va + t * vb
            for j in range(nh):
                acc += softplus(t * (hbias_scaled[j] + hfield[c, j]))
            out[c, k] = acc
