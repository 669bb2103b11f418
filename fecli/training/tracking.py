"""ln Z tracked along a training run, for models too large to enumerate.

At every monitored epoch the particles of a small sequential Monte Carlo run (see
:mod:`fecli.estimators.trajectory`) are annealed from the parameters of the previous
monitored point, through the snapshots taken since (``--snapshots``), to the current ones,
so the monitored ln Z and log-likelihood cost a fixed fraction of training's own sampling
instead of a new AIS run: the steps of one monitoring call (one Gibbs sweep of every particle
each) are :data:`TRACK_BUDGET_FRACTION` of the chain updates training made since the last call
(rows of data and of negative chains per update, times the updates; at least
:data:`TRACK_MIN_STEPS`), shared evenly between
the intervals (thinned to one per step when there are more snapshots than steps). The run starts at the initial model (update 0),
whose ln Z comes from a short anneal out of its factorised version (same biases, W = 0).

Everything is a function of the seed and the update number, and the particles, their
weights and the last anchor are kept in the checkpoint's ``state`` group
(``tracker_*``), so a resumed run monitors the same numbers as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..model import RBM

#: Particles per replicate and replicates (their spread is the error bar).
TRACK_CHAINS = 16
TRACK_REPLICATES = 8
TRACK_SWEEPS = 1
#: Steps of particle updates per monitoring call, as a fraction of training's chain updates since the last.
TRACK_BUDGET_FRACTION = 0.1
#: Fewest steps per monitoring call (on small data sets the fraction alone would leave one or two).
TRACK_MIN_STEPS = 10
#: Steps of the first interval, from the factorised model to the initial one (W ~ 0.01: short).
TRACK_START_STEPS = 10
#: Replicates whose ln Z spread (sd) exceeds this many nats make the trainer warn.
LOST_TRACK_NATS = 1.0
#: Spawn key of the tracker's random streams (next to the trainer's streams 0-5).
STREAM_TRACKER = 6


class LogZTracker:
    """The SMC run behind the monitored ln Z: an anchor (parameters, update) and particles there."""

    def __init__(self, seed: int, *, chains: int = TRACK_CHAINS, replicates: int = TRACK_REPLICATES,
                 sweeps: int = TRACK_SWEEPS):
        self.seed = int(seed)
        self.chains, self.replicates, self.sweeps = chains, replicates, sweeps
        self.anchor: RBM | None = None
        self.update = 0
        self.particles = None  # ParticleState once started

    def reset(self, initial: RBM) -> None:
        """Start at the initial model (update 0); particles are drawn at the first monitored point."""
        self.anchor = RBM(initial.weights, initial.visible_bias, initial.hidden_bias)
        self.update = 0
        self.particles = None

    @property
    def ready(self) -> bool:
        return self.anchor is not None

    def _sampler(self, update: int):
        from ..estimators._sampling_common import chain_states, kernel_states
        from ..estimators.trajectory import Sampler

        entropy = [self.seed, STREAM_TRACKER, int(update)]
        states = kernel_states(chain_states(entropy, self.replicates * self.chains))  # type: ignore[arg-type]
        rngs = [np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(1, r)))
                for r in range(self.replicates)]
        return Sampler(states, rngs, steps=TRACK_START_STEPS, sweeps=self.sweeps, resample_ess=0.5,
                       resampling="systematic"), states

    def steps_for(self, chain_updates: int) -> int:
        """Steps of one monitoring call after training made ``chain_updates`` chain updates."""
        return max(TRACK_MIN_STEPS, int(TRACK_BUDGET_FRACTION * chain_updates / (self.chains * self.replicates)))

    def advance(self, anchors: Sequence[tuple[int, RBM]], steps: int):
        """Anneal through ``anchors`` ((update, model) in order, the last one the current model) in
        about ``steps`` steps in all; returns the combined ln Z estimate there
        (:class:`fecli.estimators.trajectory.Combined`)."""
        from ..estimators.trajectory import factorised_model, initial_particles

        last_update = anchors[-1][0]
        sampler, states = self._sampler(last_update)
        if self.particles is None:
            self.particles, _ = initial_particles(self.anchor, "factorised", self.replicates, self.chains,
                                                  0, states)
            sampler.advance(self.particles, factorised_model(self.anchor), self.anchor)
        anchors = thin([(u, m) for u, m in anchors if u > self.update], steps)
        sampler.steps = max(1, steps // len(anchors))
        previous = self.anchor
        for update, model in anchors:
            sampler.advance(self.particles, previous, model)
            previous = model
        self.anchor = RBM(previous.weights, previous.visible_bias, previous.hidden_bias)
        self.update = last_update
        from ..estimators.trajectory import combine_replicates

        return combine_replicates(self.particles.log_z())

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.anchor is None:
            return {}
        out: dict[str, Any] = {
            "update": self.update,
            "weights": self.anchor.weights,
            "visible_bias": self.anchor.visible_bias,
            "hidden_bias": self.anchor.hidden_bias,
        }
        p = self.particles
        if p is not None:
            out.update(v=p.v.astype(np.uint8), log_weights=p.log_weights, log_z_resampled=p.log_z_resampled,
                       resamplings=p.resamplings)
        return out

    def load_state_dict(self, d: dict[str, Any]) -> None:
        if not d:
            self.anchor, self.particles = None, None
            return
        self.anchor = RBM(d["weights"], d["visible_bias"], d["hidden_bias"])
        self.update = int(d["update"])
        self.particles = particles_from(d)


def particles_from(d: dict):
    """The tracker's particles from its saved state (None when it saved none)."""
    from ..estimators.trajectory import ParticleState

    if "v" not in d:
        return None
    return ParticleState(np.ascontiguousarray(d["v"], dtype=np.float64), np.array(d["log_weights"], dtype=np.float64),
                         np.array(d["log_z_resampled"], dtype=np.float64), np.array(d["resamplings"], dtype=np.int64))


def thin(anchors: list, most: int) -> list:
    """At most ``most`` of ``anchors``, evenly spread, the last one always kept."""
    if len(anchors) <= most:
        return anchors
    keep = np.unique(np.round(np.linspace(len(anchors) - 1, 0, most)).astype(int))
    return [anchors[i] for i in sorted(keep)]


class LayeredLogZTracker:
    """:class:`LogZTracker` for models with spin, Gaussian or Potts layers (the layered trainer).

    The same schedule, budget and streams (a function of the seed and the update number), on the
    generic SMC of :mod:`fecli.estimators.trajectory_layers`: every anchor is mapped to its exact
    equivalent without spin layers (:func:`fecli.model.binary_equivalent`, ln Z = ln Z' + c), the
    particles hold the states of one layer of the mapped models (the other summed out), every
    parameter (precisions included) is interpolated linearly between anchors, and the run starts
    at the initial model's factorised version (W = 0: ln Z = Gamma_v(0) + Gamma_h(0), sampled
    exactly). ``build(weights, visible_bias, hidden_bias, visible_precision, hidden_precision)``
    makes the trainer's RBM from stored arrays (for checkpoints).
    """

    def __init__(self, seed: int, build: Any, *, chains: int = TRACK_CHAINS, replicates: int = TRACK_REPLICATES,
                 sweeps: int = TRACK_SWEEPS):
        self.seed = int(seed)
        self.build = build
        self.chains, self.replicates, self.sweeps = chains, replicates, sweeps
        self.anchor: RBM | None = None  # the trainer's model (unmapped) at self.update
        self.update = 0
        self.particles = None

    def reset(self, initial: RBM) -> None:
        self.anchor, self.update, self.particles = _frozen(initial), 0, None

    @property
    def ready(self) -> bool:
        return self.anchor is not None

    steps_for = LogZTracker.steps_for

    def _smc(self, first: RBM, update: int, steps: int):
        from ..estimators.trajectory_layers import LayeredSMC

        return LayeredSMC([first], self.chains, range(self.replicates), steps, self.sweeps, 0.5, "systematic",
                          [self.seed, STREAM_TRACKER, int(update)])

    def advance(self, anchors: Sequence[tuple[int, RBM]], steps: int):
        """Anneal through ``anchors`` ((update, model), the last the current model) in about ``steps``
        steps; the combined ln Z estimate of the current model (:class:`fecli.estimators.trajectory.Combined`)."""
        from ..estimators.trajectory import Combined, ParticleState, combine_replicates
        from ..estimators.trajectory_layers import factorised_layers
        from ..model import binary_equivalent

        last_update = anchors[-1][0]
        first = binary_equivalent(self.anchor)[0]
        smc = self._smc(first, last_update, TRACK_START_STEPS)
        if self.particles is None:
            log_z0 = float(first.visible.cgf(np.zeros(first.visible.dim)) + first.hidden.cgf(np.zeros(first.hidden.dim)))
            self.particles = ParticleState(smc.factorised_particles(), np.zeros((self.replicates, self.chains)),
                                           np.full(self.replicates, log_z0), np.zeros(self.replicates, dtype=np.int64))
            smc.advance(self.particles, factorised_layers(first), first)
        kept = thin([(u, m) for u, m in anchors if u > self.update], steps)
        smc.steps = max(1, steps // len(kept))
        previous = first
        for _, model in kept:
            mapped = binary_equivalent(model)[0]
            smc.advance(self.particles, previous, mapped)
            previous = mapped
        self.anchor, self.update = _frozen(kept[-1][1]), last_update
        c = combine_replicates(self.particles.log_z())
        offset = float(binary_equivalent(self.anchor)[1])  # ln Z = ln Z(0/1 equivalent) + c
        return Combined(c.log_z + offset, c.stderr, c.ci_low + offset, c.ci_high + offset, c.spread)

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.anchor is None:
            return {}
        a = self.anchor
        out: dict[str, Any] = {"update": self.update, "weights": a.weights, "visible_bias": a.visible.bias,
                               "hidden_bias": a.hidden.bias}
        for side in ("visible", "hidden"):
            precision = getattr(getattr(a, side), "precision", None)
            if precision is not None:
                out[f"{side}_precision"] = precision
        p = self.particles
        if p is not None:
            out.update(v=p.v, log_weights=p.log_weights, log_z_resampled=p.log_z_resampled, resamplings=p.resamplings)
        return out

    def load_state_dict(self, d: dict[str, Any]) -> None:
        if not d:
            self.anchor, self.particles = None, None
            return
        arrays = [None if d.get(k) is None else np.asarray(d[k], dtype=np.float64)
                  for k in ("weights", "visible_bias", "hidden_bias", "visible_precision", "hidden_precision")]
        self.anchor = self.build(*arrays)
        self.update = int(d["update"])
        self.particles = particles_from(d)


def _frozen(model: RBM) -> RBM:
    """A copy of ``model`` that owns its arrays (the trainer's model views parameters it updates in place)."""
    layers = [layer.replace(**{k: np.array(v, dtype=np.float64) for k, v in layer.parameters().items()})
              for layer in (model.visible, model.hidden)]
    return RBM(layers[0], layers[1], np.array(model.weights, dtype=np.float64))
