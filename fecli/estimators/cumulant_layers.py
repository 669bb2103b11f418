"""The cumulant series of :mod:`fecli.estimators.cumulant` for models with Gaussian or Potts layers.

q is factorized, each unit in its layer's own family with feature means m (a Gaussian unit with
the model's precision beta gamma, so its quadratic energy cancels in U = beta E + ln q).

joint (orders 1 and 2, analytic)
    With lambda the natural parameters of q (``Layer.natural``), alpha = beta theta_v + W' m_h -
    lambda_v and beta_ = beta theta_h + W'^T m_v - lambda_h (zero at a naive mean-field fixed
    point), U - E_q[U] = -(alpha.dphi(v) + beta_.dphi(h) + dphi(v)^T W' dphi(h)), so

        k1 = -(-Gamma_MF(m_v, m_h))                                  (the variational bound)
        k2 = sum_i alpha_i^T C_i alpha_i + sum_mu beta_mu^2 c_mu + sum_{i mu} V_i mu c_mu

    with C_i the covariance of unit i's features under q (Potts: diag(p) - p p^T) and V_i mu the
    variance of its coupling to hidden unit mu (:func:`fecli.estimators.meanfield_layers.onsager`).
    At the mean-field fixed point k2 / 2 is the Onsager term with the variances of q.

marginal (orders 1 to 4, sampled)
    q over the visible layer only, the hidden layer summed exactly: U(v) = F_beta(v) + ln q(v) on
    exact samples of q, unbiased k-statistics with jackknife errors, as for bernoulli models.

References: 'mf' (best naive mean-field point), 'tap' (best converged TAP2 point of the generalised
EMF), 'base-rate' (the data's smoothed feature means, hidden means from one half step).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..errors import EstimationFailedError, InvalidOptionError
from ..model import RBM
from ..result import Result
from .cumulant import (
    CHUNK_ROWS,
    DEFAULT_ORDER,
    DEFAULT_SAMPLES,
    ORDERS,
    REFERENCES,
    VARIANTS,
    _check_choice,
    marginal_series,
    partial_sums,
    series_result,
)
from .meanfield import DEFAULT_DAMPING, DEFAULT_MAX_ITER, DEFAULT_STARTS, DEFAULT_TOL, _check_seed, distinct_fixed_points
from .meanfield_layers import Scaled, base_rate_means, neg_gamma_terms, onsager, solve_multistart_layers, update

#: Highest order of the analytic (joint) series for these layers.
JOINT_MAX_ORDER = 2


def feature_quadratic(layer, m: np.ndarray, var: np.ndarray, alpha: np.ndarray) -> float:
    """alpha^T C alpha summed over units: C the covariance of the features under q."""
    if layer.name == "potts":
        p = m.reshape(layer.n, layer.q)
        a = alpha.reshape(layer.n, layer.q)
        mean = (p * a).sum(axis=1)
        return float(((p * a * a).sum(axis=1) - mean * mean).sum())
    return float((alpha * alpha * var) @ np.ones_like(alpha))


def joint_cumulants_layers(p: Scaled, mv: np.ndarray, mh: np.ndarray) -> np.ndarray:
    """[k1, k2] of U under the factorized q with feature means (mv, mh) (module docstring)."""
    cv = p.vis.moment_variance(mv) if p.vis.name != "gaussian" else 1.0 / p.vis.precision
    ch = p.hid.moment_variance(mh) if p.hid.name != "gaussian" else 1.0 / p.hid.precision
    cv = np.broadcast_to(cv, mv.shape)
    ch = np.broadcast_to(ch, mh.shape)
    k1 = -float(neg_gamma_terms(p, mv[None], cv[None], mh[None], ch[None], 1)[0, 0])
    alpha = p.vis.bias.ravel() + p.w @ mh - p.vis.natural(mv)
    beta_ = p.hid.bias.ravel() + mv @ p.w - p.hid.natural(mh)
    k2 = (feature_quadratic(p.vis, mv, cv, alpha) + feature_quadratic(p.hid, mh, ch, beta_)
          + float(onsager(p.vis, mv[None], cv[None], p.w, p.w2)[0] @ ch))
    return np.array([k1, k2])


def sample_u_layers(model: RBM, beta: float, mv: np.ndarray, n_samples: int, seed: int, progress=None) -> np.ndarray:
    """U(v) = F_beta(v) + ln q(v) on ``n_samples`` exact samples of q (chunks of CHUNK_ROWS rows, each
    from its own SeedSequence child of ``seed``)."""
    vis = model.visible
    lam = vis.natural(mv, beta)
    q_layer = vis.replace(bias=(lam / beta).reshape(vis.bias.shape))
    zero = np.zeros(vis.dim)
    n_chunks = -(-n_samples // CHUNK_ROWS)
    streams = np.random.SeedSequence(seed).spawn(n_chunks)
    out = np.empty(n_samples)
    for k, ss in enumerate(streams):
        lo, hi = k * CHUNK_ROWS, min(n_samples, (k + 1) * CHUNK_ROWS)
        rng = np.random.default_rng(ss)
        v = q_layer.sample(np.broadcast_to(zero, (hi - lo, vis.dim)), rng, beta)
        out[lo:hi] = model.free_energy(v, beta) + vis.log_prob_factorized(v, lam, beta)
        if progress is not None:
            progress("sampling q", hi, n_samples)
    return out


def _reference(model: RBM, reference: str, *, beta, tol, max_iter, damping, starts, data, seed, progress):
    p = Scaled.of(model, beta)
    if reference == "base-rate":
        from ..layer_data import resolve_for

        rows, _ = resolve_for(data, model)
        if rows is None:
            raise InvalidOptionError("reference 'base-rate' needs data (--data): it is the data's mean activity.")
        mv = base_rate_means(p.vis, rows)
        cv = p.vis.moment_variance(mv) if p.vis.name != "gaussian" else 1.0 / p.vis.precision
        mh, _ = update(p.hid, np.zeros((1, p.hid.dim)), p.w, p.w2, p.vis, mv[None], np.broadcast_to(cv, mv.shape)[None], 1)
        return p, mv, mh[0], {"reference": "base-rate"}
    order = 1 if reference == "mf" else 2
    fp = solve_multistart_layers(model, order, beta=beta, tol=tol, max_iter=max_iter, damping=damping, starts=starts,
                                 data=data, seed=seed, progress=progress)
    finite = np.isfinite(fp.neg_gamma)
    candidates = np.flatnonzero(finite if order == 1 else fp.converged & finite)
    if candidates.size == 0:
        raise EstimationFailedError(
            f"the TAP2 reference did not converge from any of {len(fp.converged)} start(s) within {fp.max_iter} "
            f"iterations; try --reference mf, a damping closer to 1 or more --max-iter."
        )
    r = distinct_fixed_points(fp, candidates)[0]["representative"]
    info = {"reference": reference, "reference_order": order, "reference_neg_gamma": float(fp.neg_gamma[r]),
            "reference_converged": bool(fp.converged[r]), "reference_iterations": int(fp.iterations[r]),
            "reference_residual": float(fp.residual[r])}
    return p, fp.x[r], fp.y[r], info


def estimate_cumulant_layers(
    model: RBM,
    *,
    beta: float = 1.0,
    order: int = DEFAULT_ORDER,
    reference: str = "mf",
    variant: str = "joint",
    samples: int = DEFAULT_SAMPLES,
    data: Any = None,
    seed: int | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    damping: float = DEFAULT_DAMPING,
    starts: int = DEFAULT_STARTS,
    progress=None,
) -> Result:
    """:func:`fecli.estimators.cumulant.estimate_cumulant` for Gaussian and Potts layers (module docstring).

    The joint series stops at order 2 for these layers (InvalidOptionError above); the marginal
    series goes to order 4. Order 1 is the variational bound (kind lower_bound, or
    stochastic_lower_bound for the marginal variant).
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
    if variant == "joint" and order > JOINT_MAX_ORDER:
        raise InvalidOptionError(
            f"the joint cumulant series of a {model.combination} model goes to order {JOINT_MAX_ORDER}; "
            f"use --variant marginal for orders 3 and 4."
        )
    if variant == "marginal":
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 16:
            raise InvalidOptionError(f"samples must be an integer >= 16, got {samples!r}.")
        samples = int(samples)
    p, mv, mh, info = _reference(model, reference, beta=beta, tol=tol, max_iter=max_iter, damping=damping,
                                 starts=starts, data=data, seed=seed, progress=progress)
    warnings: list[str] = []
    if "reference_converged" in info and not info["reference_converged"]:
        warnings.append(f"the {reference} reference did not converge (residual {info['reference_residual']:.3g}); "
                        f"the series is still valid around it, but the order-1 bound may be loose.")
    diagnostics: dict[str, Any] = {**info, "variant": variant, "order": order,
                                   "mean_x": float(np.mean(mv)), "mean_y": float(np.mean(mh))}
    params: dict[str, Any] = {"order": order, "reference": reference, "variant": variant,
                              "data": None if data is None else ("array" if isinstance(data, np.ndarray) else str(data))}
    if reference != "base-rate":
        params.update(tol=tol, max_iter=max_iter, damping=damping, starts=starts)
    stderr = ci_low = ci_high = None
    if variant == "joint":
        cum = joint_cumulants_layers(p, mv, mh)[:order]
        sums = partial_sums(cum)
        kind = "lower_bound" if order == 1 else "approximation"
    else:
        params.update(samples=samples, seed=seed)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            u = sample_u_layers(model, beta, mv, samples, seed, progress)
        cum, sums, kind, stderr, ci_low, ci_high = marginal_series(u, order, diagnostics)
    return series_result(model, beta, order, cum, sums, kind, (stderr, ci_low, ci_high), start_time, params,
                         diagnostics, warnings)
