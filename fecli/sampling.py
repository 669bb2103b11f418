"""Samples of an RBM's visible (and hidden) layer, for looking at what a model generates.

Two methods:

* ``exact``: i.i.d. samples from :class:`fecli.estimators.exact.ExactSampler` (the smaller
  layer drawn from its tabulated exact marginal, the other layer given it). Feasible
  when the smaller layer has at most ``exact_max_units`` units.
* ``gibbs``: ``chains`` block Gibbs chains at the target (t = 1 on the annealing path of
  :mod:`fecli.estimators._sampling_common`, moved by the kernels of
  :mod:`fecli.kernels.gibbs`), started from samples of the naive mean-field factorised
  model, run ``burn_in`` sweeps, then one sample per chain every ``thin`` sweeps.
  Row r of the output is round r // chains of chain r % chains. Samples are only
  approximately from the model (burn-in and mixing are the user's responsibility).

``auto`` picks exact when the smaller layer has at most ``exact_max_units`` units, else gibbs.

Seeds: the same seed gives the same samples whatever NUMBA_NUM_THREADS is; every
chain (Gibbs) or block of rows (exact) has its own stream from ``SeedSequence(seed)``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InvalidOptionError
from .model import RBM

METHODS = ("auto", "exact", "gibbs")
DEFAULT_CHAINS = 10
DEFAULT_BURN_IN = 1000
DEFAULT_THIN = 10
#: Largest smaller layer for which ``auto`` samples exactly (as reverse AIS's exact start).
DEFAULT_EXACT_MAX_UNITS = 20
#: Rows per independently seeded block of exact samples.
EXACT_BLOCK = 4096
#: Spawn-key stream of the exact sampler's blocks (the Gibbs chains use stream 0).
EXACT_STREAM = 1


@dataclass
class SampleResult:
    """Samples as uint8 0/1 arrays: ``v`` (n, n_visible), ``h`` (n, n_hidden); row i of h pairs with row i of v."""

    v: np.ndarray
    h: np.ndarray
    method: str
    beta: float
    seed: int
    wall_time_s: float
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{self.method} sampling: {self.v.shape[0]} x {self.v.shape[1]} visible samples "
                f"in {self.wall_time_s:.2f} s (seed {self.seed})")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidOptionError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def sample(model: RBM, n: int, *, method: str = "auto", beta: float = 1.0, seed: int | None = None,
           chains: int = DEFAULT_CHAINS, burn_in: int = DEFAULT_BURN_IN, thin: int = DEFAULT_THIN,
           exact_max_units: int = DEFAULT_EXACT_MAX_UNITS, progress=None) -> SampleResult:
    """n samples (v, h) of ``model`` at inverse temperature ``beta`` (see the module docstring).

    Parameters
    ----------
    method : 'auto' (exact when the smaller layer has <= exact_max_units units, else gibbs),
        'exact' or 'gibbs'.
    chains, burn_in, thin : Gibbs only: parallel chains, sweeps before the first kept
        sample (>= 0), sweeps between kept samples of a chain (>= 1).
    progress : optional callable progress(description, done, total).
    """
    from .estimators._sampling_common import resolve_seed
    from .estimators.exact import EXACT_SAMPLE_MAX_UNITS, check_beta

    start = time.perf_counter()
    n = _check_int("n", n, 1)
    if method not in METHODS:
        raise InvalidOptionError(f"unknown sampling method {method!r}; valid methods are: {', '.join(METHODS)}.")
    beta = check_beta(beta)
    chains = _check_int("chains", chains, 1)
    burn_in = _check_int("burn_in", burn_in, 0)
    thin = _check_int("thin", thin, 1)
    exact_max_units = _check_int("exact_max_units", exact_max_units, 0)
    entropy = resolve_seed(seed)
    k = min(model.n_visible, model.n_hidden)
    if method == "auto":
        method = "exact" if k <= min(exact_max_units, EXACT_SAMPLE_MAX_UNITS) else "gibbs"
    if method == "exact":
        v, h = _exact(model, n, beta, entropy, progress)
        params = {"exact_max_units": exact_max_units}
    else:
        v, h = _gibbs(model, n, beta, entropy, chains, burn_in, thin, progress)
        params = {"chains": chains, "burn_in": burn_in, "thin": thin}
    return SampleResult(v=v.astype(np.uint8), h=h.astype(np.uint8), method=method, beta=beta, seed=entropy,
                        wall_time_s=time.perf_counter() - start, params=params)


def _exact(model: RBM, n: int, beta: float, entropy: int, progress) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of EXACT_BLOCK rows, block i drawn from SeedSequence(entropy, spawn_key=(EXACT_STREAM, i))."""
    from .estimators._sampling_common import chunks
    from .estimators.exact import ExactSampler

    sampler = ExactSampler(model, beta)  # RefusedError (one line) when the layer is too large
    v = np.empty((n, model.n_visible), dtype=np.uint8)
    h = np.empty((n, model.n_hidden), dtype=np.uint8)
    for i, lo, hi in chunks(n, EXACT_BLOCK):
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(EXACT_STREAM, i)))
        v[lo:hi], h[lo:hi] = sampler.sample(hi - lo, rng)
        if progress is not None:
            progress("exact sampling", hi, n)
    return v, h


def _gibbs(model: RBM, n: int, beta: float, entropy: int, chains: int, burn_in: int, thin: int,
           progress) -> tuple[np.ndarray, np.ndarray]:
    """Block Gibbs at t = 1 of the annealing path, i.e. the target model at beta."""
    from .estimators._sampling_common import (AnnealingPath, Chains, base_model, base_samples, chain_states,
                                              kernel_states)

    rounds = math.ceil(n / chains)
    a_base, _ = base_model(model, beta, None)
    path = AnnealingPath(model, beta, a_base)
    states = kernel_states(chain_states(entropy, chains))
    walkers = Chains(path, base_samples(path, states), states)
    total = burn_in + rounds * thin
    every = max(1, total // 200)
    done = 0

    def advance(count: int, label: str) -> None:
        nonlocal done
        while count > 0:
            step = min(count, every)
            walkers.sweep(1.0, step)
            count -= step
            done += step
            if progress is not None:
                progress(label, done, total)

    advance(burn_in, "gibbs burn-in")
    v = np.empty((rounds * chains, model.n_visible), dtype=np.uint8)
    h = np.empty((rounds * chains, model.n_hidden), dtype=np.uint8)
    for r in range(rounds):
        advance(thin, "gibbs sampling")
        # after a sweep v ~ p(v | h) with h ~ p(h | previous v): (v, h) is a joint sample at stationarity
        v[r * chains:(r + 1) * chains] = walkers.v
        h[r * chains:(r + 1) * chains] = walkers.h
    return v[:n], h[:n]


def check_output(path: str | os.PathLike, overwrite: bool) -> None:
    """Refuse an extension that names no array format (.npy, .npz, .csv, .txt), a missing folder,
    a folder as output, or an existing file without ``overwrite``."""
    from .data import check_array_path
    from .errors import FecliError

    path = check_array_path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FecliError(f"cannot write output file '{path}': folder '{folder}' does not exist.")
    if path.is_dir():
        raise FecliError(f"cannot write output file '{path}': it is a folder.")
    if path.exists() and not overwrite:
        raise FecliError(f"output file '{path}' exists; use --overwrite to replace it.")
    if not os.access(folder, os.W_OK):
        raise FecliError(f"cannot write output file '{path}': folder '{folder}' is not writable.")

