"""``auto``: exact when feasible, otherwise independent routes run until they agree.

Where the smaller layer can be enumerated within the time allowed, the answer is exact.
Otherwise, for 0/1 models, three routes run (other unit types: the first two registered routes
that take them):

- ``pt``: parallel tempering with BAR along its ladder;
- ``ais``: forward AIS (a stochastic lower bound) whose base model is the base rate of pt's
  target samples, with or without ``data`` (a base fitted from tempered samples: on a trained
  784 x 500 model the data's base rate gave ESS 1 of 100 and 6 nats low at 3,000 steps, pt's
  samples ESS 71 and 0.1 nats; AIS stays unbiased whatever its base);
- ``reverse-ais``: reverse AIS from pt's samples down to the same base (an approximate upper
  bound: together with forward AIS, the sandwich of Grosse, Ghahramani & Adams 2015);

each checked against the rigorous bracket of :mod:`fecli.bounds`. When the model file holds
training snapshots (``train-rbm --snapshots N``), ln Z along training (``trajectory``) joins
them. The first round runs each route at a quarter of its default effort, so that a large model
gets several rounds within the budget. A route is *trusted* when its 95% interval is two-sided
and at most target_error wide on each side, and it has no warning that agreement cannot answer
(a value beyond a rigorous bound, a run that sat in one of several mean-field modes). The run
stops when at least two trusted routes agree within ``target_error``, or when the next round
(twice the last one's time for each route rerun) would pass ``budget`` seconds. Each round reruns
the untrusted routes with twice the effort (all of them when all are trusted but disagree), and
the AIS routes whenever pt is rerun; pt (0/1 models) is rerun by extending its
ladders, which gives the numbers of one longer run without repeating its burn-in and rounds.

Forward AIS and pt can be wrong together: AIS's base, the base rate of pt's samples, is a
product of per-unit rates, which gives a mode that differs from the majority's in many units
almost no weight, and pt converges to such a mode from below. On a block composite of the trust
issue's cases (16 two-mode blocks, 280 x 88) both were 0.7-0.8 nats low and agreed, with no
warning. Missing mass shows in what the two sample: AIS's final states, weighted by its importance
weights, and pt's samples of the target are both draws from the target, so their means of -F(v)
must agree within their standard errors (pt's from the spread of its ladders' means). There they
differed by 3-6 nats, 5-12 standard errors (easy models: under 2). A forward AIS precise enough to
agree that differs by more than :data:`MISMATCH_Z` standard errors does not count as agreeing
with pt (it may still agree with reverse AIS, the other side of the sandwich), both are rerun,
and it is left out of the value while pt is trusted.

The value is the inverse-variance mean of the agreeing routes, the 95% interval the union of
their value +- 1.96 standard errors. A trusted route outside the agreeing set whose own interval
misses theirs contradicts them, and is warned about; an untrusted one (pt whose ladders made no
round trip sat 23 nats low on that 784 x 500 model while both AIS routes agreed within 0.1) is
named in the diagnostics. Once routes agree, the routes' own warnings move to
``diagnostics['route_warnings']`` (the agreeing routes have none that agreement cannot answer:
those never count as agreeing). Without agreement, the interval spans every route and a warning
names every value: an honest wide interval, not a precise one.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..bounds import Bracket, check_result
from ..errors import InvalidOptionError
from ..model import RBM
from ..result import Result
from ._sampling_common import Z95, resolve_seed
from . import METHODS
from .exact import check_beta

#: Library defaults, declared with the options in the registry (fecli/estimators/__init__.py).
DEFAULT_TARGET_ERROR, DEFAULT_BUDGET = (METHODS["auto"].defaults()[k] for k in ("target_error", "budget"))
#: Routes in order of preference; the first two that are registered run.
ROUTES = ("pt", "ais", "ti", "reverse-ais")
#: 0/1 models: pt, then forward AIS from the base rate of pt's samples and reverse AIS from them.
BERNOULLI_ROUTES = ("pt", "ais", "reverse-ais")
#: Exact enumeration is used when its expected time is below this share of the budget.
EXACT_SHARE = 0.25
#: Forward AIS whose weighted final states differ from pt's samples by more than this many standard
#: errors in mean -F(v) missed a mode pt visits (module docstring; easy models: under 2, the hard
#: composite: 5-12).
MISMATCH_Z = 4.0
#: The words of that warning, by which agreement recognises it.
MISSED_MODE = "missed a mode that pt's chains visit"


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise InvalidOptionError(f"{name} must be a number > 0, got {value!r}.")
    return float(value)


def _route_names(model: RBM) -> list[str]:
    """BERNOULLI_ROUTES for 0/1 models, else the first two registered routes that support the
    model's unit types; and ln Z along training when the file holds snapshots."""
    if model.is_bernoulli:
        routes = list(BERNOULLI_ROUTES)
    else:
        routes = [name for name in ROUTES if name in METHODS and METHODS[name].supports(model)][:2]
    trajectory = METHODS["trajectory"]
    if trajectory.supports(model) and trajectory.feasibility(model).feasible:
        routes.append("trajectory")
    return routes


def _default(method: str, option: str) -> int:
    return int(METHODS[method].defaults()[option])


def _seed(entropy: int, round_: int, route: int) -> int:
    """A seed below 2^53 for one route in one round, derived from the run's entropy."""
    words = np.random.SeedSequence(entropy, spawn_key=(7, round_, route)).generate_state(2, dtype=np.uint32)
    return int(words[0]) << 21 ^ int(words[1])


def _half_width(result: Result) -> float:
    if result.ci_low is None or result.ci_high is None:
        return math.inf
    return max(result.log_z - result.ci_low, result.ci_high - result.log_z)


def _exact_if_feasible(model: RBM, beta: float, budget: float) -> Result | None:
    from .exact import estimate_exact, exact_feasibility

    feasibility = exact_feasibility(model)
    seconds = feasibility.expected_seconds
    if not feasibility.feasible or seconds is None or seconds > EXACT_SHARE * budget:
        return None
    from .exact import exact_cost

    return estimate_exact(model, beta=beta, max_units=max(exact_cost(model)[0], 1))


def estimate_auto(model: RBM, *, beta: float = 1.0, target_error: float = DEFAULT_TARGET_ERROR,
                  budget: float = DEFAULT_BUDGET, data: Any = None, seed: int | None = None,
                  progress=None) -> Result:
    """ln Z(beta) by the most trustworthy route within ``budget`` seconds (module docstring).

    Parameters
    ----------
    target_error : nats; the routes must agree within it, and each be that precise (95%).
    budget : seconds of wall time to spend at most (the last round is not started when its
        expected time, twice the previous round's, would exceed what is left).
    data : training examples. On 0/1 models their rows join the rigorous bracket (ln Z is at least
        ln sum exp(-F(v)) over them) and nothing else: pt keeps its uniform base, which covers every
        mode. On an RBM trained by PCD on real MNIST digits (784 x 500), pt from the data's base
        rate sat 9 nats low and the routes had not agreed after 120 s; from the uniform base auto
        was 0.05 nats off in 27 s. Other unit types: the routes' base model is fitted to them.
    seed : same seed, same numbers.

    Returns a Result with method 'auto': kind 'exact' when enumeration was affordable, else
    'estimate', with ``diagnostics['routes']`` listing every run (method, options, value, interval).
    """
    start = time.perf_counter()
    beta = check_beta(beta)
    target_error = _check_positive("target_error", target_error)
    budget = _check_positive("budget", budget)
    exact = _exact_if_feasible(model, beta, budget)
    if exact is not None:
        exact.method = "auto"
        exact.diagnostics["routes"] = ["exact"]
        exact.params.update({"target_error": target_error, "budget": budget})
        return exact

    entropy = resolve_seed(seed)
    routes = _route_names(model)
    options = {name: {"beta": beta, **({"data": data} if data is not None else {})} for name in routes}
    level = {name: 0 for name in routes}
    seconds = {name: 0.0 for name in routes}
    latest: dict[str, Result] = {}
    history: list[dict[str, Any]] = []
    rerun = set(routes)
    runs: dict[str, Any] = {}  # pt's ladders, kept so that a doubled effort extends them
    round_ = 0
    while True:
        for index, name in enumerate(routes):
            if name not in rerun:
                continue
            option = _budget_option(name)
            effort = max(_budget_minimum(name), _default(name, option) * 2 ** level[name] // 4)
            began = time.perf_counter()
            result = _run_route(model, name, latest, options[name], effort, _seed(entropy, round_, index), progress,
                                runs)
            seconds[name] = time.perf_counter() - began
            latest[name] = result
            level[name] += 1
            history.append({"round": round_, "method": name, option: effort, "log_z": result.log_z,
                            "stderr": result.stderr, "ci_low": result.ci_low, "ci_high": result.ci_high,
                            "seconds": seconds[name], "warnings": len(result.warnings)})
        results = [latest[name] for name in routes]
        _check_forward_ais_against_pt(model, latest, target_error)
        for entry in history:
            if entry["round"] == round_:
                entry["warnings"] = len(latest[entry["method"]].warnings)
        agreeing = _agreeing(results, target_error)
        rerun = _to_rerun(routes, latest, target_error)
        next_round = sum(2.0 * seconds[name] for name in rerun)
        if agreeing or time.perf_counter() - start + next_round > budget:
            break
        round_ += 1
    return _combine(model, beta, results, history, agreeing, target_error, budget, entropy, start)


#: Routes that anneal from a base fitted to pt's target samples, and reverse AIS from those samples.
TEMPERED_ROUTES = ("ais", "reverse-ais")


def _budget_option(name: str) -> str:
    from . import get_method

    return get_method(name).budget_option


def _budget_minimum(name: str) -> int:
    from . import get_method

    return get_method(name).budget_minimum


def _run_route(model: RBM, name: str, latest: dict[str, Result], options: dict, effort: int, seed: int,
               progress, runs: dict[str, Any] | None = None) -> Result:
    """One run of route ``name`` at ``effort`` (its budget option). Forward AIS takes as its base the
    base rate of pt's latest target samples (with or without data: on a trained 784 x 500 model the
    data's base rate gave ESS 1 of 100 at 3,000 steps and 6 nats low, pt's 71 and 0.1 nats), and
    reverse AIS starts from those samples and anneals to the same base. pt on 0/1 models extends
    the ladders of its first round (``runs``) rather than starting new ones: the same numbers as one
    run of that length, without repeating the burn-in and the rounds already recorded."""
    from ..api import check_against_bracket, estimate

    option = _budget_option(name)
    if name == "pt" and model.is_bernoulli and runs is not None:
        from .pt import TemperingRun

        if "pt" not in runs:  # from the uniform base, whatever the data (estimate_auto's ``data``)
            runs["pt"] = TemperingRun(model, seed=seed, **{k: v for k, v in options.items() if k != "data"})
        return check_against_bracket(model, runs["pt"].result(effort, progress), options.get("data"))
    tempered = latest["pt"].states if "pt" in latest else None
    if name in TEMPERED_ROUTES and tempered is not None and model.is_bernoulli:
        if name == "ais":
            return estimate(model, "ais", seed=seed, progress=progress, **{**options, option: effort, "data": tempered})
        from .ais import reverse_ais_from_states
        from .pt import state_ladders

        result = reverse_ais_from_states(model, tempered, groups=state_ladders(latest["pt"]),
                                         note="pt's samples of the target", beta=options["beta"], steps=effort,
                                         data=tempered, seed=seed, progress=progress)
        return check_against_bracket(model, result, options.get("data"))
    return estimate(model, name, seed=seed, progress=progress, **{option: effort}, **options)


def _trusted(result: Result, target_error: float) -> bool:
    """Precise to target_error, with no warning that agreement cannot answer, and (pt) with round
    trips in at least half of its ladders: on an ordered 32 x 32 Ising torus pt at 1,000 samples
    (no round trip) and reverse AIS from its samples agreed 0.3 nats low; at 4,000 samples, with
    3-10 round trips per ladder, pt was 0.09 low."""
    trips = result.diagnostics.get("round_trips_per_ladder")
    stuck = trips is not None and 2 * sum(1 for t in trips if t == 0) > len(trips)
    return (_precise(result, target_error) and not stuck
            and not any(_stands_despite_agreement(w) for w in result.warnings))


def _agreeing(results: list[Result], target_error: float) -> list[Result]:
    """The largest set (at least two) of trusted routes whose values lie within target_error of each
    other (the most precise such set on ties), never pt together with a forward AIS that samples a
    different distribution (:func:`_check_forward_ais_against_pt`); [] when there is none."""
    from itertools import combinations

    trusted = sorted((r for r in results if _trusted(r, target_error)), key=lambda r: r.log_z)
    best: list[Result] = []
    for size in range(2, len(trusted) + 1):
        for group in map(list, combinations(trusted, size)):
            if (group[-1].log_z - group[0].log_z <= target_error and not _pt_with_mismatched_ais(group)
                    and (len(group), _precision(group)) > (len(best), _precision(best))):
                best = group
    return best


def _mismatched(result: Result) -> bool:
    return any(MISSED_MODE in text for text in result.warnings)


def _pt_with_mismatched_ais(group: list[Result]) -> bool:
    methods = {r.method for r in group}
    return "pt" in methods and any(r.method == "ais" and _mismatched(r) for r in group)


def forward_ais_mismatch(model: RBM, pt_result: Result, ais_result: Result) -> tuple[float, float]:
    """How far forward AIS's final states and pt's samples of the target are from one sample.

    Both estimate E[-F_beta(v)] under the target (nats): AIS by its final states weighted by the
    normalised importance weights w_i (a self-normalised estimate, standard error by the delta
    method, sqrt(sum_i w_i^2 (x_i - mean)^2)); pt by the mean over its kept samples (standard
    error from the spread of its independent ladders' means, since samples within a ladder are
    correlated). Returns (AIS's mean - pt's mean, standard error of that difference).
    """
    from .pt import state_ladders

    beta = pt_result.beta
    x_pt = -model.free_energy(np.asarray(pt_result.states, dtype=np.float64), beta)
    ladder = state_ladders(pt_result)
    means = np.array([x_pt[ladder == r].mean() for r in np.unique(ladder)])
    se_pt = float(means.std(ddof=1) / math.sqrt(means.size)) if means.size > 2 else float(
        x_pt.std(ddof=1) / math.sqrt(x_pt.size))
    x_ais = -model.free_energy(np.asarray(ais_result.states, dtype=np.float64), beta)
    log_w = np.asarray(ais_result.diagnostics["log_weights"], dtype=np.float64)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    mean_ais = float(w @ x_ais)
    se_ais = float(np.sqrt(np.sum(w ** 2 * (x_ais - mean_ais) ** 2)))
    return mean_ais - float(means.mean()), math.hypot(se_ais, se_pt)


def _check_forward_ais_against_pt(model: RBM, latest: dict[str, Result], target_error: float) -> None:
    """Warn on the latest forward AIS (0/1 models) when it is precise enough to agree but its final
    states and pt's samples differ by more than MISMATCH_Z standard errors (module docstring)."""
    ais, pt = latest.get("ais"), latest.get("pt")
    if ais is None or pt is None or ais.states is None or pt.states is None or "log_weights" not in ais.diagnostics:
        return
    ais.warnings = [text for text in ais.warnings if MISSED_MODE not in text]
    if not _precise(ais, target_error):
        return
    difference, se = forward_ais_mismatch(model, pt, ais)
    ais.diagnostics["mean_neg_free_energy_minus_pt"] = {"difference": difference, "stderr": se}
    if abs(difference) > MISMATCH_Z * se:
        ais.warnings.append(
            f"forward AIS and pt sample different distributions, so one {MISSED_MODE} or pt has not "
            f"equilibrated: the mean of -F(v) over AIS's weighted final states and over pt's samples of the target "
            f"differ by {difference:.3g} +- {se:.2g} nats ({abs(difference) / se:.1f} standard errors). AIS's base "
            "(the base rate of pt's samples) gives a mode that differs from the majority in many units almost no "
            "weight, and then AIS is low with a small error bar; it does not count as agreeing with pt.")


def _precision(group: list[Result]) -> float:
    return sum(1.0 / max(r.stderr, 1e-12) ** 2 for r in group)


def _to_rerun(routes: list[str], latest: dict[str, Result], target_error: float) -> set[str]:
    """Routes to run again, with twice the effort: the untrusted ones, or all when every route is
    trusted but they disagree; pt and forward AIS when they sample different distributions. Routes
    built on pt's samples are rerun whenever pt is."""
    again = {name for name in routes if not _trusted(latest[name], target_error)}
    if not again:
        again = set(routes)
    if "ais" in latest and _mismatched(latest["ais"]):
        again |= {"pt", "ais"}
    if "pt" in again:
        again |= {name for name in TEMPERED_ROUTES if name in routes}
    return again


def _precise(result: Result, target_error: float) -> bool:
    """A route is precise when its 95% interval is two-sided and at most target_error on each side."""
    return (result.stderr is not None and Z95 * result.stderr <= target_error
            and _half_width(result) <= 2 * target_error)


#: Route warnings that agreement does not answer: a value beyond a rigorous bound, and a run that
#: sat in one of several mean-field modes (the AIS routes' base comes from pt's samples, so routes
#: can miss the same mode together). A route with one never counts as agreeing. Matched on the
#: wording of fecli.bounds.
STANDING_WARNINGS = ("rigorous", "mean-field modes")


def _stands_despite_agreement(text: str) -> bool:
    """Whether a route's warning still means something once independent routes agree.

    Agreement within target_error, each route precise to it, answers what a route's own
    reliability warnings (no round trip of pt's ladders, ladders or replicates that disagree,
    a lag) say might be wrong: an error bar that is too small. Those are kept in
    diagnostics['route_warnings']; warning about them anyway would warn on every large model
    and so mean nothing. A route with a warning that stands never counts as agreeing."""
    return any(key in text for key in STANDING_WARNINGS)


def _unagreed_pool(results: list[Result], target_error: float) -> list[Result]:
    """The routes whose values make the answer when none agree: those without a standing warning,
    less a forward AIS that samples another distribution than a trusted pt (its base missed a mode
    pt visits: on the hard composite it stayed 0.7 nats low while pt converged); all, when that
    leaves none."""
    pool = [r for r in results if not any(map(_stands_despite_agreement, r.warnings))]
    pt_trusted = any(r.method == "pt" and _trusted(r, target_error) for r in results)
    if pt_trusted:
        pool = [r for r in pool if not _mismatched(r)]
    return pool or results


def _combine(model: RBM, beta: float, results: list[Result], history: list, agreeing: list[Result],
             target_error: float, budget: float, entropy: int, start: float) -> Result:
    """The value and interval from the routes.

    Agreed (``agreeing``: at least two trusted routes within target_error): their inverse-variance
    mean, the interval the union of their value +- 1.96 stderr. A route outside the agreeing set that
    is itself trusted and whose own 95% interval misses that interval contradicts it: warned. Any
    other (imprecise, or unreliable by its own warnings: pt's ladders that made no round trip on a
    trained 784 x 500 model sat 23 nats low while both AIS routes agreed within 0.1) is named in the
    diagnostics only.

    Not agreed: the inverse-variance mean of :func:`_unagreed_pool`, the interval the union over
    every route, and a warning naming every value.

    Either way the answer is then kept inside the tightest rigorous bracket of the routes
    (:func:`_tightest_bracket`, :func:`fecli.bounds.check_result`).
    """
    agreed = bool(agreeing)
    pool = agreeing or _unagreed_pool(results, target_error)
    se = np.array([r.stderr if r.stderr is not None and math.isfinite(r.stderr) else math.inf for r in pool])
    values = np.array([r.log_z for r in pool])
    weights = 1.0 / np.maximum(se, 1e-12) ** 2
    log_z = float(values @ weights / weights.sum()) if weights.sum() > 0 else float(values.mean())
    covered = agreeing or results
    low = np.array([r.log_z - Z95 * (r.stderr if r.stderr is not None else math.inf) for r in covered])
    high = np.array([r.log_z + Z95 * (r.stderr if r.stderr is not None else math.inf) for r in covered])
    ci_low, ci_high = float(min(low.min(), log_z)), float(max(high.max(), log_z))
    all_values = np.array([r.log_z for r in results])
    spread = float(all_values.max() - all_values.min())
    warnings = []
    names = ", ".join(f"{r.method} {r.log_z:.4f} +- {r.stderr:.3g}" for r in results)
    if agreed:
        outside = [r for r in results if all(r is not a for a in agreeing)]
        conflicting = [r for r in outside if _trusted(r, target_error) and not _mismatched(r)
                       and (r.ci_high < ci_low or r.ci_low > ci_high)]
        if conflicting:
            warnings.append(f"{', '.join(r.method for r in agreeing)} agree within {target_error:g} nats, but the "
                            f"95% interval of {', '.join(r.method for r in conflicting)}, a precise route, lies "
                            f"outside theirs ({names}); the value comes from the agreeing routes. Check with a "
                            "larger --budget.")
    elif spread > target_error:
        warnings.append(f"the routes disagree by {spread:.3g} nats (> --target-error {target_error:g}) after "
                        f"{time.perf_counter() - start:.0f} s of the {budget:g} s budget: {names}; the interval spans "
                        "them all. Give a larger --budget"
                        + ("." if model.is_bernoulli else ", or --data for a better base model."))
    else:
        warnings.append(f"the routes agree ({names}) but are not yet within {target_error:g} nats each, or carry "
                        "warnings; the interval spans them all. Give a larger --budget.")
    route_warnings = [f"{r.method}: {text}" for r in results for text in r.warnings]
    if not agreed:
        warnings.extend(route_warnings)
    result = Result(
        model=model.name, method="auto", beta=beta, log_z=log_z, kind="estimate",
        n_visible=model.n_visible, n_hidden=model.n_hidden,
        stderr=(ci_high - ci_low) / (2 * Z95), ci_low=ci_low, ci_high=ci_high,
        wall_time_s=time.perf_counter() - start,
        params={"target_error": target_error, "budget": budget, "seed": entropy},
        diagnostics={"routes": history, "agreed": agreed, "agreeing_routes": [r.method for r in agreeing],
                     "spread": spread, "route_warnings": route_warnings},
        warnings=warnings,
    )
    bracket = _tightest_bracket(results)
    if bracket is not None:
        check_result(result, bracket)
        result.stderr = (result.ci_high - result.ci_low) / (2 * Z95)
    return result


def _tightest_bracket(results: list[Result]) -> Bracket | None:
    """The highest rigorous lower bound and the lowest upper bound among the routes' brackets (each
    route's includes the states it saw: on a CD-1-trained 784 x 500 model the states pt visited
    put ln Z 5 nats above where the routes' values and an unclipped interval of auto reached)."""
    brackets = [Bracket(**r.diagnostics["bracket"]) for r in results if r.diagnostics.get("bracket")]
    if not brackets:
        return None
    lower = max(brackets, key=lambda b: b.lower)
    upper = min(brackets, key=lambda b: b.upper)
    return Bracket(lower.lower, upper.upper, lower.lower_source, upper.upper_source)
