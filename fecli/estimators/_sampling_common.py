"""Shared pieces of the sampling estimators: option checks, annealing paths, seeds,
chains moved by the Gibbs kernels, and log-domain statistics of importance weights.

The annealing path (see :mod:`fecli.kernels.gibbs`) joins a factorised base model
A (visible bias a_A, hidden units uniform) at t = 0 to the target RBM at inverse
temperature beta at t = 1:

    ln f_t(v) = (1 - t) a_A.v + t beta a.v + sum_j softplus(t beta (b_j + (v^T W)_j)),
    ln Z_A   = sum_i softplus(a_A,i) + nh ln 2.

Seeds: a run's chains are cut into chunks of :data:`CHAINS_PER_CHUNK`; chunk i draws
all its randomness from ``SeedSequence(entropy, spawn_key=(stream, i))``, so a chunk's
numbers do not depend on how many chunks run, or where, and chunks merge exactly
by concatenating their per-chain results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import resolve_data  # noqa: F401  (re-exported for the sampling estimators)
from ..engine import BOOTSTRAP_KEY, STREAMS, TEMPERED_START_KEY  # noqa: F401  (every stream is declared there)
from ..errors import EstimationFailedError, InvalidOptionError
from ..model import RBM, sigmoid, softplus
from ..validation import check_positive_int, check_seed, fresh_seed  # noqa: F401  (check_positive_int re-exported)
from . import SCHEDULES  # noqa: F401  (declared with the options in the registry; re-exported)

#: Chains per chunk: the unit of seeding (and of scale-out).
CHAINS_PER_CHUNK = 16
#: Progress updates over an annealing run (between them, each block of chains runs in one kernel call).
PROGRESS_UPDATES = 200
#: Fused sweeps run on threads when sweeps x chains x units reaches this.
PARALLEL_MIN_WORK = 1 << 16
#: Salakhutdinov & Murray (2008): 500 steps on [0, 0.5], 4,000 on [0.5, 0.9], 10,000 on [0.9, 1].
SM08_PIECES = ((0.0, 0.5, 500), (0.5, 0.9, 4000), (0.9, 1.0, 10000))
#: ESS below this fraction of the sample count switches the interval to the bootstrap.
SKEWED_ESS_FRACTION = 0.5
#: ESS below this fraction (or below LOW_ESS_ABSOLUTE) triggers a warning. At 0.1, S&M's AIS on
#: an RBM trained on real MNIST digits (784 x 500, 60,000 steps) passed with ESS 10.4 of 100 while
#: 4.9 nats low (bootstrap error 0.3), and AIS on a PCD-10 MNIST 784 x 20 with ESS 10-13 missed
#: exact by 0.2-0.3 nats; lognormal weights with ESS 37% warn in 0.8% of runs at 0.15.
LOW_ESS_FRACTION = 0.15
LOW_ESS_ABSOLUTE = 10.0
#: Pareto k-hat of the largest weights above which their mean is unreliable (Vehtari, Simpson,
#: Gelman, Yao & Gabry, "Pareto smoothed importance sampling", JMLR 2024), and the fewest
#: weights it is estimated from. From 100 weights k-hat is noisy (lognormal weights with an ESS
#: of 37% exceed 0.7 in 4% of runs), so it warns only together with an ESS below
#: HEAVY_TAIL_ESS_FRACTION (that S&M run above had k-hat 0.95).
HEAVY_TAIL_KHAT = 0.7
HEAVY_TAIL_ESS_FRACTION = 0.2
KHAT_MIN_SAMPLES = 50
#: Markov's inequality for an unbiased Z_hat: P(Z_hat >= Z / MARKOV_LEVEL) <= MARKOV_LEVEL.
MARKOV_LEVEL = 0.025
BOOTSTRAP_REPLICATES = 2000
#: Independent replicate groups the chains are split into for the replicate-spread error bar, and
#: the fewest chains per group and groups for it to be computed (with fewer, Student's t is too wide).
REPLICATES = 8
MIN_PER_REPLICATE = 4
MIN_REPLICATES = 4
#: Replicates that disagree by more than this multiple of the error the weights predict are warned about.
REPLICATE_SPREAD_RATIO = 3.0
#: Cap on replicates x samples drawn by the bootstrap (keeps it well under a second).
BOOTSTRAP_MAX_DRAWS = 4_000_000
Z95 = 1.959963984540054


# --------------------------------------------------------------------------- options
def check_schedule(name: Any) -> str:
    if name not in SCHEDULES:
        raise InvalidOptionError(f"unknown schedule {name!r}; valid schedules are: {', '.join(SCHEDULES)}.")
    return name


def resolve_seed(seed: Any) -> int:
    """The entropy of a run: the given seed, or a fresh one below 2^53 (recorded so a run can be
    repeated, and exact in any JSON reader)."""
    if seed is None:
        return fresh_seed()
    return check_seed(seed)


def chunks(n: int, per_chunk: int = CHAINS_PER_CHUNK) -> list[tuple[int, int, int]]:
    """(index, start, stop) of the chunks that cover n chains."""
    return [(i, start, min(start + per_chunk, n)) for i, start in enumerate(range(0, n, per_chunk))]


# --------------------------------------------------------------------------- schedules
def make_schedule(name: str, steps: int) -> np.ndarray:
    """steps + 1 increasing values of t from 0 to 1 (``steps`` transitions).

    linear: uniform; sigmoid: t = sigmoid(delta (2k/K - 1)) rescaled to [0, 1] with
    delta = 4 (denser at both ends; Grosse et al. 2015); sm08: Salakhutdinov & Murray's
    three pieces with their proportions (500 : 4000 : 10000 steps on [0, .5], [.5, .9], [.9, 1]).
    """
    check_schedule(name)
    steps = check_positive_int("steps", steps)
    if name == "linear":
        ts = np.linspace(0.0, 1.0, steps + 1)
    elif name == "sigmoid":
        delta = 4.0
        s = sigmoid(delta * (2.0 * np.arange(steps + 1) / steps - 1.0))
        ts = (s - s[0]) / (s[-1] - s[0])
    else:
        total = sum(p[2] for p in SM08_PIECES)
        counts = [int(round(steps * p[2] / total)) for p in SM08_PIECES[:-1]]
        counts.append(steps - sum(counts))
        parts = [np.zeros(1)]
        for (lo, hi, _), n in zip(SM08_PIECES, counts):
            if n > 0:
                parts.append(np.linspace(lo, hi, n + 1)[1:])
        ts = np.concatenate(parts)
        if len(ts) != steps + 1:  # tiny step counts: fall back to uniform pieces
            ts = np.linspace(0.0, 1.0, steps + 1)
        ts[-1] = 1.0
    ts[0], ts[-1] = 0.0, 1.0
    return ts


# --------------------------------------------------------------------------- base model
def base_model(model: RBM, beta: float, data: np.ndarray | None) -> tuple[np.ndarray, str]:
    """Visible bias a_A of the base model and a description of where it came from.

    With data: the data's smoothed base rate (Salakhutdinov & Murray 2008). Without: a_A = 0,
    the uniform distribution over visible states. A mean-field base sits in one mode of a
    multimodal target, so every chain starts there and the other modes are missed with weights
    that agree perfectly (measured: ln 2 low on an ordered Ising torus, 3 nats low on a model whose
    needle mode holds 95% of Z, with ESS 100/100); the uniform base covers all modes, and clipping
    a mean-field magnetisation away from 0 and 1 puts the clip into every weight.
    """
    if data is not None:
        from ..data import DEFAULT_PSEUDOCOUNT, base_rate_bias

        return base_rate_bias(data), f"data base rate (pseudocount {DEFAULT_PSEUDOCOUNT:g})"
    return np.zeros(model.n_visible), "uniform (covers every mode; give --data for the data's base rate)"


@dataclass
class AnnealingPath:
    """The path ln f_t between a factorised base model and the target at beta."""

    model: RBM
    beta: float
    base_bias: np.ndarray

    def __post_init__(self) -> None:
        self.base_bias = np.ascontiguousarray(self.base_bias, dtype=np.float64)
        self.w_scaled = np.ascontiguousarray(self.beta * self.model.weights)
        self.hbias_scaled = self.beta * self.model.hidden_bias
        self.vbias_scaled = self.beta * self.model.visible_bias
        self.dvis = self.vbias_scaled - self.base_bias
        # For the fused sweeps (fecli.kernels.anneal): column sums for the complement trick, and
        # the transposed weights rounded to float32 for the visible fields (sampling only).
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite models fail later, with a message
            self.w_colsum = self.w_scaled.sum(axis=0)
            self.wt32 = np.ascontiguousarray(self.w_scaled.T, dtype=np.float32)
            self.wt32_colsum = self.wt32.sum(axis=0, dtype=np.float64)

    @property
    def log_z_base(self) -> float:
        """ln Z_A = sum_i softplus(a_A,i) + nh ln 2."""
        return float(softplus(self.base_bias).sum() + self.model.n_hidden * math.log(2.0))

    def log_f(self, v: np.ndarray, t: float) -> np.ndarray:
        """ln f_t(v) for rows of v (numpy; used by tests and the slower estimators)."""
        v = np.asarray(v, dtype=np.float64)
        field = self.hbias_scaled + v @ self.w_scaled
        return v @ ((1.0 - t) * self.base_bias + t * self.vbias_scaled) + softplus(t * field).sum(axis=-1)


class Chains:
    """Visible states of many chains with their own random streams, moved along a path."""

    def __init__(self, path: AnnealingPath, v: np.ndarray, states: np.ndarray):
        self.path = path
        self.v = np.array(v, dtype=np.float64, order="C", copy=True)  # never alias the caller's array
        self.states = states
        n = self.v.shape[0]
        from ..kernels.gibbs import Kernels

        self.kern = Kernels(n, path.model.n_visible + path.model.n_hidden, interleaved=True)
        self.hfield = np.empty((n, path.model.n_hidden))
        self.h = np.empty((n, path.model.n_hidden))
        self.vfield = np.empty((n, path.model.n_visible))
        self._bounds = None

    @property
    def n(self) -> int:
        return self.v.shape[0]

    def fields(self) -> np.ndarray:
        """beta v W for every chain (BLAS)."""
        np.dot(self.v, self.path.w_scaled, out=self.hfield)
        return self.hfield

    def sweep(self, t: float, count: int = 1) -> None:
        """``count`` block Gibbs sweeps v -> h -> v at t (fused per block of chains; see
        fecli.kernels.anneal); ``h`` holds the hidden states of the last sweep."""
        self._sweep(t, count, self.h, np.zeros(0))

    def sweep_recording(self, t: float, count: int) -> np.ndarray:
        """``count`` sweeps at t; returns per chain the sum over the sweeps of d ln f_t / dt at
        the state each sweep leaves (thermodynamic integration's integrand)."""
        g = np.zeros(self.n)
        self._sweep(t, count, np.zeros((0, 0)), g)
        return g

    def _sweep(self, t: float, count: int, h_out: np.ndarray, g_out: np.ndarray) -> None:
        from ..kernels import anneal

        p = self.path
        with np.errstate(over="ignore", invalid="ignore"):
            anneal.sweep(self._blocks(), self.v, self.states, p.w_scaled, p.w_colsum, p.wt32, p.wt32_colsum,
                         p.hbias_scaled, p.dvis, p.base_bias, p.vbias_scaled, float(t), int(count), h_out, g_out,
                         parallel=self._parallel(count))

    def _blocks(self) -> np.ndarray:
        """Chain ranges of the kernels' blocks (any split gives the same numbers; this one suits the threads)."""
        if self._bounds is None:
            from numba import get_num_threads

            from ..kernels.anneal import block_bounds

            self._bounds = block_bounds(self.n, get_num_threads())
        return self._bounds

    def _parallel(self, sweeps: int) -> bool:
        """Threads pay off for enough sweeps x chains x units; below that, starting them costs
        more than the work (tiny models, a sweep or two at a time). Results are the same either way."""
        units = self.path.model.n_visible + self.path.model.n_hidden
        return self.n > 1 and sweeps * self.n * units >= PARALLEL_MIN_WORK

    def anneal(self, ts: np.ndarray, sweeps: int, progress=None, label: str = "annealing",
               first_sweep: bool = False) -> np.ndarray:
        """Anneal along ts[0] -> ts[-1], returning the log weights sum_k ln f_k(v_k) - ln f_{k-1}(v_k).

        At step k the weight is updated at the current state, then (except after
        the last step) ``sweeps`` Gibbs sweeps at ts[k] move it. With ``first_sweep``
        the chains first make ``sweeps`` sweeps at ts[0] (RAISE's first transition).
        The steps run in segments (one per progress update), each fused per chain.
        """
        from ..kernels import anneal

        p = self.path
        ts = np.ascontiguousarray(ts, dtype=np.float64)
        logw = np.zeros(self.n)
        K = len(ts) - 1
        if first_sweep:
            self.sweep(float(ts[0]), sweeps)
        segment = max(1, K // PROGRESS_UPDATES)
        parallel = self._parallel(segment * sweeps)
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(1, K + 1, segment):
                stop = min(k + segment, K + 1)
                anneal.anneal(self._blocks(), self.v, self.states, logw, p.w_scaled, p.w_colsum, p.wt32,
                              p.wt32_colsum, p.hbias_scaled, p.dvis, p.base_bias, p.vbias_scaled, ts, k, stop,
                              int(sweeps), parallel=parallel)
                if progress is not None:
                    progress(label, stop - 1, K)
        return logw


def chain_states(entropy: int, n: int, stream: int = STREAMS["ais"], chunk_ids: range | None = None
                 ) -> list[tuple[int, int, np.random.SeedSequence]]:
    """Per-chunk seed sequences (start, stop, seq) for n chains; ``stream`` separates uses
    (fecli.engine.STREAMS); ``chunk_ids``: only those chunks (a task's share of the run)."""
    return [(start, stop, np.random.SeedSequence(entropy, spawn_key=(stream, i)))
            for i, start, stop in chunks(n) if chunk_ids is None or i in chunk_ids]


def n_chunks(n: int, per_chunk: int = CHAINS_PER_CHUNK) -> int:
    """Chunks that cover n chains."""
    return -(-n // per_chunk)


def chunk_rows(chunk_ids: range, n: int, per_chunk: int = CHAINS_PER_CHUNK) -> slice:
    """Rows (chains) of the chunks ``chunk_ids`` among n."""
    return slice(chunk_ids.start * per_chunk, min(n, chunk_ids.stop * per_chunk))


def kernel_states(seqs: list[tuple[int, int, np.random.SeedSequence]]) -> np.ndarray:
    """xoshiro states for all chains, chunk by chunk (child 0 of each chunk's sequence)."""
    from ..kernels.gibbs import seed_states

    parts = []
    for start, stop, seq in seqs:
        child = np.random.SeedSequence(seq.entropy, spawn_key=seq.spawn_key + (0,))
        parts.append(seed_states(child.generate_state(4 * (stop - start), dtype=np.uint64)))
    return np.concatenate(parts)


def numpy_rng(seq: np.random.SeedSequence) -> np.random.Generator:
    """A numpy Generator for a chunk's non-kernel draws (child 1 of its sequence)."""
    return np.random.default_rng(np.random.SeedSequence(seq.entropy, spawn_key=seq.spawn_key + (1,)))


def base_samples(path: AnnealingPath, states: np.ndarray) -> np.ndarray:
    """Exact samples of the base model, one per chain, from the chains' own streams."""
    from ..kernels.gibbs import Kernels

    v = np.empty((states.shape[0], path.model.n_visible))
    Kernels(v.shape[0], v.shape[1]).sample_factorised(path.base_bias, states, v)
    return v


# --------------------------------------------------------------------------- statistics
def log_mean_exp(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    m = float(np.max(x))
    if not math.isfinite(m):
        return m
    return m + math.log(float(np.mean(np.exp(x - m))))


@dataclass
class WeightSummary:
    """logmeanexp of log weights with its uncertainty."""

    log_mean: float
    stderr: float
    ci_low: float
    ci_high: float
    ess: float
    n: int
    interval: str  # 'delta', 'bootstrap' or one-sided (the replicates may widen it: see ``replicates``)
    warnings: list
    replicates: "ReplicateSpread | None" = None
    khat: float = math.nan  # pareto_khat of the weights (nan with fewer than KHAT_MIN_SAMPLES)

    def diagnostics(self, log_z_base: float = 0.0) -> dict:
        """ESS, Pareto k-hat, interval kind and the replicates' ln Z (``log_z_base`` added to each)."""
        out = {"ess": self.ess, "ess_fraction": self.ess / self.n, "interval": self.interval,
               "pareto_khat": None if math.isnan(self.khat) else self.khat}
        if self.replicates is not None:
            out.update(self.replicates.diagnostics(log_z_base))
        return out


@dataclass
class ReplicateSpread:
    """ln Z of independent replicate groups of chains, and the standard error their spread gives.

    ``log_means``: sign * ln mean e^w within each group (G,); ``stderr``: sd(log_means) / sqrt(G);
    ``t_quantile``: Student's t (G - 1 degrees of freedom) at 0.975."""

    log_means: np.ndarray
    sizes: np.ndarray
    stderr: float
    t_quantile: float
    grouping: str
    widened: bool = False  # whether the spread widened the weights' own interval

    def diagnostics(self, log_z_base: float = 0.0) -> dict:
        return {"replicate_log_z": (log_z_base + self.log_means).tolist(), "replicate_sizes": self.sizes.tolist(),
                "replicate_stderr": self.stderr, "replicate_grouping": self.grouping,
                "replicates_widened_interval": self.widened}


def contiguous_groups(n: int, groups: int = REPLICATES) -> np.ndarray:
    """Replicate labels (n,) for n independent chains: ``groups`` contiguous runs of near-equal size
    (at most n // MIN_PER_REPLICATE of them). Chains draw from their own random streams, so the runs
    are independent replicates of the whole estimate."""
    g = max(1, min(groups, n // MIN_PER_REPLICATE))
    return (np.arange(n) * g) // max(n, 1)


def replicate_spread(logw: np.ndarray, labels: np.ndarray, grouping: str) -> ReplicateSpread | None:
    """ln mean e^w within each replicate group (labels (n,), integers) and the standard error of
    their mean; None when fewer than MIN_REPLICATES groups hold at least MIN_PER_REPLICATE chains.

    The spread between independent replicates (different seeds and, for tempered starts,
    different ladders) is an error bar the weights of one run cannot vouch for: weights that agree
    perfectly in every group but differ between groups (each group stuck in its own mode) show up
    here and nowhere else."""
    labels = np.asarray(labels)
    keys, sizes = np.unique(labels, return_counts=True)
    keys, sizes = keys[sizes >= MIN_PER_REPLICATE], sizes[sizes >= MIN_PER_REPLICATE]
    if keys.size < MIN_REPLICATES:
        return None
    from scipy.stats import t as student_t

    means = np.array([log_mean_exp(logw[labels == k]) for k in keys])
    se = float(means.std(ddof=1) / math.sqrt(keys.size))
    return ReplicateSpread(means, sizes, se, float(student_t.ppf(0.975, keys.size - 1)), grouping)


def check_log_weights(logw: np.ndarray, what: str) -> None:
    """Fail loudly (never print garbage) when log weights are NaN or all -inf."""
    logw = np.asarray(logw)
    bad = np.isnan(logw) | np.isposinf(logw)
    if bad.any():
        raise EstimationFailedError(
            f"the run failed: {int(bad.sum())} of {logw.size} {what} are NaN or +inf "
            "(non-finite model parameters or overflow); no estimate is reported."
        )
    if not np.isfinite(logw).any():
        raise EstimationFailedError(
            f"the run failed: all {logw.size} {what} are -inf (zero weight everywhere); no estimate is reported."
        )


def pareto_khat(logw: np.ndarray) -> float:
    """The shape k of a generalised Pareto distribution fitted to the largest importance weights.

    ``logw``: log weights (n,), n >= KHAT_MIN_SAMPLES (else nan). The tail is the
    M = min(n / 5, 3 sqrt(n)) largest weights, as exceedances over the next largest; k is the
    Zhang & Stephens (2009, Technometrics 51: 316) posterior-mean estimate, shrunk towards 0.5
    with the weak prior of Vehtari et al. (JMLR 2024): k_hat = (M k + 5) / (M + 10). With
    k >= 1 the weights have no finite mean; above HEAVY_TAIL_KHAT their sample mean converges
    too slowly to be trusted, whatever the ESS says.
    """
    logw = np.sort(np.asarray(logw, dtype=np.float64))
    n = logw.size
    if n < KHAT_MIN_SAMPLES or not np.isfinite(logw[-1]):
        return math.nan
    m = int(min(0.2 * n, 3.0 * math.sqrt(n)))
    cutoff = logw[-m - 1]
    x = np.exp(logw[-m:] - logw[-1]) - math.exp(cutoff - logw[-1])  # ascending exceedances, scaled
    if x[-1] <= 0.0:
        return math.nan  # the largest weights are all equal: no tail to fit
    grid = 30 + int(math.sqrt(m))
    quartile = x[max(int(m / 4 + 0.5) - 1, 0)]
    if quartile <= 0.0:
        quartile = x[x > 0.0].min()
    j = np.arange(1, grid + 1, dtype=np.float64)
    theta = 1.0 / x[-1] + (1.0 - np.sqrt(grid / (j - 0.5))) / (3.0 * quartile)
    k = np.log1p(-theta[:, None] * x[None, :]).mean(axis=1)  # the shape that goes with each theta
    with np.errstate(divide="ignore", invalid="ignore"):
        profile = m * (np.log(-theta / k) - k - 1.0)
    profile = np.where(np.isfinite(profile), profile, -np.inf)
    weights = np.exp(profile - profile.max())  # the grid's posterior weights
    theta_hat = float(weights @ theta / weights.sum())
    k_hat = float(np.log1p(-theta_hat * x).mean())
    return (m * k_hat + 10 * 0.5) / (m + 10)


def _log_mean_exp_rows(x: np.ndarray) -> np.ndarray:
    """ln mean exp of each row of x (2-D), each row shifted by its own maximum: a bootstrap
    resample that misses the run's largest weight stays finite instead of ln 0."""
    top = x.max(axis=1)
    return top + np.log(np.exp(x - top[:, None]).mean(axis=1))


def summarize_log_weights(logw: np.ndarray, entropy: int, what: str = "log weights",
                          unit: str = "chains", sign: float = 1.0,
                          advice: str = "use more steps or chains", groups: np.ndarray | None = None,
                          grouping: str = "contiguous runs of chains") -> WeightSummary:
    """sign * logmeanexp(logw) with a delta-method stderr, ESS and a 95% interval.

    se(ln mean e^w) ~ sd(e^w) / (sqrt(M) mean(e^w)) computed with e^{w - max w}.
    When the weights are skewed (ESS < SKEWED_ESS_FRACTION * M) the interval is a
    percentile bootstrap over chains and stderr the bootstrap standard deviation
    (when larger than the delta one). ``sign = -1`` serves the reverse estimators.

    When ESS is too low to trust any of that (the low-ESS warning), the interval becomes
    one-sided: mean(e^w) is unbiased, so by Markov's inequality
    P(ln mean e^w >= ln E[e^w] + ln 40) <= 1/40, which bounds the far side whatever the
    weights look like; the near side (where missed heavy-tail weights would move the
    estimate) is left unbounded. So it is, with a warning of its own, when the ESS is merely low
    (below HEAVY_TAIL_ESS_FRACTION) but the largest weights fit a Pareto tail with k-hat above
    HEAVY_TAIL_KHAT (:func:`pareto_khat`).

    Replicates: the samples are split into independent groups (``groups``: a label per sample;
    default :func:`contiguous_groups`) and ln mean e^w computed in each (see
    :func:`replicate_spread`). The standard error is at least their spread's,
    se_rep = sd / sqrt(G), and the interval at least ln Z +- t_{G-1} se_rep: the weights' own
    spread (and their ESS) cannot certify an interval that independent replicates contradict.
    Replicates that disagree by more than REPLICATE_SPREAD_RATIO times the weights' error are warned about.
    """
    logw = np.asarray(logw, dtype=np.float64)
    check_log_weights(logw, what)
    n = logw.size
    m = float(np.max(logw))
    r = np.exp(logw - m)
    mean = float(r.mean())
    lme = m + math.log(mean)
    ess = float(r.sum() ** 2 / np.sum(r * r))
    khat = pareto_khat(logw)
    se = float(r.std(ddof=1) / (math.sqrt(n) * mean)) if n > 1 else math.inf
    warnings = []
    interval = "delta"
    lo, hi = lme - Z95 * se, lme + Z95 * se
    if n > 1 and ess < SKEWED_ESS_FRACTION * n:
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(BOOTSTRAP_KEY,)))
        replicates = max(200, min(BOOTSTRAP_REPLICATES, BOOTSTRAP_MAX_DRAWS // n))
        idx = rng.integers(0, n, size=(replicates, n))
        boot = _log_mean_exp_rows(logw[idx])
        lo, hi = (float(q) for q in np.quantile(boot, [0.025, 0.975]))
        se = max(se, float(boot.std(ddof=1)))
        interval = "bootstrap"
    if ess < max(LOW_ESS_ABSOLUTE, LOW_ESS_FRACTION * n):
        warnings.append(
            f"low effective sample size: ESS {ess:.1f} of {n} {unit}; "
            f"a few samples dominate, so the error bar is unreliable and the 95% interval is "
            f"one-sided ({advice})."
        )
        lo, hi = min(lo, lme + math.log(MARKOV_LEVEL)), math.inf
        interval = "one-sided (Markov, low ESS)"
    elif ess < HEAVY_TAIL_ESS_FRACTION * n and khat > HEAVY_TAIL_KHAT:
        warnings.append(
            f"heavy-tailed weights: the largest {unit}' weights fit a Pareto tail with k-hat {khat:.2f} > "
            f"{HEAVY_TAIL_KHAT} (ESS {ess:.1f} of {n}), so rare, still larger weights probably decide the mean "
            f"(Vehtari et al., PSIS); the error bar is unreliable and the 95% interval is one-sided ({advice}).")
        lo, hi = min(lo, lme + math.log(MARKOV_LEVEL)), math.inf
        interval = "one-sided (Markov, heavy tail)"
    spread = replicate_spread(logw, contiguous_groups(n) if groups is None else groups, grouping)
    if spread is not None:
        half = spread.t_quantile * spread.stderr
        spread.widened = lme - half < lo or lme + half > hi
        lo, hi = min(lo, lme - half), max(hi, lme + half)
        if spread.stderr > REPLICATE_SPREAD_RATIO * se:
            values = sign * spread.log_means
            warnings.append(
                f"{spread.log_means.size} independent replicates ({spread.grouping}) disagree: their ln Z "
                f"span {np.ptp(values):.3g} nats, a standard error {spread.stderr / se:.1f} times what the {what} "
                f"predict; they see different parts of the target (modes), so the interval uses their spread "
                f"({advice}).")
        se = max(se, spread.stderr)
    if sign < 0:
        lme, lo, hi = -lme, -hi, -lo
        if spread is not None:
            spread.log_means = -spread.log_means
    return WeightSummary(lme, se, lo, hi, ess, n, interval, warnings, spread, khat)


@dataclass
class TargetStart:
    """Chains placed at the target (t = 1), and how: exact samples or tempered ones."""

    walkers: "Chains"
    exact: bool
    note: str
    warnings: list = field(default_factory=list)
    #: Replicate label of each chain (independent groups: the tempering ladder it came from), or
    #: None for i.i.d. exact samples (any contiguous split is independent).
    groups: np.ndarray | None = None
    grouping: str = "contiguous runs of chains"


def start_at_target(path: AnnealingPath, seqs: list, states: np.ndarray, data: np.ndarray | None,
                    burn_in: int, exact_max_units: int, progress=None, label: str = "burn-in") -> TargetStart:
    """Chains at the target: exact i.i.d. samples when the smaller layer has at most
    ``exact_max_units`` units, otherwise states from parallel tempering (fecli.estimators.pt:
    ``burn_in // 4`` rounds of adaptation and burn-in, as many recorded, its ladders started from
    data rows when given): a Gibbs burn-in alone stays in the mode it starts in, tempering moves
    between modes through the base model."""
    model = path.model
    n = sum(stop - begin for begin, stop, _ in seqs)
    if min(model.n_visible, model.n_hidden) <= exact_max_units:
        from .exact import ExactSampler

        sampler = ExactSampler(model, path.beta)
        v0 = np.concatenate([sampler.sample(stop - begin, numpy_rng(seq))[0] for begin, stop, seq in seqs])
        return TargetStart(Chains(path, v0, states), True, "exact samples of the target")
    from .pt import tempered_samples

    entropy = seqs[0][2].entropy
    seed = int(np.random.SeedSequence(entropy, spawn_key=(TEMPERED_START_KEY,)).generate_state(1, np.uint64)[0] >> 11)
    rounds = max(100, burn_in // 4)
    tempered = tempered_samples(model, path.beta, n, seed, data=data, burn_in=rounds, rounds=rounds,
                                progress=progress)
    return TargetStart(Chains(path, tempered.v[:n], states), False, tempered.note, list(tempered.warnings),
                       tempered.ladder[:n], "chains started from the same tempering ladder")


# --------------------------------------------------------------------------- annealing as tasks
@dataclass
class AnnealJob:
    """An annealing run as the engine's tasks see it (fecli.engine): sent once to every worker.

    Chains start from exact base-model samples drawn from their own streams (``v0`` None:
    forward AIS) or from the rows of ``v0`` (n, nv) (reverse AIS, RAISE); ``ts`` is the schedule
    in the direction of the run; ``first_sweep`` as in :meth:`Chains.anneal`.
    """

    path: AnnealingPath
    ts: np.ndarray
    sweeps: int
    entropy: int
    chains: int
    label: str = "ais"
    v0: np.ndarray | None = None
    first_sweep: bool = False
    stream: int = STREAMS["ais"]


def anneal_chunks(job: AnnealJob, chunk_ids: range, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Anneal the chains of chunks ``chunk_ids``: their log weights (m,) and final states (m, nv).
    Each chain's numbers depend only on its chunk's stream, so any grouping gives the same bits."""
    states = kernel_states(chain_states(job.entropy, job.chains, job.stream, chunk_ids))
    v0 = base_samples(job.path, states) if job.v0 is None else job.v0[chunk_rows(chunk_ids, job.chains)]
    walkers = Chains(job.path, v0, states)
    logw = walkers.anneal(job.ts, job.sweeps, progress, job.label, first_sweep=job.first_sweep)
    return logw, walkers.v


def run_annealing(job: AnnealJob, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Log weights (chains,) and final states (chains, nv) of every chain of ``job``, its chunks
    run as tasks on the current backend (fecli.engine) and joined in chunk order."""
    from ..engine import run_chunks

    parts = run_chunks(anneal_chunks, job, n_chunks(job.chains), job.label, progress)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
