"""Numba kernels for CD-k / PCD training: fused sigmoid + Bernoulli sampling, gradient
statistics and parameter updates.

Sparse 0/1 data with CD-k / PCD-k (the common case: images) take the fused path at the end
of this module, "the sparse CD / PCD update": two parallel regions per update
(:func:`sparse_gibbs_statistics` over rows, :func:`sparse_weight_update` over visible units),
no BLAS call, and a vectorised sigmoid. Otherwise (dense data, EMF) the matrix products of a
training step go through BLAS (``np.dot`` with preallocated outputs); everything elementwise
around them is fused here so that no temporary arrays are made:

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
from numba import njit, prange, types
from numba.extending import overload

from .vexp import exp32, exp64
from .primitives import add_rows, sigmoid_saturating, softplus

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
                x[r, c] = 1.0 if u[c] < sigmoid_saturating(x[r, c] + bias[c]) else 0.0
    elif samples.shape[0] == m:
        for r in range(m):
            _fill_uniforms(key, np.uint64(r) * np.uint64(n), u)
            for c in range(n):
                p = sigmoid_saturating(x[r, c] + bias[c])
                x[r, c] = p
                samples[r, c] = 1.0 if u[c] < p else 0.0
    else:
        for r in range(m):
            for c in range(n):
                x[r, c] = sigmoid_saturating(x[r, c] + bias[c])


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
            base += softplus(field[r, j])
        total = 0.0
        for i in range(nv):
            s = 1.0 - 2.0 * v[r, i]
            acc = s * visible_bias[i] - base
            for j in range(nh):
                acc += softplus(field[r, j] + s * weights[i, j])
            total -= softplus(acc)
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


# -- the sparse CD / PCD update: two parallel regions, no BLAS ---------------------------------------
#
# One CD-k / PCD-k update on sparse 0/1 data is two ``prange`` regions (and nothing else that
# uses threads, so no BLAS worker pool fights Numba's threads over the cores):
#
# 1. :func:`sparse_gibbs_statistics`, over rows: each data row gives p(h | v) by adding the rows
#    W[i] of its active units; each Gibbs chain draws v ~ p(v | h) by adding the rows W^T[j] of
#    its active hidden units, then p(h | v) and a new h the same way. A row's work is done by one
#    thread in a fixed order, and its random numbers are counter ``row * n_cols + col`` under the
#    step's keys, so the result does not depend on the thread count.
# 2. :func:`sparse_weight_update`, over blocks of visible units i: the weight-gradient row
#    sum_{rows with v_i = 1} (scaled h rows) fused with weight decay, momentum and the update of
#    W[i, :] (no gradient matrix is written and read back), the visible-bias step, and the copy
#    of the updated rows into W^T (kept in sync for the next update's v ~ p(v | h)).


# The fused kernels compute sigmoids a row at a time with the vectorised exp of
# fecli.kernels.vexp (Numba's np.exp is a scalar libm call, ~2.5 ns, and was a third of a
# float32 update); both within ~1.2 ulp of the exact sigmoid over the whole range, tested.
# The kernels that use it compile with error_model="numpy", or Numba's zero-division check keeps
# the division scalar.


def _sigmoid_rows(x, bits):
    """x[:] = sigmoid(x) in place for a 1-D float32 / float64 array; ``bits`` is int64 scratch
    with at least x.shape[0] entries. Saturates (tiny or 1.0), never inf or NaN for finite x."""
    raise NotImplementedError("compiled only (see the overload below)")


def _sigmoid_rows_f32(x, bits):
    n = x.shape[0]
    for j in range(n):
        x[j] = -x[j]
    exp32(x, x, bits)
    for j in range(n):
        x[j] = np.float32(1.0) / (np.float32(1.0) + x[j])


def _sigmoid_rows_f64(x, bits):
    n = x.shape[0]
    for j in range(n):
        x[j] = -x[j]
    exp64(x, x, bits)
    for j in range(n):
        x[j] = 1.0 / (1.0 + x[j])


@overload(_sigmoid_rows)
def _sigmoid_rows_overload(x, bits):
    if x.dtype == types.float32:
        return _sigmoid_rows_f32
    return _sigmoid_rows_f64


@njit(cache=True, error_model="numpy")
def sigmoid_rows(x, bits):
    """Compiled entry to the vectorised in-place sigmoid (for tests): each row of the 2-D ``x``."""
    for r in range(x.shape[0]):
        _sigmoid_rows(x[r], bits)


@njit(cache=True)
def _active_units(s, out):
    """Indices of the nonzero entries of the 0/1 vector ``s`` into ``out``; returns their count.

    Branch-free (always store, advance by the bit), as the bits are unpredictable.
    """
    count = 0
    for i in range(s.shape[0]):
        out[count] = i
        count += 1 if s[i] != 0 else 0
    return count


@njit(cache=True)
def _field(acc, bias, matrix, idx, count):
    """acc = bias + sum of the rows ``matrix[idx[t]]``, t < count (a layer's input field)."""
    for j in range(acc.shape[0]):
        acc[j] = bias[j]
    add_rows(acc, matrix, idx, 0, count)


@njit(cache=True)
def _sample_active(field, key, first, u, bits, out):
    """Draw s_i ~ Bernoulli(sigmoid(field_i)) with uniforms ``first + i`` of ``key``; the indices
    of the units drawn on go to ``out``, their count is returned (``field`` becomes sigmoid(field))."""
    _sigmoid_rows(field, bits)
    _fill_uniforms(key, first, u)
    count = 0
    for i in range(field.shape[0]):
        out[count] = i
        count += 1 if u[i] < field[i] else 0
    return count


@njit(cache=True)
def _sample_into(field, key, first, u, bits, out):
    """out_j = 1 if uniform ``first + j`` of ``key`` < sigmoid(field_j) else 0; ``field`` becomes sigmoid(field)."""
    _sigmoid_rows(field, bits)
    _fill_uniforms(key, first, u)
    for j in range(field.shape[0]):
        out[j] = 1.0 if u[j] < field[j] else 0.0


@njit(cache=True, parallel=True)
def sparse_gibbs_statistics(data, rows, weights, weights_t, visible_bias, hidden_bias, chains, cd,
                            key_pos, keys_v, keys_h, mask, stats, n_groups):
    """Positive and negative statistics of one CD-k / PCD-k update on 0/1 data, by row additions.

    data : (N, nv) 0/1 training rows; rows : (m,) the batch (indices into data).
    weights (nv, nh) and weights_t (nh, nv) = weights.T (contiguous), biases (nv,), (nh,).
    chains : (n, nh) 0/1 hidden states. PCD (cd=False): the persistent chains, updated in place
        (n = number of chains). CD (cd=True): scratch with n = m rows, chain r starts at
        h ~ p(h | data row r) drawn with ``key_pos``.
    keys_v, keys_h : (k,) keys of Gibbs step t's draws of v and of h.
    Writes ``mask`` (m + n, nv) uint8: the 0/1 visible rows, data first then the chains' final v;
    and ``stats`` (m + n, nh): p(h | v) of those rows scaled by +1/m (data) and -1/n (chains), so
    the gradient of the weights is mask^T stats and that of the hidden biases its column sums.
    CD-k's last step draws no h (only its probabilities are used), as in the BLAS path.
    n_groups : the rows are split into this many contiguous tasks (e.g. 4 per thread); the
        results do not depend on it.
    """
    total = max(rows.shape[0], chains.shape[0])
    n_groups = max(1, min(total, n_groups))
    for g in prange(n_groups):
        _gibbs_rows(g * total // n_groups, (g + 1) * total // n_groups, data, rows, weights, weights_t,
                    visible_bias, hidden_bias, chains, cd, key_pos, keys_v, keys_h, mask, stats)


@njit(cache=True, error_model="numpy")
def _gibbs_rows(start, stop, data, rows, weights, weights_t, visible_bias, hidden_bias, chains, cd,
                key_pos, keys_v, keys_h, mask, stats):
    """Rows start..stop-1 of :func:`sparse_gibbs_statistics`: data row r (if r < m), then chain r (if r < n).
    (A function of its own, so that the parallel kernel stays small and quick to compile.)"""
    m = rows.shape[0]
    n = chains.shape[0]
    nv, nh = weights.shape
    k = keys_v.shape[0]
    pos_scale = 1.0 / m
    neg_scale = -1.0 / n
    vis = np.empty(nv, dtype=weights.dtype)
    hid = np.empty(nh, dtype=weights.dtype)
    u = np.empty(max(nv, nh))
    bits = np.empty(max(nv, nh), dtype=np.int64)
    v_idx = np.empty(nv, dtype=np.int64)
    h_idx = np.empty(nh, dtype=np.int64)
    for r in range(start, stop):
        if r < m:  # data row: p(h | v), and for CD the chain's start h ~ p(h | v)
            v = data[rows[r]]
            for i in range(nv):
                mask[r, i] = 1 if v[i] != 0 else 0
            count = _active_units(v, v_idx)
            _field(hid, hidden_bias, weights, v_idx, count)
            if cd:
                _sample_into(hid, key_pos, np.uint64(r) * np.uint64(nh), u[:nh], bits, chains[r])
            else:
                _sigmoid_rows(hid, bits)
            for j in range(nh):
                stats[r, j] = hid[j] * pos_scale
        if r < n:  # chain: k Gibbs steps h -> v -> h
            count = 0
            for t in range(k):
                count = _active_units(chains[r], h_idx)
                _field(vis, visible_bias, weights_t, h_idx, count)
                count = _sample_active(vis, keys_v[t], np.uint64(r) * np.uint64(nv), u[:nv], bits, v_idx)
                _field(hid, hidden_bias, weights, v_idx, count)
                if t + 1 < k or not cd:
                    _sample_into(hid, keys_h[t], np.uint64(r) * np.uint64(nh), u[:nh], bits, chains[r])
                else:
                    _sigmoid_rows(hid, bits)
            row = mask[m + r]
            row[:] = 0
            for t in range(count):
                row[v_idx[t]] = 1
            for j in range(nh):
                stats[m + r, j] = hid[j] * neg_scale


@njit(cache=True)
def _gradient_row(mask, stats, i, rows_idx, acc):
    """acc = sum of the stats rows r with mask[r, i] = 1 (row i of mask^T stats); returns that row count."""
    count = 0
    for r in range(mask.shape[0]):
        rows_idx[count] = r
        count += mask[r, i]
    for j in range(acc.shape[0]):
        acc[j] = 0.0
    add_rows(acc, stats, rows_idx, 0, count)
    return count


#: Visible units per task of :func:`sparse_weight_update` (16 float32 = one cache line of W^T).
UNIT_BLOCK = 16


@njit(cache=True, parallel=True)
def sparse_weight_update(mask, stats, m, weights, weights_t, visible_bias, hidden_bias,
                         vel_w, vel_a, vel_b, lr, momentum, weight_decay):
    """Apply one CD / PCD update from the statistics of :func:`sparse_gibbs_statistics`, in place.

    Gradient (mask, stats as written there, rows < m from data, the rest negative, n of them):
        dW[i] = sum_{r: mask[r, i] = 1} stats[r],  da_i = #data rows with v_i / m - #negative / n,
        db = column sums of stats.
    Then, as :func:`momentum_step`: vel <- momentum * vel + lr * (grad - weight_decay * W) (no
    decay on the biases), param <- param + vel. ``weights_t`` receives the updated W^T.
    ``lr``, ``momentum`` and ``weight_decay`` should have the parameters' dtype.
    """
    _hidden_bias_step(stats, hidden_bias, vel_b, lr, momentum)
    nv = weights.shape[0]
    n_blocks = -(-nv // UNIT_BLOCK)
    for blk in prange(n_blocks):
        _update_units(blk * UNIT_BLOCK, min(nv, (blk + 1) * UNIT_BLOCK), mask, stats, m, weights, weights_t,
                      visible_bias, vel_w, vel_a, lr, momentum, weight_decay)


@njit(cache=True)
def _hidden_bias_step(stats, hidden_bias, vel_b, lr, momentum):
    """Momentum step of the hidden biases, whose gradient is the column sums of ``stats``."""
    nh = stats.shape[1]
    grad_b = np.zeros(nh, dtype=stats.dtype)
    for r in range(stats.shape[0]):
        for j in range(nh):
            grad_b[j] += stats[r, j]
    for j in range(nh):
        step = momentum * vel_b[j] + lr * grad_b[j]
        vel_b[j] = step
        hidden_bias[j] += step


@njit(cache=True)
def _update_units(start, stop, mask, stats, m, weights, weights_t, visible_bias, vel_w, vel_a, lr, momentum,
                  weight_decay):
    """Visible units start..stop-1 of :func:`sparse_weight_update`: gradient row, momentum step of
    W[i, :] and a_i, and the copy of the new rows into W^T."""
    nh = weights.shape[1]
    n = mask.shape[0] - m
    rows_idx = np.empty(mask.shape[0], dtype=np.int64)
    acc = np.empty(nh, dtype=weights.dtype)
    for i in range(start, stop):
        count = _gradient_row(mask, stats, i, rows_idx, acc)
        n_pos = 0
        for t in range(count):
            n_pos += 1 if rows_idx[t] < m else 0
        grad_a = n_pos / m - (count - n_pos) / n
        step = momentum * vel_a[i] + lr * grad_a
        vel_a[i] = step
        visible_bias[i] += step
        w = weights[i]
        vw = vel_w[i]
        for j in range(nh):
            step = momentum * vw[j] + lr * (acc[j] - weight_decay * w[j])
            vw[j] = step
            w[j] += step
    for i in range(start, stop):  # (this loop order measured faster than j outer for float32)
        for j in range(nh):
            weights_t[j, i] = weights[i, j]


@njit(cache=True, parallel=True)
def sparse_gradient(mask, stats, m, grad_w, grad_a, grad_b):
    """The gradient that :func:`sparse_weight_update` applies, written out (for tests and
    :meth:`Trainer.gradient`): grad_w (nv, nh), grad_a (nv,), grad_b (nh,)."""
    nv, nh = grad_w.shape
    n = mask.shape[0] - m
    for j in range(nh):
        grad_b[j] = 0.0
    for r in range(mask.shape[0]):
        for j in range(nh):
            grad_b[j] += stats[r, j]
    for i in prange(nv):
        grad_a[i] = _gradient_unit(mask, stats, m, n, i, grad_w[i])


@njit(cache=True)
def _gradient_unit(mask, stats, m, n, i, out):
    """out = row i of the weight gradient; returns the visible-bias gradient of unit i."""
    rows_idx = np.empty(mask.shape[0], dtype=np.int64)
    count = _gradient_row(mask, stats, i, rows_idx, out)
    n_pos = 0
    for t in range(count):
        n_pos += 1 if rows_idx[t] < m else 0
    return n_pos / m - (count - n_pos) / n


# -- one pass over the training data ------------------------------------------------------------------


@njit(cache=True, parallel=True)
def binary_column_counts(data, counts):
    """counts[i] = number of rows with data[r, i] == 1; returns the number of entries that are
    neither 0 nor 1 (NaN included). One parallel pass over the rows, without temporaries."""
    n, nv = data.shape
    n_chunks = max(1, min(n, 64))
    partial = np.zeros((n_chunks, nv), dtype=np.int64)
    bad = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        bad[c] = _count_rows(data, c * n // n_chunks, (c + 1) * n // n_chunks, partial[c])
    for i in range(nv):
        counts[i] = 0
    for c in range(n_chunks):
        for i in range(nv):
            counts[i] += partial[c, i]
    return bad.sum()


@njit(cache=True)
def _count_rows(data, start, stop, ones):
    """ones[i] += rows start..stop-1 with data[r, i] == 1; returns how many entries are neither 0 nor 1."""
    other = 0
    for r in range(start, stop):
        row = data[r]
        for i in range(row.shape[0]):
            x = row[i]
            ones[i] += 1 if x == 1 else 0
            other += 0 if (x == 0 or x == 1) else 1
    return other
