"""AIS, reverse AIS and importance sampling for models with Gaussian or Potts layers.

The bernoulli kernels (:mod:`fecli.kernels.anneal`) stay the bernoulli specialisation (spin
layers reach them through their 0/1 equivalent); this is the generic path, written with the
layer protocol of :mod:`fecli.layers`: BLAS for the products, numpy for the rest.

Chains hold the states s of one layer S (the "state" layer: a finite layer when there is one,
the visible layer if both are finite or both Gaussian); the other layer O is summed out through
its log-partition. With a factorized base model A of S's own type (bias theta_A, and for Gaussian
units a precision gamma_A), the path for t in [0, 1] is

    ln f_t(s) = -E_{S_t}(s) + Gamma_{O_t}(t beta W^T phi(s)),
    S_t: bias (1 - t) theta_A + t beta theta_S  [precision (1 - t) gamma_A + t beta gamma_S],
    O_t: bias t beta theta_O  [precision beta gamma_O: a Gaussian layer keeps its quadratic term,
         so every f_t is normalisable],

the marginal of p_t(s, o) ~ exp(-E_{S_t}(s) - E_{O_t}(o) + t beta phi(s)^T W phi(o)). At t = 0
the layers are independent and ln Z_0 = Gamma_A(0) + Gamma_{O_0}(0); at t = 1 it is the target.
A Gibbs sweep at t draws o ~ p_t(o | s), then s ~ p_t(s | o), each from its layer's ``sample``.

Base model A: with data (and S the visible layer) the factorized fit of the data (smoothed
feature means; a Gaussian unit's mean and variance); with data and S the hidden layer, the mean of
p(h | v) over the data rows; without data, the naive mean-field means of S
(:mod:`fecli.estimators.meanfield_layers`), clipped away from the domain's edge (a Gaussian base
gets the mean-field mean and the conditional precision diag of the marginal's precision matrix).

Estimates, error bars and kinds are those of the bernoulli estimators (fecli.estimators.ais,
importance): forward AIS and importance sampling are stochastic lower bounds, reverse AIS from
exact target samples a stochastic upper bound. Randomness: chains are cut in chunks of
CHAINS_PER_CHUNK; chunk i draws from its own SeedSequence (the streams of the bernoulli
estimators). Work: chains are cut in blocks of CHAINS_PER_BLOCK (importance samples in blocks of
SAMPLES_PER_CHUNK), each computed alone with one BLAS thread as the engine's tasks
(:func:`run_blocks`), so numbers depend on the seed only: not on the backend, the workers or the
grouping of blocks into tasks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidOptionError
from ..layers import Layer
from ..model import RBM
from ..result import Result
from ._sampling_common import (
    CHAINS_PER_CHUNK,
    chain_states,
    check_positive_int,
    check_schedule,
    make_schedule,
    numpy_rng,
    resolve_seed,
    summarize_log_weights,
)
from .exact import check_beta

from . import METHODS

#: Defaults: the bernoulli methods' declarations in the registry (the same options).
_AIS, _REVERSE = METHODS["ais"].defaults(), METHODS["reverse-ais"].defaults()
DEFAULT_CHAINS, DEFAULT_STEPS, DEFAULT_SCHEDULE, DEFAULT_SWEEPS = (_AIS[k] for k in ("chains", "steps", "schedule",
                                                                                    "sweeps"))
DEFAULT_BURN_IN, DEFAULT_EXACT_MAX_UNITS = _REVERSE["burn_in"], _REVERSE["exact_max_units"]
DEFAULT_SAMPLES = METHODS["importance"].defaults()["samples"]
SAMPLES_PER_CHUNK = 1000
#: Chains per block of the annealing runs (a multiple of CHAINS_PER_CHUNK; benchmarks/bench_units.py).
CHAINS_PER_BLOCK = 4 * CHAINS_PER_CHUNK
#: Stream of importance sampling's chunks (as fecli.estimators.importance).
_IMPORTANCE_STREAM = 2
#: Base-model means are kept this far inside the domain of finite units.
MEAN_CLIP = 1e-3
PROGRESS_UPDATES = 200


class ChunkedRandom:
    """Draws for many rows, each chunk of rows from its own generator (rows on axis 0).

    Quacks like a numpy Generator for the layers' ``sample`` (``random`` and ``standard_normal``),
    so a layer samples all chains in one vectorised call while every chunk keeps its own stream.
    """

    def __init__(self, bounds: list[tuple[int, int]], generators: list[np.random.Generator]):
        self.bounds, self.generators = bounds, generators

    def _draw(self, name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        out = np.empty(shape, dtype=dtype)
        for (lo, hi), g in zip(self.bounds, self.generators):
            getattr(g, name)((hi - lo,) + tuple(shape[1:]), dtype=dtype, out=out[lo:hi])
        return out

    def random(self, shape, dtype=np.float64):
        return self._draw("random", tuple(np.atleast_1d(shape)), dtype)

    def standard_normal(self, shape, dtype=np.float64):
        return self._draw("standard_normal", tuple(np.atleast_1d(shape)), dtype)


def chunked_random(entropy: int, n: int, stream: int = 0) -> ChunkedRandom:
    seqs = chain_states(entropy, n, stream)
    return ChunkedRandom([(lo, hi) for lo, hi, _ in seqs], [numpy_rng(seq) for _, _, seq in seqs])


def block_random(entropy: int, lo: int, hi: int, stream: int = 0) -> ChunkedRandom:
    """The draws of chains lo..hi-1 (a block: lo a multiple of CHAINS_PER_CHUNK), rows 0..hi-lo-1,
    each chunk from the stream :func:`chunked_random` gives it in a run of all chains."""
    first = lo // CHAINS_PER_CHUNK
    seqs = chain_states(entropy, hi, stream, range(first, -(-hi // CHAINS_PER_CHUNK)))
    return ChunkedRandom([(a - lo, b - lo) for a, b, _ in seqs], [numpy_rng(seq) for _, _, seq in seqs])


# --------------------------------------------------------------------------------------------
# Blocks of chains: the unit of work, here and on a cluster


def block_bounds(n: int, per_block: int) -> list[tuple[int, int]]:
    """(lo, hi) of the blocks that cover n chains, in order."""
    return [(lo, min(lo + per_block, n)) for lo in range(0, n, per_block)]


class BlockJob:
    """A run of the generic path cut in blocks of chains (picklable: a cluster's tasks get a copy).

    Subclasses give :meth:`block` (block index, rows lo..hi-1, progress -> array); the path is built
    lazily where the blocks run (one BLAS thread), never pickled: its projectors are closures.
    """

    model: RBM
    beta: float
    side: str
    base: Layer

    @property
    def path(self) -> "LayeredPath":
        """This thread's path (the projectors keep scratch buffers: one path per thread, should
        blocks ever run on threads)."""
        import threading

        paths = self.__dict__.setdefault("_paths", {})
        key = threading.get_ident()
        if key not in paths:
            paths[key] = LayeredPath(self.model, self.beta, self.side, self.base)
        return paths[key]

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_paths"}

    def block(self, index: int, lo: int, hi: int, progress) -> np.ndarray:
        raise NotImplementedError


def run_blocks(job: BlockJob, n: int, label: str, progress=None, per_block: int | None = None) -> list:
    """``job.block`` over the blocks of n chains as tasks of the current backend (fecli.engine):
    the blocks' results in order. Every block is computed alone with one BLAS thread (a BLAS product
    over more rows, or with more threads, may round a row otherwise), so the bits do not depend on
    the backend, on the workers, or on how blocks are grouped into tasks."""
    from ..engine import run_chunks

    bounds = block_bounds(n, per_block or CHAINS_PER_BLOCK)
    parts = run_chunks(_block_task, (job, bounds, label), len(bounds), label, progress)
    return [r for part in parts for r in part]


def _block_task(shared: tuple, ids: range, progress) -> list:
    """The engine's task: blocks ``ids`` of a :func:`run_blocks` run, one after the other with one
    BLAS thread (progress: steps of all its blocks together).

    Measured on the 784 x 500 Gaussian-Bernoulli AIS (benchmarks/bench_units.py): one BLAS thread
    costs no wall time there (the 0/1 row sums are the larger part), and running the blocks on a
    pool of Python threads instead was slower and erratic (the compiled row sums hold the GIL)."""
    from threadpoolctl import threadpool_limits

    job, bounds, label = shared

    def report(j: int):
        if progress is None:
            return None
        return lambda lbl, k, total: progress(lbl, j * total + k, len(ids) * total)

    with threadpool_limits(1, user_api="blas"):
        return [job.block(b, *bounds[b], report(j)) for j, b in enumerate(ids)]


# --------------------------------------------------------------------------------------------
# The path


def state_layer(model: RBM) -> str:
    """'visible' or 'hidden': the layer the chains hold (finite if possible, visible on ties)."""
    if model.visible.finite or not model.hidden.finite:
        return "visible"
    return "hidden"


def _clip_means(layer: Layer, m: np.ndarray) -> np.ndarray:
    if layer.name == "bernoulli":
        return np.clip(m, MEAN_CLIP, 1.0 - MEAN_CLIP)
    if layer.name == "spin":
        return np.clip(m, -1.0 + 2 * MEAN_CLIP, 1.0 - 2 * MEAN_CLIP)
    if layer.name == "potts":
        p = np.clip(m.reshape(layer.n, layer.q), MEAN_CLIP, None)
        return (p / p.sum(axis=1, keepdims=True)).ravel()
    return m


def factorized_layer(layer: Layer, means: np.ndarray, precision: np.ndarray | None = None) -> Layer:
    """A layer of ``layer``'s type, no couplings, whose feature means are ``means`` (beta = 1)."""
    means = _clip_means(layer, np.asarray(means, dtype=np.float64))
    if layer.name == "gaussian":
        return layer.replace(bias=precision * means, precision=precision)
    return layer.replace(bias=layer.natural(means).reshape(layer.bias.shape))


def base_layer(model: RBM, beta: float, side: str, data: np.ndarray | None) -> tuple[Layer, str]:
    """The base model A of the state layer and where it came from (module docstring)."""
    layer = getattr(model, side)
    if data is not None and side == "visible":
        from .meanfield_layers import base_rate_means

        means = base_rate_means(layer, data)
        if layer.name == "gaussian":
            var = np.maximum(data.var(axis=0), 1e-12)
            return factorized_layer(layer, means, 1.0 / var), "data mean and variance"
        return factorized_layer(layer, means), "data base rate (pseudocount 1)"
    if data is not None:
        field = model.hidden_input(data)
        means = model.hidden.mean(field, beta).mean(axis=0)
        prec = beta * model.hidden.precision if layer.name == "gaussian" else None
        return factorized_layer(layer, means, prec), "mean of p(h | v) over the data rows"
    from .meanfield_layers import Scaled, initial_means, solve

    p = Scaled.of(model, beta)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        fp = solve(p, 1, initial_means(p, 1, None, 0)[0], 1e-7, 2000, 0.3)
    means = fp.x[0] if side == "visible" else fp.y[0]
    prec = None
    if layer.name == "gaussian":
        other = model.hidden if side == "visible" else model.visible
        w2 = model.weights2d ** 2 if side == "visible" else (model.weights2d ** 2).T
        other_prec = other.precision if other.name == "gaussian" else None
        prec = beta * layer.precision
        if other_prec is not None:  # diag of the marginal's precision matrix beta (gamma - W gamma_o^-1 W^T)
            prec = beta * (layer.precision - w2 @ (1.0 / other_prec))
    return factorized_layer(layer, means, prec), "naive mean-field means"


def binary_projector(layer: Layer, w: np.ndarray):
    """x -> phi(x) @ w for rows of ``layer``'s states: for 0/1 and +-1 units the 0/1 row sums of
    :mod:`fecli.kernels.anneal` (the active rows of w added in float64, no BLAS call: a product of
    a few hundred chains by a small matrix is faster so than through a threaded BLAS), with
    x = 2y - 1 for spins (x @ w = 2 (y @ w) - 1^T w); ``layer.project`` (BLAS or a Potts gather)
    for the others."""
    if layer.name not in ("bernoulli", "spin"):
        return lambda x: layer.project(x, w)
    from ..kernels.anneal import _binary_products

    w = np.ascontiguousarray(w, dtype=np.float64)
    colsum = w.sum(axis=0)
    idx = np.empty(w.shape[0], dtype=np.int64)
    spin = layer.name == "spin"

    def project(x: np.ndarray) -> np.ndarray:
        bits = np.ascontiguousarray((x > 0) if spin else x, dtype=np.float64)
        out = np.empty((bits.shape[0], w.shape[1]))
        _binary_products(bits, 0, bits.shape[0], w, colsum, out, idx)
        return 2.0 * out - colsum if spin else out

    return project


@dataclass
class LayeredPath:
    """ln f_t between the factorized base A of the state layer and the target at beta."""

    model: RBM
    beta: float
    side: str
    base: Layer

    def __post_init__(self) -> None:
        m = self.model
        self.own: Layer = getattr(m, self.side)
        self.other: Layer = m.hidden if self.side == "visible" else m.visible
        w = m.weights2d if self.side == "visible" else m.weights2d.T
        self.w = np.ascontiguousarray(self.beta * w)  # (dim_own, dim_other)
        self.wt = np.ascontiguousarray(self.w.T)      # (dim_other, dim_own), for the own layer's field
        self._own_project = binary_projector(self.own, self.w)
        self._other_project = binary_projector(self.other, self.wt)
        if self.other.name == "gaussian":
            # The other layer's field on the chains' layer only decides draws, never a log weight: a
            # float32 product (half the memory traffic) moves a logit by ~1e-7 of its magnitude.
            wt32 = self.wt.astype(np.float32)
            self._other_project = lambda o: (np.asarray(o, dtype=np.float32) @ wt32).astype(np.float64)
        self.own_target = self.own.scaled(self.beta)
        self.other_target = self.other.scaled(self.beta)
        # For chains at different t (tempering, thermodynamic integration): the other layer without
        # its bias (the bias goes into the field, t (field + beta theta_O)), and the own layer's
        # linear parameters at both ends as features.
        self.other_free = self.other_target.replace(bias=np.zeros_like(self.other_target.bias))
        self.other_shift = self.other_target.bias.ravel()
        self.base_shift = self.base.bias.ravel()
        self.target_shift = self.own_target.bias.ravel()
        self.own_free = None if self.own.name == "gaussian" else self.own.replace(bias=np.zeros_like(self.own.bias))

    def own_at(self, t: float) -> Layer:
        a, b = self.base.parameters(), self.own_target.parameters()
        return self.own.replace(**{k: (1.0 - t) * a[k] + t * b[k] for k in a})

    def other_at(self, t: float) -> Layer:
        return self.other_target.replace(bias=t * self.other_target.bias)

    @property
    def log_z_base(self) -> float:
        """ln Z_0 = Gamma_A(0) + Gamma_{O_0}(0)."""
        return float(self.base.cgf(np.zeros(self.base.dim)) + self.other_at(0.0).cgf(np.zeros(self.other.dim)))

    def field(self, s: np.ndarray) -> np.ndarray:
        """beta W^T phi(s) for rows of s (:func:`binary_projector`)."""
        return self._own_project(s)

    def log_f(self, s: np.ndarray, t: float, field: np.ndarray | None = None) -> np.ndarray:
        """ln f_t(s) for rows of s (``field`` = self.field(s) when already known)."""
        if field is None:
            field = self.field(s)
        return -self.own_at(t).energy(s) + self.other_at(t).cgf(t * field)

    def base_samples(self, n: int, rng: Any) -> np.ndarray:
        return self.base.sample(np.zeros((n, self.base.dim)), rng)

    def sweep(self, s: np.ndarray, t: float, rng: Any, field: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One Gibbs sweep o ~ p_t(o | s), s ~ p_t(s | o); returns (new s, o)."""
        if field is None:
            field = self.field(s)
        o = self.other_at(t).sample(t * field, rng)
        s_new = self.own_at(t).sample(t * self._other_project(o), rng)
        return s_new, o

    # -- chains at their own t (rows): tempering ladders and thermodynamic integration -------------
    def parts(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(E_A(s), beta E_S(s), beta W^T phi(s)) for rows of s: ln f_t for any t follows from these
        (:meth:`log_f_rows`), since the energies are linear in the parameters that t interpolates."""
        return self.base.energy(s), self.own_target.energy(s), self.field(s)

    def log_f_rows(self, e_base: np.ndarray, e_target: np.ndarray, field: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        """ln f_t(s) = -(1 - t) E_A(s) - t beta E_S(s) + Gamma_O(t (beta W^T phi(s) + beta theta_O)) per row,
        with t a scalar or one value per row (from :meth:`parts`)."""
        t = np.asarray(t, dtype=np.float64)
        tc = t[..., None] if t.ndim else t
        return -(1.0 - t) * e_base - t * e_target + self.other_free.cgf(tc * (field + self.other_shift))

    def dlog_f_dt(self, e_base: np.ndarray, e_target: np.ndarray, field: np.ndarray, t: float) -> np.ndarray:
        """d ln f_t(s) / dt = E_A(s) - beta E_S(s) + E[phi(o) | s, t] . (beta W^T phi(s) + beta theta_O) per row
        (thermodynamic integration's integrand; the derivative of a cgf is the mean of the features)."""
        u = field + self.other_shift
        return e_base - e_target + (self.other_free.mean(t * u) * u).sum(axis=-1)

    def sweep_rows(self, s: np.ndarray, t: np.ndarray, rng: Any, field: np.ndarray | None = None) -> np.ndarray:
        """One Gibbs sweep o ~ p_t(o | s), s ~ p_t(s | o) of every row at its own t (t: (rows,))."""
        tc = np.asarray(t, dtype=np.float64)[:, None]
        if field is None:
            field = self.field(s)
        o = self.other_free.sample(tc * (field + self.other_shift), rng)
        g = tc * self._other_project(o)
        if self.own_free is None:  # Gaussian: the precision moves with t too
            prec = (1.0 - tc) * self.base.precision + tc * self.own_target.precision
            mean = ((1.0 - tc) * self.base.bias + tc * self.own_target.bias + g) / prec
            return mean + rng.standard_normal(mean.shape) / np.sqrt(prec)
        return self.own_free.sample(g + (1.0 - tc) * self.base_shift + tc * self.target_shift, rng)

    def other_given(self, s: np.ndarray, rng: Any) -> np.ndarray:
        """Draws of the other layer from p_beta(o | s) at the target (t = 1), one per row of s."""
        return self.other_target.sample(self.field(s), rng)


class GaussianSummedOut:
    """The path's Gibbs sweep and ln f_t with a Gaussian other layer integrated out exactly, for 0/1
    chains (Gaussian-Bernoulli models, and Bernoulli-Gaussian ones: chains on the finite layer).

    With w = beta W (own -> other), P = beta gamma_O and theta' = beta theta_O, the other layer's draw
    o ~ N(t (theta' + s w) / P, 1 / P) enters the sweep only through the own layer's field
    g = t o w^T. That field is Gaussian given s:

        g = t^2 (c + s M) + t z L^T,    M = w diag(1/P) w^T = L L^T,  c = w (theta' / P),  z ~ N(0, I),

    so the sweep draws g directly (no draw of o), and the log-partition of the other layer is
    Gamma_{O_t}(t s w) = t^2 (q0 + 2 s.c + s M s^T) / 2 + (1/2) sum ln(2 pi / P), q0 = sum theta'^2 / P.
    When M is positive definite (the own layer is the smaller one), L is its Cholesky factor and
    a = s L, a float64 0/1 row sum of a triangle (:mod:`fecli.kernels.gaussian`), gives both: the log
    weights through s M s^T = |a|^2 and the field through g = t^2 c + (t^2 a + t z) L^T, one float32
    triangular product (draws only). Otherwise a = s M (0/1 row sums) and the noise is z diag(P)^(-1/2) w^T.
    """

    def __init__(self, path: "LayeredPath"):
        w, prec, theta = path.w, path.other_target.precision, path.other_target.bias
        m = (w / prec) @ w.T
        self.c = w @ (theta / prec)
        self.q0 = float((theta * theta / prec).sum())
        self.const = float(0.5 * np.log(2.0 * math.pi / prec).sum())
        lower = None
        if w.shape[0] < w.shape[1]:
            try:
                lower = np.linalg.cholesky(m)
            except np.linalg.LinAlgError:
                lower = None
        self.triangular = lower is not None
        if self.triangular:
            self.lower = np.ascontiguousarray(lower)
            self.lower_colsum = self.lower.sum(axis=0)
            self.upper32 = np.asarray(lower.T, dtype=np.float32, order="F")  # what strmm reads without a copy
        else:
            self.m = np.ascontiguousarray(m)
            self._project_m = binary_projector(path.own, self.m)
            self.noise = np.ascontiguousarray(path.wt / np.sqrt(prec)[:, None], dtype=np.float32)

    @staticmethod
    def applies(path: "LayeredPath") -> bool:
        return path.other.name == "gaussian" and path.own.name == "bernoulli"

    def project(self, s: np.ndarray) -> np.ndarray:
        """a = s L (or s M): the one product of the chains' states a step needs."""
        if not self.triangular:
            return self._project_m(s)
        from ..kernels.gaussian import lower_binary_products

        out = np.empty(s.shape)
        lower_binary_products(np.ascontiguousarray(s), self.lower, self.lower_colsum, out)
        return out

    def log_f(self, path: "LayeredPath", s: np.ndarray, a: np.ndarray, t: float) -> np.ndarray:
        quad = np.einsum("ij,ij->i", a, a) if self.triangular else np.einsum("ij,ij->i", a, s)
        return -path.own_at(t).energy(s) + 0.5 * t * t * (self.q0 + 2.0 * (s @ self.c) + quad) + self.const

    def sweep(self, path: "LayeredPath", s: np.ndarray, a: np.ndarray, t: float, rng: Any) -> np.ndarray:
        """New 0/1 states: s_i = 1 when u_i < sigmoid(x_i), written u_i (1 + e^-x_i) < 1 (one exp, no
        division), x = the own layer's bias at t + g."""
        z = rng.standard_normal((s.shape[0], self.upper32.shape[0] if self.triangular else self.noise.shape[0]),
                                dtype=np.float32)
        bias = (1.0 - t) * path.base.bias + t * path.own_target.bias + t * t * self.c
        if self.triangular:
            from scipy.linalg.blas import strmm

            x = bias + strmm(1.0, self.upper32, (t * t) * a.astype(np.float32) + t * z, side=1, lower=0)
        else:
            x = bias + t * t * a + t * (z @ self.noise)
        return (rng.random(x.shape) * (1.0 + np.exp(-x)) < 1.0).astype(np.float64)


def anneal(path: LayeredPath, s: np.ndarray, ts: np.ndarray, sweeps: int, rng: Any, progress=None,
           label: str = "annealing") -> tuple[np.ndarray, np.ndarray]:
    """(log weights sum_k ln f_k(s_k) - ln f_{k-1}(s_k), final states) along ts[0] -> ts[-1]."""
    if GaussianSummedOut.applies(path):
        return _anneal_summed_out(path, GaussianSummedOut(path), s, ts, sweeps, rng, progress, label)
    logw = np.zeros(s.shape[0])
    K = len(ts) - 1
    every = max(1, K // PROGRESS_UPDATES)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for k in range(1, K + 1):
            field = path.field(s)
            logw += path.log_f(s, float(ts[k]), field) - path.log_f(s, float(ts[k - 1]), field)
            if k < K:
                for sweep in range(sweeps):
                    s, _ = path.sweep(s, float(ts[k]), rng, field if sweep == 0 else None)
            if progress is not None and (k % every == 0 or k == K):
                progress(label, k, K)
    return logw, s


def _anneal_summed_out(path: LayeredPath, summed: GaussianSummedOut, s: np.ndarray, ts: np.ndarray, sweeps: int,
                       rng: Any, progress, label: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`anneal` with the Gaussian other layer integrated out (:class:`GaussianSummedOut`)."""
    logw = np.zeros(s.shape[0])
    K = len(ts) - 1
    every = max(1, K // PROGRESS_UPDATES)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for k in range(1, K + 1):
            sm = summed.project(s)
            logw += summed.log_f(path, s, sm, float(ts[k])) - summed.log_f(path, s, sm, float(ts[k - 1]))
            if k < K:
                for sweep in range(sweeps):
                    s = summed.sweep(path, s, sm if sweep == 0 else summed.project(s), float(ts[k]), rng)
            if progress is not None and (k % every == 0 or k == K):
                progress(label, k, K)
    return logw, s


@dataclass
class AnnealJob(BlockJob):
    """AIS (forward, or reverse along a reversed schedule) in blocks: each block's chains start from
    ``start`` rows (or base samples), make ``burn_in`` sweeps at ts[-1] if asked, then anneal along
    ``ts``; draws from the chunks' streams (stream 0, as the bernoulli AIS)."""

    model: RBM
    beta: float
    side: str
    base: Layer
    entropy: int
    ts: np.ndarray
    sweeps: int
    label: str
    start: np.ndarray | None = None
    burn_in: int = 0

    def block(self, index: int, lo: int, hi: int, progress) -> np.ndarray:
        path, rng = self.path, block_random(self.entropy, lo, hi)
        s = path.base_samples(hi - lo, rng) if self.start is None else self.start[lo:hi]
        total = self.burn_in + len(self.ts) - 1  # progress: burn-in sweeps, then annealing steps
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for done in range(self.burn_in):  # Gibbs sweeps at the target
                s, _ = path.sweep(s, 1.0, rng)
                if progress is not None and (done + 1) % max(1, self.burn_in // 100) == 0:
                    progress(self.label, done + 1, total)
        steps = None if progress is None else (lambda lbl, k, K: progress(lbl, self.burn_in + k, total))
        return anneal(path, s, self.ts, self.sweeps, rng, steps, self.label)[0]


@dataclass
class ImportanceJob(BlockJob):
    """Importance sampling in blocks of SAMPLES_PER_CHUNK samples; block i draws from
    SeedSequence(entropy, spawn_key=(2, i))."""

    model: RBM
    beta: float
    side: str
    base: Layer
    entropy: int

    def block(self, index: int, lo: int, hi: int, progress) -> np.ndarray:
        path = self.path
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(_IMPORTANCE_STREAM, index)))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            s = path.base_samples(hi - lo, rng)
            field = path.field(s)
            logw = path.log_f(s, 1.0, field) - path.log_f(s, 0.0, field)
        if progress is not None:
            progress("importance", 1, 1)
        return logw


@dataclass
class IntegrandJob(BlockJob):
    """Thermodynamic integration's chains in blocks (:func:`_integrand_means` along ``ts``), from
    ``start`` rows or base samples; draws from the chunks of ``stream``."""

    model: RBM
    beta: float
    side: str
    base: Layer
    entropy: int
    ts: np.ndarray
    sweeps: int
    label: str
    stream: int
    start: np.ndarray | None = None

    def block(self, index: int, lo: int, hi: int, progress) -> np.ndarray:
        path, rng = self.path, block_random(self.entropy, lo, hi, self.stream)
        s = path.base_samples(hi - lo, rng) if self.start is None else self.start[lo:hi]
        return _integrand_means(path, s, self.ts, self.sweeps, rng, progress, self.label)


def _check(beta, chains, steps, schedule, sweeps):
    return (check_beta(beta), check_positive_int("chains", chains), check_positive_int("steps", steps),
            check_schedule(schedule), check_positive_int("sweeps", sweeps))


def _setup(model: RBM, beta: float, data: Any):
    from ..layer_data import resolve_for

    rows, label = resolve_for(data, model)
    side = state_layer(model)
    base, note = base_layer(model, beta, side, rows)
    return LayeredPath(model, beta, side, base), rows, label, note


def _result(model: RBM, method: str, beta: float, path: LayeredPath, logw: np.ndarray, entropy: int, kind: str,
            start: float, params: dict, note: str, sign: float = 1.0, what: str = "AIS log weights",
            extra: dict | None = None, warnings: list | None = None, unit: str = "chains",
            advice: str = "use more steps or chains") -> Result:
    summary = summarize_log_weights(logw, entropy, what, unit=unit, sign=sign, advice=advice)
    log_z0 = path.log_z_base
    return Result(
        model=model.name, method=method, beta=beta, log_z=log_z0 + summary.log_mean, kind=kind,
        n_visible=model.n_visible, n_hidden=model.n_hidden, stderr=summary.stderr,
        ci_low=log_z0 + summary.ci_low, ci_high=log_z0 + summary.ci_high, wall_time_s=time.perf_counter() - start,
        params=params,
        diagnostics={**summary.diagnostics(log_z0), "base_model": note, "log_z_base": log_z0, "state_layer": path.side,
                     "log_weight_sd": float(np.std(logw)), "log_weights": logw.tolist(), **(extra or {})},
        warnings=[*(warnings or []), *summary.warnings],
    )


def ais(model: RBM, *, beta: float = 1.0, chains: int = DEFAULT_CHAINS, steps: int = DEFAULT_STEPS,
        schedule: str = DEFAULT_SCHEDULE, sweeps: int = DEFAULT_SWEEPS, data: Any = None, seed: int | None = None,
        progress=None) -> Result:
    """Forward AIS (Neal 2001) of ln Z(beta) for any unit types: a stochastic lower bound.

    Options as :func:`fecli.estimators.ais.ais`; the path and base model are in the module docstring.
    """
    start = time.perf_counter()
    beta, chains, steps, schedule, sweeps = _check(beta, chains, steps, schedule, sweeps)
    entropy = resolve_seed(seed)
    path, _, label, note = _setup(model, beta, data)
    job = AnnealJob(model, beta, path.side, path.base, entropy, make_schedule(schedule, steps), sweeps, "ais")
    logw = np.concatenate(run_blocks(job, chains, "ais", progress))
    params = {"chains": chains, "steps": steps, "schedule": schedule, "sweeps": sweeps, "data": label, "seed": entropy}
    return _result(model, "ais", beta, path, logw, entropy, "stochastic_lower_bound", start, params, note)


def reverse_ais(model: RBM, *, beta: float = 1.0, chains: int = DEFAULT_CHAINS, steps: int = DEFAULT_STEPS,
                schedule: str = DEFAULT_SCHEDULE, sweeps: int = DEFAULT_SWEEPS, data: Any = None,
                burn_in: int = DEFAULT_BURN_IN, exact_max_units: int = DEFAULT_EXACT_MAX_UNITS,
                seed: int | None = None, progress=None) -> Result:
    """Reverse AIS (Grosse, Ghahramani & Adams 2015) for any unit types.

    From exact target samples (when the enumerated layer has at most 2^exact_max_units states, or
    the model is Gaussian-Gaussian) a stochastic upper bound; otherwise from ``burn_in`` Gibbs
    sweeps at the target (from data rows when given and the chains hold the visible layer, else
    from base samples), an estimate that says so. Checked against forward AIS on the same path
    (:func:`fecli.estimators.ais.check_against_forward`).
    """
    from .exact_layers import LayeredExactSampler, plan

    start = time.perf_counter()
    beta, chains, steps, schedule, sweeps = _check(beta, chains, steps, schedule, sweeps)
    burn_in = check_positive_int("burn_in", burn_in)
    if isinstance(exact_max_units, bool) or not isinstance(exact_max_units, (int, np.integer)) or exact_max_units < 0:
        raise InvalidOptionError(f"exact_max_units must be an integer >= 0, got {exact_max_units!r}.")
    entropy = resolve_seed(seed)
    path, rows, label, note = _setup(model, beta, data)
    ts = make_schedule(schedule, steps)
    p = plan(model, "auto")
    exact = p.layer == "closed-form" or p.bits <= exact_max_units + 1e-9
    warnings = []
    job = AnnealJob(model, beta, path.side, path.base, entropy, ts[::-1].copy(), sweeps, "reverse-ais")
    if exact:
        sampler = LayeredExactSampler(model, beta, max_bits=max(exact_max_units, 0))
        seqs = chain_states(entropy, chains, 1)
        parts = [sampler.sample(hi - lo, numpy_rng(seq)) for lo, hi, seq in seqs]
        job.start = np.concatenate([v if path.side == "visible" else h for v, h in parts])
        start_note = "exact samples of the target"
    else:
        if rows is not None and path.side == "visible":
            pick = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(1,))).integers(0, rows.shape[0], chains)
            job.start = rows[pick]
            start_note = f"{burn_in} Gibbs sweeps at the target from data rows"
        else:
            start_note = f"{burn_in} Gibbs sweeps at the target from base-model samples"
        job.burn_in = burn_in
        warnings.append(f"the starting states are not exact target samples ({start_note}); "
                        "the result is an approximate upper bound only, reported as an estimate.")
    logr = np.concatenate(run_blocks(job, chains, "reverse-ais", progress))
    params = {"chains": chains, "steps": steps, "schedule": schedule, "sweeps": sweeps, "data": label,
              "burn_in": None if exact else burn_in, "exact_max_units": int(exact_max_units), "seed": entropy}
    result = _result(model, "reverse-ais", beta, path, logr, entropy,
                     "stochastic_upper_bound" if exact else "estimate", start, params, note, sign=-1.0,
                     what="reverse AIS log weights", extra={"start": start_note}, warnings=warnings)
    from .ais import check_against_forward

    forward = ais(model, beta=beta, chains=chains, steps=steps, schedule=schedule, sweeps=sweeps, data=data,
                  seed=entropy, progress=progress)
    result.wall_time_s = time.perf_counter() - start
    return check_against_forward(result, forward)


def importance(model: RBM, *, beta: float = 1.0, samples: int = DEFAULT_SAMPLES, data: Any = None,
               seed: int | None = None, progress=None) -> Result:
    """Importance sampling of ln Z(beta) for any unit types with the factorized base model A of the
    state layer as proposal: ln Z ~ ln Z_0 + logmeanexp(ln f_1(s) - ln f_0(s)), s ~ A exactly
    (stochastic lower bound). Chunk i of SAMPLES_PER_CHUNK samples uses SeedSequence(seed,
    spawn_key=(2, i))."""
    start = time.perf_counter()
    beta = check_beta(beta)
    samples = check_positive_int("samples", samples)
    entropy = resolve_seed(seed)
    path, _, label, note = _setup(model, beta, data)
    job = ImportanceJob(model, beta, path.side, path.base, entropy)
    logw = np.concatenate(run_blocks(job, samples, "importance", progress, per_block=SAMPLES_PER_CHUNK))
    params = {"samples": samples, "data": label, "seed": entropy}
    return _result(model, "importance", beta, path, logw, entropy, "stochastic_lower_bound", start, params, note,
                   what="importance log weights", unit="samples",
                   advice="a factorised proposal does not fit this model; the estimate is likely far too low: use ais")


# --------------------------------------------------------------------------------------------
# Thermodynamic integration


def _integrand_means(path: LayeredPath, s: np.ndarray, ts: np.ndarray, sweeps: int, rng: Any, progress,
                     label: str) -> np.ndarray:
    """(chains, len(ts)) means of d ln f_t / dt at each grid point, recorded after each of the last
    sweeps - sweeps // 2 sweeps there (as :func:`fecli.estimators.ti.integrand_means`)."""
    out = np.zeros((s.shape[0], len(ts)))
    settle = sweeps // 2
    every = max(1, len(ts) // PROGRESS_UPDATES)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for k, t in enumerate(ts):
            t = float(t)
            for _ in range(settle):
                s, _ = path.sweep(s, t, rng)
            for _ in range(sweeps - settle):
                s, _ = path.sweep(s, t, rng)
                out[:, k] += path.dlog_f_dt(*path.parts(s), t)
            if progress is not None and (k % every == 0 or k == len(ts) - 1):
                progress(label, k + 1, len(ts))
    return out / (sweeps - settle)


def target_start(model: RBM, path: LayeredPath, n: int, entropy: int, stream: int, data: Any, burn_in: int,
                 exact_max_units: int, progress=None) -> tuple[np.ndarray, str, list[str]]:
    """``n`` states of the chains' layer at the target: exact samples when the enumerated layer has at
    most ``exact_max_units`` units (or the model is Gaussian-Gaussian), else from parallel tempering
    (:func:`fecli.estimators.layered_tempering.tempered_states`, burn_in // 4 rounds of burn-in and as
    many recorded, as the bernoulli estimators). Returns (states, how they were made, warnings)."""
    from .exact_layers import LayeredExactSampler, plan

    p = plan(model, "auto")
    if p.layer == "closed-form" or p.bits <= exact_max_units + 1e-9:
        sampler = LayeredExactSampler(model, path.beta, max_bits=max(exact_max_units, 0))
        parts = [sampler.sample(hi - lo, numpy_rng(seq)) for lo, hi, seq in chain_states(entropy, n, stream)]
        return np.concatenate([v if path.side == "visible" else h for v, h in parts]), "exact samples of the target", []
    from .layered_tempering import tempered_states

    seed = int(np.random.SeedSequence(entropy, spawn_key=(stream, 2**31 - 3)).generate_state(1, np.uint64)[0] >> 11)
    rounds = max(100, burn_in // 4)
    states, _, note, warnings = tempered_states(model, path.beta, n, seed, data=data, burn_in=rounds, rounds=rounds,
                                                progress=progress)
    return states, note, warnings


def ti(model: RBM, *, beta: float = 1.0, chains: int, steps: int, schedule: str, sweeps: int, data: Any = None,
       burn_in: int, exact_max_units: int, seed: int | None = None, progress=None) -> Result:
    """Thermodynamic integration (:func:`fecli.estimators.ti.ti`) for any unit types, on the path of
    the parallel-tempering ladders (:func:`fecli.estimators.layered_tempering.tempering_path`: a uniform
    base for a finite state layer). Half the chains start from exact base samples and move up the grid,
    half start at the target (:func:`target_start`) and move down; the integrand is
    :meth:`LayeredPath.dlog_f_dt`. Options are checked by the caller."""
    from ..layer_data import resolve_for
    from .layered_tempering import tempering_path
    from .ti import _STREAM, _STREAM_DOWN, ti_result

    start = time.perf_counter()
    entropy = resolve_seed(seed)
    rows, label = resolve_for(data, model)
    path, note = tempering_path(model, beta, rows)
    ts = make_schedule(schedule, steps)
    n_up, n_down = (chains + 1) // 2, chains // 2
    up_job = IntegrandJob(model, beta, path.side, path.base, entropy, ts, sweeps, "ti up", _STREAM)
    up = np.concatenate(run_blocks(up_job, n_up, "ti up", progress))
    s_down, down_note, warnings = target_start(model, path, n_down, entropy, _STREAM_DOWN, data, burn_in,
                                               exact_max_units, progress)
    down_job = IntegrandJob(model, beta, path.side, path.base, entropy, ts[::-1].copy(), sweeps, "ti down",
                            _STREAM_DOWN, s_down)
    down = (np.concatenate(run_blocks(down_job, n_down, "ti down", progress)) if n_down
            else np.zeros((0, len(ts))))[:, ::-1]
    params = {"chains": chains, "steps": steps, "schedule": schedule, "sweeps": sweeps, "burn_in": burn_in,
              "data": label, "seed": entropy}
    result = ti_result(model, beta, ts, up, down, path.log_z_base, params,
                       {"base_model": note, "down_start": down_note, "state_layer": path.side}, start)
    result.warnings = [*warnings, *result.warnings]
    return result
