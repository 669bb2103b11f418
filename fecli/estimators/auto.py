"""``auto``: exact when feasible, otherwise two independent routes run until they agree.

Where the smaller layer can be enumerated within the time allowed, the answer is exact.
Otherwise fecli runs two sampling routes that fail in different ways (forward AIS from a
base, a stochastic lower bound; and parallel tempering), each
checked against the rigorous bracket of :mod:`fecli.bounds`, and doubles their effort (their
budget option, e.g. AIS steps) until

    |ln Z_A - ln Z_B| <= target_error  and  both 95% half-widths <= target_error,

or the next round would exceed ``budget`` seconds. When the model file holds training snapshots
(``train-rbm --snapshots N``), ln Z along training (``trajectory``) is a third route. The first round runs each route at a quarter
of its default effort, so that a large model gets several rounds within the budget; later rounds
rerun only the routes that are imprecise or disagree. The value is the inverse-variance mean of
the routes and the 95% interval the union of each route's value +- 1.96 standard errors.

Without ``data``, tempering runs first and AIS takes as its base model the base rate of the
tempered target samples (a base fitted from tempered samples: far closer to a trained model
than the uniform one, while AIS stays unbiased whatever its base). When the routes still
disagree, the interval spans both and a warning names both numbers: an honest wide interval,
not a precise one.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

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
#: Exact enumeration is used when its expected time is below this share of the budget.
EXACT_SHARE = 0.25


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise InvalidOptionError(f"{name} must be a number > 0, got {value!r}.")
    return float(value)


def _route_names(model: RBM) -> list[str]:
    """The first two registered routes that support the model's unit types, and ln Z along
    training as a third when the file holds snapshots."""
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
    data : training examples; the sampling routes' base model becomes their base rate.
    seed : same seed, same numbers.

    Returns a Result with method 'auto': kind 'exact' when enumeration was affordable, else
    'estimate', with ``diagnostics['routes']`` listing every run (method, options, value, interval).
    """
    from ..api import estimate
    from . import get_method

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
    round_ = 0
    while True:
        for index, name in enumerate(routes):
            if name == "ais" and data is None and "pt" in latest and latest["pt"].states is not None:
                options[name]["data"] = latest["pt"].states  # a base fitted from tempered samples
            if name in latest and _precise(latest[name], target_error) and _spread(latest) <= target_error:
                continue
            option = get_method(name).budget_option
            effort = max(get_method(name).budget_minimum, _default(name, option) * 2 ** level[name] // 4)
            began = time.perf_counter()
            result = estimate(model, name, seed=_seed(entropy, round_, index), progress=progress,
                              **{option: effort}, **options[name])
            seconds[name] = time.perf_counter() - began
            latest[name] = result
            level[name] += 1
            history.append({"round": round_, "method": name, option: effort, "log_z": result.log_z,
                            "stderr": result.stderr, "ci_low": result.ci_low, "ci_high": result.ci_high,
                            "seconds": seconds[name], "warnings": len(result.warnings)})
        results = [latest[name] for name in routes]
        agreed = _spread(latest) <= target_error and all(_precise(r, target_error) for r in results)
        next_round = sum(2.0 * seconds[name] for name in routes
                         if not (_precise(latest[name], target_error) and _spread(latest) <= target_error))
        if agreed or time.perf_counter() - start + next_round > budget:
            break
        round_ += 1
    return _combine(model, beta, results, history, agreed, target_error, budget, entropy, start)


def _precise(result: Result, target_error: float) -> bool:
    """A route is precise when its 95% interval is two-sided and at most target_error on each side."""
    return (result.stderr is not None and Z95 * result.stderr <= target_error
            and _half_width(result) <= 2 * target_error)


def _spread(latest: dict[str, Result]) -> float:
    values = [r.log_z for r in latest.values()]
    return max(values) - min(values) if len(values) > 1 else math.inf


#: Route warnings that stand even when the routes agree: a value beyond a rigorous bound, and a
#: run that sat in one of several mean-field modes (the AIS route's base comes from pt's samples,
#: so the two routes can miss the same mode together). Matched on the wording of fecli.bounds.
STANDING_WARNINGS = ("rigorous", "mean-field modes")


def _stands_despite_agreement(text: str) -> bool:
    """Whether a route's warning still means something once independent routes agree.

    Agreement within target_error, each route precise to it, answers what a route's own
    reliability warnings (no round trip of pt's ladders, ladders or replicates that disagree,
    a lag) say might be wrong: an error bar that is too small. Those are kept in
    diagnostics['route_warnings']; warning about them anyway would warn on every large model
    and so mean nothing."""
    return any(key in text for key in STANDING_WARNINGS)


def _combine(model: RBM, beta: float, results: list[Result], history: list, agreed: bool,
             target_error: float, budget: float, entropy: int, start: float) -> Result:
    """Inverse-variance mean of the routes; the interval is the union of each route's value
    +- 1.96 stderr (a one-sided low-ESS interval counts by its standard error, the disagreement
    between routes by the union)."""
    se = np.array([r.stderr if r.stderr is not None and math.isfinite(r.stderr) else math.inf for r in results])
    values = np.array([r.log_z for r in results])
    weights = 1.0 / np.maximum(se, 1e-12) ** 2
    log_z = float(values @ weights / weights.sum()) if weights.sum() > 0 else float(values.mean())
    ci_low = float(min(np.min(values - Z95 * se), log_z))
    ci_high = float(max(np.max(values + Z95 * se), log_z))
    spread = float(values.max() - values.min())
    warnings = []
    names = " and ".join(f"{r.method} {r.log_z:.4f} +- {r.stderr:.3g}" for r in results)
    if spread > target_error:
        warnings.append(f"the two routes disagree by {spread:.3g} nats (> --target-error {target_error:g}) after "
                        f"{time.perf_counter() - start:.0f} s of the {budget:g} s budget: {names}; the interval spans "
                        "both. Give a larger --budget, or --data for a better base model.")
    elif not agreed:
        warnings.append(f"the routes agree ({names}) but are not yet within {target_error:g} nats each; "
                        "the interval spans both. Give a larger --budget.")
    route_warnings = [f"{r.method}: {text}" for r in results for text in r.warnings]
    warnings.extend(text for text in route_warnings if not agreed or _stands_despite_agreement(text))
    return Result(
        model=model.name, method="auto", beta=beta, log_z=log_z, kind="estimate",
        n_visible=model.n_visible, n_hidden=model.n_hidden,
        stderr=(ci_high - ci_low) / (2 * Z95), ci_low=ci_low, ci_high=ci_high,
        wall_time_s=time.perf_counter() - start,
        params={"target_error": target_error, "budget": budget, "seed": entropy},
        diagnostics={"routes": history, "agreed": agreed,
                     "spread": spread, "bracket": results[0].diagnostics.get("bracket"),
                     "route_warnings": route_warnings},
        warnings=warnings,
    )
