"""Thermodynamic integration (path sampling) along the annealing path.

    ln Z_1 - ln Z_A = integral_0^1 E_{p_t}[ d ln f_t(v) / dt ] dt,
    d ln f_t(v) / dt = (beta a - a_A).v + sum_j x_j sigmoid(t x_j),   x = beta (b + v^T W),

(path and base model as in :mod:`fecli.estimators.ais`). Half the chains start
with exact base-model samples and move up a grid 0 = t_0 < ... < t_K = 1; the other
half start at the target (exact samples when the model is enumerable, otherwise a
Gibbs burn-in, as in reverse AIS) and move down the same grid. At each grid point the
chains make ``sweeps`` block Gibbs sweeps at t_k and record the integrand after each
of the last half (the first half lets them catch up with the moved distribution).

Every chain gives its own trapezoid integral. Chains that move up lag behind towards
smaller t and chains that move down towards larger t, so the two directions err in
opposite ways (hysteresis): the estimate is ln Z_A + (mean(I_up) + mean(I_down)) / 2,
which cancels the lag to first order, and half their difference is kept in the error
bar as the lag error. The sampling error is the standard error of that mean over
independent chains (within-chain autocorrelation and correlation across grid points
included); the quadrature error is estimated by Richardson's rule,
|I(grid) - I(every other point)| / 3. The three are added in quadrature (and reported
separately in diagnostics).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model import RBM
from ..result import Result
from ._sampling_common import (
    STREAMS,
    Z95,
    AnnealingPath,
    Chains,
    base_model,
    base_samples,
    chain_states,
    check_positive_int,
    check_schedule,
    chunk_rows,
    kernel_states,
    n_chunks,
    make_schedule,
    resolve_data,
    resolve_seed,
    start_at_target,
)
from ..errors import EstimationFailedError, InvalidOptionError
from . import METHODS
from .exact import check_beta

#: Library defaults, declared with the options in the registry (fecli/estimators/__init__.py).
DEFAULTS = METHODS["ti"].defaults()
DEFAULT_CHAINS, DEFAULT_STEPS, DEFAULT_SWEEPS, DEFAULT_SCHEDULE = (
    DEFAULTS[k] for k in ("chains", "steps", "sweeps", "schedule"))
_STREAM = STREAMS["ti_up"]
_STREAM_DOWN = STREAMS["ti_down"]
#: Error terms already inside the error bar are worth a warning only above this (nats): a 0.001-nat
#: lag that dominates a tiny sampling error is no news.
MEANINGFUL_ERROR = 0.05
#: When exact samples are out of reach, the downward chains start from parallel tempering with
#: DEFAULT_BURN_IN // 4 rounds of burn-in (and as many recorded);
#: largest smaller layer for which the downward chains start from exact target samples.
DEFAULT_BURN_IN, DEFAULT_EXACT_MAX_UNITS = DEFAULTS["burn_in"], DEFAULTS["exact_max_units"]


def _var_of_mean(x: np.ndarray) -> float:
    return float(x.var(ddof=1) / x.size) if x.size > 1 else 0.0


def integrand_means(path: AnnealingPath, ts: np.ndarray, sweeps: int, walkers: Chains, progress=None,
                    label: str = "ti") -> np.ndarray:
    """(C, K + 1) per-chain means of d ln f_t / dt at each grid point.

    At each t_k the chains make ``sweeps`` sweeps; the first sweeps // 2 let them
    catch up with the moved distribution (lag is TI's bias), the rest are recorded.
    """
    out = np.zeros((walkers.n, len(ts)))
    settle = sweeps // 2
    every = max(1, len(ts) // 200)
    for k, t in enumerate(ts):
        if settle:
            walkers.sweep(float(t), settle)
        out[:, k] = walkers.sweep_recording(float(t), sweeps - settle)
        if progress is not None and (k % every == 0 or k == len(ts) - 1):
            progress(label, k + 1, len(ts))
    return out / (sweeps - settle)


@dataclass
class TiJob:
    """A TI run as the engine's tasks see it (fecli.engine): n_up chains start from base samples,
    n_down from the rows of v_down (target samples)."""

    path: AnnealingPath
    ts: np.ndarray
    sweeps: int
    entropy: int
    n_up: int
    n_down: int
    v_down: np.ndarray


def ti_chunks(job: TiJob, task: tuple[str, range], progress=None) -> np.ndarray:
    """The engine's task: integrand means (m, K + 1), on the grid ts, of the chunks of one direction
    ('up' or 'down', chunk ids)."""
    direction, ids = task
    if direction == "up":
        states = kernel_states(chain_states(job.entropy, job.n_up, _STREAM, ids))
        walkers = Chains(job.path, base_samples(job.path, states), states)
        return integrand_means(job.path, job.ts, job.sweeps, walkers, progress, "ti up")
    states = kernel_states(chain_states(job.entropy, job.n_down, _STREAM_DOWN, ids))
    walkers = Chains(job.path, job.v_down[chunk_rows(ids, job.n_down)], states)
    return integrand_means(job.path, job.ts[::-1].copy(), job.sweeps, walkers, progress, "ti down")[:, ::-1]


def run_directions(job: TiJob, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Integrand means of the upward (n_up, K + 1) and downward (n_down, K + 1) chains, their chunks
    run as tasks on the current backend."""
    from .. import engine

    split = engine.backend().split
    tasks = [("up", ids) for ids in split(n_chunks(job.n_up))] + [("down", ids) for ids in split(n_chunks(job.n_down))]
    parts = engine.run_tasks(ti_chunks, job, tasks, "ti", progress)
    up = [p for (d, _), p in zip(tasks, parts) if d == "up"]
    down = [p for (d, _), p in zip(tasks, parts) if d == "down"]
    return np.concatenate(up), np.concatenate(down)


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
    burn_in: int = DEFAULT_BURN_IN,
    exact_max_units: int = DEFAULT_EXACT_MAX_UNITS,
    seed: int | None = None,
    progress=None,
) -> Result:
    """Thermodynamic-integration estimate of ln Z(beta) with sampling, quadrature and lag error.

    Parameters
    ----------
    chains : independent chains (each gives one integral), half moving up the path and half down.
    steps : grid intervals K (K + 1 points from the base model to the target).
    schedule : 'linear', 'sigmoid' or 'sm08' spacing of the grid.
    sweeps : Gibbs sweeps per grid point (the integrand is recorded after the last half).
    data : path or array of examples; the base model becomes their base rate (and the tempering that
        starts the downward chains begins from data rows).
    burn_in : when the model is not enumerable, the downward chains start from parallel
        tempering with burn_in // 4 rounds of burn-in and as many recorded.
    exact_max_units : the downward chains start from exact target samples when the smaller
        layer has at most this many units.
    """
    start = time.perf_counter()
    beta = check_beta(beta)
    chains = check_positive_int("chains", chains)
    steps = check_positive_int("steps", steps)
    schedule = check_schedule(schedule)
    sweeps = check_positive_int("sweeps", sweeps)
    burn_in = check_positive_int("burn_in", burn_in)
    data_arr, data_label = resolve_data(data, model)
    entropy = resolve_seed(seed)
    a_base, base_note = base_model(model, beta, data_arr)
    path = AnnealingPath(model, beta, a_base)
    ts = make_schedule(schedule, steps)

    if chains < 2:
        raise InvalidOptionError(f"ti needs chains >= 2 (half move up the path, half down), got {chains}.")
    n_up, n_down = (chains + 1) // 2, chains // 2
    down_seqs = chain_states(entropy, n_down, stream=_STREAM_DOWN)
    target = start_at_target(path, down_seqs, kernel_states(down_seqs), data_arr, burn_in, exact_max_units, progress,
                             "ti burn-in")
    up, down = run_directions(TiJob(path, ts, sweeps, entropy, n_up, n_down, target.walkers.v), progress)
    if not (np.all(np.isfinite(up)) and np.all(np.isfinite(down))):
        raise EstimationFailedError(
            "the run failed: the integrand d ln f/dt is NaN or infinite (overflow); no estimate is reported."
        )
    i_up, i_down = trapezoid(up, ts), trapezoid(down, ts)
    integral = 0.5 * float(i_up.mean() + i_down.mean())
    se_sampling = 0.5 * math.sqrt(_var_of_mean(i_up) + _var_of_mean(i_down))
    lag = 0.5 * abs(float(i_up.mean() - i_down.mean()))
    mean_curve = 0.5 * (up.mean(axis=0) + down.mean(axis=0))
    coarse_idx = np.arange(0, steps + 1, 2)
    if coarse_idx[-1] != steps:
        coarse_idx = np.append(coarse_idx, steps)
    coarse = float(trapezoid(mean_curve[coarse_idx], ts[coarse_idx])) if steps >= 2 else integral
    quadrature = abs(float(trapezoid(mean_curve, ts)) - coarse) / 3.0
    stderr = math.sqrt(se_sampling**2 + quadrature**2 + lag**2)
    log_z = path.log_z_base + integral
    warnings = []
    if quadrature > se_sampling and quadrature > MEANINGFUL_ERROR:
        warnings.append(
            f"the quadrature error ({quadrature:.3g} nats) exceeds the sampling error ({se_sampling:.3g}); "
            "use more steps."
        )
    if lag > 2 * se_sampling and lag > MEANINGFUL_ERROR:
        warnings.append(
            f"chains moving up and down the path disagree by {2 * lag:.3g} nats (lag behind equilibrium); "
            "the error bar includes it, more --sweeps or --steps would shrink it."
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
                "burn_in": burn_in, "data": data_label, "seed": entropy},
        diagnostics={"base_model": base_note, "log_z_base": path.log_z_base, "sampling_stderr": se_sampling,
                     "quadrature_error": quadrature, "lag_error": lag,
                     "log_z_up": path.log_z_base + float(i_up.mean()),
                     "log_z_down": path.log_z_base + float(i_down.mean()), "down_start": target.note},
        warnings=warnings,
    )
