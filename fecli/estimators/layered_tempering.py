"""Parallel tempering for models with Gaussian or Potts layers: the ladders of :mod:`fecli.estimators.pt`
on the generic layer path of :mod:`fecli.estimators.layered_sampling`.

The bernoulli ladders run in a compiled kernel (:mod:`fecli.kernels.tempering`); spin models reach it
through their 0/1 equivalent. Here the chains hold the states s of one layer (the "state" layer of
:func:`~fecli.estimators.layered_sampling.state_layer`), the other layer summed out through its
log-partition, and every chain sits at its own rung t of the path

    ln f_t(s) = -(1 - t) E_A(s) - t beta E_S(s) + Gamma_O(t beta (W^T phi(s) + theta_O)),

with A the factorized base model of the state layer: uniform over its states for finite units (every
mode covered, as for the bernoulli ladders), the data's fit with ``data``, the mean-field fit for a
Gaussian state layer (Gaussian-Gaussian models). A round is, for every chain, ``sweeps`` Gibbs sweeps
at its rung (all chains of all ladders in one vectorised call), the works to the neighbouring rungs,
then exchanges between rungs (k, k + 1) of the round's parity: the same round as the kernel's, so
:func:`fecli.estimators.pt.adapt` places the rungs and :func:`fecli.estimators.pt.combine` runs BAR on
these ladders unchanged.

Randomness: every ladder has its own numpy streams for its chains and its exchanges, from the run's
seed; the starting states come from one more. Ladders run in blocks of LADDERS_PER_BLOCK, each block
alone with one BLAS thread, as the engine's tasks (fecli.engine): the same bits here and on a cluster.
Finite states are kept as uint8 state indices (the top rung of every recorded round, and the visited
states for the rigorous bound ln sum over distinct visited s of f_1(s) <= ln Z).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from ..engine import STREAMS
from ..model import RBM
from .layered_sampling import ChunkedRandom, LayeredPath, base_layer, state_layer
from .pt import RungBook

#: Streams of the run's seed (fecli.engine.STREAMS): chains' draws, exchange uniforms, starting states.
_STREAM = STREAMS["pt_layers"]
_SWAP_KEY, _START_KEY, _TARGET_KEY = 1, 2, 3
#: Ladders per block, the unit of work (a task's share; benchmarks/bench_units.py).
LADDERS_PER_BLOCK = 4


def tempering_path(model: RBM, beta: float, rows: np.ndarray | None) -> tuple[LayeredPath, str]:
    """The path of the ladders and a note on its base model (module docstring)."""
    side = state_layer(model)
    layer = getattr(model, side)
    if rows is not None or not layer.finite:
        base, note = base_layer(model, beta, side, rows)
    else:
        base, note = layer.replace(bias=np.zeros_like(layer.bias)), "uniform (covers every mode)"
    return LayeredPath(model, beta, side, base), note


class LayeredLadders(RungBook):
    """R independent replica-exchange ladders on common rungs ``ts`` over a :class:`LayeredPath`
    (one chain per rung); the interface of :class:`fecli.estimators.pt.Ladders`.

    Chains live in slots; ``chain_at[r, k]`` is the slot at rung k of ladder r, ``rung_of[r, c]``
    the rung of slot c. Exchanges swap rungs, not states.
    """

    def __init__(self, path: LayeredPath, ts: np.ndarray, chains: int, entropy: int, sweeps: int = 1,
                 start: np.ndarray | None = None, max_rungs: int | None = None):
        from .pt import MAX_RUNGS

        self.path = path
        self.R = chains
        self.sweeps = sweeps
        self.max_rungs = max_rungs or MAX_RUNGS
        self.entropy = entropy
        # Every ladder draws from its own streams (chains, exchanges), so blocks of ladders run apart.
        self.chain_rngs = [np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(_STREAM, 0, r)))
                           for r in range(chains)]
        self.swap_rngs = [np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(_STREAM, _SWAP_KEY, r)))
                          for r in range(chains)]
        pick = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(_STREAM, _START_KEY)))
        n = path.own.n
        if start is None:
            s0 = path.base_samples(chains * self.max_rungs, self._random(self.max_rungs))
        else:
            s0 = np.asarray(start, dtype=np.float64)[pick.integers(0, start.shape[0], size=chains * self.max_rungs)]
        self.s = np.ascontiguousarray(s0.reshape(chains, self.max_rungs, n))
        self.rounds_done = 0
        self.visited: list[np.ndarray] = []
        self._set(np.asarray(ts, dtype=np.float64))

    # -- the ladder ----------------------------------------------------------------------------
    def set_rungs(self, ts: np.ndarray) -> None:
        """New rungs; the chain of new rung j starts from the state of the old rung nearest to it."""
        self.remember()
        old = self.s.copy()
        rows = np.arange(self.R)[:, None]
        self.s[:, :ts.size] = old[rows, self._slots_nearest(ts)]
        self._set(ts)

    def remember(self) -> None:
        """Keep the current states of every chain for the visited-states bound (finite layers)."""
        if self.path.own.finite:
            self.visited.append(self.encode(self.s[:, :self.K].reshape(-1, self.s.shape[2])))

    def encode(self, s: np.ndarray) -> np.ndarray:
        """Finite states as uint8 state indices; Gaussian states as float32 (kept only for output)."""
        layer = self.path.own
        if not layer.finite:
            return s.astype(np.float32)
        return np.searchsorted(layer.values, s).astype(np.uint8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        layer = self.path.own
        if not layer.finite:
            return codes.astype(np.float64)
        return layer.values[codes.astype(np.intp)]

    def _random(self, rows_per_ladder: int) -> ChunkedRandom:
        """Draws for rows ladder-major, each ladder's rows from its own chain stream."""
        k = rows_per_ladder
        return ChunkedRandom([(r * k, (r + 1) * k) for r in range(self.R)], self.chain_rngs)

    # -- rounds --------------------------------------------------------------------------------
    #: What a block of ladders carries between tasks (one row, or one element, per ladder).
    PER_LADDER = ("s", "rung_of", "chain_at", "acc_sum", "acc_n", "last_end", "half_trips", "chain_rngs",
                  "swap_rngs")

    def run(self, rounds: int, *, record: bool = False, count_trips: bool = False, progress=None,
            label: str = "pt", done: int = 0, total: int = 0):
        """``rounds`` rounds of every ladder; with ``record`` the works and top-rung states of each
        round are returned as :class:`fecli.estimators.pt.Records`.

        Ladders are independent within a run (only the adaptation between runs pools them) and draw
        from their own streams; blocks of LADDERS_PER_BLOCK ladders run apart (one BLAS thread each)
        as the engine's tasks, here (a thread pool) or on a cluster, so the bits do not depend on where."""
        from .. import engine
        from .layered_sampling import block_bounds
        from .pt import Records

        blocks = block_bounds(self.R, LADDERS_PER_BLOCK)
        b = engine.backend()
        tasks = [[self._part(range(*blocks[i])) for i in g] for g in b.split(len(blocks))]
        job = (self.path.model, self.path.beta, self.path.side, self.path.base, rounds, record, count_trips, label,
               done, total)
        results = b.map(ladder_blocks, job, tasks, label, progress)
        parts = [part for task in results for part in task]
        for (lo, hi), (part, _) in zip(blocks, parts):
            for name in self.PER_LADDER:
                getattr(self, name)[lo:hi] = getattr(part, name)
        self.rounds_done += rounds
        if not record:
            return None
        recs = [rec for _, rec in parts]
        return Records(self.ts.copy(), *(np.concatenate([getattr(r, f) for r in recs], axis=1)
                                         for f in ("up", "down", "top", "top_lf")))

    def _part(self, ladders: range) -> "LayeredLadders":
        """A copy of these ladders restricted to ``ladders``, without the path (built where it runs)."""
        part = copy.copy(self)
        part.path, part.visited, part.R = None, [], len(ladders)
        for name in self.PER_LADDER:
            value = getattr(self, name)[ladders.start:ladders.stop]
            setattr(part, name, value if isinstance(value, list) else np.ascontiguousarray(value))
        return part

    def _rounds(self, rounds: int, record: bool, count_trips: bool, progress, label: str, done: int, total: int):
        """:meth:`run` for the ladders of this object, in this thread (a block)."""
        from .pt import PROGRESS_SEGMENTS, Records

        p = self.path
        K, R, n = self.K, self.R, p.own.n
        m = rounds if record else 0
        up_out, down_out = np.zeros((m, R, K)), np.zeros((m, R, K))
        top_dtype = np.uint8 if p.own.finite else np.float32
        top_out, top_lf = np.zeros((m, R, n), dtype=top_dtype), np.zeros((m, R))
        s = self.s[:, :K].reshape(R * K, n).copy()
        rng = self._random(K)
        ladders = np.arange(R)
        every = rounds if progress is None else max(1, -(-rounds // PROGRESS_SEGMENTS))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for i in range(rounds):
                rung = self.rung_of[:, :K]
                t = self.ts[rung].ravel()
                for _ in range(self.sweeps):
                    s = p.sweep_rows(s, t, rng)
                e_base, e_target, field = p.parts(s)
                here = p.log_f_rows(e_base, e_target, field, t)
                k = rung.ravel()
                up = np.where(k < K - 1, p.log_f_rows(e_base, e_target, field, self.ts[np.minimum(k + 1, K - 1)])
                              - here, 0.0)
                down = np.where(k > 0, p.log_f_rows(e_base, e_target, field, self.ts[np.maximum(k - 1, 0)])
                                - here, 0.0)
                up_r, down_r = np.empty((R, K)), np.empty((R, K))
                up_r[ladders[:, None], rung] = up.reshape(R, K)
                down_r[ladders[:, None], rung] = down.reshape(R, K)
                if record:
                    top = self.chain_at[:, K - 1]
                    up_out[i], down_out[i] = up_r, down_r
                    top_out[i] = self.encode(s.reshape(R, K, n)[ladders, top])
                    top_lf[i] = here.reshape(R, K)[ladders, top]
                self._exchange(up_r, down_r, (self.rounds_done + i) % 2)
                if count_trips:
                    self._count_trips()
                if progress is not None and ((i + 1) % every == 0 or i + 1 == rounds):
                    progress(label, done + i + 1, total or rounds)
        self.s[:, :K] = s.reshape(R, K, n)
        self.rounds_done += rounds
        if not record:
            return None
        return Records(self.ts.copy(), up_out, down_out, top_out, top_lf)

    def _exchange(self, up_r: np.ndarray, down_r: np.ndarray, parity: int) -> None:
        """Proposals between rungs (k, k + 1), k of the given parity, in every ladder at once;
        accepted with probability min(1, exp(up_k(s_a) + down_{k+1}(s_b)))."""
        ks = np.arange(parity, self.K - 1, 2)
        if ks.size == 0:
            return
        log_ratio = up_r[:, ks] + down_r[:, ks + 1]
        p = np.where(log_ratio >= 0.0, 1.0, np.exp(np.minimum(log_ratio, 0.0)))
        u = np.stack([g.random(ks.size) for g in self.swap_rngs])
        ok = ~np.isnan(p)  # a broken model never swaps; the caller reports the non-finite works
        self.acc_sum[:, ks] += np.where(ok, p, 0.0)
        self.acc_n[:, ks] += ok
        r, j = np.nonzero(ok & (u < p))
        k = ks[j]
        a, b = self.chain_at[r, k], self.chain_at[r, k + 1]
        self.chain_at[r, k], self.chain_at[r, k + 1] = b, a
        self.rung_of[r, a], self.rung_of[r, b] = k + 1, k

    def _count_trips(self) -> None:
        rows = np.arange(self.R)
        for end, slot in ((0, self.chain_at[:, 0]), (1, self.chain_at[:, self.K - 1])):
            arrived = self.last_end[rows, slot] == 1 - end
            self.half_trips[rows[arrived], slot[arrived]] += 1
            self.last_end[rows, slot] = end

    # -- what the estimator reports --------------------------------------------------------------
    def visited_bound(self, model: RBM, beta: float, rec) -> tuple[float, int]:
        """ln sum over the distinct states s the chains visited of f_1(s) (the state layer's marginal at
        beta, unnormalised): a rigorous lower bound on ln Z; (-inf, 0) for a Gaussian state layer."""
        if not self.path.own.finite:
            return -math.inf, 0
        p = self.path
        codes = np.concatenate([rec.top.reshape(-1, rec.top.shape[2]), *self.visited])
        packed = np.ascontiguousarray(codes)
        keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first = np.unique(keys, return_index=True)
        s = self.decode(codes[first])
        with np.errstate(over="ignore", invalid="ignore"):
            neg_f = p.log_f_rows(*p.parts(s), 1.0)
        top = float(np.max(neg_f))
        if not math.isfinite(top):
            return -math.inf, int(first.size)
        return top + math.log(float(np.exp(neg_f - top).sum())), int(first.size)

    def target_states(self, rec, most: int) -> np.ndarray:
        """At most ``most`` visible rows from the recorded top rungs (evenly spaced in time): the
        states themselves when the chains hold the visible layer, else draws of v given them."""
        codes = rec.top.reshape(-1, rec.top.shape[2])
        s = self.decode(codes[np.linspace(0, codes.shape[0] - 1, min(most, codes.shape[0])).astype(int)])
        if self.path.side == "visible":
            return s
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(_STREAM, _TARGET_KEY)))
        return self.path.other_given(s, rng)

    def upper_bound(self, model: RBM, beta: float) -> float:
        from ..bounds_layers import upper_bound_layers

        return upper_bound_layers(model, beta)


def ladder_blocks(job: tuple, parts: list, progress=None) -> list:
    """The engine's task: ``rounds`` rounds of each block of ladders in ``parts``, one after the other
    with one BLAS thread; [(block after them, its records)] in order. Progress: the rounds of the first
    block."""
    from threadpoolctl import threadpool_limits

    model, beta, side, base, rounds, record, count_trips, label, done, total = job
    path = LayeredPath(model, beta, side, base)
    out = []
    with threadpool_limits(1, user_api="blas"):
        for i, part in enumerate(parts):
            part.path = path
            rec = part._rounds(rounds, record, count_trips, progress if i == 0 else None, label, done, total)
            part.path = None
            out.append((part, rec))
    return out


def start_layered_ladders(model: RBM, beta: float, rungs: int | None, chains: int, burn_in: int, sweeps: int,
                          schedule: str, data: Any, entropy: int, progress, total: int):
    """:func:`fecli.estimators.pt._start_ladders` for a model with Gaussian or Potts layers:
    (ladders adapted and burnt in, path, base-model note, data label, rungs after each stage)."""
    from ..layer_data import resolve_for
    from ._sampling_common import make_schedule
    from .pt import FIRST_RUNGS, adapt

    rows, label = resolve_for(data, model)
    path, note = tempering_path(model, beta, rows)
    start = rows if rows is not None and path.side == "visible" else None
    first = make_schedule(schedule, (rungs or FIRST_RUNGS) - 1)
    ladders = LayeredLadders(path, first, chains, entropy, sweeps, start=start)
    history = adapt(ladders, burn_in, rungs, progress, total)
    return ladders, path, note, label, history


def tempered_states(model: RBM, beta: float, n: int, seed: int, *, data: Any = None, burn_in: int = 250,
                    rounds: int = 250, progress=None) -> tuple[np.ndarray, LayeredPath, str, list[str]]:
    """``n`` states of the state layer at the target from tempering ladders (for methods that need
    target samples where exact ones are out of reach): (states, path, note, warnings); the top rungs
    thinned by the statistical inefficiency of their works, as :func:`fecli.estimators.pt.tempered_samples`."""
    from .pt import DEFAULT_CHAINS, DEFAULT_SCHEDULE, inefficiency

    chains = DEFAULT_CHAINS
    ladders, path, note, _, _ = start_layered_ladders(model, beta, None, chains, burn_in, 1, DEFAULT_SCHEDULE,
                                                      data, seed, progress, burn_in + rounds)
    ladders.reset_counts()
    rec = ladders.run(rounds, record=True, count_trips=True)
    K = ladders.K
    g = max(1.0, float(np.mean([inefficiency(rec.down[:, r, K - 1]) for r in range(chains)])))
    thin = int(math.ceil(g))
    per_ladder = -(-n // chains)
    top = rec.top
    if top.shape[0] < per_ladder * thin:
        top = np.concatenate([top, ladders.run(per_ladder * thin - top.shape[0], record=True, count_trips=True).top])
    kept = top[::-thin][:per_ladder][::-1]
    states = ladders.decode(kept.reshape(-1, top.shape[2])[:n])
    trips = ladders.round_trips()
    warnings = []
    if np.any(trips == 0):
        warnings.append(f"{int(np.sum(trips == 0))} of {chains} tempering ladders made no round trip between "
                        "base model and target: the samples may miss modes of the target.")
    return states, path, (f"parallel tempering: {chains} ladders of {K} rungs, {burn_in} rounds of burn-in, top "
                          f"rung thinned every {thin} rounds; {note} at t = 0"), warnings

