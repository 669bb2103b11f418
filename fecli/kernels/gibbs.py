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

Annealing runs and long Gibbs runs use the fused per-block kernels of
:mod:`fecli.kernels.anneal`. The kernels here serve the estimators that interleave
sweeps with other work (TI's derivatives, umbrella's windows and exchanges): there the
batched products V @ W and H @ W^T go through BLAS (the caller's job), and these
kernels do the fused elementwise work: sigmoids and Bernoulli draws, and the ln f_t
ladder of MBAR's reduced potentials, over chains (serial, or parallel with prange).

Randomness: every chain owns a xoshiro256+ generator state (4 uint64 words,
seeded from numpy's SeedSequence, one per chunk of chains). A chain's numbers
depend only on its own state, so results are identical for any NUMBA_NUM_THREADS.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .primitives import sigmoid, softplus  # noqa: F401  (softplus re-exported for benchmarks)

_U11 = np.uint64(11)
_U17 = np.uint64(17)
_U45 = np.uint64(45)
_U19 = np.uint64(19)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53


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


# Each kernel is a per-chain row function plus two loops over chains: a parallel one
# (prange; for large batches) and a serial one (small batches, where thread start-up
# and barriers cost more than the work, especially on a busy machine). The choice
# depends only on the batch size, never on the thread count, so results do not either.


@njit(cache=True, inline="always")
def _uniforms_row(c, states, out):
    s0, s1, s2, s3 = states[c, 0], states[c, 1], states[c, 2], states[c, 3]
    for i in range(out.shape[1]):
        u, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
        out[c, i] = u
    states[c, 0], states[c, 1], states[c, 2], states[c, 3] = s0, s1, s2, s3


@njit(cache=True, inline="always")
def _factorised_row(c, bias, states, v):
    s0, s1, s2, s3 = states[c, 0], states[c, 1], states[c, 2], states[c, 3]
    for i in range(v.shape[1]):
        u, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
        v[c, i] = 1.0 if u < sigmoid(bias[i]) else 0.0
    states[c, 0], states[c, 1], states[c, 2], states[c, 3] = s0, s1, s2, s3


@njit(cache=True, inline="always")
def _hidden_row(c, hfield, hbias_scaled, t, states, h):
    s0, s1, s2, s3 = states[c, 0], states[c, 1], states[c, 2], states[c, 3]
    for j in range(hfield.shape[1]):
        u, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
        h[c, j] = 1.0 if u < sigmoid(t * (hbias_scaled[j] + hfield[c, j])) else 0.0
    states[c, 0], states[c, 1], states[c, 2], states[c, 3] = s0, s1, s2, s3


@njit(cache=True, inline="always")
def _visible_row(c, vfield, base_bias, vbias_scaled, t, states, v):
    s0, s1, s2, s3 = states[c, 0], states[c, 1], states[c, 2], states[c, 3]
    for i in range(vfield.shape[1]):
        x = (1.0 - t) * base_bias[i] + t * (vbias_scaled[i] + vfield[c, i])
        u, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
        v[c, i] = 1.0 if u < sigmoid(x) else 0.0
    states[c, 0], states[c, 1], states[c, 2], states[c, 3] = s0, s1, s2, s3


@njit(cache=True, inline="always")
def _ladder_row(c, hfield, v, hbias_scaled, vbias_scaled, base_bias, ts, out):
    va = 0.0
    vb = 0.0
    for i in range(v.shape[1]):
        va += base_bias[i] * v[c, i]
        vb += vbias_scaled[i] * v[c, i]
    for k in range(ts.shape[0]):
        t = ts[k]
        acc = (1.0 - t) * va + t * vb
        for j in range(hfield.shape[1]):
            acc += softplus(t * (hbias_scaled[j] + hfield[c, j]))
        out[c, k] = acc


# ----------------------------------------------------------------- parallel loops
@njit(cache=True, parallel=True)
def uniforms_par(states, out):
    """Fill out (n_chains, m) with uniforms from each chain's own stream."""
    for c in prange(out.shape[0]):
        _uniforms_row(c, states, out)


@njit(cache=True, parallel=True)
def sample_factorised_par(bias, states, v):
    """v[c, i] ~ Bernoulli(sigmoid(bias_i)) independently: exact samples of the base model."""
    for c in prange(v.shape[0]):
        _factorised_row(c, bias, states, v)


@njit(cache=True, parallel=True)
def hidden_step_par(hfield, hbias_scaled, t, states, h):
    """h[c, j] ~ Bernoulli(sigmoid(t (beta b_j + hfield[c, j]))), hfield (C, nh) = V @ (beta W), hbias_scaled = beta b."""
    for c in prange(hfield.shape[0]):
        _hidden_row(c, hfield, hbias_scaled, t, states, h)


@njit(cache=True, parallel=True)
def visible_step_par(vfield, base_bias, vbias_scaled, t, states, v):
    """v[c, i] ~ Bernoulli(sigmoid((1 - t) a_A,i + t (beta a_i + vfield[c, i]))), vfield = H @ (beta W)^T."""
    for c in prange(vfield.shape[0]):
        _visible_row(c, vfield, base_bias, vbias_scaled, t, states, v)


@njit(cache=True, parallel=True)
def log_f_ladder_par(hfield, v, hbias_scaled, vbias_scaled, base_bias, ts, out):
    """out[c, k] = ln f_{ts[k]}(v_c) for every t of a ladder (MBAR's reduced potentials)."""
    for c in prange(hfield.shape[0]):
        _ladder_row(c, hfield, v, hbias_scaled, vbias_scaled, base_bias, ts, out)


# ----------------------------------------------------------------- serial loops
@njit(cache=True)
def uniforms_ser(states, out):
    for c in range(out.shape[0]):
        _uniforms_row(c, states, out)


@njit(cache=True)
def sample_factorised_ser(bias, states, v):
    for c in range(v.shape[0]):
        _factorised_row(c, bias, states, v)


@njit(cache=True)
def hidden_step_ser(hfield, hbias_scaled, t, states, h):
    for c in range(hfield.shape[0]):
        _hidden_row(c, hfield, hbias_scaled, t, states, h)


@njit(cache=True)
def visible_step_ser(vfield, base_bias, vbias_scaled, t, states, v):
    for c in range(vfield.shape[0]):
        _visible_row(c, vfield, base_bias, vbias_scaled, t, states, v)


@njit(cache=True)
def log_f_ladder_ser(hfield, v, hbias_scaled, vbias_scaled, base_bias, ts, out):
    for c in range(hfield.shape[0]):
        _ladder_row(c, hfield, v, hbias_scaled, vbias_scaled, base_bias, ts, out)


#: Batches with fewer unit updates than this (chains x units) run serially.
PARALLEL_MIN_WORK = 1 << 15


class Kernels:
    """The serial or the parallel set of loops, chosen once from the batch size.

    ``interleaved=True`` (kernels called between BLAS products, as in umbrella's sweeps)
    always picks the serial loops: OpenBLAS's and Numba's OpenMP worker threads then
    spin against each other, and on 2 cores a 784 x 500, 100-chain AIS step measured
    21 ms with parallel kernels against 4 ms with serial ones (BLAS keeps its threads).
    """

    def __init__(self, n_chains: int, n_units: int, interleaved: bool = False):
        self.parallel = n_chains * n_units >= PARALLEL_MIN_WORK and n_chains > 1 and not interleaved
        suffix = "_par" if self.parallel else "_ser"
        g = globals()
        for name in ("uniforms", "sample_factorised", "hidden_step", "visible_step", "log_f_ladder"):
            setattr(self, name, g[name + suffix])
