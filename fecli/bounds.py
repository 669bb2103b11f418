"""Rigorous brackets on ln Z, and the check that keeps every result inside them.

For any RBM at inverse temperature beta (parameters scaled by beta; METHODS.md, "Reference
values for checks"):

- lower: ln Z >= ln sum_{v in S} exp(-F(v)) for any set S of distinct visible states (the
  hidden layer summed out exactly), the same over distinct hidden states with the visible layer
  summed out, and ln Z >= -Gamma_MF(x, y) for any magnetisations (Gibbs-Bogoliubov-Feynman).
  fecli takes the best of the naive mean-field bound, the visible states it has seen (data rows,
  the mean-field magnetisations rounded, the final states of sampling runs) and the likeliest
  hidden state given each of them, with the single flips of the best of those. The hidden bound
  counts a whole mode at once where a mode spreads over many visible states: on an RBM trained on
  real MNIST digits (784 x 20, 76% of Z in seven hidden states) the data rows' likeliest hidden
  states gave ln Z - 0.07, their visible states ln Z - 23, and AIS from the data's base rate was
  1.36 nats low with an interval 0.9 wide.
- upper: with q(v) = prod sigma(a_i)^v_i (1 - sigma(a_i))^(1 - v_i),
  ln Z = sum_i softplus(a_i) + ln E_q[exp(sum_j softplus(b_j + (v^T W)_j))]
       <= sum_i softplus(a_i) + sum_j softplus(b_j + sum_i max(W_ij, 0)),
  since softplus is increasing; the same with the layers swapped, and the smaller of the two.

Any ln Z outside [lower, upper] is impossible whatever its kind; :func:`check_result` clips
such values and says so in the result's warnings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .model import RBM, softplus

#: Results are compared with the bracket up to this rounding slack (nats, relative to |ln Z|).
SLACK_REL = 1e-9
SLACK_ABS = 1e-9


@dataclass(frozen=True)
class Bracket:
    """lower <= ln Z(beta) <= upper, both rigorous, with where each came from."""

    lower: float
    upper: float
    lower_source: str
    upper_source: str

    def as_dict(self) -> dict:
        return {"lower": self.lower, "upper": self.upper,
                "lower_source": self.lower_source, "upper_source": self.upper_source}


def upper_bound(model: RBM, beta: float = 1.0) -> float:
    """sum_i softplus(beta a_i) + sum_j softplus(beta (b_j + sum_i max(W_ij, 0))), the smaller
    over the two orientations (module docstring). In nats."""
    w = beta * model.weights
    a = beta * model.visible_bias
    b = beta * model.hidden_bias
    over_v = softplus(a).sum() + softplus(b + np.maximum(w, 0.0).sum(axis=0)).sum()
    over_h = softplus(b).sum() + softplus(a + np.maximum(w, 0.0).sum(axis=1)).sum()
    return float(min(over_v, over_h))


def states_lower_bound(model: RBM, beta: float, states: np.ndarray) -> float:
    """ln sum over the distinct rows v of ``states`` (0/1, shape (n, nv)) of exp(-F_beta(v)): a
    rigorous lower bound on ln Z(beta). -inf when there are no rows."""
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[0] == 0 or states.shape[1] != model.n_visible:
        return -math.inf
    distinct = distinct_rows(states)
    neg_f = -model.free_energy(distinct, beta)
    top = float(np.max(neg_f))
    if not math.isfinite(top):
        return -math.inf
    return top + math.log(float(np.exp(neg_f - top).sum()))


def distinct_rows(states: np.ndarray) -> np.ndarray:
    """The distinct rows of a 0/1 array (each row packed into bytes and compared as one key: far
    faster than np.unique(axis=0) on thousands of 784-unit rows)."""
    _, first = np.unique(_row_keys(states), return_index=True)
    return states[np.sort(first)]


def _row_keys(states: np.ndarray) -> np.ndarray:
    """One comparable key per 0/1 row (its bits packed into bytes)."""
    bits = np.ascontiguousarray(np.packbits(states > 0.5, axis=1))
    return bits.view(np.dtype((np.void, bits.shape[1]))).ravel()


#: Mean-field modes with -Gamma within this many nats of the best one are counted as modes a
#: sampler should visit (each may hold a sizeable share of Z).
MODE_WINDOW = 3.0
#: Starts of the multi-start mean-field iteration behind the bracket and the modes.
MEAN_FIELD_STARTS = 8


@dataclass(frozen=True)
class MeanFieldModes:
    """Distinct naive mean-field fixed points: magnetisations (K, nv) and -Gamma (K,), best first."""

    x: np.ndarray
    neg_gamma: np.ndarray


def mean_field_modes(model: RBM, beta: float) -> MeanFieldModes:
    """Distinct naive mean-field fixed points from several starts (sigma(beta a), then random; seed 0),
    cached on the model object per beta. Distinct means different rounded visible magnetisations."""
    cache = model.__dict__.setdefault("_mean_field_modes", {})
    if beta not in cache:
        from .estimators.meanfield import (DEFAULT_DAMPING, DEFAULT_MAX_ITER, DEFAULT_TOL,
                                           solve_multistart)

        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            fp = solve_multistart(model, 1, beta=beta, tol=DEFAULT_TOL, max_iter=DEFAULT_MAX_ITER,
                                  damping=DEFAULT_DAMPING, starts=MEAN_FIELD_STARTS, data=None, seed=0)
        order = np.argsort(-np.nan_to_num(fp.neg_gamma, nan=-np.inf))
        keep: list[int] = []
        for s in order:
            if np.isfinite(fp.neg_gamma[s]) and not any(
                    np.array_equal(np.round(fp.x[s]), np.round(fp.x[k])) for k in keep):
                keep.append(int(s))
        cache[beta] = MeanFieldModes(fp.x[keep], fp.neg_gamma[keep])
    return cache[beta]


def likeliest_hidden(model: RBM, rows: np.ndarray) -> np.ndarray:
    """The most probable hidden state given each visible row (0/1, (n, nv)): h_j = 1 where
    b_j + (v^T W)_j > 0, at every beta > 0. Shape (n, nh)."""
    return np.where(rows @ model.weights + model.hidden_bias > 0.0, 1.0, 0.0)


#: The best hidden states whose single-flip neighbours join the hidden-states bound.
NEIGHBOURHOOD_TOP = 8


def hidden_states_bound(model: RBM, beta: float, rows: np.ndarray) -> tuple[float, int]:
    """ln sum exp(-F_beta(h)) (the visible layer summed out) over the likeliest hidden state of each
    0/1 visible row and every single flip of the NEIGHBOURHOOD_TOP best of those: a rigorous lower
    bound on ln Z(beta), and the number of distinct hidden states it sums (-inf, 0 without rows).

    The flips count the mass next to a sharp mode: on a CD-1-trained MNIST 784 x 20 RBM the best
    hidden state holds 66% of Z and its neighbours most of the rest (bound ln Z - 0.42 without
    them, ln Z - 0.09 with them), which an importance sampler that saw only that state missed."""
    hidden = distinct_rows(likeliest_hidden(model, rows))
    if hidden.shape[0] == 0:
        return -math.inf, 0
    dual = model.transpose()
    neg_f = -dual.free_energy(hidden, beta)
    best = hidden[np.argsort(neg_f)[::-1][:NEIGHBOURHOOD_TOP]]
    flips = distinct_rows(np.abs(best[:, None, :] - np.eye(model.n_hidden)[None, :, :]).reshape(-1, model.n_hidden))
    flips = flips[~np.isin(_row_keys(flips), _row_keys(hidden))]
    neg_f = np.concatenate([neg_f, -dual.free_energy(flips, beta)])
    top = float(neg_f.max())
    return top + math.log(float(np.exp(neg_f - top).sum())), neg_f.size


def rigorous_bracket(model: RBM, beta: float = 1.0, states: list[np.ndarray] | None = None) -> Bracket:
    """The bracket of ``model`` at ``beta`` from mean field and the given visible ``states``.

    ``states``: arrays of 0/1 visible rows (data, samples); rows need not be distinct.
    """
    candidates: list[tuple[float, str]] = []
    modes = mean_field_modes(model, beta)
    if modes.neg_gamma.size:
        candidates.append((float(modes.neg_gamma[0]), "naive mean field"))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        seen = [np.round(modes.x)] + [np.asarray(s, dtype=np.float64) for s in (states or [])
                                      if s is not None and np.size(s)]
        rows = np.concatenate([s for s in seen if s.ndim == 2 and s.shape[1] == model.n_visible]
                              or [np.zeros((0, model.n_visible))])
        rows = np.where(rows > 0.5, 1.0, 0.0)
        lse = states_lower_bound(model, beta, rows)
        lse_hidden, n_hidden = hidden_states_bound(model, beta, rows)
    if math.isfinite(lse):
        candidates.append((lse, f"{len(distinct_rows(rows))} distinct states seen"))
    if math.isfinite(lse_hidden):
        candidates.append((lse_hidden, f"{n_hidden} distinct hidden states: the likeliest given the states seen, "
                                       "and single flips of the best"))
    lower, lower_source = max(candidates) if candidates else (-math.inf, "none")
    return Bracket(lower, upper_bound(model, beta), lower_source, "factorised upper bound")


def _outside(value: float, bracket: Bracket) -> str | None:
    slack = SLACK_ABS + SLACK_REL * abs(value)
    if value < bracket.lower - slack:
        return "below"
    if value > bracket.upper + slack:
        return "above"
    return None


def check_result(result, bracket: Bracket):
    """Clip ``result`` (a :class:`~fecli.result.Result`) into ``bracket`` and warn about what was outside.

    - log_z beyond a bound but with its 95% interval reaching it: moved to the bound quietly
      (the value was within its own error of it; ``diagnostics['unclipped_log_z']`` keeps it);
    - log_z beyond a bound with the whole interval beyond it: moved to the bound, with a warning
      naming the raw value, and the kind becomes the bound's (for a stochastic lower bound:
      "a stochastic lower bound below a rigorous lower bound");
    - an interval reaching outside the bracket is cut to it; an interval entirely outside becomes
      the bracket's side it points to (its own value cannot be trusted).
    Exact results, and rigorous lower bounds below the bracket's (still true), are left alone.
    Returns the result (changed in place).
    """
    if result.kind == "exact":
        return result
    result.diagnostics["bracket"] = bracket.as_dict()
    where = _outside(result.log_z, bracket)
    if where == "below" and result.kind == "lower_bound":
        # A rigorous lower bound below a better one is still true (mf from other starts): kept as is.
        result.diagnostics["below_best_lower_bound"] = bracket.lower - result.log_z
        return result
    if where is not None and _interval_reaches(result, bracket, where):
        result.diagnostics["unclipped_log_z"] = result.log_z
        result.log_z = bracket.lower if where == "below" else bracket.upper
        where = None  # within its own error of the bound: moved there quietly, the interval cut below
    if where is not None:
        raw = result.log_z
        bound = bracket.lower if where == "below" else bracket.upper
        source = bracket.lower_source if where == "below" else bracket.upper_source
        result.warnings.append(_outside_warning(result, raw, bound, source, where))
        result.diagnostics["unclipped_log_z"] = raw
        result.log_z = bound
        if result.kind in ("estimate", "stochastic_lower_bound", "stochastic_upper_bound"):
            result.kind = "lower_bound" if where == "below" else "upper_bound"
    if result.ci_low is not None and result.ci_high is not None:
        lo, hi = (bracket.lower, bracket.upper) if where is not None else (result.ci_low, result.ci_high)
        result.ci_low = min(max(lo, bracket.lower), bracket.upper)
        result.ci_high = max(min(hi, bracket.upper), bracket.lower)
    return result


def _outside_warning(result, raw: float, bound: float, source: str, where: str) -> str:
    """The warning for a value beyond a rigorous bound. A sampling result with an error bar missed
    probability mass (below) or overcounted it (above); an approximation without one (TAP, the
    cumulant series) is simply that far off."""
    side = "lower" if where == "below" else "upper"
    head = f"lies {abs(raw - bound):.3g} nats {where} a rigorous {side} bound on ln Z ({bound:.6g}, {source})"
    if result.ci_low is None or result.ci_high is None:
        what = "this approximation" if result.kind == "approximation" else "the value"
        return f"{what} ({raw:.6g}) {head}: it is off by at least that much; reported at the bound."
    what = {"stochastic_lower_bound": "this stochastic lower bound",
            "stochastic_upper_bound": "this stochastic upper bound"}.get(result.kind, "the value")
    missed = " (a mode was probably missed)" if where == "below" else ""
    return (f"{what} ({raw:.6g}) {head}, beyond its own error bar: it is wrong by at least that much{missed}; "
            "reported at the bound.")


def _interval_reaches(result, bracket: Bracket, where: str) -> bool:
    """Whether the result's own 95% interval reaches the bound its value lies beyond."""
    if result.ci_low is None or result.ci_high is None:
        return False
    slack = SLACK_ABS + SLACK_REL * abs(result.log_z)
    if where == "below":
        return result.ci_high >= bracket.lower - slack
    return result.ci_low <= bracket.upper + slack


#: A run "sat in one mode" when at least this share of its states lies within that mode.
ONE_MODE_SHARE = 0.9


def missed_modes(model: RBM, beta: float, states: np.ndarray | None) -> str | None:
    """A warning when the visible ``states`` a run ended in (rows of 0/1) sat in one mean-field
    mode while there are others within MODE_WINDOW nats of the best, else None.

    A state lies within a mode when it is closer to the mode's rounded magnetisation than half the
    distance between the two nearest modes (mean absolute difference over the units). Runs whose
    states mostly lie in no mode (trained models, whose fixed points are not the modes samples
    visit) are not judged."""
    if states is None or np.size(states) == 0:
        return None
    modes = mean_field_modes(model, beta)
    if modes.neg_gamma.size < 2:
        return None
    important = modes.neg_gamma >= modes.neg_gamma[0] - MODE_WINDOW
    centres = np.round(modes.x[important])
    if centres.shape[0] < 2:
        return None
    states = np.asarray(states, dtype=np.float64)
    distance = np.abs(states[:, None, :] - centres[None, :, :]).mean(axis=2)
    between = np.abs(centres[:, None, :] - centres[None, :, :]).mean(axis=2)
    radius = 0.5 * between[~np.eye(len(centres), dtype=bool)].min()
    inside = distance.min(axis=1) < radius
    counts = np.bincount(distance.argmin(axis=1)[inside], minlength=len(centres))
    if counts.max() < ONE_MODE_SHARE * states.shape[0] or np.count_nonzero(counts) > 1:
        return None
    outside = states.shape[0] - counts.max()
    return (f"{'all' if not outside else f'all but {outside}'} of the run's {states.shape[0]} final states sat in "
            f"one of {len(centres)} mean-field modes within {MODE_WINDOW:g} nats of each other "
            f"(-Gamma {', '.join(f'{g:.4g}' for g in modes.neg_gamma[important])}); the modes never visited may "
            "hold much of Z, so the value and its interval may be too low: compare with --method pt or auto.")
