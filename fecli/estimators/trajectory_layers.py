"""ln Z along training for models with spin, Gaussian or Potts layers: the sequential Monte Carlo
of :mod:`fecli.estimators.trajectory` on the generic layer path.

Spin layers: every snapshot is mapped to its exact 0/1 equivalent (:func:`fecli.model.binary_equivalent`,
ln Z_j = ln Z'_j + beta c_j with c_j of that snapshot) and the bernoulli SMC runs on those.

Gaussian and Potts layers: the particles hold the states s of one layer (the "state" layer of
:func:`fecli.estimators.layered_sampling.state_layer`), the other layer summed out, so that

    ln f_theta(s) = -F_theta(s) = -beta E_S,theta(s) + Gamma_O,theta(beta W_theta^T phi(s)),

and between consecutive snapshots theta_a, theta_b every parameter (biases, precisions, weights) is
interpolated linearly, theta_s = (1 - s) theta_a + s theta_b (precisions stay positive); each step
adds ln f_{theta_s_k}(s) - ln f_{theta_s_(k-1)}(s) to the log weights, resamples a replicate whose ESS
falls below ``resample_ess`` x chains, then makes ``sweeps`` Gibbs sweeps of theta_s_k (other layer
drawn given s, then s given it). Start: exact samples of the first snapshot and its exact ln Z when
its enumerated layer has at most :data:`~fecli.estimators.trajectory.EXACT_START_MAX_UNITS` bits
(or it is Gaussian-Gaussian), else the factorised model with the first snapshot's layers and W = 0
(ln Z = Gamma_v(0) + Gamma_h(0), sampled exactly) annealed to it like an interval. Replicates are
independent (own streams), and their spread is the error bar, as for 0/1 models.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..engine import STREAMS
from ..errors import RefusedError
from ..model import RBM, binary_equivalent
from .layered_sampling import BlockJob, ChunkedRandom, LayeredPath, state_layer
from .trajectory import (
    EXACT_START_MAX_UNITS,
    IntervalInfo,
    ParticleState,
    Point,
    TrajectoryRun,
    effective_sample_size,
    interval_warnings,
    log_mean_exp_rows,
    resample_indices,
)


def scaled_layers(model: RBM, beta: float) -> RBM:
    """The model with every parameter times beta (its distribution is the original's at beta)."""
    if beta == 1.0:
        return model
    return RBM(model.visible.scaled(beta), model.hidden.scaled(beta), beta * model.weights, name=model.name)


def interpolate_layers(a: RBM, b: RBM, s: float) -> RBM:
    """The RBM (1 - s) theta_a + s theta_b, every parameter of both layers and the weights."""
    if s == 0.0:
        return a
    if s == 1.0:
        return b
    layers = []
    for side in ("visible", "hidden"):
        la, lb = getattr(a, side), getattr(b, side)
        pa, pb = la.parameters(), lb.parameters()
        layers.append(la.replace(**{k: (1.0 - s) * pa[k] + s * pb[k] for k in pa}))
    return RBM(layers[0], layers[1], (1.0 - s) * a.weights + s * b.weights)


def factorised_layers(model: RBM) -> RBM:
    """The model's layers with W = 0."""
    return model.replace(weights=np.zeros_like(model.weights))


def run_layered(anchors: Sequence[RBM], updates: list, *, beta: float, chains: int, replicates: int, steps: int,
                sweeps: int, resample_ess: float, resampling: str, initial: str, entropy: int,
                start_time: float, progress=None) -> TrajectoryRun:
    """:func:`fecli.estimators.trajectory.run_trajectory` for snapshots with spin, Gaussian or Potts layers
    (options checked by the caller)."""
    mapped = [binary_equivalent(m) for m in anchors]
    if mapped[0][0].is_bernoulli:  # spin layers only: the bernoulli SMC on the 0/1 equivalents
        from .trajectory import run_trajectory

        run = run_trajectory([m for m, _ in mapped], updates, beta=beta, chains=chains, replicates=replicates,
                             steps=steps, sweeps=sweeps, resample_ess=resample_ess, resampling=resampling,
                             initial=initial, seed=entropy)
        offsets = [beta * c for _, c in mapped]
        for point, shift in zip(run.points, offsets):
            point.log_z_replicates = point.log_z_replicates + shift
        run.log_z_start += offsets[0]
        run.wall_time_s = time.perf_counter() - start_time
        return run
    models = [scaled_layers(m, beta) for m, _ in mapped]
    offsets = [beta * c for _, c in mapped]
    start = start_method(models[0], initial)
    v0, log_z0 = initial_states(models[0], start, chains, replicates, entropy)
    job = ReplicatesJob(models, start, v0, log_z0, chains, steps, sweeps, resample_ess, resampling, entropy)
    from .layered_sampling import run_blocks

    parts = run_blocks(job, replicates * chains, "trajectory", progress, per_block=chains)  # a block per replicate
    points = [Point(j, updates[j], np.concatenate([p[j][0] for p in parts]) + offsets[j],
                    np.concatenate([p[j][1] for p in parts]), sum(p[j][2] for p in parts), parts[0][j][3],
                    min(p[j][4] for p in parts), exact=j == 0 and start == "exact") for j in range(len(models))]
    params = {"chains": chains, "replicates": replicates, "steps": steps, "sweeps": sweeps,
              "resample_ess": resample_ess, "resampling": resampling, "initial": start, "seed": entropy}
    return TrajectoryRun(points, start, log_z0 + offsets[0], params, interval_warnings(points),
                         time.perf_counter() - start_time)


def start_method(first: RBM, initial: str) -> str:
    """'exact' or 'factorised': how the first snapshot's ln Z is found (``initial`` 'auto' chooses)."""
    from .exact_layers import plan

    p = plan(first, "auto")
    small = p.layer == "closed-form" or p.bits <= EXACT_START_MAX_UNITS
    if initial == "auto":
        return "exact" if small else "factorised"
    if initial == "exact" and not small:
        raise RefusedError(f"initial 'exact' enumerates 2^{p.bits:.0f} states of the first snapshot's smaller "
                           f"layer; the limit is {EXACT_START_MAX_UNITS} (use initial 'factorised').")
    return initial


def initial_states(first: RBM, start: str, chains: int, replicates: int, entropy: int) -> tuple[np.ndarray | None, float]:
    """(exact samples of the first snapshot's state layer, replicate r in rows r n .. (r + 1) n - 1, and its
    exact ln Z) for the exact start; (None, ln Z of the factorised model) for the factorised one, whose
    particles each replicate draws from its own stream."""
    if start == "exact":
        from .exact_layers import LayeredExactSampler

        sampler = LayeredExactSampler(first, 1.0, max_bits=EXACT_START_MAX_UNITS)
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(STREAMS["trajectory_chains"], 2**31 - 1)))
        v, h = sampler.sample(replicates * chains, rng)
        s = v if state_layer(first) == "visible" else h
        return np.ascontiguousarray(s, dtype=np.float64), float(sampler.log_z)
    return None, float(first.visible.cgf(np.zeros(first.visible.dim)) + first.hidden.cgf(np.zeros(first.hidden.dim)))


@dataclass
class ReplicatesJob(BlockJob):
    """The SMC as the engine's tasks see it (fecli.engine): a block per replicate (replicates are
    independent particle systems with their own streams), each carried through every interval."""

    models: list
    start: str
    v0: np.ndarray | None
    log_z0: float
    chains: int
    steps: int
    sweeps: int
    resample_ess: float
    resampling: str
    entropy: int

    def block(self, index: int, lo: int, hi: int, progress) -> list[tuple]:
        """Replicate ``index`` (rows lo..hi-1). Per point: (ln Z (1,), ESS (1,), resamplings so far,
        steps of the interval, lowest ESS fraction in it)."""
        smc = LayeredSMC(self.models, self.chains, range(index, index + 1), self.steps, self.sweeps,
                         self.resample_ess, self.resampling, self.entropy)
        v = self.v0[lo:hi].copy() if self.v0 is not None else smc.factorised_particles()
        state = ParticleState(v, np.zeros((1, self.chains)), np.full(1, self.log_z0), np.zeros(1, dtype=np.int64))
        models = self.models
        total = len(models) - 1 + (self.start == "factorised")
        info = IntervalInfo(0, 0, 1.0)
        if self.start == "factorised":
            info = smc.advance(state, factorised_layers(models[0]), models[0])
            if progress is not None:
                progress("trajectory", 1, total)
        out = [(state.log_z(), state.ess(), int(state.resamplings.sum()), info.steps, info.min_ess_fraction)]
        for j in range(1, len(models)):
            info = smc.advance(state, models[j - 1], models[j])
            out.append((state.log_z(), state.ess(), int(state.resamplings.sum()), info.steps, info.min_ess_fraction))
            if progress is not None:
                progress("trajectory", j + (self.start == "factorised"), total)
        return out


class LayeredSMC:
    """Particles of every replicate on the state layer, moved along interpolated snapshots."""

    def __init__(self, models: list[RBM], chains: int, reps: range, steps: int, sweeps: int,
                 resample_ess: float, resampling: str, entropy: int):
        self.models, self.n, self.R = models, chains, len(reps)
        self.steps, self.sweeps, self.resample_ess, self.resampling = steps, sweeps, resample_ess, resampling
        self.side = state_layer(models[0])
        seeds = [np.random.SeedSequence(entropy, spawn_key=(STREAMS["trajectory_chains"], r)) for r in reps]
        self.rng = ChunkedRandom([(i * chains, (i + 1) * chains) for i in range(self.R)],
                                 [np.random.default_rng(seq) for seq in seeds])
        self.resample_rngs = [np.random.default_rng(np.random.SeedSequence(
            entropy, spawn_key=(STREAMS["trajectory_resample"], r))) for r in reps]

    def factorised_particles(self) -> np.ndarray:
        """Exact samples of the factorised first snapshot (W = 0) for every replicate of this system."""
        layer = getattr(self.models[0], self.side)
        return np.ascontiguousarray(layer.sample(np.zeros((self.R * self.n, layer.dim)), self.rng), dtype=np.float64)

    def _neg_free(self, model: RBM, s: np.ndarray) -> np.ndarray:
        """ln f_theta(s) = -F_theta(s) of the state layer (parameters already times beta)."""
        return -(model if self.side == "visible" else model.transpose()).free_energy(s)

    def advance(self, state: ParticleState, a: RBM, b: RBM) -> IntervalInfo:
        """Anneal every replicate (in place) from theta_a to theta_b."""
        R, n = self.R, self.n
        resampled, min_ess = 0, math.inf
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            before = self._neg_free(a, state.v)
            for k in range(1, self.steps + 1):
                model = interpolate_layers(a, b, k / self.steps)
                after = self._neg_free(model, state.v)
                state.log_weights += (after - before).reshape(R, n)
                ess = effective_sample_size(state.log_weights)
                min_ess = min(min_ess, float(ess.min()) / n)
                for r in np.flatnonzero(ess < self.resample_ess * n):
                    self._resample(state, int(r))
                    resampled += 1
                path = LayeredPath(model, 1.0, self.side, getattr(model, self.side))
                for _ in range(self.sweeps):
                    state.v, _ = path.sweep(state.v, 1.0, self.rng)
                before = self._neg_free(model, state.v)
        return IntervalInfo(self.steps, resampled, min_ess)

    def _resample(self, state: ParticleState, r: int) -> None:
        log_w = state.log_weights[r]
        state.log_z_resampled[r] += float(log_mean_exp_rows(log_w))
        idx = resample_indices(log_w, self.resample_rngs[r], self.resampling)
        rows = slice(r * self.n, (r + 1) * self.n)
        state.v[rows] = state.v[rows][idx]
        log_w[...] = 0.0
        state.resamplings[r] += 1
