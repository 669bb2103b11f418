"""Numba kernel of the damped mean-field / TAP fixed-point iteration, one start (row) at a time.

:func:`fecli.estimators.meanfield._solve` iterates a batch of starts with BLAS products; on
small models (EMF training on 8x8 digits: 64 x 16 units, tens of sweeps per update) each
sweep then costs tens of numpy calls of microseconds each for a few thousand multiply-adds,
and the Python overhead is the whole cost. This kernel runs the same iteration, with the
same arithmetic, start by start in compiled code. Starts are independent (each has its own
damping and stall count), so doing them one at a time changes nothing but the order in
which each matrix-vector sum is added up (sequentially here, blocked in BLAS): results agree
to rounding.

One sweep (see :mod:`fecli.estimators.meanfield` for the equations), for magnetisations x
(visible) and y (hidden), with c(p) = p(1-p), d(p) = (1/2 - p) p (1-p):

    fields on x from y:  a + W y,  W^2 c(y),  W^3 d(y)       (order >= 2, >= 3)
    fields on y from x:  b + W^T x,  (W^2)^T c(x),  (W^3)^T d(x)
    fx = sigma(a + W y + (1/2 - x) W^2 c(y) + k3 (1/2 - 3x + 3x^2) W^3 d(y)),  fy likewise;
    residual = max(|fx - x|, |fy - y|); stop when it is below tol (converged), not finite, or
    after max_iter sweeps; else x <- d x + (1-d) fx, then y <- d y + (1-d) fy(new x).

Damping d starts at ``damping`` and becomes 1 - (1 - d)/2 (at most ``max_damping``) after each
``stall_sweeps`` sweeps in which the residual made no new minimum and the step reversed
direction. Products are written as row updates (acc += y_j * W^T[j, :]) over contiguous
rows, so they vectorise without reordering any sum.

:func:`tap_statistics` sums EMF training's negative-phase statistics at the fixed points. Both
kernels handle a start equal to an earlier one by copying (persistent EMF magnetisations collapse
onto one fixed point after a few updates, so a batch of 20 is mostly one start).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .gibbs import sigmoid


@njit(cache=True)
def _fields(m, wt, w2t, w3t, bias, order, lin, sec, thi):
    """lin = bias + m @ wt, sec = c(m) @ w2t, thi = d(m) @ w3t (wt: (len(m), n_out), C order)."""
    n_out = wt.shape[1]
    for k in range(n_out):
        lin[k] = 0.0
        sec[k] = 0.0
        thi[k] = 0.0
    for j in range(m.shape[0]):
        mj = m[j]
        for k in range(n_out):
            lin[k] += mj * wt[j, k]
        if order >= 2:
            cj = mj * (1.0 - mj)
            for k in range(n_out):
                sec[k] += cj * w2t[j, k]
        if order >= 3:
            dj = (0.5 - mj) * mj * (1.0 - mj)
            for k in range(n_out):
                thi[k] += dj * w3t[j, k]
    for k in range(n_out):
        lin[k] = bias[k] + lin[k]


@njit(cache=True)
def _update(own, lin, sec, thi, order, tap3, out):
    """out = sigma(field) of the layer with magnetisations ``own`` given the other layer's fields."""
    n = own.shape[0]
    for k in range(n):
        h = lin[k]
        if order >= 2:
            h = h + (0.5 - own[k]) * sec[k]
        if order >= 3:
            h = h + tap3 * (0.5 - 3.0 * own[k] + 3.0 * own[k] * own[k]) * thi[k]
        out[k] = sigmoid(h)


@njit(cache=True)
def _first_equal_row(z, s):
    """The first row r < s of z equal to row s (value by value), or -1."""
    for r in range(s):
        same = True
        for i in range(z.shape[1]):
            if z[r, i] != z[s, i]:
                same = False
                break
        if same:
            return r
    return -1


@njit(cache=True)
def solve_rows(w, w2, w3, a, b, order, tap3, x, y, tol, max_iter, damping, stall_sweeps, max_damping):
    """Iterate every row (start) of x (S, nv), y (S, nh) in place.

    w (nv, nh) and its elementwise powers w2, w3 (any 2-D arrays when ``order`` is too low to
    use them), a (nv,), b (nh,), all float64. A start equal to an earlier one is not iterated
    again: it gets that start's outcome (equal starts iterate identically), and matvecs counts
    the products actually spent. Returns (converged (S,) bool, iterations (S,) sweeps made,
    residual (S,) stationarity residual at the final point, final_damping (S,), matvecs).
    """
    n, nv = x.shape
    nh = y.shape[1]
    wt = np.ascontiguousarray(w.T)
    w2t = np.ascontiguousarray(w2.T)
    w3t = np.ascontiguousarray(w3.T)
    converged = np.zeros(n, dtype=np.bool_)
    iterations = np.zeros(n, dtype=np.int64)
    residual = np.full(n, np.inf)
    final_damping = np.full(n, damping)
    starts = np.empty((n, nv + nh))
    starts[:, :nv] = x
    starts[:, nv:] = y
    lin_x, sec_x, thi_x = np.empty(nv), np.empty(nv), np.empty(nv)
    lin_y, sec_y, thi_y = np.empty(nh), np.empty(nh), np.empty(nh)
    fx, fy = np.empty(nv), np.empty(nh)
    prev_step = np.empty(nv)
    matvecs = 0
    for s in range(n):
        twin = _first_equal_row(starts, s)
        if twin >= 0:
            x[s, :] = x[twin, :]
            y[s, :] = y[twin, :]
            converged[s], iterations[s] = converged[twin], iterations[twin]
            residual[s], final_damping[s] = residual[twin], final_damping[twin]
            continue
        xs, ys = x[s], y[s]
        _fields(xs, w, w2, w3, b, order, lin_y, sec_y, thi_y)
        matvecs += order
        dmp = damping
        best = np.inf
        stalled = 0
        prev_step[:] = 0.0
        for sweep in range(max_iter + 1):
            _fields(ys, wt, w2t, w3t, a, order, lin_x, sec_x, thi_x)
            matvecs += order
            _update(xs, lin_x, sec_x, thi_x, order, tap3, fx)
            _update(ys, lin_y, sec_y, thi_y, order, tap3, fy)
            r = 0.0
            bad = False
            for i in range(nv):
                if not np.isfinite(fx[i]):
                    bad = True
                r = max(r, abs(fx[i] - xs[i]))
            for j in range(nh):
                if not np.isfinite(fy[j]):
                    bad = True
                r = max(r, abs(fy[j] - ys[j]))
            if bad or not np.isfinite(r):
                r = np.inf
            residual[s] = r
            iterations[s] = sweep
            if r < tol:
                converged[s] = True
                break
            if bad or sweep == max_iter:
                break
            # Oscillation: no new minimum of the residual and the step reverses direction.
            turn = 0.0
            for i in range(nv):
                step = fx[i] - xs[i]
                turn += step * prev_step[i]
                prev_step[i] = step
            if r < best:
                best = r
                stalled = 0
            elif turn < 0.0:
                stalled += 1
            if stalled >= stall_sweeps:
                dmp = min(max_damping, 1.0 - 0.5 * (1.0 - dmp))
                stalled = 0
            for i in range(nv):
                xs[i] = dmp * xs[i] + (1.0 - dmp) * fx[i]
            _fields(xs, w, w2, w3, b, order, lin_y, sec_y, thi_y)
            matvecs += order
            _update(ys, lin_y, sec_y, thi_y, order, tap3, fy)
            for j in range(nh):
                ys[j] = dmp * ys[j] + (1.0 - dmp) * fy[j]
        final_damping[s] = dmp
    return converged, iterations, residual, final_damping, matvecs


@njit(cache=True)
def tap_statistics(w, x, y, order, tap3):
    """Mean over rows of d(-Gamma)/dW at (x, y), and the means of x and y (EMF's negative phase).

        dW = mean_s [x_s y_s^T + W * c(x_s) c(y_s)^T + 3 tap3 W^2 * d(x_s) d(y_s)^T]

    (terms above ``order`` left out); w (nv, nh), x (S, nv), y (S, nh) float64. A row equal to an
    earlier row adds its outer products again without recomputing them: persistent
    magnetisations are mostly copies of one fixed point. Returns (dW (nv, nh), mean x, mean y).
    """
    n, nv = x.shape
    nh = y.shape[1]
    z = np.empty((n, nv + nh))
    z[:, :nv] = x
    z[:, nv:] = y
    count = np.zeros(n)
    for s in range(n):
        twin = _first_equal_row(z, s)
        count[s if twin < 0 else twin] += 1.0
    first = np.zeros((nv, nh))
    second = np.zeros((nv, nh))
    third = np.zeros((nv, nh))
    mean_x, mean_y = np.zeros(nv), np.zeros(nh)
    cy, dy = np.empty(nh), np.empty(nh)
    for s in range(n):
        k = count[s]
        if k == 0.0:
            continue
        for j in range(nh):
            q = y[s, j]
            cy[j] = q * (1.0 - q)
            dy[j] = (0.5 - q) * q * (1.0 - q)
            mean_y[j] += k * q
        for i in range(nv):
            p = x[s, i]
            mean_x[i] += k * p
            kp, kc, kd = k * p, k * (p * (1.0 - p)), k * ((0.5 - p) * p * (1.0 - p))
            for j in range(nh):
                first[i, j] += kp * y[s, j]
            if order >= 2:
                for j in range(nh):
                    second[i, j] += kc * cy[j]
            if order >= 3:
                for j in range(nh):
                    third[i, j] += kd * dy[j]
    dw = np.empty((nv, nh))
    for i in range(nv):
        for j in range(nh):
            g = first[i, j]
            if order >= 2:
                g += w[i, j] * second[i, j]
            if order >= 3:
                g += 3.0 * tap3 * w[i, j] * w[i, j] * third[i, j]
            dw[i, j] = g / n
    return dw, mean_x / n, mean_y / n


@njit(cache=True)
def emf_rows(w, a, b, order, tap3, x, y, tol, max_iter, damping, stall_sweeps, max_damping):
    """:func:`solve_rows` then :func:`tap_statistics` at the fixed points, in one call (EMF training).

    Builds the elementwise powers of ``w`` itself. Returns (converged, iterations, residual,
    dW, mean x, mean y); x and y are updated in place.
    """
    w2 = w * w if order >= 2 else np.zeros((0, 0))
    w3 = w2 * w if order >= 3 else np.zeros((0, 0))
    converged, iterations, residual, _, _ = solve_rows(w, w2, w3, a, b, order, tap3, x, y, tol, max_iter, damping,
                                                       stall_sweeps, max_damping)
    dw, mean_x, mean_y = tap_statistics(w, x, y, order, tap3)
    return converged, iterations, residual, dw, mean_x, mean_y
