"""Naive mean field, TAP2 and TAP3 for any unit types: the generalised EMF of Tramel, Gabrie, Manoel,
Caltagirone & Krzakala (Phys. Rev. X 8, 041006, 2018), with the third Plefka term below.

Every layer keeps, per unit, the mean m of its features phi(x) and (for Gaussian units) a
variance c; for finite units the variance follows from the mean (bernoulli m(1 - m), spin
1 - m^2, Potts covariance diag(p) - p p^T). With the parameters multiplied by beta,

    -Gamma(m_v, c_v, m_h, c_h) = -Gamma*_v(m_v, c_v) - Gamma*_h(m_h, c_h) + m_v^T W m_h     (order 1)
                                + 1/2 sum_{i mu} V_i mu c_h,mu                              (order 2)
                                + T3                                       (order 3: "Order 3" below)

where -Gamma*(m, c) = max {E_q[-beta E] + H(q) : factorized q with those moments} is the layer's
``neg_conjugate`` and V_i mu = Var_q(phi(x_i) . W_i mu) is the variance of the coupling of unit i to
hidden unit mu (scalar units: W_i mu^2 c_i; Potts units: sum_s p_is W_is mu^2 - (sum_s p_is W_is mu)^2).

Order 1 (naive mean field) with the Gaussian variances at their optimum 1 / (beta gamma) is
E_q[-beta E] + H(q) for a factorized q, so it is a rigorous lower bound on ln Z at every point
(Gibbs-Bogoliubov), converged or not. Orders 2 and 3 are approximations.

Stationarity (the Plefka expansion to second order, Tramel et al. Eqs. for arbitrary priors): each
unit is the tilted distribution q(x) ~ exp(-beta E(x) + B phi(x) - A x^2 / 2) of its layer
(``Layer.tilted``) with

    A_i = -sum_mu W_i mu^2 c_h,mu,       B_i = (W m_h)_i + A_i m_i           (scalar units)

so bernoulli units get x_i = sigma(a_i + (W y)_i + (1/2 - x_i)(W^2 c(y))_i) (the TAP2 equation of
fecli.estimators.meanfield), spins m_i = tanh(a_i + (W m_h)_i - m_i sum_mu W^2 (1 - m_h^2)), and
Gaussian units mean (theta + B) / (gamma + A), variance 1 / (gamma + A) (the Onsager term
renormalises their precision; gamma + A <= 0 means no TAP2 solution there). A Potts unit gets
A_is = -sum_mu W_is mu^2 c_mu and B_is = (W m_h)_is - sum_mu W_is mu c_mu u_i mu with
u_i mu = sum_t p_it W_it mu; a hidden unit coupled to Potts units has A_mu = -sum_i V_i mu. Order 1
is the same with A = 0. The layers are updated alternately (visible from hidden, then hidden from
the new visible), each damped, from several starts; the solver and its stopping rule are those of
:mod:`fecli.estimators.meanfield` (whose bernoulli path is kept as it is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidOptionError
from ..layers import Layer
from ..model import RBM
from .meanfield import (
    MAX_DAMPING,
    ORDER_NAMES,
    STALL_SWEEPS,
    FixedPoints,
    _check_seed,
    check_fixed_point_options,
    check_order,
)
from ..validation import check_positive_int


@dataclass
class LayeredFixedPoints(FixedPoints):
    """:class:`~fecli.estimators.meanfield.FixedPoints` of the layer solver: its -Gamma terms are
    computed by the solver (they need the variances of Gaussian units), and ``variances`` holds
    (visible, hidden) per-feature variances at the final points."""

    computed_terms: np.ndarray | None = field(default=None, repr=False)
    variances: tuple | None = field(default=None, repr=False)

    @property
    def terms(self) -> np.ndarray:  # type: ignore[override]
        return self.computed_terms

    @property
    def neg_gamma(self) -> np.ndarray:  # type: ignore[override]
        values = self.computed_terms.sum(axis=1)
        return np.where(np.isfinite(values), values, -np.inf)


@dataclass
class Scaled:
    """The model at beta as layers with beta-scaled parameters and W' = beta W (dim_v, dim_h)."""

    vis: Layer
    hid: Layer
    w: np.ndarray
    w2: np.ndarray
    w3: np.ndarray | None = None

    @classmethod
    def of(cls, model: RBM, beta: float) -> "Scaled":
        if model.visible.name == "potts" and model.hidden.name == "potts":
            raise InvalidOptionError("mean field supports at most one Potts layer.")
        w = beta * model.weights2d
        return cls(model.visible.scaled(beta), model.hidden.scaled(beta), w, w * w, w * w * w)


# --------------------------------------------------------------------------------------------
# Order 3: T3 = (1/6) E_q[U'^3], U' = sum_{i mu} (phi(x_i) - m_i) . W_i mu (y_mu - m_mu) the coupling
# centred in every unit (Georges & Yedidia 1991: the first three Plefka terms are cumulants of U').
# In a bipartite model only the diagonal triples survive:
#     T3 = (1/6) sum_{i mu} E3_i mu k3_mu,     E3_i mu = E_q[((phi(x_i) - m_i) . W_i mu)^3],
# with k3 the third central moment of a scalar unit: bernoulli m (1 - m)(1 - 2m), spin -2m (1 - m^2),
# Gaussian 0 (so the term vanishes for every pair with a Gaussian unit, and TAP3 is TAP2 there).
# Scalar units: E3_i mu = W_i mu^3 k3_i, hence T3 = (1/6) k3_v^T W^3 k3_h (the bernoulli TAP3 term of
# Gabrie, Tramel & Krzakala 2015; spins: (2/3) sum W^3 m (1 - m^2) m_h (1 - m_h^2)). Potts units:
# E3_i mu = sum_s p_is (W_is mu - u_i mu)^3 with u_i mu = sum_s p_is W_is mu.


def third_moment(layer: Layer, m: np.ndarray) -> np.ndarray | None:
    """k3 of each scalar unit given its mean (rows); None for Gaussian units (k3 = 0)."""
    if layer.name == "bernoulli":
        return m * (1.0 - m) * (1.0 - 2.0 * m)
    if layer.name == "spin":
        return -2.0 * m * (1.0 - m * m)
    return None


def third_moment_slope(layer: Layer, m: np.ndarray) -> np.ndarray:
    """d k3 / dm of each scalar finite unit."""
    if layer.name == "bernoulli":
        return 1.0 - 6.0 * m + 6.0 * m * m
    return -2.0 + 6.0 * m * m


def _potts_pieces(layer: Layer, m: np.ndarray, w: np.ndarray):
    """(p, W, u, V) for a Potts layer's probabilities m (rows s): p (S, n, q), W (n, q, dim_other),
    u[s, i, mu] = sum_t p W, V[s, i, mu] = sum_t p (W - u)^2."""
    p = m.reshape(m.shape[0], layer.n, layer.q)
    wr = w.reshape(layer.n, layer.q, w.shape[1])
    u = np.einsum("sit,itm->sim", p, wr)
    v = np.einsum("sit,itm->sim", p, wr * wr) - u * u
    return p, wr, u, v


def skew_sums(layer: Layer, m: np.ndarray, w: np.ndarray, w3: np.ndarray) -> np.ndarray | None:
    """sum_i E3_i mu for each unit mu of the other layer (rows = solutions); None when zero (Gaussian)."""
    if layer.name == "potts":
        p, wr, u, _ = _potts_pieces(layer, m, w)
        d = wr[None] - u[:, :, None, :]                                  # (S, n, q, dim_other)
        return np.einsum("sit,sitm->sm", p, d * d * d)
    k3 = third_moment(layer, m)
    return None if k3 is None else k3 @ w3


def third_order_term(p: "Scaled", mv: np.ndarray, mh: np.ndarray) -> np.ndarray:
    """T3 per solution (rows); zero when a layer is Gaussian."""
    ev, k3h = skew_sums(p.vis, mv, p.w, p.w3), third_moment(p.hid, mh)
    if ev is None or k3h is None:
        return np.zeros(mv.shape[0])
    return (ev * k3h).sum(axis=1) / 6.0


def third_order_gradient(layer: Layer, m_self: np.ndarray, w_in: np.ndarray, other: Layer,
                         m_other: np.ndarray) -> np.ndarray | None:
    """dT3 / dm_self (rows, layer.dim): what order 3 adds to the linear field B of ``layer``'s update;
    None when T3 vanishes. ``w_in`` maps the other layer's features to this layer's (dim_other, dim_self)."""
    if layer.name == "gaussian" or other.name == "gaussian":
        return None
    if layer.name == "potts":  # other is scalar: d E3 / dp_is = (W_is - u_i)^3 - 3 W_is V_i
        k3 = third_moment(other, m_other)                                # (S, dim_other)
        p, wr, u, v = _potts_pieces(layer, m_self, w_in.T)
        d = wr[None] - u[:, :, None, :]
        g = d * d * d - 3.0 * wr[None] * v[:, :, None, :]
        return np.einsum("sitm,sm->sit", g, k3).reshape(m_self.shape) / 6.0
    if other.name == "potts":  # scalar unit coupled to Potts units: k3'(m) sum_i E3_i mu
        return third_moment_slope(layer, m_self) * skew_sums(other, m_other, w_in, w_in ** 3) / 6.0
    k3 = third_moment(other, m_other)
    return third_moment_slope(layer, m_self) * (k3 @ (w_in ** 3)) / 6.0


def onsager(layer: Layer, m: np.ndarray, c: np.ndarray, w: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """sum_i Var_q(phi(x_i) . W_i mu) for each unit mu of the other layer (rows = solutions).

    ``w`` maps this layer's features to the other layer (dim_self, dim_other); ``c`` is this
    layer's per-feature variance (ignored for Potts units, whose covariance follows from m).
    """
    if layer.name == "potts":
        u = _site_projection(layer, m, w)
        return m @ w2 - (u * u).sum(axis=1)
    return c @ w2


def _site_projection(layer: Layer, m: np.ndarray, w: np.ndarray) -> np.ndarray:
    """u[s, i, mu] = sum_t p[s, i, t] W[i, t, mu] for a Potts layer's probabilities m (rows s)."""
    p = m.reshape(m.shape[0], layer.n, layer.q)
    return np.einsum("sit,itm->sim", p, w.reshape(layer.n, layer.q, w.shape[1]))


def variances(layer: Layer, m: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    """Per-feature variances: from the mean for finite units, ``c`` for Gaussian units."""
    return c if layer.name == "gaussian" else layer.moment_variance(m)


def update(layer: Layer, m_self: np.ndarray, w_in: np.ndarray, w2_in: np.ndarray, other: Layer, m_other: np.ndarray,
           c_other: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) of ``layer`` from the other layer's moments (see the module docstring).

    ``w_in`` maps the other layer's features to this layer's (dim_other, dim_self).
    """
    b = m_other @ w_in
    if order == 1:
        return layer.tilted(b, 0.0)
    a = -onsager(other, m_other, c_other, w_in, w2_in)
    if layer.name == "potts":
        u = _site_projection(layer, m_self, w_in.T)                      # (S, n, dim_other)
        wt = w_in.T.reshape(layer.n, layer.q, w_in.shape[0])
        b = b - np.einsum("itm,sm,sim->sit", wt, c_other, u).reshape(b.shape)
    else:
        b = b + a * m_self
    if order >= 3:
        g3 = third_order_gradient(layer, m_self, w_in, other, m_other)
        if g3 is not None:
            b = b + g3
    return layer.tilted(b, a)


def neg_gamma_terms(p: Scaled, mv: np.ndarray, cv: np.ndarray, mh: np.ndarray, ch: np.ndarray,
                    order: int) -> np.ndarray:
    """Columns [order-1 value, order-2 term, 0] of -Gamma per solution (rows)."""
    out = np.zeros((mv.shape[0], 3))
    gv = cv if p.vis.name == "gaussian" else None
    gh = ch if p.hid.name == "gaussian" else None
    out[:, 0] = p.vis.neg_conjugate(mv, gv) + p.hid.neg_conjugate(mh, gh) + ((mv @ p.w) * mh).sum(axis=1)
    if order >= 2:
        out[:, 1] = 0.5 * (onsager(p.vis, mv, cv, p.w, p.w2) * ch).sum(axis=1)
    if order >= 3:
        out[:, 2] = third_order_term(p, mv, mh)
    return out


def _start_variances(layer: Layer, m: np.ndarray) -> np.ndarray:
    return np.broadcast_to(1.0 / layer.precision, m.shape).copy() if layer.name == "gaussian" \
        else layer.moment_variance(m)


def solve(p: Scaled, order: int, mv0: np.ndarray, tol: float, max_iter: int, damping: float,
          progress=None, description: str = "fixed points") -> FixedPoints:
    """Damped alternating iteration from the visible starts mv0 (rows); see the module docstring."""
    vis, hid, w, w2 = p.vis, p.hid, p.w, p.w2
    mv = np.array(mv0, dtype=np.float64)
    cv = _start_variances(vis, mv)
    mh, ch = update(hid, np.zeros((mv.shape[0], hid.dim)), w, w2, vis, mv, cv, 1)
    n = mv.shape[0]
    converged = np.zeros(n, dtype=bool)
    iterations = np.zeros(n, dtype=np.int64)
    residual = np.full(n, np.inf)
    dmp = np.full(n, damping)
    best = np.full(n, np.inf)
    stalled = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    matvecs = n
    report_every = max(1, max_iter // 100)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for sweep in range(max_iter + 1):
            if active.size == 0:
                break
            a_mv, a_cv, a_mh, a_ch = mv[active], cv[active], mh[active], ch[active]
            fv, fcv = update(vis, a_mv, w.T, w2.T, hid, a_mh, a_ch, order)
            fh, fch = update(hid, a_mh, w, w2, vis, a_mv, a_cv, order)
            matvecs += 2 * active.size * order
            r = np.maximum(np.abs(fv - a_mv).max(axis=1, initial=0.0), np.abs(fh - a_mh).max(axis=1, initial=0.0))
            if vis.name == "gaussian":
                r = np.maximum(r, np.abs(fcv - a_cv).max(axis=1, initial=0.0))
            if hid.name == "gaussian":
                r = np.maximum(r, np.abs(fch - a_ch).max(axis=1, initial=0.0))
            r = np.where(np.isfinite(r), r, np.inf)
            residual[active] = r
            iterations[active] = sweep
            done = r < tol
            converged[active[done]] = True
            keep = ~done & np.isfinite(r)
            if sweep == max_iter or not keep.any():
                break
            improved = r < best[active]
            best[active] = np.minimum(best[active], r)
            stalled[active] = np.where(improved, 0, stalled[active] + 1)
            raise_it = active[stalled[active] >= STALL_SWEEPS]
            dmp[raise_it] = np.minimum(MAX_DAMPING, 1.0 - 0.5 * (1.0 - dmp[raise_it]))
            stalled[raise_it] = 0
            idx = active[keep]
            d = dmp[idx][:, None]
            mv[idx] = d * a_mv[keep] + (1.0 - d) * fv[keep]
            cv[idx] = (d * a_cv[keep] + (1.0 - d) * fcv[keep]) if vis.name == "gaussian" \
                else vis.moment_variance(mv[idx])
            nh, nch = update(hid, mh[idx], w, w2, vis, mv[idx], cv[idx], order)
            mh[idx] = d * mh[idx] + (1.0 - d) * nh
            ch[idx] = (d * ch[idx] + (1.0 - d) * nch) if hid.name == "gaussian" else hid.moment_variance(mh[idx])
            active = idx
            if progress is not None and sweep % report_every == 0:
                progress(description, sweep, max_iter)
        if progress is not None:
            progress(description, max_iter, max_iter)
        if order == 1:  # the bound's Gaussian variances are 1 / (beta gamma), whatever the iterate
            cv, ch = _start_variances(vis, mv), _start_variances(hid, mh)
        terms = neg_gamma_terms(p, mv, cv, mh, ch, order)
    return LayeredFixedPoints(order, mv, mh, converged, iterations, residual, matvecs, tol, max_iter, damping, dmp,
                              params=None, computed_terms=terms, variances=(cv, ch))


# --------------------------------------------------------------------------------------------
# Starts


def base_rate_means(layer: Layer, data: np.ndarray, pseudocount: float = 1.0) -> np.ndarray:
    """Feature means of the data, smoothed by ``pseudocount`` examples spread evenly over the states
    (finite units), so the starts stay inside the layer's domain; plain means for Gaussian units."""
    f = layer.features(data)
    n = data.shape[0]
    if layer.name == "gaussian":
        return f.mean(axis=0)
    if layer.name == "spin":
        return f.sum(axis=0) / (n + pseudocount)
    per_state = 0.5 if layer.name == "bernoulli" else 1.0 / layer.q
    return (f.sum(axis=0) + pseudocount * per_state) / (n + pseudocount)


def random_means(layer: Layer, rng: np.random.Generator, count: int) -> np.ndarray:
    """Random feature means inside the layer's domain."""
    if layer.name == "bernoulli":
        return rng.uniform(size=(count, layer.dim))
    if layer.name == "spin":
        return rng.uniform(-1.0, 1.0, size=(count, layer.dim))
    if layer.name == "potts":
        e = np.exp(rng.normal(size=(count, layer.n, layer.q)))
        return (e / e.sum(axis=2, keepdims=True)).reshape(count, layer.dim)
    zero = layer.tilted(np.zeros(layer.dim), 0.0)[0]
    return zero + rng.normal(size=(count, layer.dim)) / np.sqrt(layer.precision)


def initial_means(p: Scaled, starts: int, data: np.ndarray | None, seed: int) -> tuple[np.ndarray, list[str]]:
    """Visible starting means (S, dim_v) and labels: the data's base rate and rows (with data) or the
    W = 0 solution, then random means (from ``seed``)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    rows: list[np.ndarray] = []
    labels: list[str] = []
    if data is not None:
        rows.append(base_rate_means(p.vis, data))
        labels.append("base-rate")
        n_rows = min(data.shape[0], starts // 2)
        if n_rows > 0 and starts > 1:
            picked = rng.choice(data.shape[0], size=n_rows, replace=False)
            rows.extend(p.vis.features(data[picked]))
            labels.extend(f"data row {int(i)}" for i in picked)
    else:
        rows.append(p.vis.tilted(np.zeros(p.vis.dim), 0.0)[0])
        labels.append("bias")
    rows, labels = rows[:starts], labels[:starts]
    if starts > len(rows):
        rows.extend(random_means(p.vis, rng, starts - len(rows)))
        labels.extend(["random"] * (starts - len(labels)))
    return np.array(rows, dtype=np.float64), labels


def solve_multistart_layers(model: RBM, order: int, *, beta: float, tol: float, max_iter: int, damping: float,
                            starts: int, data: Any, seed: int | None, progress=None) -> FixedPoints:
    """:func:`fecli.estimators.meanfield.solve_multistart` for any unit types (orders 1 to 3)."""
    from ..layer_data import resolve_for
    from .exact import check_beta

    beta = check_beta(beta)
    order = check_order(order, (1, 2, 3))
    tol, max_iter, damping = check_fixed_point_options(tol, max_iter, damping)
    starts = check_positive_int("starts", starts)
    seed = _check_seed(seed)
    data_arr, _ = resolve_for(data, model)
    p = Scaled.of(model, beta)
    mv0, labels = initial_means(p, starts, data_arr, seed)
    fp = solve(p, order, mv0, tol, max_iter, damping, progress, f"{ORDER_NAMES[order]} fixed points")
    fp.labels = labels
    return fp
