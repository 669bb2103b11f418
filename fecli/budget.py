"""Fit sampling methods into a time budget (``fecli compare --budget``).

Each sampling method names in the registry the option its cost grows with linearly
(``steps`` or ``samples``). A pilot run at 1/20 of the default amount measures the
cost per unit on this machine and this model; the final run uses what fits the rest
of the method's share. Fixed costs (compilation, burn-in) are charged to the pilot's
per-unit cost, so the estimate errs towards staying inside the budget.
"""

from __future__ import annotations

import math
import time
from typing import Any

from .errors import InvalidOptionError
from .estimators import get_method
from .result import Result

PILOT_FRACTION = 20


def budgeted_methods(names: tuple[str, ...]) -> list[str]:
    """The methods among ``names`` that a time budget applies to."""
    return [n for n in names if get_method(n).budget_option is not None]


def check_budget(seconds: float | None, names: tuple[str, ...], given: dict[str, Any]) -> None:
    if seconds is None:
        return
    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidOptionError(f"--budget must be a number of seconds > 0, got {seconds:g}.")
    knobs = {get_method(n).budget_option for n in budgeted_methods(names)}
    clash = sorted(k for k in knobs if given.get(k) is not None)
    if clash:
        names_ = ", ".join("--" + k for k in clash)
        raise InvalidOptionError(f"{names_} and --budget both set how much to sample; give one of them.")


def run_within(model: Any, name: str, seconds: float, options: dict[str, Any]) -> Result:
    """Run sampling method ``name`` so that pilot + final take about ``seconds``."""
    method = get_method(name)
    knob = method.budget_option
    func = method.load()
    pilot_amount = max(method.budget_minimum, method.defaults()[knob] // PILOT_FRACTION)
    start = time.perf_counter()
    pilot = func(model, **{**options, knob: pilot_amount})
    pilot_seconds = time.perf_counter() - start
    per_unit = pilot_seconds / pilot_amount
    amount = int((seconds - pilot_seconds) / per_unit) if per_unit > 0 else pilot_amount
    if amount <= pilot_amount:
        result = pilot
        result.warnings.append(
            f"the budget share of {seconds:.3g} s allowed only the pilot run ({knob}={pilot_amount}, "
            f"{pilot_seconds:.3g} s); give a larger --budget for a better estimate."
        )
    else:
        result = func(model, **{**options, knob: amount})
    result.params["budget_s"] = seconds
    result.diagnostics["budget"] = {
        "share_s": seconds, "option": knob, "pilot_amount": pilot_amount,
        "pilot_s": pilot_seconds, "chosen_amount": result.params.get(knob, amount),
    }
    result.wall_time_s += pilot_seconds if result is not pilot else 0.0
    return result
