"""Naive mean field and TAP (EMF) free energies of a Bernoulli RBM, solved by damped fixed-point iteration.

With magnetisations x = E[v] (visible) and y = E[h] (hidden) and the model at inverse
temperature beta (a, b, W below are the parameters multiplied by beta),

    -Gamma(x, y) = S(x) + S(y) + a.x + b.y + x^T W y                          (order 1, naive MF)
                 + 1/2 sum_ij W_ij^2 c(x_i) c(y_j)                            (order 2, TAP2)
                 + 2/3 sum_ij W_ij^3 d(x_i) d(y_j)                            (order 3, TAP3)

with S the binary entropy, c(x) = x(1-x) and d(x) = (1/2 - x) x(1-x) (Plefka 1982; Georges &
Yedidia 1991; Gabrie, Tramel & Krzakala 2015). ln Z is approximated by -Gamma at a stationary
point. Truncated after order 1 it is the Gibbs variational bound: -Gamma_MF(x, y) <= ln Z for
EVERY (x, y) in [0,1]^n, so the naive mean-field value is a rigorous lower bound even where the
iteration has not converged. TAP2 and TAP3 are approximations, not bounds.

The coefficient of the third-order term is 2/3 (it is -kappa_3/6 of the coupling energy under the
factorized distribution, kappa_3 = -4 sum W^3 d d); some published code has 4/3, and some leaves
the third-order term out of the reported value. Both mistakes show up as a wrong eps-scaling of
the error, which the tests check (eps^2, eps^3, eps^4 for orders 1, 2, 3).

Stationarity (d(-Gamma)/dx_i = 0; y is the same with W^T):

    x_i = sigma( a_i + (W y)_i + (1/2 - x_i) (W^2 c(y))_i
                 + 2/3 (1/2 - 3 x_i + 3 x_i^2) (W^3 d(y))_i )

(W^2, W^3 elementwise powers). One sweep updates x from y, then y from the new x, each damped:
``x <- damping * x + (1 - damping) * update``. The iteration stops when the stationarity
residual max(|x - update_x(x, y)|, |y - update_y(x, y)|), measured at the current point, is
below ``tol``. Small problems (starts x n_visible x n_hidden x order up to KERNEL_MAX_WORK) run
start by start in a compiled kernel (:mod:`fecli.kernels.meanfield`), larger ones as one batch
(matrix-matrix products through BLAS); both do the same arithmetic, and equal starts are solved once.
``damping`` is the starting value: a start that oscillates (its step reverses direction while
the residual makes no new minimum; common for TAP on strongly coupled models) has its damping
raised, 1 - (1 - damping)/2 after each 20 such sweeps; the final values are in diagnostics.

Public functions:

* :func:`naive_mean_field` - one naive mean-field solution (x, y) with convergence info (the AIS
  base model uses its visible magnetisation when no data is given).
* :func:`tap_fixed_points` - batched fixed points of any order from given starting
  magnetisations (e.g. persistent magnetisations of EMF training), and :func:`tap_gradients`,
  the negative-phase statistics d(-Gamma)/d(parameters) at those points.
* :func:`neg_gamma` - -Gamma at given magnetisations.
* :func:`estimate_mf`, :func:`estimate_tap2`, :func:`estimate_tap3` - the registered estimators.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator

import numpy as np

from ..errors import EstimationFailedError, InvalidOptionError
from ..model import RBM
from ..numerics import sigmoid, xlogx
from ..result import Result
from ..validation import check_positive_int, check_seed
from . import METHODS

#: Library defaults, declared with the options in the registry (fecli/estimators/__init__.py).
DEFAULTS = METHODS["mf"].defaults()
DEFAULT_TOL, DEFAULT_MAX_ITER, DEFAULT_DAMPING, DEFAULT_STARTS, DEFAULT_SEED, DEFAULT_COMBINE = (
    DEFAULTS[k] for k in ("tol", "max_iter", "damping", "starts", "seed", "combine"))
COMBINE_CHOICES = METHODS["mf"].option("combine").choices
ORDER_NAMES = {1: "naive mean field", 2: "TAP2", 3: "TAP3"}
#: Coefficient of the third-order (TAP3) term: -kappa_3 / 6 with kappa_3 = -4 sum W^3 d d.
TAP3_COEFFICIENT = 2.0 / 3.0
#: A start whose residual has not reached a new minimum for this many sweeps in which its step
#: reversed direction (an oscillation) gets more damping:
#: damping <- 1 - (1 - damping) / 2, up to MAX_DAMPING.
STALL_SWEEPS = 20
MAX_DAMPING = 1.0 - 1.0 / 1024


# --------------------------------------------------------------------------------------------
# Parameters, validation


@dataclass(frozen=True)
class ScaledParams:
    """The RBM's parameters multiplied by beta, with the elementwise powers TAP needs."""

    a: np.ndarray
    b: np.ndarray
    w: np.ndarray
    w2: np.ndarray | None
    w3: np.ndarray | None

    @classmethod
    def of(cls, model: RBM, beta: float = 1.0, order: int = 3) -> "ScaledParams":
        if beta == 1.0:  # no copy of W at the default temperature
            w, a, b = model.weights, model.visible_bias, model.hidden_bias
        else:
            w, a, b = beta * model.weights, beta * model.visible_bias, beta * model.hidden_bias
        w2 = np.multiply(w, w) if order >= 2 else None
        w3 = np.multiply(w2, w) if order >= 3 else None
        return cls(a=a, b=b, w=w, w2=w2, w3=w3)

    @property
    def n_visible(self) -> int:
        return self.w.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.w.shape[1]


def check_fixed_point_options(tol: float, max_iter: int, damping: float) -> tuple[float, int, float]:
    """Validate --tol (> 0), --max-iter (>= 1) and --damping (in (0, 1)); one clear line otherwise."""
    try:
        tol = float(tol)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"tol must be a number > 0, got {tol!r}.") from None
    if not (math.isfinite(tol) and tol > 0):
        raise InvalidOptionError(f"tol must be a finite number > 0, got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InvalidOptionError(f"max_iter must be an integer >= 1, got {max_iter!r}.")
    try:
        damping = float(damping)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"damping must be a number in (0, 1), got {damping!r}.") from None
    if not (0.0 < damping < 1.0):
        raise InvalidOptionError(
            f"damping must be in the open interval (0, 1) (the fraction of the old magnetisation kept "
            f"at each step), got {damping!r}."
        )
    return tol, int(max_iter), damping


def check_order(order: int, allowed: tuple[int, ...] = (1, 2, 3)) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or int(order) not in allowed:
        raise InvalidOptionError(f"order must be one of {', '.join(map(str, allowed))}, got {order!r}.")
    return int(order)


def _check_combine(combine: str) -> str:
    if combine not in COMBINE_CHOICES:
        raise InvalidOptionError(f"combine must be one of {', '.join(COMBINE_CHOICES)}, got {combine!r}.")
    return combine


def _check_seed(seed: int | None) -> int:
    return DEFAULT_SEED if seed is None else check_seed(seed)


def resolve_data(data: Any, model: RBM) -> np.ndarray | None:
    """``data`` as a float64 0/1 array with one column per visible unit (a path is loaded), or None."""
    from ..data import resolve_data as resolve

    return resolve(data, model)[0]


# --------------------------------------------------------------------------------------------
# -Gamma and the fixed-point updates (batched: rows are independent solutions)


def entropy(p: np.ndarray) -> np.ndarray:
    """Binary entropy summed over the last axis: -sum[p ln p + (1-p) ln(1-p)] (0 ln 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    return -(xlogx(p) + xlogx(1.0 - p)).sum(axis=-1)


def _c(p: np.ndarray) -> np.ndarray:
    return p * (1.0 - p)


def _d(p: np.ndarray) -> np.ndarray:
    return (0.5 - p) * p * (1.0 - p)


def neg_gamma_terms(params: ScaledParams, x: np.ndarray, y: np.ndarray, order: int = 3) -> np.ndarray:
    """The three terms of -Gamma at (x, y): columns [naive MF, TAP2 term, TAP3 term] (rows = solutions).

    Terms above ``order`` are zero. The naive MF column alone is the Gibbs variational bound.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    out = np.zeros((x.shape[0], 3))
    out[:, 0] = entropy(x) + entropy(y) + x @ params.a + y @ params.b + ((x @ params.w) * y).sum(axis=1)
    if order >= 2:
        w2 = params.w2 if params.w2 is not None else params.w**2
        out[:, 1] = 0.5 * ((_c(x) @ w2) * _c(y)).sum(axis=1)
    if order >= 3:
        w3 = params.w3 if params.w3 is not None else params.w**3
        out[:, 2] = TAP3_COEFFICIENT * ((_d(x) @ w3) * _d(y)).sum(axis=1)
    return out


def neg_gamma(model: RBM, x: np.ndarray, y: np.ndarray, order: int = 1, beta: float = 1.0) -> np.ndarray | float:
    """-Gamma of ``order`` (1 naive MF, 2 TAP2, 3 TAP3) at magnetisations (x, y); rows are solutions.

    For order 1 this is a rigorous lower bound on ln Z(beta) at any (x, y) in [0, 1].
    """
    order = check_order(order)
    x = np.asarray(x, dtype=np.float64)
    values = neg_gamma_terms(ScaledParams.of(model, beta, order), x, y, order).sum(axis=1)
    return float(values[0]) if x.ndim == 1 else values


def _other_layer_fields(w: np.ndarray, w2, w3, bias: np.ndarray, m: np.ndarray, order: int):
    """Matrix products of one layer's magnetisations m (rows) that drive the other layer's update.

    ``w`` maps m's layer to the other one (shape (n_m, n_other)). Returns (linear, second, third).
    """
    linear = bias + m @ w
    second = _c(m) @ w2 if order >= 2 else None
    third = _d(m) @ w3 if order >= 3 else None
    return linear, second, third


def _update(own: np.ndarray, fields, order: int) -> np.ndarray:
    """sigma(field) for the layer with magnetisations ``own`` given the other layer's fields."""
    linear, second, third = fields
    h = linear
    if order >= 2:
        h = h + (0.5 - own) * second
    if order >= 3:
        h = h + TAP3_COEFFICIENT * (0.5 - 3.0 * own + 3.0 * own * own) * third
    return sigmoid(h)


def stationarity_residual(model: RBM, x: np.ndarray, y: np.ndarray, order: int = 1, beta: float = 1.0) -> np.ndarray:
    """max(|x - update_x(x, y)|, |y - update_y(x, y)|) per solution (row): 0 at a fixed point."""
    order = check_order(order)
    p = ScaledParams.of(model, beta, order)
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    fx = _update(x, _other_layer_fields(p.w.T, _t(p.w2), _t(p.w3), p.a, y, order), order)
    fy = _update(y, _other_layer_fields(p.w, p.w2, p.w3, p.b, x, order), order)
    return np.maximum(np.abs(fx - x).max(axis=1), np.abs(fy - y).max(axis=1))


def _t(m: np.ndarray | None) -> np.ndarray | None:
    return None if m is None else m.T


# --------------------------------------------------------------------------------------------
# The batched solver


@dataclass
class FixedPoints:
    """Outcome of the damped iteration from a batch of starts (row s = start s).

    ``x`` (S, n_visible), ``y`` (S, n_hidden): final magnetisations; ``neg_gamma`` (S,): -Gamma of
    the solver's order there; ``terms`` (S, 3): its naive-MF, TAP2 and TAP3 parts (both computed
    on first use: EMF training needs neither); ``converged`` (S,) bool; ``iterations`` (S,): sweeps
    made; ``residual`` (S,): stationarity residual at the final point; ``matvecs``: matrix-vector
    products spent in total (one sweep of one start costs 2 x order of them).
    """

    order: int
    x: np.ndarray
    y: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    matvecs: int
    tol: float
    max_iter: int
    damping: float
    final_damping: np.ndarray
    params: ScaledParams = field(repr=False)
    labels: list[str] = field(default_factory=list)

    @cached_property
    def terms(self) -> np.ndarray:
        return neg_gamma_terms(self.params, self.x, self.y, self.order)

    @cached_property
    def neg_gamma(self) -> np.ndarray:
        return self.terms.sum(axis=1)


#: Batches whose sweep costs fewer multiply-adds than this (distinct starts x n_visible x n_hidden
#: x order) are iterated by the compiled kernel (:func:`fecli.kernels.meanfield.solve_rows`), start
#: by start; larger ones by BLAS products over the batch, where numpy's per-call overhead is small
#: next to the products. The choice depends only on the problem's size, never on the machine.
KERNEL_MAX_WORK = 1 << 18


def _solve(params: ScaledParams, order: int, x0: np.ndarray, y0: np.ndarray, tol: float, max_iter: int,
           damping: float, progress=None, description: str = "fixed points") -> FixedPoints:
    """Damped fixed-point iteration of every start (rows of x0, y0); see the module docstring.

    Starts that are equal iterate identically, so each distinct start is solved once and its
    outcome copied to its duplicates (persistent EMF magnetisations collapse onto the same
    fixed point after a few updates). ``matvecs`` counts the products actually spent.
    """
    x = np.array(x0, dtype=np.float64, order="C", copy=True)
    y = np.array(y0, dtype=np.float64, order="C", copy=True)
    if x.shape[0] * params.n_visible * params.n_hidden * order <= KERNEL_MAX_WORK:
        return _solve_compiled(params, order, x, y, tol, max_iter, damping, progress, description)
    first, copies = _distinct_rows(np.concatenate([x, y], axis=1))
    if len(first) == len(copies):
        return _solve_batched(params, order, x, y, tol, max_iter, damping, progress, description)
    fp = _solve_batched(params, order, x[first], y[first], tol, max_iter, damping, progress, description)
    return FixedPoints(order, fp.x[copies], fp.y[copies], fp.converged[copies], fp.iterations[copies],
                       fp.residual[copies], fp.matvecs, tol, max_iter, damping, fp.final_damping[copies], params)


def _distinct_rows(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first occurrence of each distinct row, in order; the distinct row of every row)."""
    n = z.shape[0]
    if n < 2 or (z == z[0]).all():
        return np.zeros(min(n, 1), dtype=np.int64), np.zeros(n, dtype=np.int64)
    seen: dict[bytes, int] = {}
    first: list[int] = []
    copies = np.empty(n, dtype=np.int64)
    for i in range(n):
        j = seen.setdefault((z[i] + 0.0).tobytes(), len(first))  # + 0.0: -0.0 and 0.0 are one value
        if j == len(first):
            first.append(i)
        copies[i] = j
    return np.array(first, dtype=np.int64), copies


def _solve_compiled(params: ScaledParams, order: int, x: np.ndarray, y: np.ndarray, tol: float, max_iter: int,
                    damping: float, progress=None, description: str = "fixed points") -> FixedPoints:
    """The iteration by :func:`fecli.kernels.meanfield.solve_rows`, start by start (small problems)."""
    from ..kernels.meanfield import solve_rows

    def matrix(m: np.ndarray | None) -> np.ndarray:
        return _NO_MATRIX if m is None else np.ascontiguousarray(m, dtype=np.float64)

    converged, iterations, residual, final_damping, matvecs = solve_rows(
        matrix(params.w), matrix(params.w2), matrix(params.w3), np.ascontiguousarray(params.a, dtype=np.float64),
        np.ascontiguousarray(params.b, dtype=np.float64), order, TAP3_COEFFICIENT, x, y, tol, max_iter, damping,
        STALL_SWEEPS, MAX_DAMPING)
    if progress is not None:
        progress(description, max_iter, max_iter)
    return FixedPoints(order, x, y, converged, iterations, residual, int(matvecs), tol, max_iter, damping,
                       final_damping, params)


_NO_MATRIX = np.zeros((0, 0))


def _solve_batched(params: ScaledParams, order: int, x: np.ndarray, y: np.ndarray, tol: float, max_iter: int,
                   damping: float, progress=None, description: str = "fixed points") -> FixedPoints:
    """The iteration over the whole batch at once, products through BLAS (large problems)."""
    n = x.shape[0]
    w, w2, w3 = params.w, params.w2, params.w3
    wt, w2t, w3t = w.T, _t(w2), _t(w3)
    converged = np.zeros(n, dtype=bool)
    iterations = np.zeros(n, dtype=np.int64)
    residual = np.full(n, np.inf)
    matvecs = 0
    # Fields that the visible layer's current x exerts on the hidden layer (kept in step with x).
    fields_from_x = list(_other_layer_fields(w, w2, w3, params.b, x, order))
    matvecs += n * order
    active = np.arange(n)
    report_every = max(1, max_iter // 100)
    # Per-start damping, raised when a start's residual has not reached a new minimum for
    # STALL_SWEEPS sweeps (an oscillating iteration); a steadily converging start keeps its own.
    dmp = np.full(n, damping)
    best = np.full(n, np.inf)
    stalled = np.zeros(n, dtype=np.int64)
    prev_step = np.zeros_like(x)
    for sweep in range(max_iter + 1):
        if active.size == 0:
            break
        xa, ya = x[active], y[active]
        fy_fields = tuple(None if f is None else f[active] for f in fields_from_x)
        fx_fields = _other_layer_fields(wt, w2t, w3t, params.a, ya, order)
        matvecs += active.size * order
        fx = _update(xa, fx_fields, order)
        fy = _update(ya, fy_fields, order)
        r = np.maximum(np.abs(fx - xa).max(axis=1, initial=0.0), np.abs(fy - ya).max(axis=1, initial=0.0))
        r = np.where(np.isfinite(r), r, np.inf)
        residual[active] = r
        iterations[active] = sweep
        done = r < tol
        converged[active[done]] = True
        bad = ~np.isfinite(fx).all(axis=1) | ~np.isfinite(fy).all(axis=1)
        keep = ~done & ~bad
        if sweep == max_iter or not keep.any():
            break
        # Oscillation: no new minimum of the residual and the step reverses direction. (A slow
        # drift, e.g. away from a saddle, is not an oscillation and keeps its damping.)
        step = fx - xa
        reversed_ = np.einsum("si,si->s", step, prev_step[active]) < 0
        prev_step[active] = step
        improved = r < best[active]
        best[active] = np.minimum(best[active], r)
        stalled[active] = np.where(improved, 0, stalled[active] + reversed_)
        raise_it = active[stalled[active] >= STALL_SWEEPS]
        dmp[raise_it] = np.minimum(MAX_DAMPING, 1.0 - 0.5 * (1.0 - dmp[raise_it]))
        stalled[raise_it] = 0
        idx = active[keep]
        d = dmp[idx][:, None]
        xn = d * xa[keep] + (1.0 - d) * fx[keep]
        x[idx] = xn
        new_fields = _other_layer_fields(w, w2, w3, params.b, xn, order)
        for k, f in enumerate(new_fields):
            if f is not None:
                fields_from_x[k][idx] = f
        matvecs += idx.size * order
        fy_new = _update(y[idx], new_fields, order)
        y[idx] = d * y[idx] + (1.0 - d) * fy_new
        active = idx
        if progress is not None and sweep % report_every == 0:
            progress(description, sweep, max_iter)
    if progress is not None:
        progress(description, max_iter, max_iter)
    return FixedPoints(order, x, y, converged, iterations, residual, matvecs, tol, max_iter, damping, dmp, params)


def _half_step_y(params: ScaledParams, x: np.ndarray) -> np.ndarray:
    """Hidden magnetisations of the naive mean-field response to x: sigma(b + x W)."""
    return sigmoid(params.b + np.atleast_2d(x) @ params.w)


def tap_fixed_points(model: RBM, x0: np.ndarray, y0: np.ndarray | None = None, *, order: int = 2,
                     beta: float = 1.0, tol: float = DEFAULT_TOL, max_iter: int = DEFAULT_MAX_ITER,
                     damping: float = DEFAULT_DAMPING, progress=None) -> FixedPoints:
    """Iterate the order-``order`` stationarity equations from starting magnetisations.

    ``x0`` has shape (n_visible,) or (S, n_visible) (S independent starts, e.g. the persistent
    magnetisations of EMF training); ``y0`` likewise for the hidden layer, or None for the
    naive response sigma(b + x0 W). Returns :class:`FixedPoints`; pass its ``x``, ``y`` to
    :func:`tap_gradients` for the negative phase, and to the next call as the new starts.
    """
    order = check_order(order)
    tol, max_iter, damping = check_fixed_point_options(tol, max_iter, damping)
    params = ScaledParams.of(model, beta, order)
    x0 = np.atleast_2d(np.asarray(x0, dtype=np.float64))
    if x0.shape[1] != model.n_visible:
        raise InvalidOptionError(f"starting visible magnetisations have {x0.shape[1]} columns, "
                                 f"the model has {model.n_visible} visible units.")
    if not (x0.min() >= 0.0 and x0.max() <= 1.0):  # (NaN fails both comparisons)
        raise InvalidOptionError("starting magnetisations must lie in [0, 1].")
    if y0 is None:
        y0 = _half_step_y(params, x0)
    y0 = np.atleast_2d(np.asarray(y0, dtype=np.float64))
    if y0.shape != (x0.shape[0], model.n_hidden):
        raise InvalidOptionError(f"starting hidden magnetisations must have shape {(x0.shape[0], model.n_hidden)}, "
                                 f"got {y0.shape}.")
    if not (y0.min() >= 0.0 and y0.max() <= 1.0):
        raise InvalidOptionError("starting magnetisations must lie in [0, 1].")
    return _solve(params, order, x0, y0, tol, max_iter, damping, progress, f"{ORDER_NAMES[order]} fixed points")


def emf_step(model: RBM, x: np.ndarray, y: np.ndarray, order: int, tol: float, max_iter: int,
             damping: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """EMF training's negative phase: :func:`tap_fixed_points` then :func:`tap_gradients` (beta 1).

    For a caller whose starts are known to be valid (the previous fixed points, C-contiguous
    float64 (S, n) arrays): x and y are iterated in place, without the argument checks, and on
    small models in a single compiled call. Returns (converged, iterations, residual, gradients).
    """
    if x.shape[0] * model.n_visible * model.n_hidden * order <= KERNEL_MAX_WORK:
        from ..kernels.meanfield import emf_rows

        converged, iterations, residual, dw, mean_x, mean_y = emf_rows(
            model.weights, model.visible_bias, model.hidden_bias, order, TAP3_COEFFICIENT, x, y, tol, max_iter,
            damping, STALL_SWEEPS, MAX_DAMPING)
        return converged, iterations, residual, {"weights": dw, "visible_bias": mean_x, "hidden_bias": mean_y}
    fp = _solve(ScaledParams.of(model, 1.0, order), order, x, y, tol, max_iter, damping)
    x[...], y[...] = fp.x, fp.y
    return fp.converged, fp.iterations, fp.residual, tap_gradients(model, x, y, order=order)


def tap_gradients(model: RBM, x: np.ndarray, y: np.ndarray, order: int = 2, beta: float = 1.0) -> dict[str, np.ndarray]:
    """Negative-phase statistics of EMF training: d(-Gamma)/d(W, a, b), averaged over rows of (x, y).

    At a stationary point the magnetisations' own dependence on the parameters drops out, so
    these are the gradients of the TAP approximation of ln Z(beta) (Gabrie, Tramel & Krzakala 2015):

        d/dW_ij = beta [x_i y_j + beta W_ij c(x_i) c(y_j) + 2 beta^2 W_ij^2 d(x_i) d(y_j)],
        d/da = beta x,  d/db = beta y          (TAP2 drops the last term, naive MF the last two).

    Returns ``{"weights": (nv, nh), "visible_bias": (nv,), "hidden_bias": (nh,)}``.
    """
    order = check_order(order)
    x = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float64)
    y = np.ascontiguousarray(np.atleast_2d(y), dtype=np.float64)
    s = x.shape[0]
    w = model.weights if beta == 1.0 else beta * model.weights
    if s * model.n_visible * model.n_hidden * order <= KERNEL_MAX_WORK:
        from ..kernels.meanfield import tap_statistics

        dw, mean_x, mean_y = tap_statistics(np.ascontiguousarray(w, dtype=np.float64), x, y, order,
                                            TAP3_COEFFICIENT)
        return {"weights": beta * dw, "visible_bias": beta * mean_x, "hidden_bias": beta * mean_y}
    # Persistent EMF magnetisations are mostly copies of one fixed point: sum each distinct row once,
    # weighted by its count (an outer product instead of a product over the whole batch).
    if (x == x[0]).all() and (y == y[0]).all():
        count, x, y = np.array([[float(s)]]), x[:1], y[:1]
    else:
        first, copies = _distinct_rows(np.concatenate([x, y], axis=1))
        count = np.bincount(copies, minlength=first.size).astype(np.float64)[:, None]
        x, y = x[first], y[first]
    dw = (count * x).T @ y
    if order >= 2:
        dw = dw + w * ((count * _c(x)).T @ _c(y))
    if order >= 3:
        dw = dw + 3.0 * TAP3_COEFFICIENT * w * w * ((count * _d(x)).T @ _d(y))
    return {
        "weights": beta * dw / s,
        "visible_bias": beta * (count * x).sum(axis=0) / s,
        "hidden_bias": beta * (count * y).sum(axis=0) / s,
    }


# --------------------------------------------------------------------------------------------
# Naive mean field, single start (used by other estimators, e.g. as the AIS base model)


@dataclass(frozen=True)
class MeanFieldSolution:
    """A naive mean-field solution: ``x``, ``y`` (also unpackable: ``x, y = naive_mean_field(m)``).

    ``log_z_bound`` = -Gamma_MF(x, y) <= ln Z(beta) (rigorous, whether or not it converged);
    ``converged``, ``iterations`` (sweeps) and ``residual`` (stationarity residual at x, y).
    """

    x: np.ndarray
    y: np.ndarray
    log_z_bound: float
    converged: bool
    iterations: int
    residual: float

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.x, self.y))


def naive_mean_field(model: RBM, beta: float = 1.0, *, tol: float = DEFAULT_TOL, max_iter: int = DEFAULT_MAX_ITER,
                     damping: float = DEFAULT_DAMPING, start=None) -> MeanFieldSolution:
    """Naive mean-field magnetisations of ``model`` at inverse temperature ``beta``.

    Maximises the Gibbs variational bound -Gamma_MF(x, y) by damped alternating updates
    x <- sigma(beta (a + W y)), y <- sigma(beta (b + W^T x)) (each one increases the bound),
    stopping when the stationarity residual is below ``tol`` or after ``max_iter`` sweeps.

    ``start``: None (x = sigma(beta a), the W = 0 solution), visible magnetisations x0, or a
    pair (x0, y0). Returns :class:`MeanFieldSolution` (attributes ``x``, ``y``, ``log_z_bound``,
    ``converged``, ``iterations``, ``residual``; ``x, y = naive_mean_field(model)`` also works).
    Does not raise on non-convergence: check ``converged``.
    """
    from .exact import check_beta

    beta = check_beta(beta)
    tol, max_iter, damping = check_fixed_point_options(tol, max_iter, damping)
    params = ScaledParams.of(model, beta, 1)
    if start is None:
        x0, y0 = sigmoid(params.a), None
    elif isinstance(start, tuple):
        x0, y0 = start
    else:
        x0, y0 = start, None
    fp = tap_fixed_points(model, x0, y0, order=1, beta=beta, tol=tol, max_iter=max_iter, damping=damping)
    return MeanFieldSolution(fp.x[0], fp.y[0], float(fp.neg_gamma[0]), bool(fp.converged[0]),
                             int(fp.iterations[0]), float(fp.residual[0]))


# --------------------------------------------------------------------------------------------
# Multi-start estimators: mf, tap2, tap3


def initial_magnetisations(model: RBM, beta: float, starts: int, data: np.ndarray | None,
                           seed: int) -> tuple[np.ndarray, list[str]]:
    """Visible starting magnetisations (S, n_visible) and a label for each.

    With data: the base rate (smoothed mean activity of the data), then data rows drawn without
    replacement (up to half of the starts), then uniform random magnetisations. Without data:
    sigma(beta a) (the solution at W = 0), then random ones. Random draws come from ``seed``.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    rows: list[np.ndarray] = []
    labels: list[str] = []
    if data is not None:
        from ..data import base_rate_bias

        rows.append(sigmoid(base_rate_bias(data)))
        labels.append("base-rate")
        n_rows = min(data.shape[0], (starts - 1 + 1) // 2)
        if n_rows > 0 and starts > 1:
            picked = rng.choice(data.shape[0], size=n_rows, replace=False)
            rows.extend(data[picked])
            labels.extend(f"data row {int(i)}" for i in picked)
    else:
        rows.append(sigmoid(beta * model.visible_bias))
        labels.append("bias")
    rows, labels = rows[:starts], labels[:starts]
    n_random = starts - len(rows)
    if n_random > 0:
        rows.extend(rng.uniform(size=(n_random, model.n_visible)))
        labels.extend(["random"] * n_random)
    return np.array(rows, dtype=np.float64), labels


def distinct_fixed_points(fp: FixedPoints, candidates: np.ndarray) -> list[dict[str, Any]]:
    """Group the ``candidates`` (start indices) whose solutions coincide, best -Gamma first.

    Two solutions are the same fixed point when all magnetisations differ by less than
    max(1e-3, 10 tol). Each group reports its -Gamma, the starts that reached it, and its
    mean magnetisations.
    """
    threshold = max(1e-3, 10.0 * fp.tol)
    order = candidates[np.argsort(-fp.neg_gamma[candidates], kind="stable")]
    groups: list[dict[str, Any]] = []
    for s in order:
        for g in groups:
            r = g["representative"]
            if (np.abs(fp.x[s] - fp.x[r]).max(initial=0.0) < threshold
                    and np.abs(fp.y[s] - fp.y[r]).max(initial=0.0) < threshold):
                g["starts"].append(int(s))
                break
        else:
            groups.append({"representative": int(s), "starts": [int(s)]})
    out = []
    for g in groups:
        r = g["representative"]
        out.append({
            "neg_gamma": float(fp.neg_gamma[r]),
            "starts": g["starts"],
            "start_labels": [fp.labels[s] for s in g["starts"]] if fp.labels else [],
            "converged": bool(fp.converged[r]),
            "residual": float(fp.residual[r]),
            "iterations": int(fp.iterations[r]),
            "mean_x": float(fp.x[r].mean()),
            "mean_y": float(fp.y[r].mean()),
            "representative": r,
        })
    return out


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def solve_multistart(model: RBM, order: int, *, beta: float, tol: float, max_iter: int, damping: float,
                     starts: int, data: Any, seed: int | None, progress=None) -> FixedPoints:
    """Validate the options, build the starts and run the batched iteration (used by mf/tap/cumulant).

    Models with other unit types than bernoulli go to the generalised solver of
    :mod:`fecli.estimators.meanfield_layers` (orders 1 and 2)."""
    from .exact import check_beta

    if not model.is_bernoulli:
        from .meanfield_layers import solve_multistart_layers

        return solve_multistart_layers(model, order, beta=beta, tol=tol, max_iter=max_iter, damping=damping,
                                       starts=starts, data=data, seed=seed, progress=progress)

    beta = check_beta(beta)
    order = check_order(order)
    tol, max_iter, damping = check_fixed_point_options(tol, max_iter, damping)
    starts = check_positive_int("starts", starts)
    seed = _check_seed(seed)
    data = resolve_data(data, model)
    x0, labels = initial_magnetisations(model, beta, starts, data, seed)
    params = ScaledParams.of(model, beta, order)
    fp = _solve(params, order, x0, _half_step_y(params, x0), tol, max_iter, damping, progress,
                f"{ORDER_NAMES[order]} fixed points")
    fp.labels = labels
    return fp


def _estimate_fixed_point(model: RBM, method: str, order: int, *, beta, tol, max_iter, damping, starts, combine,
                          data, seed, progress) -> Result:
    from .exact import check_beta

    start_time = time.perf_counter()
    beta = check_beta(beta)
    combine = _check_combine(combine)
    seed = _check_seed(seed)
    fp = solve_multistart(model, order, beta=beta, tol=tol, max_iter=max_iter, damping=damping, starts=starts,
                          data=data, seed=seed, progress=progress)
    name = ORDER_NAMES[order]
    n = len(fp.converged)
    n_conv = int(fp.converged.sum())
    finite = np.isfinite(fp.neg_gamma)
    warnings: list[str] = []
    if order == 1:
        # Every point is a rigorous bound: use the best one, converged or not.
        candidates = np.flatnonzero(finite)
    else:
        candidates = np.flatnonzero(fp.converged & finite)
    if candidates.size == 0:
        best_r = float(np.min(fp.residual)) if np.isfinite(fp.residual).any() else float("inf")
        raise EstimationFailedError(
            f"the {name} iteration did not converge from any of {n} start(s) within {fp.max_iter} iterations "
            f"(smallest stationarity residual {best_r:.3g} > tol {fp.tol:g}); no result. "
            f"Try a damping closer to 1 (--damping), more iterations (--max-iter) or a looser --tol."
        )
    groups = distinct_fixed_points(fp, candidates)
    conv_groups = [g for g in groups if g["converged"]]
    chosen = groups[0]
    if n_conv < n:
        worst = float(np.max(fp.residual[~fp.converged]))
        warnings.append(
            f"{n - n_conv} of {n} start(s) did not converge within {fp.max_iter} iterations "
            f"(largest residual {worst:.3g} > tol {fp.tol:g})"
            + ("; they are left out." if order > 1 else "; their values are still valid lower bounds.")
        )
    if not chosen["converged"]:
        warnings.append(
            f"the best mean-field bound comes from an unconverged iterate (residual {chosen['residual']:.3g} after "
            f"{chosen['iterations']} iterations); it is a valid but possibly loose lower bound."
        )
    kind = "lower_bound" if order == 1 else "approximation"
    log_z = chosen["neg_gamma"]
    if combine == "logsumexp":
        pool = conv_groups if conv_groups else groups[:1]
        log_z = _logsumexp([g["neg_gamma"] for g in pool])
        if order == 1 and len(pool) > 1:
            kind = "approximation"
            warnings.append("the log-sum-exp of several mean-field fixed points is an approximation, not a bound.")
    if not math.isfinite(log_z):
        raise EstimationFailedError(f"the {name} free energy is not finite at the fixed point; no result.")
    r = chosen["representative"]
    terms = fp.terms[r]
    diagnostics = {
        "order": order,
        "converged": bool(fp.converged[r]),
        "iterations": int(fp.iterations[r]),
        "residual": float(fp.residual[r]),
        "starts": n,
        "converged_starts": n_conv,
        "start_labels": fp.labels,
        "iterations_per_start": fp.iterations.tolist(),
        "residual_per_start": fp.residual.tolist(),
        "matvecs": int(fp.matvecs),
        "final_damping": float(fp.final_damping[r]),
        "final_damping_per_start": fp.final_damping.tolist(),
        "distinct_fixed_points": len(conv_groups),
        "fixed_points": [{k: v for k, v in g.items() if k != "representative"} for g in groups],
        "chosen_start": r,
        "chosen_neg_gamma": chosen["neg_gamma"],
        "terms": {"mean_field": float(terms[0]), "tap2": float(terms[1]), "tap3": float(terms[2])},
        "mean_x": float(fp.x[r].mean()),
        "mean_y": float(fp.y[r].mean()),
    }
    params = {"tol": fp.tol, "max_iter": fp.max_iter, "damping": fp.damping, "starts": n, "combine": combine,
              "seed": seed, "data": None if data is None else (str(data) if not isinstance(data, np.ndarray) else "array")}
    return Result(
        model=model.name, method=method, beta=beta, log_z=float(log_z), kind=kind,
        n_visible=model.n_visible, n_hidden=model.n_hidden,
        wall_time_s=time.perf_counter() - start_time, params=params, diagnostics=diagnostics, warnings=warnings,
    )


def estimate_mf(model: RBM, *, beta: float = 1.0, tol: float = DEFAULT_TOL, max_iter: int = DEFAULT_MAX_ITER,
                damping: float = DEFAULT_DAMPING, starts: int = DEFAULT_STARTS, combine: str = DEFAULT_COMBINE,
                data: Any = None, seed: int | None = DEFAULT_SEED, progress=None) -> Result:
    """Naive mean field: the largest Gibbs variational lower bound -Gamma_MF found (kind lower_bound).

    Damped alternating updates from ``starts`` starting points (base rate and data rows when
    ``data`` is given, otherwise sigma(beta a); then random ones from ``seed``, default 0) until
    the stationarity residual is below ``tol`` or ``max_iter`` sweeps. Every iterate gives a valid
    bound, so an unconverged run still returns one, with a warning. ``combine='logsumexp'`` adds
    the bounds of distinct fixed points in the log domain (an approximation, no longer a bound).
    """
    return _estimate_fixed_point(model, "mf", 1, beta=beta, tol=tol, max_iter=max_iter, damping=damping,
                                 starts=starts, combine=combine, data=data, seed=seed, progress=progress)


def estimate_tap(model: RBM, *, beta: float = 1.0, tol: float = DEFAULT_TOL, max_iter: int = DEFAULT_MAX_ITER,
                 damping: float = DEFAULT_DAMPING, starts: int = DEFAULT_STARTS, combine: str = DEFAULT_COMBINE,
                 data: Any = None, seed: int | None = DEFAULT_SEED, progress=None) -> Result:
    """The TAP free energy at its usual order: second order (Thouless, Anderson & Palmer 1977;
    the Onsager reaction term), the same numbers as :func:`estimate_tap2` under the name 'tap'.
    """
    return _estimate_fixed_point(model, "tap", 2, beta=beta, tol=tol, max_iter=max_iter, damping=damping,
                                 starts=starts, combine=combine, data=data, seed=seed, progress=progress)


def estimate_tap2(model: RBM, *, beta: float = 1.0, tol: float = DEFAULT_TOL, max_iter: int = DEFAULT_MAX_ITER,
                  damping: float = DEFAULT_DAMPING, starts: int = DEFAULT_STARTS, combine: str = DEFAULT_COMBINE,
                  data: Any = None, seed: int | None = DEFAULT_SEED, progress=None) -> Result:
    """Second-order TAP (EMF) free energy at the converged fixed point with the largest -Gamma.

    Same starts and iteration as :func:`estimate_mf`; starts that do not converge are left out
    (with a warning); none converging is an error. Kind approximation (no error bar).
    """
    return _estimate_fixed_point(model, "tap2", 2, beta=beta, tol=tol, max_iter=max_iter, damping=damping,
                                 starts=starts, combine=combine, data=data, seed=seed, progress=progress)


def estimate_tap3(model: RBM, *, beta: float = 1.0, tol: float = DEFAULT_TOL, max_iter: int = DEFAULT_MAX_ITER,
                  damping: float = DEFAULT_DAMPING, starts: int = DEFAULT_STARTS, combine: str = DEFAULT_COMBINE,
                  data: Any = None, seed: int | None = DEFAULT_SEED, progress=None) -> Result:
    """Third-order TAP (EMF) free energy, coefficient 2/3, the third-order term included in the value.

    Same starts and iteration as :func:`estimate_mf`; starts that do not converge are left out
    (with a warning); none converging is an error. Kind approximation (no error bar).
    """
    return _estimate_fixed_point(model, "tap3", 3, beta=beta, tol=tol, max_iter=max_iter, damping=damping,
                                 starts=starts, combine=combine, data=data, seed=seed, progress=progress)
