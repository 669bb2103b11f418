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
from typing import Sequence

import numpy as np

from ..engine import STREAMS
from ..errors import RefusedError
from ..model import RBM, binary_equivalent
from .layered_sampling import ChunkedRandom, LayeredPath, state_layer
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
                start_time: float) -> TrajectoryRun:
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
    smc = LayeredSMC(models, chains, replicates, steps, sweeps, resample_ess, resampling, entropy)
    start = smc.start_method(initial)
    state, log_z0 = smc.initial_particles(start)
    points, info = [], IntervalInfo(0, 0, 1.0)
    if start == "factorised":
        info = smc.advance(state, factorised_layers(models[0]), models[0])
    points.append(Point(0, updates[0], state.log_z() + offsets[0], state.ess(), int(state.resamplings.sum()),
                        info.steps, info.min_ess_fraction, exact=start == "exact"))
    for j in range(1, len(models)):
        info = smc.advance(state, models[j - 1], models[j])
        points.append(Point(j, updates[j], state.log_z() + offsets[j], state.ess(), int(state.resamplings.sum()),
                            info.steps, info.min_ess_fraction))
    params = {"chains": chains, "replicates": replicates, "steps": steps, "sweeps": sweeps,
              "resample_ess": resample_ess, "resampling": resampling, "initial": start, "seed": entropy}
    return TrajectoryRun(points, start, log_z0 + offsets[0], params, interval_warnings(points),
                         time.perf_counter() - start_time)


class LayeredSMC:
    """Particles of every replicate on the state layer, moved along interpolated snapshots."""

    def __init__(self, models: list[RBM], chains: int, replicates: int, steps: int, sweeps: int,
                 resample_ess: float, resampling: str, entropy: int):
        self.models, self.n, self.R = models, chains, replicates
        self.steps, self.sweeps, self.resample_ess, self.resampling = steps, sweeps, resample_ess, resampling
        self.entropy = entropy
        self.side = state_layer(models[0])
        seeds = [np.random.SeedSequence(entropy, spawn_key=(STREAMS["trajectory_chains"], r)) for r in range(replicates)]
        self.rng = ChunkedRandom([(r * chains, (r + 1) * chains) for r in range(replicates)],
                                 [np.random.default_rng(seq) for seq in seeds])
        self.resample_rngs = [np.random.default_rng(np.random.SeedSequence(
            entropy, spawn_key=(STREAMS["trajectory_resample"], r))) for r in range(replicates)]

    def start_method(self, initial: str) -> str:
        from .exact_layers import plan

        p = plan(self.models[0], "auto")
        small = p.layer == "closed-form" or p.bits <= EXACT_START_MAX_UNITS
        if initial == "auto":
            return "exact" if small else "factorised"
        if initial == "exact" and not small:
            raise RefusedError(f"initial 'exact' enumerates 2^{p.bits:.0f} states of the first snapshot's smaller "
                               f"layer; the limit is {EXACT_START_MAX_UNITS} (use initial 'factorised').")
        return initial

    def initial_particles(self, start: str) -> tuple[ParticleState, float]:
        first = self.models[0]
        total = self.R * self.n
        if start == "exact":
            from .exact_layers import LayeredExactSampler

            sampler = LayeredExactSampler(first, 1.0, max_bits=EXACT_START_MAX_UNITS)
            rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(STREAMS["trajectory_chains"],
                                                                                        2**31 - 1)))
            v, h = sampler.sample(total, rng)
            s = v if self.side == "visible" else h
            log_z0 = float(sampler.log_z)
        else:
            layer = getattr(first, self.side)
            s = layer.sample(np.zeros((total, layer.dim)), self.rng)
            log_z0 = float(first.visible.cgf(np.zeros(first.visible.dim)) + first.hidden.cgf(np.zeros(first.hidden.dim)))
        state = ParticleState(np.ascontiguousarray(s, dtype=np.float64), np.zeros((self.R, self.n)),
                              np.full(self.R, log_z0), np.zeros(self.R, dtype=np.int64))
        return state, log_z0

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
