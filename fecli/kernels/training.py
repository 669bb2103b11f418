"""Numba kernels for CD-k / PCD training: fused sigmoid + Bernoulli sampling, gradient
statistics and parameter updates.

The matrix products of a training step go through BLAS (``np.dot`` with preallocated
outputs); everything elementwise around them is fused here so that no temporary
arrays are made:

* :func:`sigmoid_sample` turns a block of pre-activations ``x = s @ W`` (BLAS) into
  probabilities ``sigmoid(x + bias)`` and/or Bernoulli samples, in place;
* :func:`scale_stats_colsum` scales the stacked positive / negative statistics by
  ``+1/m`` and ``-1/n`` and sums their columns (the bias gradients), so that one BLAS
  product ``S_v^T @ S_h`` is the whole weight gradient;
* :func:`momentum_step` applies weight decay, momentum and the update in one pass;
* :func:`pseudo_log_likelihood_rows` is the exact pseudo-log-likelihood, summed over
  every visible unit (no single-random-bit shortcut).

Randomness: uniforms come from a counter-based generator (SplitMix64 applied to
``key + (index + 1) * golden_gamma``). Element ``(r, c)`` of a block always gets
counter ``r * n_cols + c`` under the key of its call, so the numbers do not depend
on the thread count or on how ``prange`` splits the rows, and the whole stream is
reproducible from ``(seed, step)`` alone: a checkpoint needs no generator state.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO_M53 = 1.0 / 9007199254740992.0

MASK64 = (1 << 64) - 1


def mix64(z: int) -> int:
    """SplitMix64 finaliser on Python ints (for deriving per-call keys outside kernels)."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def call_key(base_key: int, step: int, stream: int) -> np.uint64:
    """Key of the ``stream``-th random block of training step ``step``, derived from ``base_key``."""
    return np.uint64(mix64(int(base_key) ^ mix64(mix64(int(step)) + int(stream) + 1)))


@njit(cache=True, inline="always")
def _uniform(key, counter):
    """Uniform in [0, 1) with 53 random bits: SplitMix64 output number ``counter`` of ``key``."""
    z = key + (counter + _ONE) * _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    z = z ^ (z >> _S31)
    return np.float64(z >> _S11) * _TWO_M53


@njit(cache=True, inline="always")
def _sigmoid(x):
    # 1 / (1 + e^-x): for x << 0, e^-x overflows to inf and the result is exactly 0, never NaN.
    return 1.0 / (1.0 + np.exp(-x))


@njit(cache=True, inline="always")
def _fill_uniforms(key, first, out):
    """out[c] = uniform number first + c of ``key`` (a separate loop, so that it vectorises)."""
    for c in range(out.shape[0]):
        out[c] = _uniform(key, first + np.uint64(c))


@njit(cache=True)
def uniforms(key, n):
    """The first ``n`` uniforms of ``key`` (for tests of the generator)."""
    out = np.empty(n)
    for i in range(n):
        out[i] = _uniform(key, np.uint64(i))
    return out


@njit(cache=True)
def sigmoid_sample(x, bias, key, keep_probs, samples):
    """Fused sigmoid and Bernoulli sampling of a block of units, in place.

    x : (m, n) pre-activations ``s @ W`` (or ``s @ W.T``) without the bias.
    bias : (n,).
    keep_probs : if True, ``x`` becomes ``sigmoid(x + bias)`` and ``samples`` (m, n)
        receives 0/1 draws from it; if False, ``x`` itself receives the 0/1 draws
        (``samples`` is ignored and may be ``x``).
    ``samples`` with zero rows (shape (0, n)) and keep_probs=True means
    "probabilities only, no sampling".

    Serial on purpose: the block is small and runs between BLAS calls, whose threads
    own the cores; a parallel region here would oversubscribe them. Each mode is a
    branch-free inner loop so that LLVM vectorises the generator.
    """
    m, n = x.shape
    u = np.empty(n)
    if not keep_probs:
        for r in range(m):
            _fill_uniforms(key, np.uint64(r) * np.uint64(n), u)
            for c in range(n):
                x[r, c] = 1.0 if u[c] < _sigmoid(x[r, c] + bias[c]) else 0.0
    elif samples.shape[0] == m:
        for r in range(m):
            _fill_uniforms(key, np.uint64(r) * np.uint64(n), u)
            for c in range(n):
                p = _sigmoid(x[r, c] + bias[c])
                x[r, c] = p
                samples[r, c] = 1.0 if u[c] < p else 0.0
    else:
        for r in range(m):
            for c in range(n):
                x[r, c] = _sigmoid(x[r, c] + bias[c])


@njit(cache=True)
def scale_stats_colsum(stats, n_pos, out):
    """Scale the stacked statistics and sum their columns, in place.

    stats : (n_pos + n_neg, n) positive rows first, then negative rows.
    Rows ``< n_pos`` are multiplied by ``1 / n_pos``, the others by ``-1 / n_neg``;
    ``out`` (n,) receives the column sums: sum_pos / n_pos - sum_neg / n_neg.
    """
    rows, n = stats.shape
    n_neg = rows - n_pos
    pos = 1.0 / n_pos
    neg = -1.0 / n_neg
    for c in range(n):
        out[c] = 0.0
    for r in range(rows):
        f = pos if r < n_pos else neg
        for c in range(n):
            v = stats[r, c] * f
            stats[r, c] = v
            out[c] += v


@njit(cache=True)
def colsum_difference(stats, n_pos, out):
    """``out`` (n,) = mean of rows < n_pos minus mean of the other rows (stats unchanged)."""
    rows, n = stats.shape
    n_neg = rows - n_pos
    pos = 1.0 / n_pos
    neg = -1.0 / n_neg
    for c in range(n):
        out[c] = 0.0
    for r in range(rows):
        f = pos if r < n_pos else neg
        for c in range(n):
            out[c] += stats[r, c] * f


@njit(cache=True)
def momentum_step(param, grad, velocity, lr, momentum, weight_decay):
    """Ascent step with momentum and L2 weight decay, in place (2-D arrays; biases as (1, n)).
    Serial for the same reason as :func:`sigmoid_sample` (memory-bound, between BLAS calls).

    velocity <- momentum * velocity + lr * (grad - weight_decay * param);  param <- param + velocity
    """
    rows, cols = param.shape
    for r in prange(rows):
        for c in range(cols):
            v = momentum * velocity[r, c] + lr * (grad[r, c] - weight_decay * param[r, c])
            velocity[r, c] = v
            param[r, c] = param[r, c] + v


@njit(cache=True, inline="always")
def _softplus(x):
    if x > 0.0:
        return x + np.log1p(np.exp(-x))
    return np.log1p(np.exp(x))


@njit(cache=True, parallel=True)
def pseudo_log_likelihood_rows(v, field, weights, visible_bias, out):
    """Exact pseudo-log-likelihood of each row, summed over all visible units (float64).

    With x = v W + b (``field``, one row per example) and s_i = 1 - 2 v_i,

        F(v) - F(v with unit i flipped) = s_i a_i + sum_j softplus(x_j + s_i W_ij) - sum_j softplus(x_j)

    and ln p(v_i | v_-i) = -softplus(F(v) - F(v^i)).  Cost: n_visible * n_hidden softplus per row.
    """
    n_rows, nv = v.shape
    nh = weights.shape[1]
    for r in prange(n_rows):
        base = 0.0
        for j in range(nh):
            base += _softplus(field[r, j])
        total = 0.0
        for i in range(nv):
            s = 1.0 - 2.0 * v[r, i]
            acc = s * visible_bias[i] - base
            for j in range(nh):
                acc += _softplus(field[r, j] + s * weights[i, j])
            total -= _softplus(acc)
        out[r] = total


# -- products with binary left operands ---------------------------------------------------------------
#
# Data rows and sampled visible states are 0/1 and usually sparse (MNIST-like data: ~14% ones).
# For such a block v (m, n), v @ W adds the rows W[i] of the active units, and v^T H sums the
# rows of H over the examples where unit i is on: nnz(v) * n_cols additions instead of the
# m * n * n_cols multiply-adds of a dense product. The block is first indexed by column
# (compressed sparse columns), so the inner loops run over contiguous rows and vectorise.


@njit(cache=True)
def binary_columns(v, ptr, idx):
    """Compressed-column index of the nonzeros of v (m, n): rows of column i are idx[ptr[i]:ptr[i+1]]."""
    m, n = v.shape
    for i in range(n + 1):
        ptr[i] = 0
    for r in range(m):
        for i in range(n):
            if v[r, i] != 0:
                ptr[i + 1] += 1
    for i in range(n):
        ptr[i + 1] += ptr[i]
    fill = ptr[:n].copy()
    for r in range(m):
        for i in range(n):
            if v[r, i] != 0:
                idx[fill[i]] = r
                fill[i] += 1


@njit(cache=True)
def binary_matmul(v, weights, out, ptr, idx):
    """out (m, k) = v @ weights for a 0/1 block v (m, n); ptr (n+1,) and idx (m*n,) are scratch."""
    binary_columns(v, ptr, idx)
    n, k = weights.shape
    for r in range(out.shape[0]):
        for j in range(k):
            out[r, j] = 0.0
    for i in range(n):
        for t in range(ptr[i], ptr[i + 1]):
            r = idx[t]
            for j in range(k):
                out[r, j] += weights[i, j]


@njit(cache=True)
def binary_transpose_matmul(v, h, out, ptr, idx):
    """out (n, k) = v^T @ h for a 0/1 block v (m, n) and h (m, k); ptr, idx scratch as above."""
    binary_columns(v, ptr, idx)
    n, k = out.shape
    for i in range(n):
        for j in range(k):
            out[i, j] = 0.0
        for t in range(ptr[i], ptr[i + 1]):
            r = idx[t]
            for j in range(k):
                out[i, j] += h[r, j]
