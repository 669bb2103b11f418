"""Side-by-side comparison of estimators on one model: the reference, differences and a verdict.

The reference is exact ln Z when it was computed; otherwise auto's value when its routes
agreed; otherwise the tightest sandwich between the largest lower bound and the smallest upper
bound among the results (stochastic bounds included, each taken at its value). Differences are
``log_z - reference`` (for a sandwich, to its midpoint).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from typing import Any

from .result import FIELDS, Result

LOWER = ("lower_bound", "stochastic_lower_bound")
UPPER = ("upper_bound", "stochastic_upper_bound")
#: Without an interval, a row "agrees" with the reference within this many standard errors.
AGREEMENT_SIGMAS = 3.0


@dataclass
class Reference:
    """What differences are measured against."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None


@dataclass
class Comparison:
    model: str
    results: list[Result]
    reference: Reference
    differences: dict[int, float | None] = field(default_factory=dict)
    verdict: list[str] = field(default_factory=list)
    #: What the run policy left out (e.g. exact on a model too large to enumerate).
    notes: list[str] = field(default_factory=list)


def label(result: Result) -> str:
    """Method name, with the order for a series (e.g. 'cumulant (order 2)')."""
    order = result.params.get("order")
    return f"{result.method} (order {order})" if order is not None else result.method


def reference_of(results: list[Result]) -> Reference:
    exact = [r for r in results if r.kind == "exact"]
    if exact:
        return Reference("exact", exact[0].log_z, exact[0].log_z, exact[0].log_z)
    auto = [r for r in results if r.method == "auto" and r.diagnostics.get("agreed")]
    if auto:
        r = auto[0]
        routes = ", ".join(r.diagnostics.get("agreeing_routes") or ())
        return Reference(f"auto ({routes}) [{r.ci_low:.4f}, {r.ci_high:.4f}]", r.log_z, r.ci_low, r.ci_high)
    lows = [r.log_z for r in results if r.kind in LOWER and math.isfinite(r.log_z)]
    highs = [r.log_z for r in results if r.kind in UPPER and math.isfinite(r.log_z)]
    if lows and highs:
        low, high = max(lows), min(highs)
        return Reference(f"sandwich [{low:.4f}, {high:.4f}]", 0.5 * (low + high), low, high)
    return Reference("none (no exact value or sandwich)", None)


def compare_results(model: str, results: list[Result]) -> Comparison:
    """Differences to the reference and a short verdict for ``results`` of one model."""
    reference = reference_of(results)
    comparison = Comparison(model, results, reference)
    for i, r in enumerate(results):
        comparison.differences[i] = None if reference.value is None else r.log_z - reference.value
    comparison.verdict = verdict(comparison)
    return comparison


def _agrees(result: Result, diff: float) -> bool:
    """Inside the row's own 95% interval when it reports one (one-sided ones included),
    otherwise within AGREEMENT_SIGMAS standard errors."""
    if result.ci_low is not None or result.ci_high is not None:
        truth = result.log_z - diff
        low = -math.inf if result.ci_low is None else result.ci_low
        high = math.inf if result.ci_high is None else result.ci_high
        return low - 1e-9 <= truth <= high + 1e-9
    tolerance = max(AGREEMENT_SIGMAS * (result.stderr or 0.0), 1e-6)
    return abs(diff) <= tolerance


def _one_sided(result: Result) -> bool:
    return any(x is not None and math.isinf(x) for x in (result.ci_low, result.ci_high))


def _direction(diff: float) -> str:
    return "above" if diff > 0 else "below"


def verdict(c: Comparison) -> list[str]:
    """Sentences a person can act on: who agrees, which bounds hold, who is furthest off."""
    ref = c.reference
    if ref.value is None:
        return ["No exact value or sandwich to compare against; compare the error bars."]
    others = [(r, c.differences[i]) for i, r in enumerate(c.results) if r.kind != "exact"]
    if ref.label == "exact":
        lines = _error_bar_verdict(others) + _bound_verdict(others)
    elif ref.label.startswith("auto"):
        routes = ref.label[len("auto ("):ref.label.index(")")]
        lines = [f"auto's routes agree ({routes}): ln Z in [{ref.low:.4f}, {ref.high:.4f}] "
                 f"(width {ref.high - ref.low:.3g} nats)."]
    else:
        lines = [f"ln Z lies in the {ref.label} (gap {ref.high - ref.low:.3g} nats)."]
    return lines + _furthest_approximation(others, "exact" if ref.label == "exact" else
                                           "auto" if ref.label.startswith("auto") else "the sandwich midpoint")


def _error_bar_verdict(others: list[tuple[Result, float]]) -> list[str]:
    """Rows with an error bar against exact ln Z: one line for those that agree, one per row that does not."""
    with_error = [(r, d) for r, d in others if r.stderr is not None]
    agree = [label(r) + (" (one-sided interval: low ESS)" if _one_sided(r) else "")
             for r, d in with_error if _agrees(r, d)]
    lines = [f"Exact ln Z lies within the error bars of: {', '.join(agree)}."] if agree else []
    for r, d in with_error:
        if not _agrees(r, d):
            sigmas = f" ({abs(d) / r.stderr:.1f} standard errors)" if r.stderr else ""
            lines.append(f"{label(r)} is {abs(d):.3g} nats {_direction(d)} exact{sigmas}.")
    return lines


def _bound_verdict(others: list[tuple[Result, float]]) -> list[str]:
    """Deterministic bounds against exact ln Z: which hold, which are violated (a bug or a failed solve)."""
    broken = [label(r) for r, d in others
              if (r.kind == "lower_bound" and d > 1e-9) or (r.kind == "upper_bound" and d < -1e-9)]
    held = [label(r) for r, d in others if r.kind in ("lower_bound", "upper_bound") and label(r) not in broken]
    lines = [f"Deterministic bounds hold: {', '.join(held)}."] if held else []
    if broken:
        lines.append(f"BOUND VIOLATED (a bug or a failed solve): {', '.join(broken)}.")
    return lines


def _furthest_approximation(others: list[tuple[Result, float]], against: str) -> list[str]:
    """The approximation (no error bar, not a bound) furthest from the reference, if any."""
    approx = [(r, d) for r, d in others if r.stderr is None and r.kind not in ("lower_bound", "upper_bound")]
    if not approx:
        return []
    worst, d = max(approx, key=lambda rd: abs(rd[1]))
    return [f"Furthest approximation: {label(worst)}, {abs(d):.3g} nats {_direction(d)} {against}."]


class ComparedRow:
    """A result with its difference to the comparison's reference (a JSON/CSV record)."""

    FIELDS = (*FIELDS, "reference", "difference")

    def __init__(self, result: Result, reference: str, difference: float | None):
        self.result, self.reference, self.difference = result, reference, difference

    def to_dict(self) -> dict[str, Any]:
        row = self.result.to_dict()
        row.update(reference=self.reference, difference=self.difference)
        return row
