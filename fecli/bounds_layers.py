"""Rigorous brackets on ln Z for models with spin, Gaussian or Potts layers (see :mod:`fecli.bounds`).

Spin layers: the bracket of the exact 0/1 equivalent (:func:`fecli.model.binary_equivalent`),
shifted by beta c; the states a run visited are those of the equivalent model.

Gaussian and Potts layers:

- lower: the naive mean-field bound (Gibbs-Bogoliubov, any unit types; fecli.estimators.
  meanfield_layers), and, when the visible layer is finite, ln sum over the distinct data rows
  and visited states v of exp(-F(v));
- upper: with a finite layer S and the other layer O summed out,
  ln Z = ln sum_s exp(-beta E_S(s) + Gamma_O(beta W^T phi(s)))
       <= Gamma_S(0) + sum_mu max(Gamma_O,mu(lo_mu), Gamma_O,mu(hi_mu)),
  where [lo_mu, hi_mu] holds O's field over all states of S (theta_mu plus each unit's smallest or
  largest coupling to mu over its states), because each Gamma_O,mu is convex in its field (a cgf),
  so its maximum over an interval is at an end; the smaller over the finite layers. A
  Gaussian-Gaussian model has no finite layer: its upper bound is +inf (its exact ln Z is cheap).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .bounds import Bracket, check_result
from .layers import Layer
from .model import RBM, binary_equivalent


def upper_bound_layers(model: RBM, beta: float = 1.0) -> float:
    """The convexity bound of the module docstring (nats); +inf when no layer is finite."""
    best = math.inf
    for side in ("visible", "hidden"):
        own: Layer = getattr(model, side)
        if not own.finite:
            continue
        other: Layer = model.hidden if side == "visible" else model.visible
        w = model.weights2d if side == "visible" else model.weights2d.T
        cols = own.state_columns(w)                                  # (n, r, dim_other)
        lo = cols.min(axis=1).sum(axis=0)
        hi = cols.max(axis=1).sum(axis=0)
        per_unit = lambda f: _per_unit_cgf(other, f, beta)          # noqa: E731
        bound = float(own.cgf(np.zeros(own.dim), beta) + np.maximum(per_unit(lo), per_unit(hi)).sum())
        best = min(best, bound)
    return best


def _per_unit_cgf(layer: Layer, field: np.ndarray, beta: float) -> np.ndarray:
    """Gamma of each unit of ``layer`` at ``field`` (one entry per unit; Potts: the field of each
    state is taken at its own end, which only loosens the bound)."""
    if layer.name == "potts":
        return np.array([layer.replace(bias=layer.bias[i:i + 1]).cgf(field[i * layer.q:(i + 1) * layer.q], beta)
                         for i in range(layer.n)])
    params = layer.parameters()
    return np.array([type(layer)(**{k: v[i:i + 1] for k, v in params.items()}).cgf(field[i:i + 1], beta)
                     for i in range(layer.n)])


def lower_bound_layers(model: RBM, beta: float, rows: list[np.ndarray]) -> tuple[float, str]:
    """(the best rigorous lower bound, its source): naive mean field or the states seen."""
    from .estimators.meanfield import DEFAULT_DAMPING, DEFAULT_MAX_ITER, DEFAULT_TOL
    from .estimators.meanfield_layers import solve_multistart_layers

    candidates: list[tuple[float, str]] = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        fp = solve_multistart_layers(model, 1, beta=beta, tol=DEFAULT_TOL, max_iter=DEFAULT_MAX_ITER,
                                     damping=DEFAULT_DAMPING, starts=4, data=None, seed=0)
    finite = fp.neg_gamma[np.isfinite(fp.neg_gamma)]
    if finite.size:
        candidates.append((float(finite.max()), "naive mean field"))
    if model.visible.finite:
        seen = [r for r in rows if r is not None and np.ndim(r) == 2 and np.shape(r)[1] == model.n_visible]
        if seen:
            distinct = np.unique(np.concatenate(seen), axis=0)
            neg_f = -model.free_energy(distinct, beta)
            top = float(np.max(neg_f))
            if math.isfinite(top):
                candidates.append((top + math.log(float(np.exp(neg_f - top).sum())),
                                   f"{len(distinct)} distinct states seen"))
    return max(candidates) if candidates else (-math.inf, "none")


def check_against_layered_bracket(model: RBM, result: Any, data: Any = None) -> Any:
    """:func:`fecli.api.check_against_bracket` for models that are not bernoulli-bernoulli."""
    from .api import check_against_bracket
    from .layer_data import resolve_for

    if result.kind == "exact":
        return result
    rows = None
    if data is not None:
        try:
            rows, _ = resolve_for(data, model)
        except Exception:  # the method already read (or refused) the data; the bracket does without it
            rows = None
    mapped, offset = binary_equivalent(model)
    if mapped.is_bernoulli:
        shift = result.beta * offset
        if rows is not None and model.visible.name == "spin":
            rows = (rows + 1.0) / 2.0
        result.log_z -= shift
        for key in ("ci_low", "ci_high"):
            if getattr(result, key) is not None:
                setattr(result, key, getattr(result, key) - shift)
        checked = check_against_bracket(mapped, result, rows)
        checked.log_z += shift
        for key in ("ci_low", "ci_high"):
            if getattr(checked, key) is not None:
                setattr(checked, key, getattr(checked, key) + shift)
        bracket = checked.diagnostics.get("bracket")
        if bracket:
            checked.diagnostics["bracket"] = {**bracket, "lower": bracket["lower"] + shift,
                                              "upper": bracket["upper"] + shift}
        if "unclipped_log_z" in checked.diagnostics:
            checked.diagnostics["unclipped_log_z"] += shift
        return checked
    lower, source = lower_bound_layers(model, result.beta, [rows, result.states])
    result.states = None
    return check_result(result, Bracket(lower, upper_bound_layers(model, result.beta), source,
                                        "convexity upper bound"))
