"""Umbrella sampling along the annealing path with replica exchange, combined by MBAR.

Windows k = 0..K-1 at t_0 = 0 < ... < t_{K-1} = 1 on the path of
:mod:`fecli.estimators.ais` (t = 0: the factorised base model with known ln Z_A;
t = 1: the target at beta). Each of ``chains`` independent ladders holds one
replica per window. A round is one block Gibbs sweep of every replica at its own
t, then replica-exchange proposals between neighbouring windows (even pairs on
even rounds, odd pairs on odd rounds), accepted with probability

    min(1, f_k(v') f_{k+1}(v) / (f_k(v) f_{k+1}(v'))).

After ``burn_in`` rounds, ``samples`` rounds are recorded. Each window's series
(per ladder) is subsampled by its statistical inefficiency (pymbar.timeseries,
on the observable d ln f_t / dt), then MBAR (Shirts & Chodera 2008) combines all
kept samples with reduced potentials u_k(v) = -ln f_{t_k}(v):

    ln Z(beta) = ln Z_A - (f_{K-1} - f_0),

with a standard error that is the larger of MBAR's asymptotic one and a jackknife
over the independent ladders (which also sees correlations that the per-window
subsampling misses, e.g. through replica exchange). The overlap of each pair of neighbouring
windows (the off-diagonal entry of their two-state MBAR overlap matrix: 0.5 when
identical, 0 when disjoint) is reported; poor overlap (< 0.03) means more windows.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from typing import Any

import numpy as np

from ..errors import EstimationFailedError
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
from .exact import check_beta

DEFAULT_WINDOWS = 32
DEFAULT_CHAINS = 8
DEFAULT_SAMPLES = 300
DEFAULT_BURN_IN = 200
DEFAULT_SCHEDULE = "sigmoid"
#: Neighbour overlap below this is reported as poor (pymbar's rule of thumb).
POOR_OVERLAP = 0.03
_STREAM = 4
_EXCHANGE_KEY = 2**31 - 2


@contextlib.contextmanager
def _quiet_pymbar():
    """pymbar prints a banner on stdout and logs warnings at import: keep both out of our streams."""
    import logging

    logger = logging.getLogger("pymbar")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _import_pymbar():
    with _quiet_pymbar():
        import pymbar
        from pymbar import timeseries
    return pymbar, timeseries


def _log_f_rows(path: AnnealingPath, v: np.ndarray, hfield: np.ndarray, t: float) -> np.ndarray:
    from ..model import softplus

    return v @ ((1.0 - t) * path.base_bias + t * path.vbias_scaled) + softplus(
        t * (path.hbias_scaled + hfield)).sum(axis=1)


def _exchange(path: AnnealingPath, walkers: Chains, ts: np.ndarray, R: int, parity: int,
              rng: np.random.Generator, accepted: np.ndarray, tried: np.ndarray) -> None:
    """Replica-exchange proposals between windows (k, k+1) with k % 2 == parity, for every ladder."""
    v, hf = walkers.v, walkers.hfield  # hfield is current: computed from v by the caller
    for k in range(parity, len(ts) - 1, 2):
        lo, hi = slice(k * R, (k + 1) * R), slice((k + 1) * R, (k + 2) * R)
        a_lo = _log_f_rows(path, v[lo], hf[lo], ts[k])
        a_hi = _log_f_rows(path, v[hi], hf[hi], ts[k + 1])
        b_lo = _log_f_rows(path, v[hi], hf[hi], ts[k])
        b_hi = _log_f_rows(path, v[lo], hf[lo], ts[k + 1])
        log_ratio = b_lo + b_hi - a_lo - a_hi
        swap = np.log(rng.random(R)) < log_ratio
        tried[k] += R
        accepted[k] += int(swap.sum())
        if swap.any():
            rows_lo = np.arange(k * R, (k + 1) * R)[swap]
            rows_hi = rows_lo + R
            v[rows_lo], v[rows_hi] = v[rows_hi].copy(), v[rows_lo].copy()
            hf[rows_lo], hf[rows_hi] = hf[rows_hi].copy(), hf[rows_lo].copy()


def _sweep_windows(path: AnnealingPath, walkers: Chains, ts: np.ndarray, R: int) -> None:
    """One block Gibbs sweep of every replica at its own window's t (hfield must be current)."""
    kern = walkers.kern
    p = path
    for k, t in enumerate(ts):
        rows = slice(k * R, (k + 1) * R)
        kern.hidden_step(walkers.hfield[rows], p.hbias_scaled, float(t), walkers.states[rows], walkers.h[rows])
    np.dot(walkers.h, p.w_scaled.T, out=walkers.vfield)
    for k, t in enumerate(ts):
        rows = slice(k * R, (k + 1) * R)
        kern.visible_step(walkers.vfield[rows], p.base_bias, p.vbias_scaled, float(t), walkers.states[rows],
                          walkers.v[rows])


def umbrella(
    model: RBM,
    *,
    beta: float = 1.0,
    windows: int = DEFAULT_WINDOWS,
    chains: int = DEFAULT_CHAINS,
    samples: int = DEFAULT_SAMPLES,
    burn_in: int = DEFAULT_BURN_IN,
    schedule: str = DEFAULT_SCHEDULE,
    data: Any = None,
    seed: int | None = None,
    progress=None,
) -> Result:
    """Umbrella sampling + replica exchange + MBAR estimate of ln Z(beta).

    Parameters
    ----------
    windows : number of windows K >= 2 from the base model (t = 0) to the target (t = 1).
    chains : independent replica ladders (one replica per window each).
    samples : recorded rounds (sweep + exchange) after ``burn_in`` rounds.
    schedule : 'linear', 'sigmoid' or 'sm08' spacing of the windows.
    data : path or array of examples; the base model becomes their base rate.
    """
    start = time.perf_counter()
    beta = check_beta(beta)
    windows = check_positive_int("windows", windows)
    if windows < 2:
        from ..errors import InvalidOptionError

        raise InvalidOptionError(f"windows must be an integer >= 2 (base model and target), got {windows}.")
    chains = check_positive_int("chains", chains)
    samples = check_positive_int("samples", samples)
    burn_in = check_positive_int("burn_in", burn_in)
    schedule = check_schedule(schedule)
    data_arr, data_label = resolve_data(data, model)
    entropy = resolve_seed(seed)
    a_base, base_note = base_model(model, beta, data_arr)
    path = AnnealingPath(model, beta, a_base)
    ts = make_schedule(schedule, windows - 1)
    pymbar, timeseries = _import_pymbar()

    K, R = windows, chains
    n = K * R  # row k * R + r: window k of ladder r
    seqs = chain_states(entropy, n, stream=_STREAM)
    states = kernel_states(seqs)
    walkers = Chains(path, base_samples(path, states), states)
    rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(_STREAM, _EXCHANGE_KEY)))
    accepted, tried = np.zeros(K - 1), np.zeros(K - 1)
    kept_v = np.empty((samples, n, model.n_visible), dtype=np.uint8)
    observable = np.empty((samples, n))
    t_rows = np.repeat(ts, R)
    total = burn_in + samples
    with np.errstate(over="ignore", invalid="ignore"):
        for round_ in range(total):
            walkers.fields()
            _exchange(path, walkers, ts, R, round_ % 2, rng, accepted, tried)
            _sweep_windows(path, walkers, ts, R)
            if round_ >= burn_in:
                i = round_ - burn_in
                kept_v[i] = walkers.v
                hf = walkers.fields()
                x = path.hbias_scaled + hf
                from ..model import sigmoid

                observable[i] = walkers.v @ path.dvis + (x * sigmoid(t_rows[:, None] * x)).sum(axis=1)
            if progress is not None and (round_ % max(1, total // 200) == 0 or round_ == total - 1):
                progress("umbrella", round_ + 1, total)

    # Subsample each (window, ladder) series by its statistical inefficiency.
    picked_v, window_of, ladder_of, g_values = [], [], [], np.empty(n)
    for row in range(n):
        series = observable[:, row]
        g = _inefficiency(timeseries, series)
        g_values[row] = g
        idx = np.unique(np.round(np.arange(0, samples, g)).astype(int))
        idx = idx[idx < samples]
        picked_v.append(kept_v[idx, row])
        window_of.append(np.full(idx.size, row // R))
        ladder_of.append(np.full(idx.size, row % R))
    v_all = np.concatenate(picked_v).astype(np.float64)
    window_of = np.concatenate(window_of)
    ladder_of = np.concatenate(ladder_of)
    order = np.argsort(window_of, kind="stable")
    v_all, window_of, ladder_of = v_all[order], window_of[order], ladder_of[order]
    N_k = np.bincount(window_of, minlength=K)

    from ..kernels.gibbs import Kernels

    u_nk = np.empty((v_all.shape[0], K))
    with np.errstate(over="ignore", invalid="ignore"):
        for lo in range(0, v_all.shape[0], 4096):
            block = np.ascontiguousarray(v_all[lo:lo + 4096])
            hf = block @ path.w_scaled
            Kernels(block.shape[0], model.n_hidden * K).log_f_ladder(
                hf, block, path.hbias_scaled, path.vbias_scaled, path.base_bias, ts, u_nk[lo:lo + 4096])
    u_kn = -u_nk.T
    if not np.all(np.isfinite(u_kn)):
        raise EstimationFailedError("the run failed: reduced potentials are NaN or infinite (overflow); "
                                    "no estimate is reported.")
    try:
        with _quiet_pymbar():
            try:
                mbar = pymbar.MBAR(u_kn, N_k, initialize="BAR")
            except Exception:  # the default protocol failed: try pymbar's slower, more robust one
                mbar = pymbar.MBAR(u_kn, N_k, initialize="BAR", solver_protocol="robust")
            diff = mbar.compute_free_energy_differences()
            neighbour = np.array([_pair_overlap(u_kn, N_k, window_of, k, mbar.f_k) for k in range(K - 1)])
            jackknife = _ladder_jackknife(pymbar, u_kn, window_of, ladder_of, K, R, mbar.f_k)
    except Exception as exc:  # pymbar's solvers raise a variety of errors on hopeless input
        raise EstimationFailedError(f"the run failed: MBAR did not converge ({type(exc).__name__}: {exc}).") from exc
    delta = float(diff["Delta_f"][0, K - 1])
    mbar_stderr = float(diff["dDelta_f"][0, K - 1])
    stderr = max(mbar_stderr, jackknife) if jackknife is not None else mbar_stderr
    if not (math.isfinite(delta) and math.isfinite(stderr)):
        raise EstimationFailedError("the run failed: MBAR returned a non-finite free-energy difference.")
    log_z = path.log_z_base - delta
    rates = accepted / np.maximum(tried, 1)
    warnings = []
    poor = np.flatnonzero(neighbour < POOR_OVERLAP)
    if poor.size:
        where = ", ".join(f"{ts[k]:.3g}-{ts[k + 1]:.3g}" for k in poor[:5]) + (" ..." if poor.size > 5 else "")
        warnings.append(
            f"poor overlap between {poor.size} of {K - 1} neighbouring windows (min {neighbour.min():.2g} "
            f"< {POOR_OVERLAP}, at t = {where}); the error bar is unreliable: use more windows."
        )
    return Result(
        model=model.name,
        method="umbrella",
        beta=beta,
        log_z=log_z,
        kind="estimate",
        n_visible=model.n_visible,
        n_hidden=model.n_hidden,
        stderr=stderr,
        ci_low=log_z - Z95 * stderr,
        ci_high=log_z + Z95 * stderr,
        wall_time_s=time.perf_counter() - start,
        params={"windows": K, "chains": R, "samples": samples, "burn_in": burn_in, "schedule": schedule,
                "data": data_label, "seed": entropy},
        diagnostics={"base_model": base_note, "log_z_base": path.log_z_base,
                     "neighbour_overlap": neighbour.tolist(), "min_neighbour_overlap": float(neighbour.min()),
                     "exchange_acceptance": rates.tolist(), "samples_per_window": N_k.tolist(),
                     "mean_statistical_inefficiency": float(g_values.mean()),
                     "mbar_stderr": mbar_stderr, "ladder_jackknife_stderr": jackknife},
        warnings=warnings,
    )


def _pair_overlap(u_kn: np.ndarray, N_k: np.ndarray, window_of: np.ndarray, k: int, f_k: np.ndarray) -> float:
    """Overlap of windows k and k+1 alone: O_01 of their two-state MBAR overlap matrix (0.5 = identical).

    O_ij = N_j sum_n W_ni W_nj, W_ni = exp(f_i - u_i(x_n)) / sum_l N_l exp(f_l - u_l(x_n)),
    over the samples of the two windows, with the free energies f of the full fit.
    """
    sel = (window_of == k) | (window_of == k + 1)
    u = u_kn[[k, k + 1]][:, sel]
    N = N_k[[k, k + 1]].astype(np.float64)
    f = np.asarray(f_k, dtype=np.float64)[[k, k + 1]]
    a = f[:, None] - u
    b = a + np.log(N)[:, None]
    top = b.max(axis=0)
    log_denom = top + np.log(np.exp(b - top).sum(axis=0))
    log_w = a - log_denom
    return float(N[1] * np.exp(log_w[0] + log_w[1]).sum())


def _ladder_jackknife(pymbar, u_kn, window_of, ladder_of, K: int, R: int, f_k: np.ndarray) -> float | None:
    """Jackknife standard error over the independent ladders (leave one ladder out), or None if R < 2.

    MBAR's asymptotic error assumes independent samples; replica exchange and slow
    modes correlate samples across windows in ways a per-window inefficiency misses.
    Ladders are independent, so the jackknife over them sees every correlation.
    """
    if R < 2:
        return None
    estimates = []
    for r in range(R):
        keep = ladder_of != r
        N_k = np.bincount(window_of[keep], minlength=K)
        if np.any(N_k == 0):
            return None
        fit = pymbar.MBAR(u_kn[:, keep], N_k, initial_f_k=f_k, solver_protocol=(dict(method="hybr", tol=1e-10),))
        estimates.append(float(fit.compute_free_energy_differences(compute_uncertainty=False)["Delta_f"][0, K - 1]))
    estimates = np.array(estimates)
    return float(np.sqrt((R - 1) / R * np.sum((estimates - estimates.mean()) ** 2)))


def _inefficiency(timeseries, series: np.ndarray) -> float:
    """Statistical inefficiency g >= 1 of a series (1 for constant or too-short series)."""
    if series.size < 3 or np.ptp(series) == 0:
        return 1.0
    try:
        return max(1.0, float(timeseries.statistical_inefficiency(series, fast=True)))
    except Exception:  # pymbar refuses degenerate series
        return 1.0
