"""Parallel tempering (replica exchange) along the annealing path; ln Z by BAR between neighbouring rungs.

The ladder t_0 = 0 < t_1 < ... < t_{K-1} = 1 runs along the path of
:mod:`fecli.estimators.ais` (t = 0: the factorised base model of
:func:`~fecli.estimators._sampling_common.base_model`, whose ln Z_A is known; t = 1: the
target at beta). Each of ``chains`` independent ladders holds one chain per rung; a round
is a Gibbs sweep of every chain at its rung, then exchanges between neighbouring rungs
(see :mod:`fecli.kernels.tempering`).

Ladder. During burn-in the rungs are placed so that neighbours exchange equally often: for
replicas whose log-ratio is Gaussian the mean exchange probability between rungs a
distance d apart (in units of the standard deviation of d ln f / dt) is erfc(d / 2)
(Predescu, Predescu & Ciobanu 2004), so each measured rate A_k gives d_k = 2 erfcinv(A_k),
the d_k add up to the thermodynamic length of the path, and the new rungs split that length
evenly, as many as give the target rate (:data:`TARGET_ACCEPTANCE`). Stages of doubling
length repeat this, then the rest of the burn-in equilibrates on the final ladder.

Estimate. With the works of rung k's samples, up = ln f_{k+1} - ln f_k, and of rung
k + 1's, down = ln f_k - ln f_{k+1}, Bennett's acceptance ratio (Bennett 1976; pymbar's
``bar``, the maximum-likelihood form of Shirts et al. 2003) gives Delta f_k = -ln Z_{k+1}/Z_k,
and

    ln Z(beta) = ln Z_A - sum_k Delta f_k

(BAR on tempered samples: the most accurate route in Krause, Fischer & Igel 2020). The
standard error is the larger of (a) the asymptotic BAR errors, each scaled by the square
root of the statistical inefficiency of its works (pymbar.timeseries) and added in
quadrature, and (b) the spread of the same estimate made from each ladder alone (standard
error of their mean). The 95% interval is the wider of 1.96 (a) and Student's t (R - 1
degrees of freedom) times (b). Neither can be zero: a pair whose samples are all alike
still has at most the unseen mass of ~1/N per rung (N samples), which is kept as a floor.

Honesty. Exchanges that never bring a chain from the base to the target and back (a round
trip) mean the target end was never fed from the well-mixed end: warned. Every state the
chains visit gives a rigorous lower bound, ln Z >= ln sum over distinct visited v of
e^{-F(v)} (their -F comes from the kernel, no extra product). A value below it is raised to it:
quietly when the interval reaches the bound (sampling noise), otherwise through
:func:`fecli.bounds.check_result` (the value missed probability mass: a warning, and the kind
becomes lower_bound). Chains start from uniformly random states (or data rows) rather than base
samples, so that cold chains fall into different modes. Independent ladders that disagree more
than their own error bars allow are warned about.

Models with Gaussian or Potts layers run the same ladders, adaptation, BAR and checks on the generic
layer path (:mod:`fecli.estimators.layered_tempering`); spin models run here through their exact
0/1 equivalent (:mod:`fecli.estimators.units`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import PT_START_KEY, PT_SWAP_KEY, STREAMS
from ..errors import EstimationFailedError, InvalidOptionError
from ..model import RBM
from ..result import Result
from ._sampling_common import (
    Z95,
    AnnealingPath,
    base_model,
    chain_states,
    check_positive_int,
    check_schedule,
    kernel_states,
    make_schedule,
    resolve_data,
    resolve_seed,
)
from . import METHODS
from .exact import check_beta

#: Library defaults, declared with the options in the registry (fecli/estimators/__init__.py).
DEFAULTS = METHODS["pt"].defaults()
DEFAULT_RUNGS, DEFAULT_CHAINS, DEFAULT_SAMPLES, DEFAULT_BURN_IN, DEFAULT_SWEEPS, DEFAULT_SCHEDULE = (
    DEFAULTS[k] for k in ("rungs", "chains", "samples", "burn_in", "sweeps", "schedule"))
#: Mean exchange probability between neighbouring rungs that the adapted ladder aims at.
TARGET_ACCEPTANCE = 0.4
#: Rungs of the first ladder when their number is adapted.
FIRST_RUNGS = 16
#: Most rungs of a ladder (the declared upper limit of --rungs).
MAX_RUNGS = int(METHODS["pt"].option("rungs").allowed.high)
#: Neighbours exchanging less often than this (after adaptation) are warned about.
POOR_ACCEPTANCE = 0.05
#: Rates below this count as this when measuring distances (no exchange at all: d = 2 erfcinv(1e-3) = 4.6).
ACCEPTANCE_FLOOR = 1e-3
#: Adaptation stages: the first lasts burn_in / 16 rounds (at least MIN_STAGE), each next twice
#: as long, while they fit in ADAPT_SHARE of the burn-in.
MIN_STAGE = 20
ADAPT_SHARE = 0.6
#: Top-rung states handed to the rigorous bracket and the one-mode check of fecli.bounds.
STATES_KEPT = 512
#: Ladders whose spread exceeds this multiple of the asymptotic error are warned about.
SPREAD_RATIO = 3.0
#: Kernel calls per run when progress is shown (each call ends in a barrier of the ladders' threads,
#: which on a busy machine costs up to a scheduler time slice: few long calls, not many short ones).
PROGRESS_SEGMENTS = 8
_STREAM = STREAMS["pt"]
_SWAP_KEY = PT_SWAP_KEY
_START_KEY = PT_START_KEY


# --------------------------------------------------------------------------- pymbar, quietly
@contextlib.contextmanager
def _quiet_pymbar():
    """pymbar prints a banner on stdout and logs warnings: keep both out of our streams."""
    import logging

    logger = logging.getLogger("pymbar")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _pymbar():
    with _quiet_pymbar():
        from pymbar import other_estimators, timeseries, utils
    return other_estimators, timeseries, utils


# --------------------------------------------------------------------------- the ladders
class RungBook:
    """The rung bookkeeping that every ladder type shares: rungs ``ts``, which slot sits at which
    rung (``chain_at[r, k]``: the slot at rung k of ladder r; ``rung_of[r, c]``: the rung of slot c),
    exchange counts and round trips. Subclasses hold the chains' states and run the rounds."""

    R: int
    max_rungs: int

    @property
    def K(self) -> int:
        return self.ts.size

    def _set(self, ts: np.ndarray) -> None:
        self.ts = np.ascontiguousarray(ts)
        self.rung_of = np.tile(np.arange(self.max_rungs), (self.R, 1))
        self.chain_at = self.rung_of.copy()
        self.reset_counts()

    def reset_counts(self) -> None:
        shape = (self.R, self.max_rungs)
        self.acc_sum, self.acc_n = np.zeros(shape), np.zeros(shape)
        self.last_end = np.full(shape, -1, dtype=np.int64)
        self.half_trips = np.zeros(shape, dtype=np.int64)

    def _slots_nearest(self, ts: np.ndarray) -> np.ndarray:
        """(R, len(ts)): in every ladder, the slot of the old rung nearest (in t) to each new rung."""
        nearest = np.abs(ts[:, None] - self.ts[None, :]).argmin(axis=1)
        return self.chain_at[:, nearest]

    def acceptance(self) -> np.ndarray:
        """Mean exchange probability of each neighbouring pair (K - 1,), pooled over ladders."""
        K = self.K
        n = self.acc_n[:, :K - 1].sum(axis=0)
        return self.acc_sum[:, :K - 1].sum(axis=0) / np.maximum(n, 1)

    def round_trips(self) -> np.ndarray:
        """Round trips (base -> target -> base, or the reverse) per ladder since the counts restarted."""
        return (self.half_trips // 2).sum(axis=1)


class Ladders(RungBook):
    """R independent replica-exchange ladders on a common set of rungs ``ts`` (one chain per rung).

    Chains live in slots; ``chain_at[r, k]`` is the slot at rung k of ladder r. Slot (r, s)
    always draws from the same random stream, so a run is repeatable from its seed.
    """

    def __init__(self, path: AnnealingPath, ts: np.ndarray, chains: int, entropy: int, sweeps: int = 1,
                 start: np.ndarray | None = None, max_rungs: int = MAX_RUNGS):
        self.path = path
        self.R = chains
        self.sweeps = sweeps
        self.max_rungs = max_rungs
        nv = path.model.n_visible
        seqs = chain_states(entropy, chains * max_rungs, stream=_STREAM)
        self.states = kernel_states(seqs).reshape(chains, max_rungs, 4)
        swap = np.random.SeedSequence(entropy, spawn_key=(_STREAM, _SWAP_KEY)).generate_state(4 * chains, np.uint64)
        from ..kernels.gibbs import seed_states

        self.swap_states = seed_states(swap)
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(_STREAM, _START_KEY)))
        if start is None:
            v0 = (rng.random((chains, max_rungs, nv)) < 0.5).astype(np.float64)
        else:
            v0 = np.asarray(start, dtype=np.float64)[rng.integers(0, start.shape[0], size=(chains, max_rungs))]
        self.v = np.ascontiguousarray(v0)
        self.rounds_done = 0
        self.visited: list[np.ndarray] = []
        self._set(np.asarray(ts, dtype=np.float64))

    def set_rungs(self, ts: np.ndarray) -> None:
        """Move to new rungs: the chain of new rung j starts from the state of the old rung
        nearest to it (in t), in every ladder; counts restart."""
        self.remember()
        v = self.v.copy()
        self.v[:, :ts.size] = v[np.arange(self.R)[:, None], self._slots_nearest(ts)]
        self._set(ts)

    def remember(self) -> None:
        """Keep the current states of all chains for the visited-states bound."""
        self.visited.append(self.v[:, :self.K].reshape(-1, self.v.shape[2]).astype(np.uint8))

    def run(self, rounds: int, *, record: bool = False, count_trips: bool = False, progress=None,
            label: str = "pt", done: int = 0, total: int = 0) -> "Records | None":
        """``rounds`` rounds of every ladder (in segments, for progress); with ``record`` the works
        and top-rung states of each round are returned."""
        from .. import engine

        if engine.backend().distributed and self.R > 1:
            return self._run_as_tasks(engine.backend(), rounds, record, count_trips, progress, label)
        from ..kernels.tempering import run_ladders

        p = self.path
        K, R, nv = self.K, self.R, p.model.n_visible
        n = rounds if record else 0
        up, down = np.zeros((n, R, K)), np.zeros((n, R, K))
        top, top_lf = np.zeros((n, R, nv), dtype=np.uint8), np.zeros((n, R))
        segment = rounds if progress is None else max(1, -(-rounds // PROGRESS_SEGMENTS))
        with np.errstate(over="ignore", invalid="ignore"):
            for lo in range(0, rounds, segment):
                hi = min(rounds, lo + segment)
                run_ladders(K, self.v, self.states, self.rung_of, self.chain_at, self.ts, self.swap_states,
                            p.w_scaled, p.w_colsum, p.wt32, p.wt32_colsum, p.hbias_scaled, p.dvis, p.base_bias,
                            p.vbias_scaled, self.sweeps, self.rounds_done, hi - lo, up[lo:hi], down[lo:hi],
                            top[lo:hi], top_lf[lo:hi], self.acc_sum, self.acc_n, self.last_end, self.half_trips,
                            count_trips)
                self.rounds_done += hi - lo
                if progress is not None:
                    progress(label, done + hi, total or rounds)
        if not record:
            return None
        return Records(self.ts.copy(), up, down, top, top_lf)

    #: The arrays that hold one row per ladder (what a group of ladders carries between tasks).
    PER_LADDER = ("v", "states", "swap_states", "rung_of", "chain_at", "acc_sum", "acc_n", "last_end", "half_trips")

    def _run_as_tasks(self, backend, rounds: int, record: bool, count_trips: bool, progress, label: str
                      ) -> "Records | None":
        """:meth:`run` with groups of ladders as engine tasks (fecli.engine): ladders are independent
        within a run (only the adaptation between runs pools them), each draws from its own streams,
        so the groups give the bits of one kernel call over all ladders."""
        groups = backend.split(self.R)
        parts = backend.map(ladder_rounds, self.path, [(self._part(g), rounds, record, count_trips) for g in groups],
                            label, progress)
        for g, (part, _) in zip(groups, parts):
            for name in self.PER_LADDER:
                getattr(self, name)[g.start:g.stop] = getattr(part, name)
        self.rounds_done += rounds
        if not record:
            return None
        recs = [rec for _, rec in parts]
        return Records(self.ts.copy(), *(np.concatenate([getattr(r, f) for r in recs], axis=1)
                                         for f in ("up", "down", "top", "top_lf")))

    def _part(self, ladders: range) -> "Ladders":
        """A copy of these ladders restricted to ``ladders``, without the path (sent once per worker)."""
        part = copy.copy(self)
        part.path, part.visited, part.R = None, [], len(ladders)
        for name in self.PER_LADDER:
            setattr(part, name, np.ascontiguousarray(getattr(self, name)[ladders.start:ladders.stop]))
        return part

    def visited_bound(self, model: RBM, beta: float, rec: "Records") -> tuple[float, int]:
        """The rigorous lower bound of :func:`visited_lower_bound` over every state kept, and their count."""
        return visited_lower_bound(*visited_states(model, beta, self, rec))

    def target_states(self, rec: "Records", most: int) -> np.ndarray:
        """At most ``most`` recorded top-rung states (approximate target samples), evenly spaced in time."""
        return thinned(rec.top, most)

    def upper_bound(self, model: RBM, beta: float) -> float:
        from ..bounds import upper_bound

        return upper_bound(model, beta)


def ladder_rounds(path: AnnealingPath, task: tuple, progress=None) -> tuple[Ladders, "Records | None"]:
    """The engine's task: ``rounds`` rounds of a group of ladders (task: group, rounds, record,
    count_trips); the group after them (without the path) and its records."""
    part, rounds, record, count_trips = task
    part.path = path
    rec = part.run(rounds, record=record, count_trips=count_trips)
    part.path = None
    return part, rec


@dataclass
class Records:
    """What the recorded rounds kept: works (rounds, R, K) by rung, top-rung states (rounds, R, nv)
    and their -F_beta(v) (rounds, R)."""

    ts: np.ndarray
    up: np.ndarray
    down: np.ndarray
    top: np.ndarray
    top_lf: np.ndarray


# --------------------------------------------------------------------------- adapting the ladder
def stage_lengths(burn_in: int) -> list[int]:
    """Rounds of each adaptation stage: doubling from max(MIN_STAGE, burn_in / 16) within ADAPT_SHARE."""
    lengths, length = [], max(MIN_STAGE, burn_in // 16)
    while sum(lengths) + length <= ADAPT_SHARE * burn_in:
        lengths.append(length)
        length *= 2
    return lengths


def place_rungs(ts: np.ndarray, acceptance: np.ndarray, rungs: int | None,
                target: float = TARGET_ACCEPTANCE, max_rungs: int = MAX_RUNGS) -> np.ndarray:
    """New rungs that split the measured thermodynamic length evenly.

    Each pair's rate A_k gives a distance d_k = 2 erfcinv(A_k) (Gaussian log-ratios); the
    rungs are placed at equal steps of the cumulative distance, interpolated linearly in t
    between the old rungs. Their number is ``rungs``, or (None) the fewest whose steps are at
    most 2 erfcinv(target), capped at ``max_rungs``.
    """
    from scipy.special import erfcinv

    d = 2.0 * erfcinv(np.clip(acceptance, ACCEPTANCE_FLOOR, 1.0))
    length = np.concatenate([[0.0], np.cumsum(d)])
    step = 2.0 * float(erfcinv(target))
    K = rungs if rungs is not None else int(np.clip(math.ceil(length[-1] / step) + 1, 2, max_rungs))
    if not length[-1] > 0:
        return np.linspace(0.0, 1.0, K)
    new = np.interp(np.linspace(0.0, length[-1], K), length, ts)
    new[0], new[-1] = 0.0, 1.0
    return np.maximum.accumulate(new)


def adapt(ladders: Ladders, burn_in: int, rungs: int | None, progress=None, total: int = 0) -> list[int]:
    """Burn-in: adaptation stages (see :func:`place_rungs`), then the rest on the final ladder.
    Returns the number of rungs after each stage."""
    history, done = [], 0
    for length in stage_lengths(burn_in):
        ladders.reset_counts()
        ladders.run(length, progress=progress, done=done, total=total)
        done += length
        ladders.set_rungs(place_rungs(ladders.ts, ladders.acceptance(), rungs, max_rungs=ladders.max_rungs))
        history.append(ladders.K)
    if burn_in > done:
        ladders.run(burn_in - done, progress=progress, done=done, total=total)
    return history


# --------------------------------------------------------------------------- BAR along the ladder
@dataclass
class PairFailure:
    """A neighbouring pair that BAR could not combine (for the error message)."""

    k: int
    ladder: int | None
    reason: str


def bar_pair(w_F: np.ndarray, w_R: np.ndarray) -> tuple[float, float] | str:
    """BAR free-energy difference Delta f = f_1 - f_0 (nats) and its asymptotic standard error,
    from forward works w_F = u_1 - u_0 on samples of state 0 and reverse works w_R = u_0 - u_1
    on samples of state 1; or a sentence saying why it could not be solved.

    pymbar's solver stops on a relative change of Delta f, which never comes when the root is
    near 0 (nearly identical neighbours: pymbar then raises, and its MBAR's BAR initialisation
    turns that into a NameError). BAR is equivariant under shifting the works (w_F + c,
    w_R - c gives Delta f + c), so after the default attempt the root is moved away from 0
    by c = 1 + max |w| and solved by false position, by bisection and by self-consistent
    iteration from the one-sided (EXP) estimate. pymbar answers 0 +- 0 when the two sides do
    not overlap at all; that counts as a failure too. For works that (nearly) do not vary, its
    variance can round to a negative number (a NaN error): that error is 0.
    """
    other_estimators, _, utils = _pymbar()
    w_F = np.asarray(w_F, dtype=np.float64)
    w_R = np.asarray(w_R, dtype=np.float64)
    if not (np.all(np.isfinite(w_F)) and np.all(np.isfinite(w_R))):
        return "works are NaN or infinite (overflow)"
    if not (np.any(w_F) or np.any(w_R)):
        return 0.0, 0.0  # identical neighbours
    # (nearly) the same distribution: works that hardly vary, and forward = -reverse
    tiny = max(float(np.ptp(w_F)), float(np.ptp(w_R)), abs(float(w_F.mean() + w_R.mean()))) < 1e-6
    c = 1.0 + max(float(np.abs(w_F).max()), float(np.abs(w_R).max()))
    m = float((-w_F).max())
    exp_start = -(m + math.log(float(np.mean(np.exp(-w_F - m))))) + c  # EXP estimate, shifted
    attempts = (
        (0.0, dict(method="false-position")),
        (c, dict(method="false-position")),
        (c, dict(method="bisection", DeltaF=exp_start, maximum_iterations=2000)),
        (c, dict(method="self-consistent-iteration", DeltaF=exp_start, maximum_iterations=20000)),
    )
    reason = "the two sides do not overlap"
    for shift, options in attempts:
        try:
            with _quiet_pymbar(), np.errstate(all="ignore"):
                out = other_estimators.bar(w_F + shift, w_R - shift, **options)
        except (utils.ConvergenceError, utils.BoundsError, ArithmeticError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            continue
        df, ddf = float(out["Delta_f"]), float(out["dDelta_f"])
        if math.isnan(ddf) and tiny:  # a variance of ~0 that rounding made negative
            ddf = 0.0
        if math.isfinite(df) and math.isfinite(ddf) and not (df == 0.0 and ddf == 0.0):
            return df - shift, ddf
        reason = "the two sides do not overlap"
    return reason


def inefficiency(series: np.ndarray) -> float:
    """Statistical inefficiency g >= 1 of a series (pymbar.timeseries; 1 for constant or short series)."""
    _, timeseries, _ = _pymbar()
    if series.size < 3 or np.ptp(series) == 0:
        return 1.0
    try:
        with _quiet_pymbar():
            return max(1.0, float(timeseries.statistical_inefficiency(series, fast=True)))
    except Exception:  # pymbar refuses degenerate series (e.g. zero variance after its mean removal)
        return 1.0


@dataclass
class LadderEstimate:
    """ln Z by BAR along the ladder, pooled and per independent ladder."""

    delta: float  # sum_k Delta f_k of the pooled samples (ln Z = ln Z_A - delta)
    pair_delta: np.ndarray
    pair_stderr: np.ndarray  # asymptotic, scaled by sqrt(g), floored at g / N
    pair_g: np.ndarray
    ladder_delta: np.ndarray  # (R,)
    asymptotic_stderr: float
    spread_stderr: float


def combine(rec: Records) -> LadderEstimate | PairFailure:
    """BAR between each pair of neighbouring rungs, pooled over ladders and per ladder."""
    S, R, K = rec.up.shape
    pair_delta, pair_se, pair_g = np.zeros(K - 1), np.zeros(K - 1), np.zeros(K - 1)
    ladder_delta = np.zeros(R)
    for k in range(K - 1):
        w_F, w_R = -rec.up[:, :, k], -rec.down[:, :, k + 1]  # (S, R)
        pooled = bar_pair(w_F.ravel(), w_R.ravel())
        if isinstance(pooled, str):
            return PairFailure(k, None, pooled)
        g = float(np.mean([max(inefficiency(w_F[:, r]), inefficiency(w_R[:, r])) for r in range(R)]))
        n = S * R / g  # effective samples per rung
        pair_delta[k], pair_g[k] = pooled[0], g
        pair_se[k] = max(pooled[1] * math.sqrt(g), 1.0 / n)
        for r in range(R):
            alone = bar_pair(w_F[:, r], w_R[:, r])
            if isinstance(alone, str):
                return PairFailure(k, r, alone)
            ladder_delta[r] += alone[0]
    spread = float(ladder_delta.std(ddof=1) / math.sqrt(R)) if R > 1 else math.inf
    return LadderEstimate(float(pair_delta.sum()), pair_delta, pair_se, pair_g, ladder_delta,
                          float(np.sqrt(np.sum(pair_se ** 2))), spread)


def distinct_rows(rows: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct row of a 0/1 uint8 array (rows compared
    as packed bytes: np.unique over rows is 30x slower)."""
    packed = np.ascontiguousarray(np.packbits(rows, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first = np.unique(keys, return_index=True)
    return np.sort(first)


def visited_lower_bound(rows: np.ndarray, neg_f: np.ndarray) -> tuple[float, int]:
    """ln sum over the distinct rows v of e^{-F_beta(v)}, given -F_beta of every row: a rigorous
    lower bound on ln Z(beta) (a sum over some of the states), and the number of distinct rows.
    rows: (N, nv) 0/1 uint8, neg_f: (N,)."""
    first = distinct_rows(rows)
    kept = np.asarray(neg_f, dtype=np.float64)[first]
    m = float(kept.max())
    return m + math.log(float(np.exp(kept - m).sum())), int(first.size)


def visited_states(model: RBM, beta: float, ladders: Ladders, rec: Records) -> tuple[np.ndarray, np.ndarray]:
    """Every state kept from a run (recorded top rungs with their -F, and snapshots of all chains
    at each change of ladder and at the end) with -F_beta of each."""
    snapshots = np.concatenate(ladders.visited)
    rows = np.concatenate([rec.top.reshape(-1, rec.top.shape[2]), snapshots])
    with np.errstate(over="ignore", invalid="ignore"):
        neg_f = np.concatenate([rec.top_lf.ravel(), -model.free_energy(snapshots.astype(np.float64), beta)])
    return rows, neg_f


# --------------------------------------------------------------------------- options
def _check_options(beta, rungs, chains, samples, burn_in, sweeps, schedule, rung_word="rungs"):
    beta = check_beta(beta)
    if rungs is not None:
        rungs = check_positive_int(rung_word, rungs)
        if not 2 <= rungs <= MAX_RUNGS:
            raise InvalidOptionError(
                f"{rung_word} must be an integer from 2 (base model and target) to {MAX_RUNGS}, got {rungs}.")
    chains = check_positive_int("chains", chains)
    if chains < 2:
        raise InvalidOptionError(
            f"chains must be an integer >= 2 (the spread between independent ladders is part of the error bar), "
            f"got {chains}.")
    samples = check_positive_int("samples", samples)
    burn_in = check_positive_int("burn_in", burn_in)
    sweeps = check_positive_int("sweeps", sweeps)
    return beta, rungs, chains, samples, burn_in, sweeps, check_schedule(schedule)


def _start_ladders(model, beta, rungs, chains, burn_in, sweeps, schedule, data, entropy, progress, total):
    if not model.is_bernoulli:  # Gaussian or Potts layers: the generic layer path
        from .layered_tempering import start_layered_ladders

        return start_layered_ladders(model, beta, rungs, chains, burn_in, sweeps, schedule, data, entropy, progress,
                                     total)
    data_arr, data_label = resolve_data(data, model)
    a_base, base_note = base_model(model, beta, data_arr)
    path = AnnealingPath(model, beta, a_base)
    first = make_schedule(schedule, (rungs or FIRST_RUNGS) - 1)
    ladders = Ladders(path, first, chains, entropy, sweeps, start=data_arr)
    history = adapt(ladders, burn_in, rungs, progress, total)
    return ladders, path, base_note, data_label, history


# --------------------------------------------------------------------------- the estimator
def pt(
    model: RBM,
    *,
    beta: float = 1.0,
    rungs: int | None = DEFAULT_RUNGS,
    chains: int = DEFAULT_CHAINS,
    samples: int = DEFAULT_SAMPLES,
    burn_in: int = DEFAULT_BURN_IN,
    sweeps: int = DEFAULT_SWEEPS,
    schedule: str = DEFAULT_SCHEDULE,
    data: Any = None,
    seed: int | None = None,
    progress=None,
) -> Result:
    """Parallel tempering + BAR estimate of ln Z(beta) (nats); see the module docstring.

    Parameters
    ----------
    rungs : rungs of each ladder, base model (t = 0) to target (t = 1); None: adapted so that
        neighbours exchange at about :data:`TARGET_ACCEPTANCE`. Positions are adapted either way.
    chains : independent ladders (>= 2; their spread is part of the error bar).
    samples : recorded rounds per ladder, after ``burn_in`` rounds (adaptation included).
    sweeps : Gibbs sweeps of every chain per round.
    schedule : 'linear', 'sigmoid' or 'sm08' spacing of the first ladder (before adaptation).
    data : path or array of examples; the base model becomes their base rate and chains start
        from data rows.

    Raises InvalidOptionError for bad options, EstimationFailedError when the run overflows or
    BAR cannot combine two neighbouring rungs (the message names them).
    """
    return _tempering(model, "pt", "rungs", beta, rungs, chains, samples, burn_in, sweeps, schedule, data, seed,
                      progress)


def _tempering(model: RBM, method: str, word: str, beta, rungs, chains, samples, burn_in, sweeps, schedule, data,
               seed, progress) -> Result:
    """pt under the name ``method``, its rung option called ``word`` in messages and params."""
    return TemperingRun(model, beta=beta, rungs=rungs, chains=chains, burn_in=burn_in, sweeps=sweeps,
                        schedule=schedule, data=data, seed=seed, method=method, word=word).result(samples, progress)


class TemperingRun:
    """A pt run that can be made longer: :meth:`result` (samples) gives the estimate from the first
    ``samples`` recorded rounds of the same ladders, running only the rounds not yet run.

    The ladders, their streams and the rounds are those of one call of :func:`pt` with the same
    options and seed, so ``result(4000)`` after ``result(2000)`` equals ``pt(samples=4000)``: a
    longer run with the burn-in and the first 2,000 rounds not repeated (what ``auto`` does when it
    doubles pt's effort; a new run would repeat the burn-in and every round).
    """

    def __init__(self, model: RBM, *, beta: float = 1.0, rungs: int | None = DEFAULT_RUNGS,
                 chains: int = DEFAULT_CHAINS, burn_in: int = DEFAULT_BURN_IN, sweeps: int = DEFAULT_SWEEPS,
                 schedule: str = DEFAULT_SCHEDULE, data: Any = None, seed: int | None = None,
                 method: str = "pt", word: str = "rungs"):
        self.model, self.method, self.word = model, method, word
        self.beta, self.rungs, self.chains, _, self.burn_in, self.sweeps, self.schedule = _check_options(
            beta, rungs, chains, 1, burn_in, sweeps, schedule, word)
        self.data, self.entropy = data, resolve_seed(seed)
        self.ladders = self.rec = None
        self.seconds = 0.0

    @property
    def samples_run(self) -> int:
        """Recorded rounds so far."""
        return 0 if self.rec is None else self.rec.up.shape[0]

    def _start(self, total: int, progress) -> None:
        self.ladders, self.path, self.base_note, self.data_label, self.history = _start_ladders(
            self.model, self.beta, self.rungs, self.chains, self.burn_in, self.sweeps, self.schedule, self.data,
            self.entropy, progress, total)
        self.ladders.reset_counts()

    def _record(self, samples: int, progress) -> None:
        """Run the recorded rounds up to ``samples`` (burn-in first, on the first call)."""
        total = self.burn_in + samples
        if self.ladders is None:
            self._start(total, progress)
        more = samples - self.samples_run
        rec = self.ladders.run(more, record=True, count_trips=True, progress=progress,
                               done=self.burn_in + self.samples_run, total=total)
        self.ladders.remember()
        if self.rec is None:
            self.rec = rec
        else:
            self.rec = Records(self.rec.ts, *(np.concatenate([getattr(self.rec, f), getattr(rec, f)])
                                              for f in ("up", "down", "top", "top_lf")))

    def result(self, samples: int, progress=None) -> Result:
        """The estimate from the first ``samples`` recorded rounds (see the class docstring).

        Raises InvalidOptionError when ``samples`` is fewer than the rounds already recorded, and
        EstimationFailedError as :func:`pt`."""
        start = time.perf_counter()
        samples = check_positive_int("samples", samples)
        if samples < self.samples_run:
            raise InvalidOptionError(f"samples must be at least the {self.samples_run} rounds already recorded, "
                                     f"got {samples}.")
        if samples > self.samples_run:
            self._record(samples, progress)
        self.seconds += time.perf_counter() - start
        return self._estimate(samples, time.perf_counter())

    def _estimate(self, samples: int, start: float) -> Result:
        """The Result from the recorded rounds (``start``: when the estimate began; the run's time adds)."""
        model, beta, method, word, chains = self.model, self.beta, self.method, self.word, self.chains
        ladders, path, rec, rungs = self.ladders, self.path, self.rec, self.rungs
        burn_in, sweeps, schedule = self.burn_in, self.sweeps, self.schedule
        base_note, data_label, history, entropy = self.base_note, self.data_label, self.history, self.entropy
        ts, K = ladders.ts, ladders.K
        if not (np.all(np.isfinite(rec.up)) and np.all(np.isfinite(rec.down))):
            raise EstimationFailedError("the run failed: log-ratios between rungs are NaN or infinite (overflow); "
                                        "no estimate is reported.")
        fit = combine(rec)
        acceptance = ladders.acceptance()
        if isinstance(fit, PairFailure):
            who = "" if fit.ladder is None else f" in ladder {fit.ladder}"
            raise EstimationFailedError(
                f"the run failed: BAR could not combine the samples of rungs t = {ts[fit.k]:.4g} and "
                f"t = {ts[fit.k + 1]:.4g}{who}: they do not overlap (exchange rate {acceptance[fit.k]:.3g}; "
                f"{fit.reason}); no estimate is reported. Use more rungs (--{word}) or a longer --burn-in.")
        log_z = path.log_z_base - fit.delta
        ladder_log_z = path.log_z_base - fit.ladder_delta
        from scipy.stats import t as student_t

        t_quantile = float(student_t.ppf(0.975, chains - 1))
        stderr = max(fit.asymptotic_stderr, fit.spread_stderr)
        half = max(Z95 * fit.asymptotic_stderr, t_quantile * fit.spread_stderr)
        ci_low, ci_high = log_z - half, log_z + half
        trips = ladders.round_trips()
        bound, distinct = ladders.visited_bound(model, beta, rec)

        warnings = []
        if np.any(trips == 0):
            idle = np.flatnonzero(trips == 0)
            warnings.append(
                f"{idle.size} of {chains} ladders made no round trip between the base model and the target in "
                f"{samples} rounds: their target end was never fed from the well-mixed end, so modes may be "
                f"missed and the error bar is unreliable (use more --samples).")
        poor = np.flatnonzero(acceptance < POOR_ACCEPTANCE)
        if poor.size:
            where = ", ".join(f"{ts[k]:.3g}-{ts[k + 1]:.3g}" for k in poor[:5]) + (" ..." if poor.size > 5 else "")
            warnings.append(
                f"{poor.size} of {K - 1} neighbouring rungs rarely exchange (rate {acceptance.min():.2g} < "
                f"{POOR_ACCEPTANCE}, at t = {where}): the ladder is too coarse there (use more --{word} "
                f"or a longer --burn-in).")
        if fit.spread_stderr > SPREAD_RATIO * fit.asymptotic_stderr:
            warnings.append(
                f"the {chains} independent ladders disagree (ln Z from {ladder_log_z.min():.4f} to "
                f"{ladder_log_z.max():.4f}) more than their own error bars allow: they mix slowly, possibly "
                f"between modes; the interval uses their spread.")
        bar_log_z = log_z
        if ci_high >= bound > log_z:  # sampling noise below a rigorous bound that the interval allows
            log_z, ci_low = bound, max(ci_low, bound)
        result = Result(
            model=model.name,
            method=method,
            beta=beta,
            log_z=log_z,
            kind="estimate",
            n_visible=model.n_visible,
            n_hidden=model.n_hidden,
            stderr=stderr,
            ci_low=ci_low,
            ci_high=ci_high,
            wall_time_s=self.seconds + time.perf_counter() - start,
            params={word: rungs, "chains": chains, "samples": samples, "burn_in": burn_in, "sweeps": sweeps,
                    "schedule": schedule, "data": data_label, "seed": entropy},
            diagnostics={
                "base_model": base_note, "log_z_base": path.log_z_base, "rungs": K, "ladder": ts.tolist(),
                "rungs_after_each_adaptation": history, "exchange_acceptance": acceptance.tolist(),
                "round_trips_per_ladder": trips.tolist(), "ladder_log_z": ladder_log_z.tolist(),
                "asymptotic_stderr": fit.asymptotic_stderr, "ladder_spread_stderr": fit.spread_stderr,
                "statistical_inefficiency": fit.pair_g.tolist(), "bar_log_z": bar_log_z,
                "visited_lower_bound": bound, "visited_distinct_states": distinct,
            },
            warnings=warnings,
            states=ladders.target_states(rec, STATES_KEPT),
        )
        if bound > ci_high:  # the interval excludes a sum over states the chains saw: mass was missed
            from ..bounds import Bracket, check_result

            check_result(result, Bracket(bound, ladders.upper_bound(model, beta), f"{distinct} distinct states the "
                                         "tempered chains visited", "factorised upper bound"))
        return result


def thinned(top: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` of the recorded top-rung states (rounds, R, nv), evenly spaced in time."""
    rows = top.reshape(-1, top.shape[2])
    return rows[_thinned_rows(rows.shape[0], most)]


def _thinned_rows(n_rows: int, most: int) -> np.ndarray:
    return np.linspace(0, n_rows - 1, min(most, n_rows)).astype(int)


def state_ladders(result: Result) -> np.ndarray:
    """The ladder each of a pt result's ``states`` came from (independent sources of target samples)."""
    chains = int(result.params["chains"])
    return _thinned_rows(int(result.params["samples"]) * chains, STATES_KEPT) % chains


def umbrella(
    model: RBM,
    *,
    beta: float = 1.0,
    windows: int | None = DEFAULT_RUNGS,
    chains: int = DEFAULT_CHAINS,
    samples: int = DEFAULT_SAMPLES,
    burn_in: int = DEFAULT_BURN_IN,
    sweeps: int = DEFAULT_SWEEPS,
    schedule: str = DEFAULT_SCHEDULE,
    data: Any = None,
    seed: int | None = None,
    progress=None,
) -> Result:
    """The old name of :func:`pt` (windows = rungs), kept so that existing scripts run.

    fecli's umbrella sampling was replica exchange over fixed windows of the same path,
    combined by MBAR; :func:`pt` is that with the ladder adapted, round trips counted and
    BAR between neighbours, so both names run the same code (results say 'umbrella').
    """
    return _tempering(model, "umbrella", "windows", beta, windows, chains, samples, burn_in, sweeps, schedule, data,
                      seed, progress)


# --------------------------------------------------------------------------- samples for other methods
@dataclass
class TemperedSamples:
    """Approximately equilibrated samples of the target from the t = 1 rungs of tempering ladders."""

    v: np.ndarray  # (n, nv) 0/1 float64
    note: str
    warnings: list[str] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    ladder: np.ndarray | None = None  # (n,) the ladder each state came from (independent replicates)


def tempered_samples(model: RBM, beta: float = 1.0, n: int = 100, seed: int | None = None, *, data: Any = None,
                     chains: int = DEFAULT_CHAINS, burn_in: int = DEFAULT_BURN_IN, rounds: int = DEFAULT_SAMPLES,
                     progress=None) -> TemperedSamples:
    """``n`` states of the target p_beta(v) from parallel tempering, for methods that need target
    samples where exact sampling is out of reach (reverse AIS's starts).

    ``chains`` independent ladders are adapted and burnt in as for :func:`pt`, then run for at
    least ``rounds`` rounds; the top rung (t = 1) of each ladder is thinned by the statistical
    inefficiency g of its log-ratio to the rung below (so kept states are about one correlation
    time apart) and, when that leaves fewer than n, run longer. States are taken from the ladders
    in turn. They are samples of the target only as far as the ladders mix: the warnings say
    when a ladder made no round trip between base model and target.
    """
    beta, _, chains, rounds, burn_in, _, _ = _check_options(beta, None, chains, rounds, burn_in, 1,
                                                            DEFAULT_SCHEDULE)
    n = check_positive_int("n", n)
    entropy = resolve_seed(seed)
    ladders, _, base_note, _, history = _start_ladders(model, beta, None, chains, burn_in, 1, DEFAULT_SCHEDULE,
                                                       data, entropy, progress, burn_in + rounds)
    ladders.reset_counts()
    rec = ladders.run(rounds, record=True, count_trips=True, progress=progress, done=burn_in,
                      total=burn_in + rounds)
    K = ladders.K
    g = max(1.0, float(np.mean([inefficiency(rec.down[:, r, K - 1]) for r in range(chains)])))
    thin = int(math.ceil(g))
    per_ladder = -(-n // chains)
    top = rec.top
    if top.shape[0] < per_ladder * thin:
        more = ladders.run(per_ladder * thin - top.shape[0], record=True, count_trips=True)
        top = np.concatenate([top, more.top])
    kept = top[::-thin][:per_ladder][::-1]  # the last per_ladder states, thin rounds apart: (m, R, nv)
    v = kept.reshape(-1, top.shape[2])[:n].astype(np.float64)  # round by round, the ladders in turn
    trips = ladders.round_trips()
    warnings = []
    if np.any(trips == 0):
        warnings.append(f"{int(np.sum(trips == 0))} of {chains} tempering ladders made no round trip between "
                        f"base model and target: the samples may miss modes of the target.")
    note = (f"parallel tempering: {chains} ladders of {K} rungs, {burn_in} rounds of burn-in, top rung thinned "
            f"every {thin} rounds; {base_note} at t = 0")
    return TemperedSamples(v, note, warnings, {"rungs": K, "thin": thin, "round_trips_per_ladder": trips.tolist(),
                                               "rungs_after_each_adaptation": history},
                           np.tile(np.arange(chains), kept.shape[0])[:n])
