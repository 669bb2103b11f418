"""Annealed importance sampling: forward AIS, reverse AIS (BDMC) and RAISE.

Path (hidden units summed out; see :mod:`fecli.estimators._sampling_common`):

    ln f_t(v) = (1 - t) a_A.v + t beta a.v + sum_j softplus(t beta (b_j + (v^T W)_j)),
    ln Z_A = sum_i softplus(a_A,i) + nh ln 2,

for 0 = t_0 < t_1 < ... < t_K = 1. The base model's visible bias a_A is the data's
smoothed base rate when data is given (Salakhutdinov & Murray 2008), otherwise 0: the
uniform distribution, the one factorised base that covers every mode of the target (a
mean-field base sits in one mode, and chains that start there miss the others: see
base_model in fecli.estimators._sampling_common).

Forward AIS (Neal 2001): v ~ p_A exactly; for k = 1..K: w += ln f_k(v) - ln f_{k-1}(v),
then block Gibbs sweeps leaving p_k invariant. ln Z ~ ln Z_A + logmeanexp(w); since
E[e^w] = Z / Z_A, Jensen makes it a stochastic lower bound.

Reverse AIS (Grosse, Ghahramani & Adams 2015): v ~ p_K (exact samples when the model is
enumerable), the schedule run backwards, r = sum_k ln f_{k-1}(v_k) - ln f_k(v_k);
E[e^r] = Z_A / Z, so ln Z ~ ln Z_A - logmeanexp(r) is a stochastic upper bound.

RAISE (Burda, Grosse & Salakhutdinov 2015): see :func:`raise_log_likelihood`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidOptionError
from ..model import RBM
from ..result import Result
from ._sampling_common import (
    SKEWED_ESS_FRACTION,
    Z95,
    AnnealingPath,
    Chains,
    AnnealJob,
    base_model,
    chain_states,
    check_positive_int,
    check_schedule,
    kernel_states,
    log_mean_exp,
    make_schedule,
    resolve_data,
    resolve_seed,
    run_annealing,
    start_at_target,
    summarize_log_weights,
)
from . import METHODS, RAISE
from .exact import check_beta

#: Library defaults, declared with the options in the registry (fecli/estimators/__init__.py).
DEFAULTS = METHODS["ais"].defaults()
DEFAULT_CHAINS, DEFAULT_STEPS, DEFAULT_SCHEDULE, DEFAULT_SWEEPS = (
    DEFAULTS[k] for k in ("chains", "steps", "schedule", "sweeps"))
#: reverse-ais: exact target samples when the smaller layer has at most this many units, else
#: parallel tempering with this many // 4 rounds of burn-in (and as many recorded) gives the start.
DEFAULT_EXACT_MAX_UNITS, DEFAULT_BURN_IN = (METHODS["reverse-ais"].defaults()[k] for k in ("exact_max_units", "burn_in"))
#: RAISE's reverse chains per example (fecli loglik --method raise --chains).
DEFAULT_REPEATS = RAISE.defaults()["repeats"]


def _check_common(beta, chains, steps, schedule, sweeps):
    return (check_beta(beta), check_positive_int("chains", chains), check_positive_int("steps", steps),
            check_schedule(schedule), check_positive_int("sweeps", sweeps))


def ais(
    model: RBM,
    *,
    beta: float = 1.0,
    chains: int = DEFAULT_CHAINS,
    steps: int = DEFAULT_STEPS,
    schedule: str = DEFAULT_SCHEDULE,
    sweeps: int = DEFAULT_SWEEPS,
    data: Any = None,
    seed: int | None = None,
    progress=None,
) -> Result:
    """Forward AIS estimate of ln Z(beta): a stochastic lower bound (Jensen).

    Parameters
    ----------
    chains : independent annealing runs (their log weights are averaged in the log domain).
    steps : number of transitions K between the base model and the target.
    schedule : 'linear', 'sigmoid' or 'sm08' spacing of t_1..t_K (see ``make_schedule``).
    sweeps : block Gibbs sweeps per intermediate distribution.
    data : path or array of training examples; sets the base model to their base rate.
    seed : same seed, same numbers (whatever the thread count).
    """
    start = time.perf_counter()
    beta, chains, steps, schedule, sweeps = _check_common(beta, chains, steps, schedule, sweeps)
    data_arr, data_label = resolve_data(data, model)
    entropy = resolve_seed(seed)
    a_base, base_note = base_model(model, beta, data_arr)
    path = AnnealingPath(model, beta, a_base)
    ts = make_schedule(schedule, steps)

    logw, final = run_annealing(AnnealJob(path, ts, sweeps, entropy, chains, "ais"), progress)
    summary = summarize_log_weights(logw, entropy, "AIS log weights")
    log_z0 = path.log_z_base
    return Result(
        model=model.name,
        method="ais",
        beta=beta,
        log_z=log_z0 + summary.log_mean,
        kind="stochastic_lower_bound",
        n_visible=model.n_visible,
        n_hidden=model.n_hidden,
        stderr=summary.stderr,
        ci_low=log_z0 + summary.ci_low,
        ci_high=log_z0 + summary.ci_high,
        wall_time_s=time.perf_counter() - start,
        params={"chains": chains, "steps": steps, "schedule": schedule, "sweeps": sweeps,
                "data": data_label, "seed": entropy},
        diagnostics={**summary.diagnostics(log_z0), "base_model": base_note, "log_z_base": log_z0,
                     "log_weight_sd": float(np.std(logw)), "log_weights": logw.tolist()},
        warnings=list(summary.warnings),
        states=final,
    )


def reverse_ais(
    model: RBM,
    *,
    beta: float = 1.0,
    chains: int = DEFAULT_CHAINS,
    steps: int = DEFAULT_STEPS,
    schedule: str = DEFAULT_SCHEDULE,
    sweeps: int = DEFAULT_SWEEPS,
    data: Any = None,
    burn_in: int = DEFAULT_BURN_IN,
    exact_max_units: int = DEFAULT_EXACT_MAX_UNITS,
    seed: int | None = None,
    progress=None,
) -> Result:
    """Reverse AIS estimate of ln Z(beta), annealing from target samples down to the base model.

    Started from exact target samples (when the smaller layer has at most
    ``exact_max_units`` units) the estimate is a stochastic upper bound; together
    with forward AIS it sandwiches ln Z. Otherwise the chains start from parallel-tempering
    samples of the target (``burn_in // 4`` rounds of burn-in and as many recorded; ladders
    started from data rows when given): only approximately from the target, so the result is
    an estimate, not a guaranteed bound, and says so. A forward AIS run with the same options
    checks it (:func:`check_against_forward`): its interval is widened, with a warning, when the
    two do not meet.
    """
    burn_in = check_positive_int("burn_in", burn_in)
    if isinstance(exact_max_units, bool) or not isinstance(exact_max_units, (int, np.integer)) or exact_max_units < 0:
        raise InvalidOptionError(f"exact_max_units must be an integer >= 0, got {exact_max_units!r}.")

    def at_target(path, seqs, states, data_arr):
        return start_at_target(path, seqs, states, data_arr, burn_in, exact_max_units, progress, "reverse-ais burn-in")

    result = _reverse_ais(model, at_target, beta, chains, steps, schedule, sweeps, data, seed, progress,
                          {"burn_in": burn_in, "exact_max_units": int(exact_max_units)})
    began = time.perf_counter()
    forward = ais(model, beta=beta, chains=chains, steps=steps, schedule=schedule, sweeps=sweeps, data=data,
                  seed=result.params["seed"], progress=progress)
    result.wall_time_s += time.perf_counter() - began
    return check_against_forward(result, forward)


def check_against_forward(reverse: Result, forward: Result) -> Result:
    """Widen reverse AIS's interval down to forward AIS's when the two do not meet (bidirectional
    Monte Carlo, Grosse, Ghahramani & Adams 2015).

    Forward AIS is a stochastic lower bound; reverse AIS from exact samples a stochastic upper one,
    so ln Z lies between them in expectation. Both converge as the annealing slows, and their gap
    measures how far from converged they are. Reverse AIS alone cannot see it: on a random 100 x 18
    model at beta 50 (near-deterministic) it was 2.6-4.3 nats above exact with ESS 7-17 of 100 and
    an interval 0.5-0.8 nats wide, while forward AIS on the same path was within 0.2. When forward
    AIS's value lies below reverse AIS's interval, and either its value + 1.96 standard errors does
    too or either run's weights are skewed (ESS under half the chains: their tail is unsampled,
    and no error bar sees that), the result says so and its interval reaches down to forward
    AIS's lower end. Easy models (ESS above 90%) are left alone. ``reverse`` is changed in place
    (diagnostics['forward_ais'] records the check) and returned.
    """
    reverse.diagnostics["forward_ais"] = {"log_z": forward.log_z, "stderr": forward.stderr, "ci_low": forward.ci_low,
                                          "ci_high": forward.ci_high, "seed": forward.params["seed"]}
    if reverse.ci_low is None or forward.log_z >= reverse.ci_low:
        return reverse
    reach = forward.log_z + Z95 * forward.stderr if forward.stderr is not None else math.inf
    if reach >= reverse.ci_low and not (_skewed(forward) or _skewed(reverse)):
        return reverse
    gap = reverse.log_z - forward.log_z
    why = (" (ESS under half the chains: the weights' tail is unsampled, and no error bar sees it)"
           if _skewed(forward) or _skewed(reverse) else "")
    reverse.warnings.append(
        f"forward AIS along the same path gives {forward.log_z:.6g}, {gap:.3g} nats below this value and outside its "
        f"95% interval{why}: the annealing is too fast for this target, and ln Z lies between the two in "
        "expectation (forward AIS errs low, reverse AIS high); the interval reaches down to forward AIS's "
        "(use more --steps).")
    reverse.ci_low = min(reverse.ci_low, forward.ci_low if forward.ci_low is not None else forward.log_z)
    return reverse


def _skewed(result: Result) -> bool:
    """Whether a few chains carry the weight (ESS under SKEWED_ESS_FRACTION of them): then the
    weights' tail is not sampled, and the error bar cannot say how far off the value is."""
    ess, chains = result.diagnostics.get("ess"), result.params.get("chains")
    return ess is not None and bool(chains) and ess < SKEWED_ESS_FRACTION * chains


def reverse_ais_from_states(model: RBM, start: np.ndarray, *, groups: np.ndarray | None = None,
                            note: str = "given states of the target", beta: float = 1.0,
                            chains: int = DEFAULT_CHAINS, steps: int = DEFAULT_STEPS,
                            schedule: str = DEFAULT_SCHEDULE, sweeps: int = DEFAULT_SWEEPS, data: Any = None,
                            seed: int | None = None, progress=None) -> Result:
    """Reverse AIS whose chains start at given visible states of the target (rows of ``start``,
    (m, nv) 0/1; ``chains`` of them, evenly spaced, or all when there are fewer), e.g. the samples
    of a tempering run (``auto`` uses pt's). ``groups`` (m,): the independent source of each row
    (a tempering ladder), for the replicate error bar. The result is an estimate (the starts are not
    exact samples), with the reverse AIS options of :func:`reverse_ais`.
    """
    from ._sampling_common import TargetStart

    rows = np.asarray(start, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != model.n_visible or rows.shape[0] == 0:
        raise InvalidOptionError(f"start must be rows of {model.n_visible} visible units, got shape {rows.shape}.")
    pick = _even_picks(rows.shape[0], int(chains), None if groups is None else np.asarray(groups))

    def at_target(path, seqs, states, data_arr):
        return TargetStart(Chains(path, rows[pick], states), False, note,
                           groups=None if groups is None else np.asarray(groups)[pick],
                           grouping="chains started from the same tempering ladder" if groups is not None
                           else "contiguous runs of chains")

    return _reverse_ais(model, at_target, beta, pick.size, steps, schedule, sweeps, data, seed, progress, {})


def _even_picks(n: int, chains: int, groups: np.ndarray | None) -> np.ndarray:
    """Indices of min(chains, n) of n rows, evenly spaced; with ``groups`` (n,), evenly spaced within
    each group and taken from the groups in turn, so every group gets its share (an even spacing
    over all rows can alias with a periodic grouping and leave groups out)."""
    if groups is None:
        return np.linspace(0, n - 1, min(chains, n)).astype(int)
    keys = np.unique(groups)
    share = -(-chains // keys.size)
    ranked = []
    for key in keys:
        members = np.flatnonzero(groups == key)
        chosen = members[np.linspace(0, members.size - 1, min(share, members.size)).astype(int)]
        ranked.extend((rank, int(key), int(i)) for rank, i in enumerate(chosen))
    return np.array([i for _, _, i in sorted(ranked)[:chains]])


def _reverse_ais(model: RBM, at_target, beta, chains, steps, schedule, sweeps, data, seed, progress,
                 start_params: dict) -> Result:
    """Reverse AIS from the chains ``at_target(path, seqs, states, data)`` places at the target."""
    start = time.perf_counter()
    beta, chains, steps, schedule, sweeps = _check_common(beta, chains, steps, schedule, sweeps)
    data_arr, data_label = resolve_data(data, model)
    entropy = resolve_seed(seed)
    a_base, base_note = base_model(model, beta, data_arr)
    path = AnnealingPath(model, beta, a_base)
    ts = make_schedule(schedule, steps)

    seqs = chain_states(entropy, chains)
    states = kernel_states(seqs)
    warnings = []
    target = at_target(path, seqs, states, data_arr)
    walkers, exact_start, start_note = target.walkers, target.exact, target.note
    if not exact_start:
        warnings.append(
            f"the starting states are not exact target samples ({start_note}); "
            "the result is an approximate upper bound only, reported as an estimate."
        )
        warnings.extend(target.warnings)
    target_states = walkers.v.copy()
    logr, _ = run_annealing(AnnealJob(path, ts[::-1].copy(), sweeps, entropy, chains, "reverse-ais", target_states),
                            progress)
    summary = summarize_log_weights(logr, entropy, "reverse AIS log weights", sign=-1.0, groups=target.groups,
                                    grouping=target.grouping)
    log_z0 = path.log_z_base
    return Result(
        model=model.name,
        method="reverse-ais",
        beta=beta,
        log_z=log_z0 + summary.log_mean,
        kind="stochastic_upper_bound" if exact_start else "estimate",
        n_visible=model.n_visible,
        n_hidden=model.n_hidden,
        stderr=summary.stderr,
        ci_low=log_z0 + summary.ci_low,
        ci_high=log_z0 + summary.ci_high,
        wall_time_s=time.perf_counter() - start,
        params={"chains": chains, "steps": steps, "schedule": schedule, "sweeps": sweeps, "data": data_label,
                **start_params, **({"burn_in": None} if exact_start else {}), "seed": entropy},
        diagnostics={**summary.diagnostics(log_z0), "base_model": base_note, "log_z_base": log_z0,
                     "start": start_note, "log_weight_sd": float(np.std(logr)), "log_weights": logr.tolist()},
        warnings=warnings + list(summary.warnings),
        states=target_states,
    )


@dataclass
class Sandwich:
    """Forward and reverse AIS of one model: lower <= ln Z <= upper (in expectation)."""

    model: str
    lower: float
    upper: float
    exact_start: bool
    lower_stderr: float | None = None
    upper_stderr: float | None = None

    @property
    def gap(self) -> float:
        return self.upper - self.lower

    def describe(self) -> str:
        """One sentence for people; crossed bounds (noise) are called what they are."""
        note = "" if self.exact_start else " (approximate: reverse AIS did not start from exact samples)"
        if self.gap >= 0:
            return f"sandwich {self.model}: {self.lower:.4f} <= ln Z <= {self.upper:.4f}, gap {self.gap:.4f} nats{note}"
        combined = math.hypot(self.lower_stderr or 0.0, self.upper_stderr or 0.0)
        agree = f"within {-self.gap / combined:.1f} combined standard errors, so they agree" if combined > 0 else "beyond their errors"
        return (f"sandwich {self.model}: forward AIS {self.lower:.4f} and reverse AIS {self.upper:.4f} cross by "
                f"{-self.gap:.4f} nats ({agree}); no sandwich at this precision{note}")


def sandwich(results: list[Result]) -> list[Sandwich]:
    """Pair the 'ais' and 'reverse-ais' results of each model (same beta) into sandwiches."""
    out = []
    forward = {(r.model, r.beta): r for r in results if r.method == "ais"}
    for r in results:
        f = forward.get((r.model, r.beta)) if r.method == "reverse-ais" else None
        if f is not None:
            out.append(Sandwich(r.model, f.log_z, r.log_z, r.kind == "stochastic_upper_bound", f.stderr, r.stderr))
    return out


@dataclass
class RaiseResult:
    """Per-example RAISE estimates of ln p_ann(v) (stochastic lower bounds)."""

    log_p: np.ndarray
    stderr: np.ndarray
    ess: np.ndarray
    log_z_base: float
    params: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(self.log_p))


def raise_log_likelihood(
    model: RBM,
    data: Any,
    *,
    beta: float = 1.0,
    repeats: int = DEFAULT_REPEATS,
    steps: int = DEFAULT_STEPS,
    schedule: str = DEFAULT_SCHEDULE,
    sweeps: int = DEFAULT_SWEEPS,
    base_data: Any = None,
    seed: int | None = None,
    progress=None,
) -> RaiseResult:
    """RAISE: per-example stochastic lower bounds on ln p_ann(v) (Burda, Grosse & Salakhutdinov 2015).

    The annealed model p_ann is the generative process x_0 ~ p_A, x_k ~ T_k(. | x_{k-1})
    for k = 1..K, where T_k (``sweeps`` block Gibbs sweeps) leaves p_k invariant;
    it approaches p_beta as K grows. For a data vector v = x_K, the reverse chain
    x_{k-1} ~ T~_k(. | x_k) with T~_k the reversal of T_k (block Gibbs on v is
    reversible, so T~_k = T_k) gives the importance weight

        w = p_fwd(x_0..x_K) / q(x_0..x_{K-1} | x_K)
          = p_A(x_0) prod_{k=1..K} T_k(x_k | x_{k-1}) / prod_k [T_k(x_k | x_{k-1}) p_k(x_{k-1}) / p_k(x_k)]
          = p_A(x_0) prod_{k=1..K} f_k(x_k) / f_k(x_{k-1}),

    (every Z_k cancels), with E_q[w] = p_ann(v). Regrouping by state,

        ln w = ln f_K(v) - ln Z_A + sum_{k=0..K-1} [ln f_k(x_k) - ln f_{k+1}(x_k)],

    i.e. one T_K transition from v, then reverse AIS from t_{K-1} down to t_0. Note the
    f_k(x_k) / f_k(x_{k-1}) pairing: the index typo in the paper's weight formula is
    discussed by Upadhya & Sastry (2015, Eq. 10); tests check E[w] = p_ann(v) exactly
    on enumerable models. logmeanexp over ``repeats`` chains per example is then a
    stochastic lower bound on ln p_ann(v).

    Parameters
    ----------
    data : examples (path or array), one estimate per row.
    repeats : reverse chains per example.
    base_data : examples whose base rate defines the base model (default: ``data``).
    """
    beta, repeats, steps, schedule, sweeps = _check_common(beta, repeats, steps, schedule, sweeps)
    examples, _ = resolve_data(data, model)
    if examples is None:
        raise InvalidOptionError("RAISE needs data: the examples whose log-likelihood is estimated.")
    base_arr, _ = resolve_data(base_data, model) if base_data is not None else (examples, None)
    entropy = resolve_seed(seed)
    a_base, base_note = base_model(model, beta, base_arr)
    path = AnnealingPath(model, beta, a_base)
    ts = make_schedule(schedule, steps)
    n = examples.shape[0]
    v0 = np.repeat(examples, repeats, axis=0)
    logr, _ = run_annealing(AnnealJob(path, ts[::-1].copy(), sweeps, entropy, v0.shape[0], "raise", v0,
                                      first_sweep=True), progress)
    logw = (path.log_f(v0, 1.0) - path.log_z_base + logr).reshape(n, repeats)
    log_p = np.array([log_mean_exp(row) for row in logw])
    r = np.exp(logw - logw.max(axis=1, keepdims=True))
    mean = r.mean(axis=1)
    stderr = r.std(axis=1, ddof=1) / (math.sqrt(repeats) * mean) if repeats > 1 else np.full(n, np.inf)
    ess = r.sum(axis=1) ** 2 / (r * r).sum(axis=1)
    return RaiseResult(log_p, stderr, ess, path.log_z_base,
                       {"repeats": repeats, "steps": steps, "schedule": schedule, "sweeps": sweeps,
                        "base_model": base_note, "seed": entropy})
