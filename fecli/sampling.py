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

Other unit types: samples are in the layers' own values (spin -1/+1 as int8, Potts states as
uint8, Gaussian units as float64). Spin layers are sampled through their exact 0/1 equivalent
(:func:`fecli.model.binary_equivalent`, then x = 2y - 1); Gaussian and Potts layers through
:mod:`fecli.estimators.exact_layers` (exact: a finite layer with at most 2^exact_max_units
states is drawn from its tabulated marginal, a Gaussian-Gaussian model from its joint normal
law) and the generic Gibbs chains of :mod:`fecli.estimators.layered_sampling` at t = 1.
A Gaussian model trained with ``--standardize`` (or ``--scale``) gives samples in the data's
original units (the stored transform inverted, :class:`fecli.layer_data.DataTransform`).

Seeds: the same seed gives the same samples whatever NUMBA_NUM_THREADS is; every
chain (Gibbs) or block of rows (exact) has its own stream from ``SeedSequence(seed)``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from .errors import InvalidOptionError, RefusedError
from .model import RBM
from .validation import unknown_names_message

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
    """Samples ``v`` (n, n_visible), ``h`` (n, n_hidden); row i of h pairs with row i of v. uint8 0/1 for
    bernoulli units, int8 -1/+1 for spins, uint8 states for Potts units, float64 for Gaussian units."""

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
        raise InvalidOptionError(unknown_names_message("sampling method", [str(method)], list(METHODS)))
    beta = check_beta(beta)
    chains = _check_int("chains", chains, 1)
    burn_in = _check_int("burn_in", burn_in, 0)
    thin = _check_int("thin", thin, 1)
    exact_max_units = _check_int("exact_max_units", exact_max_units, 0)
    entropy = resolve_seed(seed)
    if not model.is_bernoulli:
        return _sample_layers(model, n, method, beta, entropy, chains, burn_in, thin, exact_max_units, progress, start)
    k = min(model.n_visible, model.n_hidden)
    if method == "auto":
        method = "exact" if k <= min(exact_max_units, EXACT_SAMPLE_MAX_UNITS) else "gibbs"
    if method == "exact":
        with _gibbs_hint():
            v, h = _exact(model, n, beta, entropy, progress)
        params = {"exact_max_units": exact_max_units}
    else:
        v, h = _gibbs(model, n, beta, entropy, chains, burn_in, thin, progress)
        params = {"chains": chains, "burn_in": burn_in, "thin": thin}
    return SampleResult(v=v.astype(np.uint8), h=h.astype(np.uint8), method=method, beta=beta, seed=entropy,
                        wall_time_s=time.perf_counter() - start, params=params)


@contextmanager
def _gibbs_hint() -> Iterator[None]:
    """A refusal of exact sampling (a layer too large to enumerate) says what to use instead."""
    try:
        yield
    except RefusedError as exc:
        raise RefusedError(f"{str(exc).rstrip('.')}. Use --method gibbs (block Gibbs chains) for this "
                           f"model.") from None


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


def output_dtype(layer) -> np.dtype:
    """The array type samples of a layer are saved as."""
    if layer.name == "gaussian":
        return np.dtype(np.float64)
    if layer.name == "spin":
        return np.dtype(np.int8)
    if layer.name == "potts" and layer.q > 256:
        return np.dtype(np.int16)
    return np.dtype(np.uint8)


def _sample_layers(model: RBM, n: int, method: str, beta: float, entropy: int, chains: int, burn_in: int, thin: int,
                   exact_max_units: int, progress, start: float) -> SampleResult:
    """:func:`sample` for models that are not bernoulli-bernoulli (see the module docstring)."""
    from .estimators.exact import EXACT_SAMPLE_MAX_UNITS
    from .estimators.exact_layers import plan
    from .model import binary_equivalent

    mapped, _ = binary_equivalent(model)
    if mapped.is_bernoulli:
        result = sample(mapped, n, method=method, beta=beta, seed=entropy, chains=chains, burn_in=burn_in, thin=thin,
                        exact_max_units=exact_max_units, progress=progress)
        v, h = result.v.astype(np.float64), result.h.astype(np.float64)
        if model.visible.name == "spin":
            v = 2.0 * v - 1.0
        if model.hidden.name == "spin":
            h = 2.0 * h - 1.0
    else:
        p = plan(mapped, "auto")
        enumerable = p.layer == "closed-form" or p.bits <= min(exact_max_units, EXACT_SAMPLE_MAX_UNITS) + 1e-9
        if method == "auto":
            method = "exact" if enumerable else "gibbs"
        if method == "exact":
            with _gibbs_hint():
                v, h = _exact_layers(model, n, beta, entropy, progress)
        else:
            v, h = _gibbs_layers(model, n, beta, entropy, chains, burn_in, thin, progress)
        result = SampleResult(v=v, h=h, method=method, beta=beta, seed=entropy, wall_time_s=0.0,
                              params={"exact_max_units": exact_max_units} if method == "exact" else
                              {"chains": chains, "burn_in": burn_in, "thin": thin})
    from .layer_data import stored_transform

    transform = stored_transform(model)
    if transform is not None:  # a model trained on standardized (or scaled) data: samples in the data's units
        v = transform.to_data_units(v)
        result.params["data_units"] = f"original (the stored transform inverted: the data {transform.describe()})"
    result.v = v.astype(output_dtype(model.visible))
    result.h = h.astype(output_dtype(model.hidden))
    result.wall_time_s = time.perf_counter() - start
    return result


def _exact_layers(model: RBM, n: int, beta: float, entropy: int, progress) -> tuple[np.ndarray, np.ndarray]:
    """Exact samples of any enumerable model, in blocks seeded as :func:`_exact`'s."""
    from .estimators._sampling_common import chunks
    from .estimators.exact import exact_sampler

    sampler = exact_sampler(model, beta)  # RefusedError (one line) when the layer is too large
    v = np.empty((n, model.n_visible))
    h = np.empty((n, model.n_hidden))
    for i, lo, hi in chunks(n, EXACT_BLOCK):
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(EXACT_STREAM, i)))
        v[lo:hi], h[lo:hi] = sampler.sample(hi - lo, rng)
        if progress is not None:
            progress("exact sampling", hi, n)
    return v, h


def _gibbs_layers(model: RBM, n: int, beta: float, entropy: int, chains: int, burn_in: int, thin: int,
                  progress) -> tuple[np.ndarray, np.ndarray]:
    """Block Gibbs at t = 1 of the generic path (the target at beta), from base-model samples."""
    from .estimators.layered_sampling import LayeredPath, base_layer, chunked_random, state_layer

    side = state_layer(model)
    base, _ = base_layer(model, beta, side, None)
    path = LayeredPath(model, beta, side, base)
    rng = chunked_random(entropy, chains)
    s = path.base_samples(chains, rng)
    rounds = math.ceil(n / chains)
    total = burn_in + rounds * thin
    every = max(1, total // 200)
    done = 0
    own = np.empty((rounds * chains, path.own.n))
    other = np.empty((rounds * chains, path.other.n))
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(total):
            s, o = path.sweep(s, 1.0, rng)
            done += 1
            if step >= burn_in and (step - burn_in + 1) % thin == 0:
                r = (step - burn_in + 1) // thin - 1
                own[r * chains:(r + 1) * chains], other[r * chains:(r + 1) * chains] = s, o
            if progress is not None and (done % every == 0 or done == total):
                progress("gibbs burn-in" if step < burn_in else "gibbs sampling", done, total)
    v, h = (own, other) if side == "visible" else (other, own)
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

