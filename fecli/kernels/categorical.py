"""Draws of Potts (categorical) units: softmax and inverse-CDF sampling fused in one pass per site.

For logits z[r, i, :] (q states) and a uniform u[r, i], the state is the first k with
u sum_s exp(z_s - max z) < sum_{s <= k} exp(z_s - max z): the inverse CDF of softmax(z), without
forming the normalised probabilities (numpy would make five temporaries of rows x n x q).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _draw_rows(logits, u, out, lo, hi, scratch):
    n, q = logits.shape[1], logits.shape[2]
    for r in range(lo, hi):
        for i in range(n):
            top = logits[r, i, 0]
            for k in range(1, q):
                if logits[r, i, k] > top:
                    top = logits[r, i, k]
            total = 0.0
            for k in range(q):
                e = np.exp(logits[r, i, k] - top)
                scratch[k] = e
                total += e
            target = u[r, i] * total
            acc = 0.0
            state = q - 1
            for k in range(q):
                acc += scratch[k]
                if target < acc:
                    state = k
                    break
            out[r, i] = state


@njit(cache=True)
def categorical_draws(logits, u, out):
    """out[r, i] = state drawn from softmax(logits[r, i, :]) with the uniform u[r, i] (float64 states).

    Serial: a call draws one sweep of a few hundred chains (well under a millisecond of work), less
    than what starting threads costs on a busy machine."""
    scratch = np.empty(logits.shape[2])
    _draw_rows(logits, u, out, 0, logits.shape[0], scratch)
