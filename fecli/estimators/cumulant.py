"""ln Z as a cumulant series around a factorized reference distribution q.

With U = E + ln q (energy at inverse temperature beta plus the log-density of q),

    ln Z = ln E_q[exp(-U)] = sum_n (-1)^n kappa_n(U) / n! = -k1 + k2/2 - k3/6 + k4/24 - ...

Order 1 is the Gibbs-Bogoliubov-Feynman (Jensen) bound ln Z >= -E_q[U]; higher partial sums are
approximations (not bounds). Two variants:

joint
    q(v, h) factorized with magnetisations (x, y). Writing dv = v - x, dh = h - y and
    alpha = a + W y - logit(x), beta_ = b + W^T x - logit(y) (zero at a naive mean-field fixed
    point), U - E_q[U] = -Y with Y = alpha.dv + beta_.dh + dv^T W dh. Every cumulant of Y is a
    sum over connected pairings of the unit cumulants kappa_2 = c = x(1-x),
    kappa_3 = x(1-x)(1-2x) = 2 d(x), kappa_4 = c (1 - 6 c) (Leonov-Shiryaev). Up to order 4
    (see :func:`joint_cumulants` for the full formula), with A = alpha.dv, B = beta_.dh,
    X = dv^T W dh and the multiplicity of each product of A, B, X terms:

        k2(Y) = sum alpha^2 c_x + sum beta_^2 c_y + c_x^T W^2 c_y
        k3(Y) = sum alpha^3 k3_x + sum beta_^3 k3_y + k3_x^T W^3 k3_y + 6 (alpha c_x)^T W (beta_ c_y)
                + 3 sum alpha k3_x (W^2 c_y) + 3 sum beta_ k3_y (W^2T c_x)
        k4(Y) = ... + k4_x^T W^4 k4_y + 3 sum k4_x (W^2 c_y)^2 + 3 sum k4_y (W^2T c_x)^2
                + 6 sum_jl c_y,j c_y,l (W^T C_x W)_jl^2          (the 4-cycles of the bipartite graph)

    and kappa_n(U) = (-1)^n kappa_n(Y). At the naive mean-field fixed point k2/2 and -k3/6 are the
    TAP2 and TAP3 terms of :mod:`fecli.estimators.meanfield` (a test checks it), and the order-n
    partial sum has an error O(eps^(n+1)) when W is scaled by eps.

marginal
    q(v) factorized over the visible units only, hidden units summed exactly:
    U(v) = F_beta(v) + ln q(v). The cumulants are estimated from exact i.i.d. samples of q by
    unbiased k-statistics; standard errors come from a delete-a-group jackknife (100 groups).
    The whole series is the importance-sampling estimate ln mean exp(-U), reported alongside.

References q: 'mf' (best naive mean-field fixed point), 'tap' (best converged TAP3 fixed
point), 'base-rate' (x = the data's smoothed mean activity, y = sigma(b + W^T x); needs data).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..errors import EstimationFailedError, InvalidOptionError
from ..model import RBM, sigmoid
from ..result import Result
from . import METHODS
from .meanfield import (
    ScaledParams,
    _check_seed,
    distinct_fixed_points,
    entropy,
    resolve_data,
    solve_multistart,
)

#: Library defaults and choices, declared with the options in the registry (fecli/estimators/__init__.py).
DEFAULTS = METHODS["cumulant"].defaults()
_ORDER_RANGE = METHODS["cumulant"].option("order").allowed
ORDERS = tuple(range(int(_ORDER_RANGE.low), int(_ORDER_RANGE.high) + 1))
REFERENCES = METHODS["cumulant"].option("reference").choices
VARIANTS = METHODS["cumulant"].option("variant").choices
DEFAULT_ORDER, DEFAULT_REFERENCE, DEFAULT_VARIANT, DEFAULT_SAMPLES, DEFAULT_SEED = (
    DEFAULTS[k] for k in ("order", "reference", "variant", "samples", "seed"))
DEFAULT_TOL, DEFAULT_MAX_ITER, DEFAULT_DAMPING, DEFAULT_STARTS = (
    DEFAULTS[k] for k in ("tol", "max_iter", "damping", "starts"))
#: Rows of q sampled per independent random stream (one SeedSequence child each).
CHUNK_ROWS = 4096
JACKKNIFE_GROUPS = 100
#: Reference magnetisations are kept this far from 0 and 1 so that logit(x) stays finite.
CLIP = 1e-12
#: Signs of kappa_n(U) in ln Z = sum_n (-1)^n kappa_n / n!.
SERIES_COEFF = {1: -1.0, 2: 0.5, 3: -1.0 / 6.0, 4: 1.0 / 24.0}


def highest_joint_order(model) -> int:
    """Highest order of the joint series for ``model``'s unit types: 4 for 0/1 and spin layers
    (spin through its exact 0/1 equivalent), else the layered series' JOINT_MAX_ORDER."""
    from .cumulant_layers import JOINT_MAX_ORDER

    binary = {model.visible.name, model.hidden.name} <= {"bernoulli", "spin"}
    return ORDERS[-1] if binary else JOINT_MAX_ORDER


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def joint_cumulants(params: ScaledParams, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[k1, k2, k3, k4]: cumulants of U = beta E(v, h) + ln q(v, h) under q factorized with (x, y).

    ``params`` holds the beta-scaled parameters (a, b, W). x and y are clipped to
    [1e-12, 1 - 1e-12] so that the linear coefficients stay finite.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), CLIP, 1 - CLIP)
    y = np.clip(np.asarray(y, dtype=np.float64), CLIP, 1 - CLIP)
    a, b, w = params.a, params.b, params.w
    w2 = w * w
    w3 = w2 * w
    w4 = w2 * w2
    cx, cy = x * (1 - x), y * (1 - y)
    k3x, k3y = cx * (1 - 2 * x), cy * (1 - 2 * y)
    k4x, k4y = cx * (1 - 6 * cx), cy * (1 - 6 * cy)
    al = a + w @ y - _logit(x)
    be = b + w.T @ x - _logit(y)

    k1 = -(entropy(x) + entropy(y) + a @ x + b @ y + x @ w @ y)

    w2cy, w2tcx = w2 @ cy, w2.T @ cx
    k2 = al**2 @ cx + be**2 @ cy + cx @ w2cy

    wbc = w @ (be * cy)          # (W (beta_ c_y))_i
    wtac = w.T @ (al * cx)       # (W^T (alpha c_x))_j
    k3y_total = (al**3 @ k3x + be**3 @ k3y + k3x @ w3 @ k3y + 6.0 * (al * cx) @ wbc
                 + 3.0 * (al * k3x) @ w2cy + 3.0 * (be * k3y) @ w2tcx)

    # 4-cycles: sum_jl c_j c_l (W^T C_x W)_jl^2 == sum_ik c_i c_k (W C_y W^T)_ik^2; use the smaller side.
    if w.shape[1] <= w.shape[0]:
        gram = w.T @ (cx[:, None] * w)
        cycles = cy @ (gram * gram) @ cy
    else:
        gram = w @ (cy[:, None] * w.T)
        cycles = cx @ (gram * gram) @ cx
    k4 = (al**4 @ k4x + be**4 @ k4y
          + 12.0 * (al**2 * k3x) @ wbc + 12.0 * (be**2 * k3y) @ wtac
          + 6.0 * ((al**2 * k4x) @ w2cy + 2.0 * cy @ wtac**2)
          + 6.0 * ((be**2 * k4y) @ w2tcx + 2.0 * cx @ wbc**2)
          + 12.0 * (al * k3x) @ w2 @ (be * k3y)
          + 4.0 * ((al * k4x) @ w3 @ k3y + 3.0 * (k3y * wtac) @ w2tcx)
          + 4.0 * (k3x @ w3 @ (be * k4y) + 3.0 * (k3x * wbc) @ w2cy)
          + k4x @ w4 @ k4y + 3.0 * k4x @ w2cy**2 + 3.0 * k4y @ w2tcx**2 + 6.0 * cycles)
    # U - E[U] = -Y: odd cumulants change sign.
    return np.array([k1, k2, -k3y_total, k4])


def partial_sums(cumulants: np.ndarray) -> np.ndarray:
    """Partial sums of -k1 + k2/2 - k3/6 + k4/24 (entry n-1 = the series up to order n)."""
    terms = np.array([SERIES_COEFF[n + 1] * cumulants[..., n] for n in range(cumulants.shape[-1])])
    return np.cumsum(terms, axis=0).T if cumulants.ndim > 1 else np.cumsum(terms)


# --------------------------------------------------------------------------------------------
# Marginal variant: exact samples of q(v), hidden units summed out


def sample_u(model: RBM, beta: float, x: np.ndarray, n_samples: int, seed: int, progress=None) -> np.ndarray:
    """U(v) = F_beta(v) + ln q(v) for ``n_samples`` exact i.i.d. samples v ~ q = prod Bernoulli(x).

    Rows are drawn in chunks of CHUNK_ROWS, each from its own SeedSequence child of ``seed``, so
    the numbers depend only on the seed.
    """
    x = np.asarray(x, dtype=np.float64)
    log_x = np.log(np.where(x > 0, x, 1.0))
    log_1mx = np.log1p(-np.where(x < 1, x, 0.0))
    n_chunks = -(-n_samples // CHUNK_ROWS)
    streams = np.random.SeedSequence(seed).spawn(n_chunks)
    out = np.empty(n_samples)
    for k, ss in enumerate(streams):
        lo, hi = k * CHUNK_ROWS, min(n_samples, (k + 1) * CHUNK_ROWS)
        rng = np.random.default_rng(ss)
        v = (rng.random((hi - lo, x.size)) < x).astype(np.float64)
        log_q = v @ log_x + (1.0 - v) @ log_1mx
        out[lo:hi] = model.free_energy(v, beta) + log_q
        if progress is not None:
            progress("sampling q", hi, n_samples)
    return out


def _kstats_from_sums(n: np.ndarray, s1, s2, s3, s4) -> np.ndarray:
    """Unbiased k-statistics k1..k4 from power sums of (shifted) values; last axis = order."""
    mu = s1 / n
    m2 = s2 / n - mu**2
    m3 = s3 / n - 3 * mu * s2 / n + 2 * mu**3
    m4 = s4 / n - 4 * mu * s3 / n + 6 * mu**2 * s2 / n - 3 * mu**4
    k2 = n / (n - 1) * m2
    k3 = n**2 / ((n - 1) * (n - 2)) * m3
    k4 = n**2 * ((n + 1) * m4 - 3 * (n - 1) * m2**2) / ((n - 1) * (n - 2) * (n - 3))
    return np.stack([mu, k2, k3, k4], axis=-1)


def kstatistics(u: np.ndarray, groups: int = JACKKNIFE_GROUPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unbiased k-statistics k1..k4 of ``u``, their jackknife standard errors, and the jackknife
    replicates (groups x 4), from a delete-a-group jackknife over ``groups`` contiguous groups.

    Needs at least 8 values (k4 divides by (n-1)(n-2)(n-3), and the jackknife by the groups).
    """
    u = np.asarray(u, dtype=np.float64)
    n = u.size
    shift = float(u.mean())
    z = u - shift
    powers = np.stack([z, z**2, z**3, z**4])
    total = powers.sum(axis=1)
    k = _kstats_from_sums(np.float64(n), *total)
    k[0] += shift
    g = min(groups, n // 2)
    bounds = np.linspace(0, n, g + 1).astype(np.int64)
    group_sums = np.add.reduceat(powers, bounds[:-1], axis=1)          # (4, g)
    sizes = np.diff(bounds).astype(np.float64)
    rest = total[:, None] - group_sums
    reps = _kstats_from_sums(n - sizes, *rest)                          # (g, 4)
    reps[:, 0] += shift
    se = np.sqrt((g - 1) / g * ((reps - reps.mean(axis=0)) ** 2).sum(axis=0))
    return k, se, reps


def _jackknife_se(reps: np.ndarray) -> np.ndarray:
    g = reps.shape[0]
    return np.sqrt((g - 1) / g * ((reps - reps.mean(axis=0)) ** 2).sum(axis=0))


# --------------------------------------------------------------------------------------------
# The estimator


def _check_choice(name: str, value: Any, choices: tuple) -> Any:
    if value not in choices:
        raise InvalidOptionError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}.")
    return value


def _reference(model: RBM, reference: str, *, beta, tol, max_iter, damping, starts, data, seed, progress):
    """Reference magnetisations (x, y) and a description for diagnostics."""
    if reference == "base-rate":
        data = resolve_data(data, model)
        if data is None:
            raise InvalidOptionError("reference 'base-rate' needs data (--data): it is the data's mean activity.")
        from ..data import base_rate_bias

        x = sigmoid(base_rate_bias(data))
        y = sigmoid(beta * (model.hidden_bias + x @ model.weights))
        return x, y, {"reference": "base-rate"}
    order = 1 if reference == "mf" else 3
    fp = solve_multistart(model, order, beta=beta, tol=tol, max_iter=max_iter, damping=damping, starts=starts,
                          data=data, seed=seed, progress=progress)
    finite = np.isfinite(fp.neg_gamma)
    candidates = np.flatnonzero(finite if order == 1 else fp.converged & finite)
    if candidates.size == 0:
        raise EstimationFailedError(
            f"the TAP3 reference did not converge from any of {len(fp.converged)} start(s) within {fp.max_iter} "
            f"iterations (smallest residual {float(np.min(fp.residual)):.3g} > tol {fp.tol:g}); try --reference mf, "
            f"a damping closer to 1 or more --max-iter."
        )
    groups = distinct_fixed_points(fp, candidates)
    r = groups[0]["representative"]
    info = {
        "reference": reference,
        "reference_neg_gamma": float(fp.neg_gamma[r]),
        "reference_converged": bool(fp.converged[r]),
        "reference_iterations": int(fp.iterations[r]),
        "reference_residual": float(fp.residual[r]),
        "reference_distinct_fixed_points": sum(1 for g in groups if g["converged"]),
    }
    return fp.x[r], fp.y[r], info


def estimate_cumulant(
    model: RBM,
    *,
    beta: float = 1.0,
    order: int = DEFAULT_ORDER,
    reference: str = DEFAULT_REFERENCE,
    variant: str = DEFAULT_VARIANT,
    samples: int = DEFAULT_SAMPLES,
    data: Any = None,
    seed: int | None = DEFAULT_SEED,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    damping: float = DEFAULT_DAMPING,
    starts: int = DEFAULT_STARTS,
    progress=None,
) -> Result:
    """ln Z(beta) as the cumulant series of U around a factorized q, up to ``order`` (1..4).

    ``variant='joint'``: q over (v, h), cumulants analytic. ``variant='marginal'``: q over v,
    hidden units summed exactly, cumulants from ``samples`` exact samples of q (k-statistics,
    jackknife standard errors; ``seed``, default 0). ``reference``: 'mf', 'tap' (TAP3) or
    'base-rate' (needs ``data``); tol/max_iter/damping/starts/data/seed configure the fixed-point
    search of the reference as in :func:`fecli.estimators.meanfield.estimate_mf`.

    ``log_z`` is the partial sum at ``order``. Order 1 is the variational bound: kind lower_bound
    (joint) or stochastic_lower_bound with its standard error (marginal). Higher orders are
    approximations (stderr None; the sampling errors of the marginal partial sums are in
    diagnostics). ``diagnostics['partial_sums']`` lists the series order by order.
    """
    from .exact import check_beta

    start_time = time.perf_counter()
    beta = check_beta(beta)
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or int(order) not in ORDERS:
        raise InvalidOptionError(f"order must be an integer from 1 to 4, got {order!r}.")
    order = int(order)
    _check_choice("reference", reference, REFERENCES)
    _check_choice("variant", variant, VARIANTS)
    seed = _check_seed(seed)
    if variant == "marginal":
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 16:
            raise InvalidOptionError(f"samples must be an integer >= 16, got {samples!r}.")
        samples = int(samples)
    x, y, info = _reference(model, reference, beta=beta, tol=tol, max_iter=max_iter, damping=damping,
                            starts=starts, data=data, seed=seed, progress=progress)
    warnings: list[str] = []
    if "reference_converged" in info and not info["reference_converged"]:
        warnings.append(f"the {reference} reference did not converge (residual {info['reference_residual']:.3g}); "
                        f"the series is still valid around it, but the order-1 bound may be loose.")
    diagnostics: dict[str, Any] = {**info, "variant": variant, "order": order,
                                   "mean_x": float(np.mean(x)), "mean_y": float(np.mean(y))}
    params: dict[str, Any] = {"order": order, "reference": reference, "variant": variant,
                              "data": None if data is None else ("array" if isinstance(data, np.ndarray) else str(data))}
    if reference != "base-rate":
        params.update(tol=tol, max_iter=max_iter, damping=damping, starts=starts)
    stderr = ci_low = ci_high = None

    if variant == "joint":
        cum = joint_cumulants(ScaledParams.of(model, beta, 1), x, y)[:order]
        sums = partial_sums(cum)
        kind = "lower_bound" if order == 1 else "approximation"
    else:
        params.update(samples=samples, seed=seed)
        u = sample_u(model, beta, x, samples, seed, progress)
        cum, sums, kind, stderr, ci_low, ci_high = marginal_series(u, order, diagnostics)
    return series_result(model, beta, order, cum, sums, kind, (stderr, ci_low, ci_high), start_time, params,
                         diagnostics, warnings)


def marginal_series(u: np.ndarray, order: int, diagnostics: dict[str, Any]):
    """The marginal series from samples of U(v) ~ q: cumulants (unbiased k-statistics) and partial
    sums up to ``order``, its kind, and for order 1 (a stochastic lower bound) the jackknife stderr
    and 95% interval; the importance-sampling value of the same samples goes into ``diagnostics``.

    Returns (cumulants, partial sums, kind, stderr, ci_low, ci_high). Raises EstimationFailedError
    when U is not finite on some sample.
    """
    if not np.all(np.isfinite(u)):
        raise EstimationFailedError("U(v) is not finite on some samples of q; no result.")
    k, k_se, reps = kstatistics(u)
    cum = k[:order]
    sums = partial_sums(cum)
    sums_se = _jackknife_se(partial_sums(reps[:, :order]))
    diagnostics["cumulants_stderr"] = k_se[:order].tolist()
    diagnostics["partial_sums_stderr"] = sums_se.tolist()
    top = float(np.max(-u))
    w = np.exp(-u - top)
    diagnostics["importance_log_z"] = top + math.log(float(w.mean()))
    diagnostics["importance_ess"] = float(w.sum() ** 2 / (w * w).sum())
    diagnostics["samples"] = u.size
    if order > 1:
        return cum, sums, "approximation", None, None, None
    stderr = float(sums_se[0])
    return cum, sums, "stochastic_lower_bound", stderr, float(sums[0] - 1.96 * stderr), float(sums[0] + 1.96 * stderr)


def series_result(model: RBM, beta: float, order: int, cum: np.ndarray, sums: np.ndarray, kind: str,
                  error: tuple, start_time: float, params: dict, diagnostics: dict, warnings: list) -> Result:
    """The Result of a cumulant series (its partial sum of ``order``); a non-finite series fails."""
    if not np.all(np.isfinite(sums)):
        raise EstimationFailedError("the cumulant series is not finite; no result.")
    diagnostics["cumulants"] = cum.tolist()
    diagnostics["partial_sums"] = sums.tolist()
    stderr, ci_low, ci_high = error
    return Result(
        model=model.name, method="cumulant", beta=beta, log_z=float(sums[order - 1]), kind=kind,
        n_visible=model.n_visible, n_hidden=model.n_hidden, stderr=stderr, ci_low=ci_low, ci_high=ci_high,
        wall_time_s=time.perf_counter() - start_time, params=params, diagnostics=diagnostics, warnings=warnings,
    )
