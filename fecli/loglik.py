"""Average data log-likelihood: ln p(v) = -F(v) - ln Z, with ln Z from any estimator.

The error of ln Z carries through unchanged (the data term is computed exactly), and
a bound on ln Z becomes the opposite bound on the log-likelihood.

For Gaussian visible units p(v) is a density: ln p(v) is in nats per unit volume of the data's
own units (rescaling a column by s shifts it by -ln s), so compare it only between models of the
same data. Data rows are validated by the model's visible layer (:mod:`fecli.layer_data`).
A model trained with ``--standardize`` (or ``--scale``) stores that transform: data rows are
taken in the original units, the transform is applied to them, and its log-Jacobian
-sum_i ln(scale std_i) is added, so ln p(x) is the density of the data as given (the record's
``mean_neg_free_energy`` includes that term; ``diagnostics['data_units']`` says so).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .estimators import ais as _ais
from .model import RBM
from .result import Result, _jsonable

#: A bound on ln Z is the opposite bound on ln p(v) = -F(v) - ln Z.
FLIPPED_KIND = {
    "exact": "exact",
    "estimate": "estimate",
    "approximation": "approximation",
    "lower_bound": "upper_bound",
    "upper_bound": "lower_bound",
    "stochastic_lower_bound": "stochastic_upper_bound",
    "stochastic_upper_bound": "stochastic_lower_bound",
}

FIELDS = (
    "model",
    "data",
    "method",
    "beta",
    "n_examples",
    "mean_log_likelihood",
    "stderr",
    "ci_low",
    "ci_high",
    "kind",
    "log_z",
    "mean_neg_free_energy",
    "data_spread_stderr",
    "wall_time_s",
    "params",
    "diagnostics",
    "warnings",
)


@dataclass
class LoglikResult:
    """Mean log-likelihood of data rows under a model.

    ``stderr`` is the uncertainty from ln Z alone (the data term is exact);
    ``data_spread_stderr`` = sd(ln p(v)) / sqrt(n) says how much the mean would move
    with another sample of data, for users comparing models on held-out sets.
    """

    model: str
    data: str
    method: str
    beta: float
    n_examples: int
    mean_log_likelihood: float
    kind: str
    log_z: float
    mean_neg_free_energy: float
    data_spread_stderr: float
    stderr: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    wall_time_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    per_example: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {name: _jsonable(getattr(self, name)) for name in FIELDS}


def from_log_z(model: RBM, data: np.ndarray, log_z: Result, data_name: str = "<memory>") -> LoglikResult:
    """Combine exact -F_beta(v) over data rows with an ln Z result (any method).

    ``data``: (n, nv) rows in the data's original units (see the module docstring for a model
    with a stored transform: the rows are mapped to the model's units here, and the transform's
    log-Jacobian is part of each row's -F)."""
    from .formats import log_z_offset
    from .layer_data import stored_transform

    start = time.perf_counter()
    transform = stored_transform(model)
    jacobian = 0.0 if transform is None else transform.log_jacobian
    rows = data if transform is None else transform.to_model_units(data)
    # -F of the file's model: a model read with a ln Z constant has F = F_plain - beta * offset
    neg_f = -model.free_energy(rows, log_z.beta) + log_z.beta * log_z_offset(model) + jacobian
    per_example = neg_f - log_z.log_z
    mean_neg_f = float(neg_f.mean())
    mean = mean_neg_f - log_z.log_z
    spread = float(per_example.std(ddof=1) / np.sqrt(len(per_example))) if len(per_example) > 1 else 0.0
    # ln p = mean(-F) - ln Z: an interval [lo, hi] on ln Z maps to [mean(-F) - hi, mean(-F) - lo]
    ci_low = None if log_z.ci_high is None else mean_neg_f - log_z.ci_high
    ci_high = None if log_z.ci_low is None else mean_neg_f - log_z.ci_low
    return LoglikResult(
        model=model.name,
        data=data_name,
        method=log_z.method,
        beta=log_z.beta,
        n_examples=int(len(data)),
        mean_log_likelihood=mean,
        kind=FLIPPED_KIND[log_z.kind],
        log_z=log_z.log_z,
        mean_neg_free_energy=mean_neg_f,
        data_spread_stderr=spread,
        stderr=log_z.stderr,
        ci_low=ci_low,
        ci_high=ci_high,
        wall_time_s=log_z.wall_time_s + time.perf_counter() - start,
        params=dict(log_z.params),
        diagnostics={**log_z.diagnostics, **_units_note(transform)},
        warnings=list(log_z.warnings),
        per_example=per_example,
    )


def _units_note(transform: Any) -> dict[str, Any]:
    """The record's note on a stored data transform (empty without one)."""
    if transform is None:
        return {}
    return {"data_units": f"original: the model was trained on the data {transform.describe()}; ln p(x) is the "
                          f"density of the data as given, including the log-Jacobian {transform.log_jacobian:.10g}",
            "log_jacobian": transform.log_jacobian}


def log_likelihood(model: RBM, data: np.ndarray, method: str = "exact", data_name: str = "<memory>", **options: Any) -> LoglikResult:
    """Mean ln p(v) over the rows of ``data``, with ln Z from ``method`` (see :func:`fecli.estimate`)."""
    from .api import estimate
    from .layer_data import check_width, prepare_for

    data = prepare_for(model.visible, data, f"data '{data_name}'")
    check_width(data, model, data_name)
    return from_log_z(model, data, estimate(model, method, **options), data_name)


def raise_loglik(model: RBM, data: np.ndarray, data_name: str = "<memory>", *, beta: float = 1.0,
                 repeats: int = _ais.DEFAULT_REPEATS, steps: int = _ais.DEFAULT_STEPS, schedule: str = _ais.DEFAULT_SCHEDULE,
                 sweeps: int = _ais.DEFAULT_SWEEPS, seed: int | None = None, progress=None) -> LoglikResult:
    """Mean ln p(v) over the rows of ``data`` by RAISE (:func:`fecli.estimators.ais.raise_log_likelihood`).

    Each row gets its own stochastic lower bound on ln p_ann(v) (the annealed model,
    which approaches p as ``steps`` grows), from ``repeats`` reverse chains. The mean over
    rows is the record's value and ``per_example`` the rows' values.

    Error bar: the rows' estimates are independent (each uses its own chains), so the
    standard error of the mean is sqrt(sum_i se_i^2) / n, with se_i the delta-method
    standard error of row i's logmeanexp over its repeats (None when repeats = 1); the
    95% interval is mean +- 1.96 se. ``data_spread_stderr`` is sd(ln p) / sqrt(n) as for
    the other methods. RAISE needs no ln Z: ``log_z`` holds the implied value
    mean(-F) - mean ln p (said so in ``diagnostics``).
    """
    from .estimators._sampling_common import Z95
    from .layer_data import check_width, prepare_for
    from .model import binary_equivalent, spin_to_binary

    start = time.perf_counter()
    data = prepare_for(model.visible, data, f"data '{data_name}'")
    check_width(data, model, data_name)
    mapped, _ = binary_equivalent(model)
    if not mapped.is_bernoulli:
        from .errors import RefusedError

        raise RefusedError(f"RAISE supports bernoulli and spin layers, not {model.combination} models; "
                           f"use another --method (ln p = -F(v) - ln Z).")
    # a spin layer's probabilities are those of its 0/1 equivalent: ln p(x) = ln p'((x + 1) / 2)
    binary_rows = spin_to_binary(data) if model.visible.name == "spin" else data
    raised = _ais.raise_log_likelihood(mapped, binary_rows, beta=beta, repeats=repeats, steps=steps, schedule=schedule,
                                      sweeps=sweeps, seed=seed, progress=progress)
    per_example = np.asarray(raised.log_p, dtype=np.float64)
    n = len(per_example)
    mean = float(per_example.mean())
    from .formats import log_z_offset

    raised_beta = raised.params.get("beta", beta)
    mean_neg_f = float((-model.free_energy(data, raised_beta)).mean()) + raised_beta * log_z_offset(model)
    se_rows = np.asarray(raised.stderr, dtype=np.float64)
    stderr = float(np.sqrt(np.sum(se_rows**2)) / n) if np.all(np.isfinite(se_rows)) else None
    spread = float(per_example.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    warnings = []
    low = int(np.sum(raised.ess < 2.0))
    if repeats > 1 and low:
        warnings.append(f"{low} of {n} examples have an effective sample size below 2 of {repeats} repeats; "
                        "their error bars are unreliable (use more --steps or --chains).")
    params = {k: v for k, v in raised.params.items() if k != "base_model"}
    return LoglikResult(
        model=model.name,
        data=data_name,
        method="raise",
        beta=float(beta),
        n_examples=n,
        mean_log_likelihood=mean,
        kind="stochastic_lower_bound",
        log_z=mean_neg_f - mean,
        mean_neg_free_energy=mean_neg_f,
        data_spread_stderr=spread,
        stderr=stderr,
        ci_low=None if stderr is None else mean - Z95 * stderr,
        ci_high=None if stderr is None else mean + Z95 * stderr,
        wall_time_s=time.perf_counter() - start,
        params=params,
        diagnostics={"log_z": "implied: mean(-F) - mean ln p (RAISE estimates ln p directly)",
                     "bound_of": "ln p_ann(v), the annealed model's likelihood (-> ln p(v) as steps grow)",
                     "base_model": raised.params.get("base_model"), "log_z_base": raised.log_z_base,
                     "ess_min": float(np.min(raised.ess)), "ess_median": float(np.median(raised.ess))},
        warnings=warnings,
        per_example=per_example,
    )
