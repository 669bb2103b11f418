"""Exact ln Z by enumeration of the smaller layer (Gray-code order, Numba, parallel).

    ln Z(beta) = logsumexp_{h in {0,1}^nh} [ beta b.h + sum_i softplus(beta (a_i + (W h)_i)) ]

(or the same over v with the roles of the layers swapped). The cost is 2^k states
times n softplus evaluations, where k is the size of the enumerated layer and n
the size of the other. See :mod:`fecli.kernels.enumeration` for the kernel.

That is the bernoulli-bernoulli fast path. Every other combination of unit types (spin,
Gaussian, Potts layers) goes through :mod:`fecli.estimators.exact_layers`: the finite layer
with fewer states is enumerated with the other summed out by its log-partition, and a
Gaussian-Gaussian model is integrated in closed form (refused when not normalisable).
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

import numpy as np

from ..errors import InvalidOptionError, RefusedError
from ..validation import check_beta, check_positive_int  # check_beta re-exported: estimators import it from here
from ..estimators import METHODS, Feasibility
from ..model import RBM
from ..result import Result

#: Library defaults, declared with the options in the registry (fecli/estimators/__init__.py):
#: the largest enumerated layer (raise it with ``max_units``) and the layer to enumerate.
DEFAULT_MAX_UNITS, DEFAULT_LAYER = METHODS["exact"].defaults()["max_units"], METHODS["exact"].defaults()["layer"]
#: Hard ceiling: beyond 2^62 states the state index no longer fits the kernel's int64.
ABSOLUTE_MAX_UNITS = 62
#: States per independent chunk (drift bound and unit of parallel work).
CHUNK_BITS = 12
#: Bounds on chunks per kernel call: enough to keep all threads busy, few enough that
#: progress is reported about 200 times per run.
MIN_CHUNKS_PER_CALL, MAX_CHUNKS_PER_CALL = 16, 512

LAYERS = METHODS["exact"].option("layer").choices


def enumerated_layer(model: RBM, layer: str = "auto") -> str:
    """Which layer to enumerate: the smaller one for 'auto' (hidden on ties; for other unit types
    the finite layer with fewer joint states, or 'closed-form' for a Gaussian-Gaussian model)."""
    if layer not in LAYERS:
        raise InvalidOptionError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}.")
    if not model.is_bernoulli:
        from .exact_layers import plan

        return plan(model, layer).layer
    if layer == "auto":
        return "hidden" if model.n_hidden <= model.n_visible else "visible"
    return layer


def log_partition(model: RBM, beta: float = 1.0, layer: str = "auto", progress=None) -> float:
    """ln Z(beta) of ``model`` by enumerating ``layer`` ('auto' = the smaller one).

    No size limit is applied here; use :func:`estimate_exact` for the guarded entry point.
    """
    from ..kernels.enumeration import gray_logsumexp_chunks

    beta = check_beta(beta)
    if not model.is_bernoulli:
        from .exact_layers import log_partition_layers

        if layer not in LAYERS:
            raise InvalidOptionError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}.")
        return log_partition_layers(model, beta, layer, progress)
    layer = enumerated_layer(model, layer)
    if layer == "hidden":
        cols, own_bias, other_bias = model.weights.T, model.hidden_bias, model.visible_bias
    else:
        cols, own_bias, other_bias = model.weights, model.visible_bias, model.hidden_bias
    k = cols.shape[0]
    if k > ABSOLUTE_MAX_UNITS:
        raise RefusedError(f"cannot enumerate {k} units: the limit of the exact kernel is {ABSOLUTE_MAX_UNITS}.")
    scaled_cols = np.ascontiguousarray(beta * cols, dtype=np.float64)
    other_field0 = np.ascontiguousarray(beta * other_bias, dtype=np.float64)
    own_scaled = np.ascontiguousarray(beta * own_bias, dtype=np.float64)

    chunk_bits = min(k, CHUNK_BITS)
    n_chunks = 1 << (k - chunk_bits)
    per_call = min(max(n_chunks // 200, MIN_CHUNKS_PER_CALL), MAX_CHUNKS_PER_CALL)
    out_m = np.empty(n_chunks)
    out_s = np.empty(n_chunks)
    for first in range(0, n_chunks, per_call):
        count = min(per_call, n_chunks - first)
        gray_logsumexp_chunks(
            scaled_cols, other_field0, own_scaled, first, count, chunk_bits, out_m[first:], out_s[first:]
        )
        if progress is not None:
            progress("exact enumeration", (first + count) << chunk_bits, n_chunks << chunk_bits)
    return _combine_chunks(out_m, out_s)


def _combine_chunks(out_m: np.ndarray, out_s: np.ndarray) -> float:
    """log sum_c s_c exp(m_c), in the log domain."""
    top = float(np.max(out_m))
    if not math.isfinite(top):
        return top
    return top + math.log(float(np.sum(out_s * np.exp(out_m - top))))


def exact_cost(model: RBM) -> tuple[int, int]:
    """(k, n): units enumerated and units summed per state, for the 'auto' layer (for other unit
    types: k = log2 of the states enumerated, rounded up, and n the other layer's cgf terms)."""
    if not model.is_bernoulli:
        from .exact_layers import plan

        p = plan(binary_mapped(model), "auto")
        return math.ceil(p.bits - 1e-9), p.other_dim
    k = min(model.n_visible, model.n_hidden)
    n = max(model.n_visible, model.n_hidden)
    return k, n


@lru_cache(maxsize=1)
def softplus_throughput() -> float:
    """Measured softplus evaluations per second of the exact kernel on this machine."""
    from ..kernels.enumeration import gray_logsumexp_chunks

    rng = np.random.default_rng(0)
    n, k = 256, 12
    cols = rng.normal(size=(k, n))
    zeros_n, zeros_k = np.zeros(n), np.zeros(k)
    out_m, out_s = np.empty(4), np.empty(4)
    gray_logsumexp_chunks(cols, zeros_n, zeros_k, 0, 1, 4, out_m, out_s)  # compile / load cache
    elapsed = []
    for _ in range(CALIBRATION_RUNS):  # the fastest of a few short runs: what the kernel does when not interrupted
        start = time.perf_counter()
        gray_logsumexp_chunks(cols, zeros_n, zeros_k, 0, 4, k - 2, out_m, out_s)
        elapsed.append(time.perf_counter() - start)
    return (1 << k) * n / max(min(elapsed), 1e-6)


#: Timed runs of the throughput calibration (each 2^12 states x 256 softplus terms).
CALIBRATION_RUNS = 3


def expected_seconds(model: RBM, layer: str = DEFAULT_LAYER) -> float:
    """Expected wall time of exact enumeration of ``layer`` on this machine, in seconds: states x
    softplus terms per state over the calibrated throughput. The one estimate that info, the
    feasibility check and the refusal above --max-units all quote."""
    if model.is_bernoulli:
        chosen = enumerated_layer(model, layer)
        k = model.n_hidden if chosen == "hidden" else model.n_visible
        n = model.n_visible if chosen == "hidden" else model.n_hidden
        return float(2.0**k) * n / softplus_throughput()
    from .exact_layers import plan

    p = plan(binary_mapped(model), layer)
    return 0.0 if p.layer == "closed-form" else 2.0**p.bits * p.other_dim / softplus_throughput()


def exact_feasibility(model: RBM, max_units: int = DEFAULT_MAX_UNITS) -> Feasibility:
    if not model.is_bernoulli:
        return _layers_feasibility(model, max_units)
    k, n = exact_cost(model)
    seconds = expected_seconds(model)
    cost = f"2^{k} states x {n} softplus = {2.0**k * n:.3g} evaluations, about {format_duration(seconds)} here"
    if k > max_units:
        return Feasibility(False, f"{cost}; above the default limit of {max_units} units", seconds)
    return Feasibility(True, cost, seconds)


def binary_mapped(model: RBM) -> RBM:
    """The model with spin layers rewritten as 0/1 layers (what the exact kernels enumerate)."""
    from ..model import binary_equivalent

    return binary_equivalent(model)[0]


def _layers_feasibility(model: RBM, max_units: int) -> Feasibility:
    from .exact_layers import plan

    mapped = binary_mapped(model)
    p = plan(mapped, "auto")
    if p.layer == "closed-form":
        return Feasibility(True, p.describe(), None)
    seconds = expected_seconds(model)
    cost = f"{p.describe()}, about {format_duration(seconds)} here"
    if p.bits > max_units + 1e-9:
        return Feasibility(False, f"{cost}; above the default limit of 2^{max_units} states", seconds)
    return Feasibility(True, cost, seconds)


def format_duration(seconds: float) -> str:
    """Human-readable duration: 0.02 s, 3.1 min, 5.2 h, 12 days, 3.4e+05 years."""
    if seconds < 60:
        return f"{seconds:.2g} s"
    if seconds < 3600:
        return f"{seconds / 60:.2g} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.2g} h"
    if seconds < 86400 * 365:
        return f"{seconds / 86400:.3g} days"
    return f"{seconds / (86400 * 365):.3g} years"


def estimate_exact(
    model: RBM,
    *,
    beta: float = 1.0,
    layer: str = DEFAULT_LAYER,
    max_units: int = DEFAULT_MAX_UNITS,
    progress=None,
) -> Result:
    """Exact ln Z(beta), refusing layers above ``max_units`` units (default 30).

    Parameters
    ----------
    beta : inverse temperature (> 0).
    layer : 'auto' (the smaller layer), 'hidden' or 'visible': which layer to enumerate.
    max_units : refuse when the enumerated layer has more units than this.
    progress : optional callable ``progress(description, done, total)``.
    """
    beta = check_beta(beta)
    max_units = check_positive_int("max_units", max_units)
    if not model.is_bernoulli:
        return _estimate_exact_layers(model, beta, layer, int(max_units), progress)
    chosen = enumerated_layer(model, layer)
    k = model.n_hidden if chosen == "hidden" else model.n_visible
    n = model.n_visible if chosen == "hidden" else model.n_hidden
    if k > max_units:
        seconds = expected_seconds(model, chosen)
        raise RefusedError(
            f"exact enumeration of {model.name} would visit 2^{k} states of the {chosen} layer "
            f"(about {format_duration(seconds)} on this machine), above the limit of {max_units} units; "
            f"raise --max-units to run it anyway."
        )
    start = time.perf_counter()
    log_z = log_partition(model, beta, chosen, progress)
    wall = time.perf_counter() - start
    return Result(
        model=model.name,
        method="exact",
        beta=beta,
        log_z=log_z,
        kind="exact",
        n_visible=model.n_visible,
        n_hidden=model.n_hidden,
        stderr=0.0,
        ci_low=log_z,
        ci_high=log_z,
        wall_time_s=wall,
        params={"layer": chosen, "max_units": int(max_units)},
        diagnostics={"states": 2**k, "softplus_evaluations": 2**k * n},
    )


def _estimate_exact_layers(model: RBM, beta: float, layer: str, max_units: int, progress) -> Result:
    """estimate_exact for unit types other than bernoulli-bernoulli (see exact_layers)."""
    from .exact_layers import plan

    if layer not in LAYERS:
        raise InvalidOptionError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}.")
    p = plan(binary_mapped(model), layer)
    if p.layer != "closed-form" and p.bits > max_units + 1e-9:
        seconds = expected_seconds(model, layer)
        raise RefusedError(
            f"exact enumeration of {model.name} would visit {p.states_per_unit}^{p.units} = {float(p.states):.3g} "
            f"states of the {p.layer} layer (2^{p.bits:.1f}; about {format_duration(seconds)} on this machine), "
            f"above the limit of 2^{max_units}; raise --max-units to run it anyway."
        )
    start = time.perf_counter()
    log_z = log_partition(model, beta, layer, progress)
    wall = time.perf_counter() - start
    diagnostics = {"method": p.describe()}
    if p.layer != "closed-form":
        diagnostics.update(states=p.states, cgf_evaluations=p.states * p.other_dim)
    return Result(
        model=model.name, method="exact", beta=beta, log_z=log_z, kind="exact",
        n_visible=model.n_visible, n_hidden=model.n_hidden, stderr=0.0, ci_low=log_z, ci_high=log_z,
        wall_time_s=wall, params={"layer": p.layer, "max_units": int(max_units)}, diagnostics=diagnostics,
    )


def exact_sampler(model: RBM, beta: float = 1.0, max_units: int | None = None):
    """An exact sampler for any enumerable model: :class:`ExactSampler` for bernoulli-bernoulli
    models, :class:`fecli.estimators.exact_layers.LayeredExactSampler` (samples in the layers'
    own values) otherwise. Both have ``sample(n, rng) -> (v, h)`` and ``log_z``."""
    if model.is_bernoulli:
        return ExactSampler(model, beta)
    from .exact_layers import LayeredExactSampler

    return LayeredExactSampler(model, check_beta(beta), EXACT_SAMPLE_MAX_UNITS if max_units is None else max_units)


#: Largest enumerated layer for which :func:`exact_samples` tabulates the marginal (2^k floats).
EXACT_SAMPLE_MAX_UNITS = 24
#: States per block when tabulating the marginal (bounds the temporary field matrix).
_SAMPLE_BLOCK = 1 << 12


class ExactSampler:
    """Exact i.i.d. samples of an enumerable RBM at inverse temperature ``beta``.

    The smaller layer s (k units) is drawn from its exact marginal, tabulated once in
    the log domain over all 2^k states,

        ln p(s) = beta c.s + sum_i softplus(beta (d_i + (M s)_i)) - ln Z(beta),

    (c, d the biases of the enumerated and the other layer, M the couplings seen from
    the other layer), then the other layer given s from its factorised conditional
    sigmoid(beta (d + M s)). Build it once, then call :meth:`sample` per chunk.
    """

    def __init__(self, model: RBM, beta: float = 1.0):
        from ..numerics import softplus

        beta = check_beta(beta)
        if not model.is_bernoulli:
            raise TypeError("ExactSampler serves bernoulli-bernoulli models; use exact_sampler() for others")
        self.model, self.beta = model, beta
        self.layer = enumerated_layer(model, "auto")
        if self.layer == "hidden":
            self.cols, self.own_bias, self.other_bias = model.weights, model.hidden_bias, model.visible_bias
        else:
            self.cols, self.own_bias, self.other_bias = model.weights.T, model.visible_bias, model.hidden_bias
        # cols: (n_other, k), so the other layer's field is d + cols @ s.
        k = self.cols.shape[1]
        if k > EXACT_SAMPLE_MAX_UNITS:
            raise RefusedError(
                f"exact sampling needs the marginal of 2^{k} states of the {self.layer} layer; "
                f"the limit is {EXACT_SAMPLE_MAX_UNITS} units."
            )
        self.k = k
        logp = np.empty(1 << k)
        bits = np.arange(k, dtype=np.int64)
        for first in range(0, 1 << k, _SAMPLE_BLOCK):
            idx = np.arange(first, min(first + _SAMPLE_BLOCK, 1 << k), dtype=np.int64)
            s = ((idx[:, None] >> bits) & 1).astype(np.float64)
            field = beta * (self.other_bias + s @ self.cols.T)
            logp[idx] = beta * (s @ self.own_bias) + softplus(field).sum(axis=1)
        top = float(logp.max())
        p = np.exp(logp - top)
        self.log_z = top + math.log(float(p.sum()))
        self.cdf = np.cumsum(p)
        self.cdf /= self.cdf[-1]

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n exact samples (v, h) as float64 0/1 arrays of shapes (n, nv) and (n, nh)."""
        from ..numerics import sigmoid

        idx = np.searchsorted(self.cdf, rng.random(n), side="right")
        idx = np.minimum(idx, self.cdf.size - 1)
        s = ((idx[:, None] >> np.arange(self.k, dtype=np.int64)) & 1).astype(np.float64)
        prob = sigmoid(self.beta * (self.other_bias + s @ self.cols.T))
        other = (rng.random(prob.shape) < prob).astype(np.float64)
        return (other, s) if self.layer == "hidden" else (s, other)


def exact_samples(model: RBM, n: int, rng: np.random.Generator, beta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """n exact i.i.d. samples (v, h) of an enumerable model at inverse temperature beta.

    Samples the enumerated (smaller) layer from its exact marginal computed in the log
    domain, then the other layer given it. See :class:`ExactSampler` to reuse the table.
    """
    return exact_sampler(model, beta).sample(int(n), rng)
