"""The one result record that every estimator returns."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any

#: Allowed values of :attr:`Result.kind`, and what each promises about ``log_z``.
KINDS = {
    "exact": "computed exactly (up to floating-point rounding)",
    "estimate": "statistical estimate with a standard error",
    "lower_bound": "deterministic lower bound on ln Z",
    "upper_bound": "deterministic upper bound on ln Z",
    "stochastic_lower_bound": "estimate whose expectation is at most ln Z",
    "stochastic_upper_bound": "estimate whose expectation is at least ln Z",
    "approximation": "approximation without an error bar",
}

#: Column order shared by the table, JSON and CSV renderings.
FIELDS = (
    "model",
    "method",
    "beta",
    "log_z",
    "free_energy",
    "stderr",
    "ci_low",
    "ci_high",
    "kind",
    "wall_time_s",
    "n_visible",
    "n_hidden",
    "params",
    "diagnostics",
    "warnings",
)


@dataclass
class Result:
    """ln Z of one model by one method, with its uncertainty and diagnostics.

    ``free_energy`` is ``-log_z / beta``. ``stderr``, ``ci_low`` and ``ci_high``
    are ``None`` when the method has no error bar (approximations, bounds);
    an exact result has ``stderr == 0`` and a zero-width interval. ``log_z`` is
    always finite: a non-finite value raises EstimationFailedError.
    """

    model: str
    method: str
    beta: float
    log_z: float
    kind: str
    n_visible: int
    n_hidden: int
    stderr: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    wall_time_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Visible states the method visited (e.g. final chain states), for the rigorous lower
    #: bound of :mod:`fecli.bounds`; not part of the rendered record.
    states: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown result kind {self.kind!r}; expected one of {sorted(KINDS)}")
        if not self.beta > 0:
            raise ValueError(f"beta must be positive, got {self.beta!r}")
        if not isinstance(self.log_z, numbers.Real) or not math.isfinite(self.log_z):
            # A result is a number a user can act on; an overflow or a NaN is a failed run, said so.
            from .errors import EstimationFailedError

            raise EstimationFailedError(
                f"{self.method} produced ln Z = {self.log_z!r} for {self.model} (overflow or NaN); no result is "
                f"reported."
            )

    @property
    def free_energy(self) -> float:
        """F = -ln Z / beta."""
        return -self.log_z / self.beta

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict in :data:`FIELDS` order; non-finite floats become ``None``."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["free_energy"] = self.free_energy
        return {name: _jsonable(values[name]) for name in FIELDS}


def _jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats to plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: Diagnostics entries that hold a ln Z value: a constant added to ln Z moves them too.
LOG_Z_DIAGNOSTICS = ("log_z_base", "chosen_neg_gamma", "reference_neg_gamma", "importance_log_z",
                     "log_z_forward", "log_z_reverse", "log_z_start", "log_z_lower", "log_z_upper", "mean_field")


def shift_log_z(result: "Result", shift: float) -> "Result":
    """A copy of ``result`` with ln Z, its interval and every ln Z value in its diagnostics
    (partial sums, the first cumulant of U, the mean-field term) moved by ``shift`` nats."""
    import copy

    out = copy.copy(result)
    out.log_z = result.log_z + shift
    if result.ci_low is not None:
        out.ci_low = result.ci_low + shift
    if result.ci_high is not None:
        out.ci_high = result.ci_high + shift
    d = dict(result.diagnostics)
    for key in LOG_Z_DIAGNOSTICS:
        if isinstance(d.get(key), (int, float)) and not isinstance(d.get(key), bool):
            d[key] = d[key] + shift
    if isinstance(d.get("partial_sums"), list):
        d["partial_sums"] = [v + shift for v in d["partial_sums"]]
    if isinstance(d.get("cumulants"), list) and d["cumulants"]:
        d["cumulants"] = [d["cumulants"][0] - shift, *d["cumulants"][1:]]
    if isinstance(d.get("terms"), dict) and "mean_field" in d["terms"]:
        d["terms"] = {**d["terms"], "mean_field": d["terms"]["mean_field"] + shift}
    out.diagnostics = d
    return out
