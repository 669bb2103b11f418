"""Exact ln Z and exact samples for every combination of unit types (fecli.layers).

* One layer finite (bernoulli, spin, Potts): enumerate it, the other layer summed out in closed
  form by its log-partition (softplus, ln 2 cosh, a Gaussian integral, or a logsumexp per Potts
  site) with the r-ary Gray-code kernel of :mod:`fecli.kernels.enumeration_layers`. With both
  layers finite the one with fewer joint states is enumerated (hidden on ties).
* Spin layers are rewritten as 0/1 layers first (:func:`fecli.model.binary_equivalent`,
  ln Z = ln Z' + beta c), so spin-spin and spin-bernoulli models run on the bernoulli kernel.
* Both layers Gaussian: a Gaussian integral. With P_v = beta gamma_v, P_h = beta gamma_h,
  W' = beta W, theta' = beta theta, integrating h out leaves a quadratic form in v with precision
  M = diag(P_v) - W' diag(1/P_h) W'^T and linear term l = theta_v' + W' (theta_h' / P_h):

      ln Z = sum_mu [theta_h'^2 / (2 P_h) + 1/2 ln(2 pi / P_h)] + l^T M^-1 l / 2
             + (nv / 2) ln(2 pi) - 1/2 ln det M      (the smaller layer kept, via Cholesky).

  M is positive definite exactly when the joint precision matrix
  [[diag(gamma_v), -W], [-W^T, diag(gamma_h)]] is (Schur complement); otherwise Z is infinite
  and the model is refused, never given a finite number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import RefusedError
from ..model import RBM, binary_equivalent

LOG_2PI = math.log(2.0 * math.pi)
#: Counter values per chunk of the r-ary kernel (about 2^12).
CHUNK_STATES = 1 << 12
#: Bounds on chunks per kernel call (progress about 200 times per run).
MIN_CHUNKS_PER_CALL, MAX_CHUNKS_PER_CALL = 16, 512
#: Hard ceiling on the joint states of an enumerated layer (the kernel's counter is an int64).
ABSOLUTE_MAX_BITS = 62


@dataclass(frozen=True)
class Plan:
    """What exact ln Z will do: enumerate ``layer`` ('visible' or 'hidden'), or integrate
    ('closed-form', both layers Gaussian)."""

    layer: str
    units: int
    states_per_unit: int
    other_dim: int

    @property
    def bits(self) -> float:
        """log2 of the number of states visited (0 for the closed form)."""
        return self.units * math.log2(self.states_per_unit) if self.layer != "closed-form" else 0.0

    @property
    def states(self) -> int:
        return self.states_per_unit ** self.units if self.layer != "closed-form" else 0

    def describe(self) -> str:
        if self.layer == "closed-form":
            return f"Gaussian integral (Cholesky of a {self.units} x {self.units} matrix)"
        base = f"{self.states_per_unit}^{self.units}"
        return f"{base} states x {self.other_dim} cgf terms = {2.0 ** self.bits * self.other_dim:.3g} evaluations"


def plan(model: RBM, layer: str = "auto") -> Plan:
    """The enumeration plan for ``model``: 'auto' picks the finite layer with fewer joint states
    (hidden on ties); 'visible' / 'hidden' force one (refused for a Gaussian layer)."""
    vis, hid = model.visible, model.hidden
    if not vis.finite and not hid.finite:
        return Plan("closed-form", min(vis.n, hid.n), 0, max(vis.n, hid.n))
    if layer == "auto":
        if not vis.finite:
            layer = "hidden"
        elif not hid.finite:
            layer = "visible"
        else:
            layer = "hidden" if hid.log_states() <= vis.log_states() else "visible"
    chosen, other = (hid, vis) if layer == "hidden" else (vis, hid)
    if not chosen.finite:
        raise RefusedError(f"cannot enumerate the {layer} layer of {model.name}: its units are {chosen.name} "
                           f"(real-valued); enumerate the other layer (--layer auto).")
    return Plan(layer, chosen.n, chosen.n_states, other.dim)


def _kind(layer) -> tuple[int, np.ndarray, int]:
    """(kind, coef, group) of the other layer for the kernel (coef filled in by the caller)."""
    from ..kernels.enumeration_layers import KIND_BERNOULLI, KIND_GAUSSIAN, KIND_POTTS, KIND_SPIN

    kinds = {"bernoulli": KIND_BERNOULLI, "spin": KIND_SPIN, "gaussian": KIND_GAUSSIAN, "potts": KIND_POTTS}
    return kinds[layer.name], np.zeros(layer.dim), getattr(layer, "q", 1)


def log_partition_layers(model: RBM, beta: float, layer: str = "auto", progress=None) -> float:
    """ln Z(beta) of any model (no size limit; see :func:`fecli.estimators.exact.estimate_exact`)."""
    mapped, offset = binary_equivalent(model)
    if mapped is not model:
        from .exact import log_partition

        return log_partition(mapped, beta, layer, progress) + beta * offset
    p = plan(model, layer)
    if p.layer == "closed-form":
        return gaussian_gaussian_log_z(model, beta)
    if p.bits > ABSOLUTE_MAX_BITS:
        raise RefusedError(f"cannot enumerate {p.states_per_unit}^{p.units} states: the limit of the exact kernel "
                           f"is 2^{ABSOLUTE_MAX_BITS}.")
    from ..kernels.enumeration_layers import gray_logsumexp_layers

    own_layer, other = (model.hidden, model.visible) if p.layer == "hidden" else (model.visible, model.hidden)
    w = model.weights2d.T if p.layer == "hidden" else model.weights2d
    cols = np.ascontiguousarray(beta * own_layer.state_columns(w))
    own = np.ascontiguousarray(beta * own_layer.state_neg_energies())
    field0 = np.ascontiguousarray(beta * other.bias.ravel())
    kind, coef, group = _kind(other)
    constant = 0.0
    if other.name == "gaussian":
        coef = 1.0 / (2.0 * beta * other.precision)
        constant = float(0.5 * np.log(2.0 * math.pi / (beta * other.precision)).sum())
    r, k = p.states_per_unit, p.units
    chunk_digits = max(1, min(k, int(math.log(CHUNK_STATES) / math.log(r))))
    chunk_len = r ** chunk_digits
    n_chunks = r ** (k - chunk_digits)
    per_call = min(max(n_chunks // 200, MIN_CHUNKS_PER_CALL), MAX_CHUNKS_PER_CALL)
    out_m, out_s = np.empty(n_chunks), np.empty(n_chunks)
    for first in range(0, n_chunks, per_call):
        count = min(per_call, n_chunks - first)
        gray_logsumexp_layers(cols, own, field0, kind, np.ascontiguousarray(coef, dtype=np.float64), group, first,
                              count, chunk_len, out_m[first:], out_s[first:])
        if progress is not None:
            progress("exact enumeration", (first + count) * chunk_len, n_chunks * chunk_len)
    top = float(np.max(out_m))
    if not math.isfinite(top):
        return top
    return top + math.log(float(np.sum(out_s * np.exp(out_m - top)))) + constant


# --------------------------------------------------------------------------------------------
# Gaussian-Gaussian


def _schur(model: RBM, beta: float = 1.0):
    """(M, l, c0, n_kept) of the module docstring, keeping the smaller layer."""
    m = model if model.n_visible <= model.n_hidden else model.transpose()
    pv, ph = beta * m.visible.precision, beta * m.hidden.precision
    w = beta * m.weights2d
    tv, th = beta * m.visible.bias, beta * m.hidden.bias
    precision = np.diag(pv) - (w / ph) @ w.T
    linear = tv + w @ (th / ph)
    c0 = float(np.sum(th * th / (2.0 * ph)) + 0.5 * np.sum(np.log(2.0 * math.pi / ph)))
    return precision, linear, c0, m.n_visible


def gaussian_gaussian_problem(model: RBM) -> str | None:
    """None when the Gaussian-Gaussian ``model`` is normalisable, else the end of a sentence saying why not."""
    precision, _, _, _ = _schur(model)
    try:
        np.linalg.cholesky(precision)
        return None
    except np.linalg.LinAlgError:
        smallest = float(np.linalg.eigvalsh(precision)[0])
        return (f"is not normalisable: its joint precision matrix [[diag(visible_precision), -W], [-W^T, "
                f"diag(hidden_precision)]] is not positive definite (smallest eigenvalue of its Schur complement "
                f"{smallest:.3g}), so Z is infinite.")


def gaussian_gaussian_log_z(model: RBM, beta: float = 1.0) -> float:
    """ln Z(beta) of a Gaussian-Gaussian model in closed form; RefusedError when not normalisable."""
    precision, linear, c0, n = _schur(model, beta)
    try:
        chol = np.linalg.cholesky(precision)
    except np.linalg.LinAlgError:
        raise RefusedError(f"{model.name} {gaussian_gaussian_problem(model)}") from None
    z = np.linalg.solve(chol, linear)
    log_det = 2.0 * float(np.sum(np.log(np.diag(chol))))
    return c0 + 0.5 * float(z @ z) + 0.5 * n * LOG_2PI - 0.5 * log_det


# --------------------------------------------------------------------------------------------
# Exact samples

#: States per block when tabulating a marginal.
_SAMPLE_BLOCK = 1 << 12


class LayeredExactSampler:
    """Exact i.i.d. samples (v, h) of any enumerable model, in the layers' own values.

    A finite layer is drawn from its exact marginal, tabulated in the log domain over all its
    states (ln p(s) = -beta E_s(s) + Gamma_o,beta(W^T phi(s)) - ln Z), then the other layer from
    its conditional. A Gaussian-Gaussian model is drawn from its joint normal distribution.
    ``max_bits``: refuse layers with more than 2^max_bits states.
    """

    def __init__(self, model: RBM, beta: float = 1.0, max_bits: float = 24):
        self.model, self.beta = model, beta
        p = plan(model, "auto")
        self.layer = p.layer
        if p.layer == "closed-form":
            self._init_gaussian()
            return
        if p.bits > max_bits + 1e-9:
            raise RefusedError(f"exact sampling needs the marginal of {p.states_per_unit}^{p.units} states of the "
                               f"{p.layer} layer; the limit is 2^{max_bits:g} states.")
        self.own, self.other = (model.hidden, model.visible) if p.layer == "hidden" else (model.visible, model.hidden)
        self.w = model.weights2d.T if p.layer == "hidden" else model.weights2d
        self.k, self.r = p.units, p.states_per_unit
        total = self.r ** self.k
        logp = np.empty(total)
        for first in range(0, total, _SAMPLE_BLOCK):
            idx = np.arange(first, min(first + _SAMPLE_BLOCK, total), dtype=np.int64)
            s = self._states(idx)
            logp[idx] = -self.own.energy(s, beta) + self.other.cgf(self.own.project(s, self.w), beta)
        top = float(logp.max())
        prob = np.exp(logp - top)
        self.log_z = top + math.log(float(prob.sum()))
        self.cdf = np.cumsum(prob)
        self.cdf /= self.cdf[-1]

    def _states(self, idx: np.ndarray) -> np.ndarray:
        digits = (idx[:, None] // (self.r ** np.arange(self.k, dtype=np.int64))) % self.r
        return self.own.states_from_digits(digits)

    def _init_gaussian(self) -> None:
        m, beta = self.model, self.beta
        pv, ph = beta * m.visible.precision, beta * m.hidden.precision
        w = beta * m.weights2d
        joint = np.block([[np.diag(pv), -w], [-w.T, np.diag(ph)]])
        try:
            chol = np.linalg.cholesky(joint)
        except np.linalg.LinAlgError:
            raise RefusedError(f"{m.name} {gaussian_gaussian_problem(m)}") from None
        linear = np.concatenate([beta * m.visible.bias, beta * m.hidden.bias])
        self.mean = np.linalg.solve(joint, linear)
        self.chol = chol
        self.log_z = gaussian_gaussian_log_z(m, beta)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n exact samples (v, h) as float64 arrays of shapes (n, nv) and (n, nh)."""
        if self.layer == "closed-form":
            z = rng.standard_normal((n, self.mean.size))
            # x = mean + L^-T z has covariance (L L^T)^-1.
            x = self.mean + np.linalg.solve(self.chol.T, z.T).T
            nv = self.model.n_visible
            return x[:, :nv], x[:, nv:]
        idx = np.searchsorted(self.cdf, rng.random(n), side="right")
        idx = np.minimum(idx, self.cdf.size - 1)
        s = self._states(idx.astype(np.int64))
        other = self.other.sample(self.own.project(s, self.w), rng, self.beta)
        return (other, s) if self.layer == "hidden" else (s, other)
