"""Thermodynamic integration (path sampling) along the annealing path.

    ln Z_1 - ln Z_A = integral_0^1 E_{p_t}[ d ln f_t(v) / dt ] dt,
    d ln f_t(v) / dt = (beta a - a_A).v + sum_j x_j sigmoid(t x_j),   x = beta (b + v^T W),

(path and base model as in :mod:`fecli.estimators.ais`). Chains start with exact
base-model samples and move up a grid 0 = t_0 < ... < t_K = 1; at each grid point
they make ``sweeps`` block Gibbs sweeps at t_k and record the integrand after each
of the last half (the first half lets them catch up with the moved distribution).
Every chain gives its own trapezoid integral I_c; the estimate is ln Z_A + mean(I_c),
with the sampling error sd(I_c) / sqrt(C) (chains are independent, so within-chain
autocorrelation and correlation across grid points are accounted for). The
quadrature error is estimated by Richardson's rule, |I(grid) - I(every other point)| / 3,
and added in quadrature to the standard error (it is reported separately too).
Lag behind equilibrium when t moves is not in the error bar: use enough sweeps.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..model import RBM
from ..result import Result
from ._sampling_common import (
    Z95,
    AnnealingPath,
    Chains,
    base_model,
    base_samples,
    chain_states,
    check_positive_int,
    check_schedule,
    kernel_states,
    make_schedule,
    resolve_data,
    resolve_seed,
)
from ..errors import EstimationFailedError
from .exact import check_beta

DEFAULT_CHAINS = 100
DEFAULT_STEPS = 200
DEFAULT_SWEEPS = 20
DEFAULT_SCHEDULE = "sigmoid"
_STREAM = 3


def integrand_means(path: AnnealingPath, ts: np.ndarray, sweeps: int, walkers: Chains, progress=None) -> np.ndarray:
    """(C, K + 1) per-chain means of d ln f_t / dt at each grid point.

    At each t_k the chains make ``sweeps`` sweeps; the first sweeps // 2 let them
    catch up with the moved distribution (lag is TI's bias), the rest are recorded.
    """
    out = np.zeros((walkers.n, len(ts)))
    g = np.empty(walkers.n)
    derivative = walkers.kern.log_f_derivative
    settle = sweeps // 2
    every = max(1, len(ts) // 200)
    with np.errstate(over="ignore", invalid="ignore"):
        for k, t in enumerate(ts):
            if settle:
                walkers.sweep(float(t), settle)
            for _ in range(sweeps - settle):
                walkers.sweep(float(t))
                derivative(walkers.fields(), walkers.v, path.hbias_scaled, path.dvis, float(t), g)
                out[:, k] += g
            if progress is not None and (k % every == 0 or k == len(ts) - 1):
                progress("ti", k + 1, len(ts))
    return out / (sweeps - settle)


def trapezoid(values: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Trapezoid rule along the last axis on the (non-uniform) grid ts."""
    dt = np.diff(ts)
    return (0.5 * (values[..., 1:] + values[..., :-1]) * dt).sum(axis=-1)


def ti(
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
    """Thermodynamic-integration estimate of ln Z(beta) with sampling and quadrature error.

    Parameters
    ----------
    chains : independent chains (each gives one integral).
    steps : grid intervals K (K + 1 points from the base model to the target).
    schedule : 'linear', 'sigmoid' or 'sm08' spacing of the grid.
    sweeps : Gibbs sweeps per grid point (the integrand is recorded after the last half).
    data : path or array of examples; the base model becomes their base rate.
    """
    start = time.perf_counter()
    beta = check_beta(beta)
    chains = check_positive_int("chains", chains)
    steps = check_positive_int("steps", steps)
    schedule = check_schedule(schedule)
    sweeps = check_positive_int("sweeps", sweeps)
    data_arr, data_label = resolve_data(data, model)
    entropy = resolve_seed(seed)
    a_base, base_note = base_model(model, beta, data_arr)
    path = AnnealingPath(model, beta, a_base)
    ts = make_schedule(schedule, steps)

    seqs = chain_states(entropy, chains, stream=_STREAM)
    states = kernel_states(seqs)
    walkers = Chains(path, base_samples(path, states), states)
    means = integrand_means(path, ts, sweeps, walkers, progress)
    if not np.all(np.isfinite(means)):
        raise EstimationFailedError(
            "the run failed: the integrand d ln f/dt is NaN or infinite (overflow); no estimate is reported."
        )
    per_chain = trapezoid(means, ts)
    integral = float(per_chain.mean())
    se_sampling = float(per_chain.std(ddof=1) / math.sqrt(chains)) if chains > 1 else math.inf
    coarse_idx = np.arange(0, steps + 1, 2)
    if coarse_idx[-1] != steps:
        coarse_idx = np.append(coarse_idx, steps)
    coarse = float(trapezoid(means[:, coarse_idx], ts[coarse_idx]).mean()) if steps >= 2 else integral
    quadrature = abs(integral - coarse) / 3.0
    stderr = math.hypot(se_sampling, quadrature)
    log_z = path.log_z_base + integral
    warnings = []
    if chains < 2:
        warnings.append("one chain gives no sampling error estimate; use --chains 2 or more.")
    if quadrature > se_sampling:
        warnings.append(
            f"the quadrature error ({quadrature:.3g} nats) exceeds the sampling error ({se_sampling:.3g}); "
            "use more steps."
        )
    return Result(
        model=model.name,
        method="ti",
        beta=beta,
        log_z=log_z,
        kind="estimate",
        n_visible=model.n_visible,
        n_hidden=model.n_hidden,
        stderr=stderr,
        ci_low=log_z - Z95 * stderr,
        ci_high=log_z + Z95 * stderr,
        wall_time_s=time.perf_counter() - start,
        params={"chains": chains, "steps": steps, "schedule": schedule, "sweeps": sweeps,
                "data": data_label, "seed": entropy},
        diagnostics={"base_model": base_note, "log_z_base": path.log_z_base, "sampling_stderr": se_sampling,
                     "quadrature_error": quadrature},
        warnings=warnings,
    )
