"""ln Z along training: sequential Monte Carlo over parameter snapshots.

Béreux, Decelle, Furtlehner, Rosset & Seoane (ICLR 2025): the models of one training run
change little from one snapshot theta_j to the next, so chains that follow the run stay
close to equilibrium, and annealing from each snapshot to the next tracks ln Z_j from a
start whose ln Z is known. Between theta_a and theta_b the intermediate distributions
interpolate the parameters linearly (every one of them is an RBM):

    theta_s = (1 - s) theta_a + s theta_b,   s = k / K, k = 0..K  (K = ``steps`` per interval),
    ln f_s(v) = a_s.v + sum_j softplus(b_s,j + (v^T W_s)_j)   (hidden units summed out).

At step k every particle gains the incremental log weight ln f_{s_k}(v) - ln f_{s_{k-1}}(v),
then ``sweeps`` block Gibbs sweeps of the RBM theta_{s_k} move it (the fused sweeps of
:mod:`fecli.kernels.anneal` at t = 1 on the interpolated RBM).

Sequential Monte Carlo bookkeeping (Del Moral, Doucet & Jasra 2006): when the effective
sample size ESS = (sum w)^2 / sum w^2 of a replicate's weights falls below
``resample_ess`` x chains, its particles are resampled (systematic or multinomial, both
unbiased: particle i has n W_i offspring in expectation) and its weights reset to 1,
after adding logmeanexp(log w) to its running ln Z. The estimate at any point is

    ln Z_hat_j = ln Z_start + sum_{resamplings r} logmeanexp(log w^(r)) + logmeanexp(log w_now),

and Z_hat_j is unbiased for Z_j, so ln Z_hat_j is a stochastic lower bound (Jensen), as in AIS.

Start (``initial``): ``exact`` when the smaller layer of the first snapshot has at most
:data:`EXACT_START_MAX_UNITS` units (ln Z_0 by enumeration, particles exact samples of
theta_0); otherwise ``factorised``: one more interval, from the factorised model with the
first snapshot's biases and W = 0 (ln Z = sum_i softplus(a_i) + sum_j softplus(b_j),
sampled exactly) to theta_0, annealed like the others (a short AIS: theta_0 is the small
random initialisation of training).

Error bars come from ``replicates`` independent runs (own seeds, own particles): the
combined estimate is ln of the mean of their Z_hat (still unbiased), its standard error the
larger of the delta-method spread sd(Z_hat_r) / (sqrt(R) mean(Z_hat_r)) and sd(ln Z_hat_r) /
sqrt(R) (the delta method saturates near 1 nat when one replicate dominates), and the 95%
interval uses Student's t with R - 1 degrees of freedom. The ESS of one run says how
degenerate its weights are, not how far it is from the truth; replicates that disagree do,
and more than 1 nat apart they are reported: the particles lost track of a model that moves
too fast between snapshots, and the value is then probably too low (as for AIS, a stochastic
lower bound fails by missing mass, not by inventing it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InvalidOptionError, RefusedError
from ..model import RBM, softplus
from ..result import Result
from . import METHODS
from ._sampling_common import (
    STREAMS,
    AnnealingPath,
    Chains,
    base_samples,
    chain_states,
    kernel_states,
    numpy_rng,
    resolve_seed,
)
from .exact import check_beta

#: The declared defaults (fecli.estimators registry), used by the signatures below.
DEFAULTS = METHODS["trajectory"].defaults()
DEFAULT_CHAINS = DEFAULTS["chains"]
DEFAULT_REPLICATES = DEFAULTS["replicates"]
DEFAULT_STEPS = DEFAULTS["steps"]
DEFAULT_SWEEPS = DEFAULTS["sweeps"]
DEFAULT_RESAMPLE_ESS = DEFAULTS["resample_ess"]
RESAMPLING_SCHEMES = METHODS["trajectory"].option("resampling").choices
INITIAL_METHODS = METHODS["trajectory"].option("initial").choices
#: ``initial="auto"`` enumerates the first snapshot when its smaller layer has at most this many units.
EXACT_START_MAX_UNITS = 20
#: A step whose weights fall below this ESS fraction (before resampling) is reported.
COLLAPSE_ESS_FRACTION = 0.05
#: Replicates whose ln Z have a standard deviation above this (nats) are reported as disagreeing.
DISAGREEMENT_NATS = 1.0

#: Spawn-key streams of a run: particles' Gibbs chains, exact start samples and resampling draws.
STREAM_CHAINS, STREAM_RESAMPLE = STREAMS["trajectory_chains"], STREAMS["trajectory_resample"]

ProgressCallback = Callable[[str, float, float], None] | None


# --------------------------------------------------------------------------- options
def checked(name: str, value: Any) -> Any:
    """``value`` checked against the registry's declaration of option ``name`` (the one validator)."""
    return METHODS["trajectory"].option(name).check(value)


# --------------------------------------------------------------------------- weights
def log_mean_exp_rows(x: np.ndarray) -> np.ndarray:
    """logmeanexp along the last axis (rows of -inf give -inf)."""
    x = np.asarray(x, dtype=np.float64)
    top = np.max(x, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return (top + np.log(np.mean(np.exp(x - top), axis=-1, keepdims=True)))[..., 0]


def effective_sample_size(log_w: np.ndarray) -> np.ndarray:
    """(sum w)^2 / sum w^2 along the last axis, from log weights."""
    log_w = np.asarray(log_w, dtype=np.float64)
    r = np.exp(log_w - np.max(log_w, axis=-1, keepdims=True))
    return r.sum(axis=-1) ** 2 / np.sum(r * r, axis=-1)


def resample_indices(log_w: np.ndarray, rng: np.random.Generator, scheme: str = "systematic") -> np.ndarray:
    """Ancestor indices for n offspring of n particles with weights exp(log_w).

    systematic: one uniform u, offspring at the points (u + i) / n of the weights' CDF;
    multinomial: n independent draws. Both give particle i n W_i offspring in expectation
    (W the normalised weights), which keeps the SMC estimate of Z unbiased.
    """
    log_w = np.asarray(log_w, dtype=np.float64)
    n = log_w.shape[0]
    w = np.exp(log_w - np.max(log_w))
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    if scheme == "systematic":
        points = (rng.random() + np.arange(n)) / n
    elif scheme == "multinomial":
        points = np.sort(rng.random(n))
    else:
        raise InvalidOptionError(f"resampling must be one of {', '.join(RESAMPLING_SCHEMES)}, got {scheme!r}.")
    return np.minimum(np.searchsorted(cdf, points, side="right"), n - 1)


# --------------------------------------------------------------------------- particles
@dataclass
class ParticleState:
    """What the next interval needs (and all a checkpoint must keep).

    v : (R * n, nv) 0/1 visible states, replicate r in rows r n .. (r + 1) n - 1.
    log_weights : (R, n) log weights accumulated since each replicate's last resampling.
    log_z_resampled : (R,) ln Z_start + the logmeanexp of the weights at every resampling.
    resamplings : (R,) resamplings so far.
    """

    v: np.ndarray
    log_weights: np.ndarray
    log_z_resampled: np.ndarray
    resamplings: np.ndarray

    @property
    def replicates(self) -> int:
        return self.log_weights.shape[0]

    @property
    def chains(self) -> int:
        return self.log_weights.shape[1]

    def log_z(self) -> np.ndarray:
        """(R,) each replicate's ln Z_hat at the current parameters."""
        return self.log_z_resampled + log_mean_exp_rows(self.log_weights)

    def ess(self) -> np.ndarray:
        """(R,) ESS of each replicate's current weights."""
        return effective_sample_size(self.log_weights)

    def copy(self) -> "ParticleState":
        return ParticleState(self.v.copy(), self.log_weights.copy(), self.log_z_resampled.copy(),
                             self.resamplings.copy())


@dataclass
class IntervalInfo:
    """Diagnostics of one annealed interval (over its replicates)."""

    steps: int
    resamplings: int
    min_ess_fraction: float  # lowest ESS / n over steps and replicates, before resampling


def scaled(model: RBM, beta: float) -> RBM:
    """The RBM with parameters beta * theta (its distribution is the original's at beta)."""
    if beta == 1.0:
        return model
    return RBM(beta * model.weights, beta * model.visible_bias, beta * model.hidden_bias, name=model.name)


def interpolate(a: RBM, b: RBM, s: float) -> RBM:
    """The RBM (1 - s) theta_a + s theta_b."""
    if s == 0.0:
        return a
    if s == 1.0:
        return b
    return RBM((1.0 - s) * a.weights + s * b.weights, (1.0 - s) * a.visible_bias + s * b.visible_bias,
               (1.0 - s) * a.hidden_bias + s * b.hidden_bias)


class Sampler:
    """Moves a :class:`ParticleState` along interpolation intervals (one object per run).

    Each replicate is its own particle system (own chains, own random streams), so the
    replicates stay independent and their spread is an honest error bar. ``states``: the
    chains' xoshiro states (R n, 4), advanced in place; ``rngs``: one numpy Generator per
    replicate for the resampling draws; ``steps`` equal steps per interval. (The steps are not
    sized from the particles' weights: a schedule that depends on the particles biases Z_hat.)
    """

    def __init__(self, states: np.ndarray, rngs: list[np.random.Generator], *, steps: int, sweeps: int,
                 resample_ess: float, resampling: str):
        self.states = states
        self.rngs = rngs
        self.steps = steps
        self.sweeps = sweeps
        self.resample_ess = resample_ess
        self.resampling = resampling
        self._chains: dict[int, Chains] = {}

    def _walkers(self, r: int, v: np.ndarray, model: RBM) -> Chains:
        path = AnnealingPath(model, 1.0, model.visible_bias)
        chains = self._chains.get(r)
        if chains is None or chains.n != v.shape[0]:
            n = v.shape[0]
            chains = self._chains[r] = Chains(path, v, self.states[r * n:(r + 1) * n])
        else:
            chains.path = path
            chains.v[...] = v
        return chains

    def advance(self, state: ParticleState, a: RBM, b: RBM, progress: ProgressCallback = None,
                label: str = "trajectory", done: float = 0.0, total: float = 0.0) -> IntervalInfo:
        """Anneal every replicate of ``state`` (in place) from theta_a to theta_b."""
        R, n = state.log_weights.shape
        stacked = np.ascontiguousarray(np.concatenate([a.weights, b.weights], axis=1))
        colsum = stacked.sum(axis=0)
        infos = []
        for r in range(R):
            infos.append(self._advance_replicate(state, r, a, b, stacked, colsum))
            if progress is not None:
                progress(label, done + (r + 1) / R, total)
        return IntervalInfo(self.steps, sum(i.resamplings for i in infos), min(i.min_ess_fraction for i in infos))

    def _advance_replicate(self, state: ParticleState, r: int, a: RBM, b: RBM, stacked: np.ndarray,
                           colsum: np.ndarray) -> IntervalInfo:
        from ..kernels.interpolation import interpolation_fields, interpolation_log_f

        n = state.chains
        rows = slice(r * n, (r + 1) * n)
        walkers = self._walkers(r, state.v[rows], a)
        bounds, parallel = walkers._blocks(), walkers._parallel(1)
        fields = np.empty((n, 2 * a.n_hidden))
        vis = np.empty((n, 2))
        log_f = np.empty((n, 2))
        log_w = state.log_weights[r]
        resampled, min_ess = 0, math.inf
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(1, self.steps + 1):
                s0, s1 = (k - 1) / self.steps, k / self.steps
                interpolation_fields(bounds, walkers.v, stacked, colsum, a.hidden_bias, b.hidden_bias,
                                     a.visible_bias, b.visible_bias, fields, vis, parallel)
                interpolation_log_f(fields, vis, (s0, s1), log_f, parallel)
                log_w += log_f[:, 1] - log_f[:, 0]
                ess = float(effective_sample_size(log_w))
                min_ess = min(min_ess, ess / n)
                if ess < self.resample_ess * n:
                    self._resample(state, walkers.v, r)
                    resampled += 1
                model = interpolate(a, b, s1)
                walkers.path = AnnealingPath(model, 1.0, model.visible_bias)
                walkers.sweep(1.0, self.sweeps)
        state.v[rows] = walkers.v
        return IntervalInfo(self.steps, resampled, min_ess)

    def _resample(self, state: ParticleState, v: np.ndarray, r: int) -> None:
        """Resample replicate r (its chains' states ``v``): its ln Z absorbs logmeanexp(w), its
        weights reset; only the visible states are copied (each chain keeps its own random stream)."""
        log_w = state.log_weights[r]
        state.log_z_resampled[r] += float(log_mean_exp_rows(log_w))
        idx = resample_indices(log_w, self.rngs[r], self.resampling)
        v[...] = v[idx]
        log_w[...] = 0.0
        state.resamplings[r] += 1


# --------------------------------------------------------------------------- a whole run
@dataclass
class Point:
    """ln Z at one point of the trajectory, per replicate and combined."""

    index: int
    update: int | None  # None: the model itself, when it differs from the last snapshot
    log_z_replicates: np.ndarray
    ess: np.ndarray  # (R,) ESS of each replicate's weights at this point
    resamplings: int  # total over replicates since the start
    steps: int  # steps of the interval that ended here (0 for the start)
    min_ess_fraction: float  # lowest ESS / n in that interval, before resampling
    exact: bool = False  # ln Z of this point is exact (the enumerated start)

    def summary(self) -> "Combined":
        return combine_replicates(self.log_z_replicates, exact=self.exact)


@dataclass
class Combined:
    log_z: float
    stderr: float
    ci_low: float
    ci_high: float
    spread: float  # sd of the replicates' ln Z_hat


def combine_replicates(log_z: np.ndarray, exact: bool = False) -> Combined:
    """ln mean(Z_hat_r) with a standard error from the spread between replicates and a
    Student-t 95% interval (R - 1 degrees of freedom).

    The standard error is the larger of the delta-method one, sd(Z_hat_r) / (sqrt(R) mean),
    and sd(ln Z_hat_r) / sqrt(R): the two agree while the replicates agree, but when one
    replicate dominates the mean the delta method saturates near 1 nat however far apart
    they are, and only the spread of their logarithms says how far.
    """
    from scipy.stats import t as student_t

    log_z = np.asarray(log_z, dtype=np.float64)
    R = log_z.size
    top = float(np.max(log_z))
    r = np.exp(log_z - top)
    mean = float(r.mean())
    value = top + math.log(mean)
    if exact:
        return Combined(value, 0.0, value, value, 0.0)
    if R < 2:
        return Combined(value, math.inf, -math.inf, math.inf, math.inf)
    spread = float(np.std(log_z, ddof=1))
    se = max(float(r.std(ddof=1) / (math.sqrt(R) * mean)), spread / math.sqrt(R))
    q = float(student_t.ppf(0.975, R - 1))
    return Combined(value, se, value - q * se, value + q * se, spread)


@dataclass
class TrajectoryRun:
    """Everything a run produced: a :class:`Point` per anchor, and how it started."""

    points: list[Point]
    start: str  # "exact" or "factorised"
    log_z_start: float
    params: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    wall_time_s: float = 0.0


def start_method(first: RBM, initial: str) -> str:
    """'exact' or 'factorised' for ``initial`` in auto / exact / factorised."""
    small = min(first.n_visible, first.n_hidden)
    if initial == "auto":
        return "exact" if small <= EXACT_START_MAX_UNITS else "factorised"
    if initial == "exact":
        from .exact import EXACT_SAMPLE_MAX_UNITS

        if small > EXACT_SAMPLE_MAX_UNITS:
            raise RefusedError(
                f"initial 'exact' enumerates 2^{small} states of the first snapshot's smaller layer; the limit is "
                f"{EXACT_SAMPLE_MAX_UNITS} units (use initial 'factorised')."
            )
    return initial


def factorised_model(model: RBM) -> RBM:
    """The first snapshot's biases with W = 0: ln Z = sum softplus(a) + sum softplus(b), exactly."""
    return RBM(np.zeros_like(model.weights), model.visible_bias, model.hidden_bias, name="factorised")


def initial_particles(first: RBM, start: str, replicates: int, chains: int, entropy: int,
                      states: np.ndarray) -> tuple[ParticleState, float]:
    """Particles at the start (exact samples of theta_0 or of the factorised model) and ln Z there."""
    n_total = replicates * chains
    if start == "exact":
        from .exact import ExactSampler

        sampler = ExactSampler(first)
        seqs = chain_states(entropy, n_total, stream=STREAM_CHAINS)
        v = np.concatenate([sampler.sample(stop - begin, numpy_rng(seq))[0] for begin, stop, seq in seqs])
        log_z0 = sampler.log_z
    else:
        base = factorised_model(first)
        v = base_samples(AnnealingPath(base, 1.0, base.visible_bias), states)
        log_z0 = float(softplus(base.visible_bias).sum() + softplus(base.hidden_bias).sum())
    state = ParticleState(np.ascontiguousarray(v, dtype=np.float64), np.zeros((replicates, chains)),
                          np.full(replicates, log_z0), np.zeros(replicates, dtype=np.int64))
    return state, log_z0


def anchors_of(snapshots: Any, model: RBM | None) -> tuple[list[RBM], list[int | None]]:
    """The RBMs to anneal through: every snapshot, then ``model`` when it differs from the last one
    (an interrupted run's checkpoint: its update is the stored training step, when known)."""
    anchors = [snapshots.model(i, name=f"snapshot {i}") for i in range(len(snapshots))]
    updates: list[int | None] = [int(u) for u in snapshots.updates]
    if model is not None:
        last = anchors[-1]
        same = (np.array_equal(last.weights, model.weights) and np.array_equal(last.visible_bias, model.visible_bias)
                and np.array_equal(last.hidden_bias, model.hidden_bias)
                and all(np.array_equal(getattr(getattr(last, side), "precision", None),
                                       getattr(getattr(model, side), "precision", None)) for side in ("visible", "hidden")))
        if not same:
            step = _training_value(model, "step")
            anchors.append(model)
            updates.append(int(step) if step is not None and int(step) > updates[-1] else None)
    return anchors, updates


def _training_value(model: RBM, key: str) -> Any:
    """A value of the model's stored training state (``step``, ``n_batches``), or None."""
    state = (model.training or {}).get("state")
    return state.get(key) if isinstance(state, dict) else None


def run_trajectory(
    anchors: Sequence[RBM],
    updates: Sequence[int | None] | None = None,
    *,
    beta: float = 1.0,
    chains: int = DEFAULT_CHAINS,
    replicates: int = DEFAULT_REPLICATES,
    steps: int = DEFAULT_STEPS,
    sweeps: int = DEFAULT_SWEEPS,
    resample_ess: float = DEFAULT_RESAMPLE_ESS,
    resampling: str = DEFAULTS["resampling"],
    initial: str = DEFAULTS["initial"],
    seed: int | None = None,
    progress: ProgressCallback = None,
) -> TrajectoryRun:
    """SMC estimates of ln Z(beta) at every anchor (RBMs of equal shape, in training order).

    chains : particles per replicate; replicates : independent runs (>= 2, for the error bar);
    steps : interpolation steps per interval (also for the factorised start's interval);
    sweeps : Gibbs sweeps per step; resample_ess : resample a replicate when its ESS falls
    below this fraction of ``chains``; resampling : 'systematic' or 'multinomial';
    initial : 'auto', 'exact' or 'factorised' (see the module docstring).
    """
    start_time = time.perf_counter()
    beta = check_beta(beta)
    chains, replicates, steps, sweeps = (checked(k, v) for k, v in (("chains", chains), ("replicates", replicates),
                                                                    ("steps", steps), ("sweeps", sweeps)))
    resample_ess, resampling, initial = (checked(k, v) for k, v in (("resample_ess", resample_ess),
                                                                    ("resampling", resampling), ("initial", initial)))
    if not anchors:
        raise InvalidOptionError("the trajectory needs at least one snapshot.")
    updates = list(updates) if updates is not None else list(range(len(anchors)))
    entropy = resolve_seed(seed)
    if not anchors[0].is_bernoulli:  # spin, Gaussian or Potts layers
        from .trajectory_layers import run_layered

        return run_layered(anchors, updates, beta=beta, chains=chains, replicates=replicates, steps=steps,
                           sweeps=sweeps, resample_ess=resample_ess, resampling=resampling, initial=initial,
                           entropy=entropy, start_time=start_time, progress=progress)
    models = [scaled(m, beta) for m in anchors]
    start = start_method(models[0], initial)

    n_total = replicates * chains
    states = kernel_states(chain_states(entropy, n_total, stream=STREAM_CHAINS))
    state, log_z0 = initial_particles(models[0], start, replicates, chains, entropy, states)
    job = TrajectoryJob(models, start, state, states, entropy, steps, sweeps, resample_ess, resampling)
    from ..engine import run_chunks

    parts = run_chunks(replicate_runs, job, replicates, "trajectory", progress)
    points = [Point(i, updates[i], np.concatenate([p[i][0] for p in parts]), np.concatenate([p[i][1] for p in parts]),
                    sum(p[i][2] for p in parts), parts[0][i][3], min(p[i][4] for p in parts),
                    exact=i == 0 and start == "exact") for i in range(len(models))]
    warnings = interval_warnings(points)
    params = {"chains": chains, "replicates": replicates, "steps": steps, "sweeps": sweeps,
              "resample_ess": resample_ess, "resampling": resampling, "initial": start, "seed": entropy}
    return TrajectoryRun(points, start, log_z0, params, warnings, time.perf_counter() - start_time)


@dataclass
class TrajectoryJob:
    """A trajectory run as the engine's tasks see it (fecli.engine): the anchors (scaled to beta),
    the start, the initial particles and the chains' generator states (R n, 4)."""

    models: list
    start: str
    state: ParticleState
    states: np.ndarray
    entropy: int
    steps: int
    sweeps: int
    resample_ess: float
    resampling: str


def replicate_runs(job: TrajectoryJob, reps: range, progress: ProgressCallback = None) -> list[tuple]:
    """The engine's task: replicates ``reps`` carried through every interval (replicates are
    independent particle systems with their own streams). Per point: (ln Z (m,), ESS (m,),
    resamplings so far, steps of the interval, lowest ESS fraction in it)."""
    n, models = job.state.chains, job.models
    rows, ids = slice(reps.start * n, reps.stop * n), slice(reps.start, reps.stop)
    s = job.state
    state = ParticleState(s.v[rows].copy(), s.log_weights[ids].copy(), s.log_z_resampled[ids].copy(),
                          s.resamplings[ids].copy())
    rngs = [np.random.default_rng(np.random.SeedSequence(job.entropy, spawn_key=(STREAM_RESAMPLE, r))) for r in reps]
    sampler = Sampler(job.states[rows].copy(), rngs, steps=job.steps, sweeps=job.sweeps,
                      resample_ess=job.resample_ess, resampling=job.resampling)
    total = float(len(models) - 1 + (job.start == "factorised"))  # progress: intervals done
    done = 0.0
    info = IntervalInfo(0, 0, 1.0)
    if job.start == "factorised":
        info = sampler.advance(state, factorised_model(models[0]), models[0], progress=progress, done=done, total=total)
        done += 1
    out = [(state.log_z(), state.ess(), int(state.resamplings.sum()), info.steps, info.min_ess_fraction)]
    for j in range(1, len(models)):
        info = sampler.advance(state, models[j - 1], models[j], progress=progress, done=done, total=total)
        done += 1
        out.append((state.log_z(), state.ess(), int(state.resamplings.sum()), info.steps, info.min_ess_fraction))
    return out


def interval_warnings(points: list[Point]) -> list[str]:
    """Intervals whose steps were too coarse (weights collapsed within a step) and points where the
    replicates disagree (the particles lost track of the model)."""
    out = []
    low = [p for p in points if p.steps and p.min_ess_fraction < COLLAPSE_ESS_FRACTION]
    collapsed = [p.index for p in low]
    if collapsed:
        worst = min(p.min_ess_fraction for p in low)
        out.append(
            f"the weights collapsed within one step (ESS down to {worst:.1%} of the chains) on the way to "
            f"snapshot(s) {_ranges(collapsed)}: the particles lag behind the model there, so those values (and the "
            "later ones) may be far too low; use more --sweeps, or more snapshots when training."
        )
    apart = [p for p in points if not p.exact and p.summary().spread > DISAGREEMENT_NATS]
    if apart:
        worst = max(apart, key=lambda p: p.summary().spread)
        out.append(
            f"the replicates disagree by more than {DISAGREEMENT_NATS:g} nat (sd of their ln Z up to "
            f"{worst.summary().spread:.3g} at snapshot {worst.index}) at snapshot(s) {_ranges([p.index for p in apart])}: "
            "the particles lost track of the model (it moves too fast between snapshots for them), so ln Z "
            "there is unreliable and probably too low; record more snapshots, use more --sweeps, or check with ais."
        )
    return out


def _ranges(indices: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    parts = []
    first = prev = indices[0]
    for i in indices[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(first) if first == prev else f"{first}-{prev}")
        if i is not None:
            first = prev = i
    return ", ".join(parts)


# --------------------------------------------------------------------------- the registered method
def model_file(model: RBM) -> Any:
    """The file ``model`` was read from (its name may carry a checkpoint: 'rbms.h5@10')."""
    from pathlib import Path

    source = getattr(model, "source", None)
    return Path(source.path if source is not None and getattr(source, "path", None) else model.name)


def model_snapshots(model: RBM) -> Any:
    """The snapshots stored with ``model`` (read from the file it was loaded from); refuses without them."""
    from pathlib import Path

    from ..io import has_snapshots, read_snapshots

    path = model_file(model)
    if not path.is_file() or not has_snapshots(path):
        raise RefusedError(
            f"model '{model.name}' has no parameter snapshots, so there is no training trajectory to follow; "
            "train it with 'fecli train-rbm --snapshots N' to record them."
        )
    return read_snapshots(path, model)


def trajectory(
    model: RBM,
    *,
    beta: float = 1.0,
    chains: int = DEFAULT_CHAINS,
    replicates: int = DEFAULT_REPLICATES,
    steps: int = DEFAULT_STEPS,
    sweeps: int = DEFAULT_SWEEPS,
    resample_ess: float = DEFAULT_RESAMPLE_ESS,
    resampling: str = DEFAULTS["resampling"],
    initial: str = DEFAULTS["initial"],
    seed: int | None = None,
    progress=None,
) -> Result:
    """ln Z(beta) of ``model`` by SMC along its stored training snapshots (a stochastic lower bound).

    The model file must hold a ``snapshots`` group (``fecli train-rbm --snapshots N``); the
    last anchor is the model itself. Options: see :func:`run_trajectory`.
    """
    start = time.perf_counter()
    snapshots = model_snapshots(model)
    anchors, updates = anchors_of(snapshots, model)
    run = run_trajectory(anchors, updates, beta=beta, chains=chains, replicates=replicates, steps=steps,
                         sweeps=sweeps, resample_ess=resample_ess, resampling=resampling, initial=initial,
                         seed=seed, progress=progress)
    last = run.points[-1]
    c = last.summary()
    return Result(
        model=model.name,
        method="trajectory",
        beta=float(beta),
        log_z=c.log_z,
        kind="stochastic_lower_bound",
        n_visible=model.n_visible,
        n_hidden=model.n_hidden,
        stderr=c.stderr,
        ci_low=c.ci_low,
        ci_high=c.ci_high,
        wall_time_s=time.perf_counter() - start,
        params=run.params,
        diagnostics={
            "snapshots": len(snapshots),
            "updates": int(snapshots.updates[-1]),
            "start": run.start,
            "log_z_start": run.log_z_start,
            "replicate_log_z": last.log_z_replicates.tolist(),
            "replicate_spread": c.spread,
            "ess_fraction": float(last.ess.min()) / run.params["chains"],
            "resamplings": last.resamplings,
        },
        warnings=list(run.warnings),
    )


def trajectory_feasibility(model: RBM):
    """Feasible when the model's file holds training snapshots."""
    from pathlib import Path

    from ..io import has_snapshots
    from . import Feasibility

    path = model_file(model)
    if path.is_file() and has_snapshots(path):
        return Feasibility(True, "SMC along the training snapshots stored in the file")
    return Feasibility(False, "the file has no training snapshots (train-rbm --snapshots N records them)")


# --------------------------------------------------------------------------- one row per point
#: Column order of the table, JSON and CSV renderings of `fecli trajectory`.
FIELDS = (
    "model", "snapshot", "update", "epoch", "log_z", "stderr", "ci_low", "ci_high", "kind",
    "log_likelihood", "val_log_likelihood", "ess_fraction", "resamplings", "steps",
    "params", "diagnostics", "warnings",
)


@dataclass
class TrajectoryRow:
    """ln Z at one snapshot and the mean log-likelihood of the data there.

    log_likelihood = mean over the rows of -F(v) - ln Z (train data; ``val_`` for the
    validation data), None without data. The data term is exact, so its error is that of
    ln Z with the interval flipped: [mean -F - ci_high, mean -F - ci_low].
    """

    model: str
    snapshot: int
    update: int | None
    epoch: float | None
    log_z: float
    stderr: float
    ci_low: float
    ci_high: float
    kind: str
    log_likelihood: float | None
    val_log_likelihood: float | None
    ess_fraction: float
    resamplings: int
    steps: int
    params: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from ..result import _jsonable

        return {name: _jsonable(getattr(self, name)) for name in FIELDS}


def mean_neg_free_energy(model: RBM, rows: np.ndarray, beta: float = 1.0, block: int = 8192) -> float:
    """mean over rows of -F_beta(v), in blocks of rows (float64)."""
    total = 0.0
    for start in range(0, rows.shape[0], block):
        total += float(np.sum(-model.free_energy(rows[start:start + block], beta)))
    return total / rows.shape[0]


def trajectory_rows(
    model: RBM,
    *,
    data: Any = None,
    validation_data: Any = None,
    snapshots: Any = None,
    progress=None,
    **options: Any,
) -> tuple[list[TrajectoryRow], TrajectoryRun]:
    """ln Z (and data log-likelihoods) at every snapshot of ``model``: the rows of `fecli trajectory`.

    ``data`` / ``validation_data``: arrays (or paths) of rows in the visible layer's type (for a
    model trained with a stored --standardize: in the data's original units, and the
    log-likelihoods are densities of those); ``snapshots``: a
    :class:`fecli.io.Snapshots` (default: the ones stored in the model's file); ``options``:
    those of :func:`run_trajectory` (beta, chains, replicates, steps, sweeps, resample_ess,
    resampling, initial, seed).
    """
    from ..layer_data import log_jacobian, resolve_for
    from ._sampling_common import resolve_data

    resolve = resolve_data if model.is_bernoulli else resolve_for
    train_rows, _ = resolve(data, model)  # in the model's units (a stored --standardize applied)
    val_rows, _ = resolve(validation_data, model)
    jacobian = log_jacobian(model)  # ln p in the data's original units (fecli.layer_data.DataTransform)
    if snapshots is None:
        snapshots = model_snapshots(model)
    anchors, updates = anchors_of(snapshots, model)
    beta = check_beta(options.get("beta", 1.0))
    run = run_trajectory(anchors, updates, progress=progress, **options)
    n_batches = _training_value(model, "n_batches")
    rows = []
    for point, anchor in zip(run.points, anchors):
        c = point.summary()
        lls = [None if x is None else mean_neg_free_energy(anchor, x, beta) - c.log_z + jacobian
               for x in (train_rows, val_rows)]
        warnings = interval_warnings([point])
        rows.append(TrajectoryRow(
            model=model.name,
            snapshot=point.index,
            update=point.update,
            epoch=None if point.update is None or not n_batches else point.update / float(n_batches),
            log_z=c.log_z,
            stderr=c.stderr,
            ci_low=c.ci_low,
            ci_high=c.ci_high,
            kind="exact" if point.exact else "stochastic_lower_bound",
            log_likelihood=lls[0],
            val_log_likelihood=lls[1],
            ess_fraction=float(point.ess.min()) / run.params["chains"],
            resamplings=point.resamplings,
            steps=point.steps,
            params={**run.params, "beta": beta},
            diagnostics={"replicate_log_z": point.log_z_replicates.tolist(), "replicate_spread": c.spread,
                         "min_step_ess_fraction": point.min_ess_fraction},
            warnings=warnings,
        ))
    return rows, run
