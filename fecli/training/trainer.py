"""CD-k / PCD / EMF (TAP) training loop with momentum, weight decay, monitoring and exact resume.

One update on a batch of m data rows (positive phase) and n negative rows:

    p_pos = sigmoid(b + V W)                     (BLAS, then a fused Numba kernel)
    v_neg, p_neg = negative_phase(...)           (CD-k from the data, or PCD chains)
    S_v = [V; v_neg],  S_h = [p_pos / m; -p_neg / n]
    dW = S_v^T S_h,  da = mean(V) - mean(v_neg),  db = mean(p_pos) - mean(p_neg)
    vel <- momentum * vel + lr_e * (grad - weight_decay * W);  W <- W + vel

The weight gradient is a single BLAS product of the stacked statistics.

Sparse data with CD-k or PCD-k (the common case for image data) takes a fused path instead:
two parallel Numba regions per update and no BLAS call (see "the sparse CD / PCD update" in
:mod:`fecli.kernels.training`): one over rows for the positive phase and the Gibbs chains,
one over visible units for the gradient fused with the momentum update. The trainer keeps a
contiguous copy of W^T for the chains' v ~ p(v | h), which that update keeps in sync. All
randomness is a function of (seed, step) (counter-based generator, see
:mod:`fecli.kernels.training`) and the epoch's shuffle is a function of
(seed, epoch), so a run can stop after any batch and continue bit-for-bit from
the parameters, momentum buffers, persistent chains and counters stored in the
model file's ``training`` group (see :mod:`fecli.training.checkpoint`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import DataFileError, EstimationFailedError
from ..model import RBM
from ..progress import ProgressCallback
from ..validation import fresh_seed
from .monitor import Monitor, exact_enumerable
from .negative import NEGATIVE_PHASES
from .settings import TrainSettings
from .snapshots import SnapshotLog
from .tracking import LOST_TRACK_NATS, LogZTracker

#: "auto" products use the sparse binary kernels when the training data has at most this fraction of ones.
SPARSE_MAX_DENSITY = 0.25
PRODUCTS = ("auto", "dense", "sparse")

#: Spawn keys of the independent random streams derived from the seed.
STREAM_INIT, STREAM_SPLIT, STREAM_SHUFFLE, STREAM_MONITOR, STREAM_CHAINS, STREAM_SAMPLING = range(6)


@dataclass
class Params:
    """Weights and biases in the training dtype."""

    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray

    @classmethod
    def zeros_like(cls, other: "Params") -> "Params":
        return cls(np.zeros_like(other.weights), np.zeros_like(other.visible_bias), np.zeros_like(other.hidden_bias))


class Products:
    """The two products of an update whose left operand is a 0/1 block: ``v @ W`` and ``v^T H``.

    Dense: BLAS. Sparse: the binary kernels of :mod:`fecli.kernels.training`, which add rows
    instead of multiplying by 0 and 1 (faster when most units are off, as in image data).
    Both are exact; they differ only in the order of the floating-point additions.
    """

    def __init__(self, sparse: bool, max_rows: int, n_visible: int):
        self.sparse = sparse
        if sparse:
            self._ptr = np.empty(n_visible + 1, dtype=np.int64)
            self._idx = np.empty(max_rows * n_visible, dtype=np.int64)

    def hidden_field(self, v: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
        """out = v @ weights."""
        if self.sparse:
            from ..kernels.training import binary_matmul

            binary_matmul(v, weights, out, self._ptr, self._idx)
        else:
            np.dot(v, weights, out=out)

    def weight_gradient(self, v: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
        """out = v^T @ h."""
        if self.sparse:
            from ..kernels.training import binary_transpose_matmul

            binary_transpose_matmul(v, h, out, self._ptr, self._idx)
        else:
            np.dot(v.T, h, out=out)


@dataclass
class TrainState:
    """Everything the next update needs besides the data and the settings."""

    params: Params
    velocity: Params
    negative: dict[str, np.ndarray]
    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in epoch ``epoch``
    step: int = 0  # updates done since the start
    wall_time_s: float = 0.0
    history: dict[str, list] = field(default_factory=dict)
    snapshots: SnapshotLog | None = None  # with --snapshots: the parameters kept so far
    tracker: dict[str, Any] = field(default_factory=dict)  # the monitored-ln Z tracker's state (large models)


@dataclass
class TrainingOutcome:
    """What a call to :func:`train` / :func:`resume` produced."""

    model: RBM
    history: dict[str, list]
    interrupted: bool
    epochs_done: int
    epochs: int
    batches_done: int
    n_batches: int
    output: Path | None
    warnings: list[str]
    wall_time_s: float
    snapshots: Any = None  # fecli.io.Snapshots with --snapshots, else None


def seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=tuple(key))


def generator(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, *key)))


def array_digest(data: np.ndarray) -> str:
    """SHA-256 of the 0/1 rows packed as bits (``numpy.packbits`` along rows, then the shape).

    Independent of the file format and dtype, and cheap for large data sets.
    """
    digest = hashlib.sha256(np.packbits(np.asarray(data) != 0, axis=1).tobytes())
    digest.update(repr(tuple(np.shape(data))).encode())
    return digest.hexdigest()


def column_counts(data: np.ndarray) -> tuple[np.ndarray, int]:
    """(ones per column, number of entries that are neither 0 nor 1): one parallel pass for
    C-contiguous float arrays (no full-size temporaries), numpy otherwise."""
    data = np.asarray(data)
    if data.dtype in (np.float32, np.float64) and data.flags.c_contiguous:
        from ..kernels.training import binary_column_counts

        counts = np.empty(data.shape[1], dtype=np.int64)
        other = int(binary_column_counts(data, counts))
        return counts, other
    counts = np.count_nonzero(data == 1, axis=0).astype(np.int64)
    return counts, int(data.size - counts.sum() - np.count_nonzero(data == 0))


def _all_binary(data: np.ndarray) -> bool:
    return column_counts(data)[1] == 0


def check_training_data(data: np.ndarray, where: str) -> np.ndarray:
    """Rows of 0/1 values, at least two of them (the loader checked the rest)."""
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        raise DataFileError(f"{where} has shape {data.shape}; training needs a 2-D array with rows of examples.")
    if data.shape[0] < 2:
        raise DataFileError(f"{where} has only {data.shape[0]} row; training needs at least 2 examples.")
    if data.dtype != np.bool_ and not _all_binary(data):
        if not np.isfinite(data).all():
            raise DataFileError(f"{where} contains NaN or inf values.")
        raise DataFileError(f"{where} has values that are not binary 0/1.")
    return data


class Trainer:
    """Trains an RBM on in-memory 0/1 data with one negative phase (CD or PCD)."""

    def __init__(
        self,
        data: np.ndarray,
        settings: TrainSettings,
        *,
        validation_data: np.ndarray | None = None,
        data_name: str = "data",
        products: str = "auto",
    ):
        data = check_training_data(data, data_name)
        if products not in PRODUCTS:
            raise ValueError(f"products must be one of {PRODUCTS}, got {products!r}")
        if validation_data is not None:
            validation_data = check_training_data(validation_data, "validation data")
            if validation_data.shape[1] != data.shape[1]:
                raise DataFileError(
                    f"validation data has {validation_data.shape[1]} columns, but {data_name} has {data.shape[1]}."
                )
            if settings.validation:
                raise DataFileError("give either a validation fraction or validation data, not both.")
        if settings.seed is None:  # a fresh random seed, stored with the model so the run can be repeated
            settings.seed = fresh_seed()  # below 2^53: exact in any JSON reader
        self.settings = settings
        self.warnings: list[str] = []
        self.dtype = np.dtype(settings.dtype)
        self.data_digest = array_digest(data)
        train, validation = self._split(data, validation_data, data_name)
        from ..data import base_rate_from_sums

        self.base_rate = base_rate_from_sums(column_counts(train)[0], train.shape[0])
        self._density = 1.0 / (1.0 + np.exp(-self.base_rate))  # smoothed fraction of ones per unit
        self.train_data = np.ascontiguousarray(train, dtype=self.dtype)
        self.validation_data = validation
        self.n_visible = data.shape[1]
        self.n_rows = data.shape[0]
        n_train = self.train_data.shape[0]
        if settings.batch_size > n_train:
            self.warnings.append(
                f"--batch-size {settings.batch_size} is larger than the {n_train} training rows; using {n_train}."
            )
            settings.batch_size = n_train
        self.batch_size = settings.batch_size
        self.n_batches = -(-n_train // self.batch_size)
        self.negative = NEGATIVE_PHASES[settings.method](
            settings.k, self.n_visible, settings.hidden, self.batch_size, self.dtype
        )
        if hasattr(self.negative, "configure"):
            self.negative.configure(settings)
        if products == "auto":
            sparse = bool(self.base_rate.size) and float(np.mean(self._density)) <= SPARSE_MAX_DENSITY
        else:
            sparse = products == "sparse"
        n_neg = self.negative.n_negative(self.batch_size)
        self.products = Products(sparse, self.batch_size + n_neg, self.n_visible)
        #: Sparse CD / PCD: the fused two-region update (:meth:`_sparse_statistics`).
        self.fused = sparse and hasattr(self.negative, "gibbs_state")
        self.base_key = int(seed_sequence(settings.seed, STREAM_SAMPLING).generate_state(1, np.uint64)[0])
        self._monitor: Monitor | None = None
        #: Monitored ln Z of models too large to enumerate: SMC along the run (None when not needed).
        self.tracker: LogZTracker | None = None
        if settings.monitor_every > 0 and not exact_enumerable(self.n_visible, settings.hidden):
            self.tracker = LogZTracker(settings.seed)
        self._tracker_lost: list[int] = []  # epochs where the tracker's replicates disagreed
        self._alloc()

    # -- data -----------------------------------------------------------------------------------------
    def _split(self, data: np.ndarray, validation_data: np.ndarray | None, name: str):
        s = self.settings
        if validation_data is not None:
            return data, np.ascontiguousarray(validation_data, dtype=np.float64)
        if not s.validation:
            return data, None
        n = data.shape[0]
        n_val = int(round(s.validation * n))
        if n_val < 1 or n - n_val < 2:
            raise DataFileError(
                f"--validation {s.validation:g} of the {n} rows of {name} leaves {n_val} validation and "
                f"{n - n_val} training rows; need at least 1 and 2."
            )
        perm = generator(s.seed, STREAM_SPLIT).permutation(n)
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        return data[train_idx], np.ascontiguousarray(data[val_idx], dtype=np.float64)

    @property
    def monitor(self) -> Monitor:
        if self._monitor is None:
            self._monitor = Monitor(
                self.train_data, self.validation_data, self.settings.monitor_rows,
                generator(self.settings.seed, STREAM_MONITOR),
            )
        return self._monitor

    def _alloc(self) -> None:
        B, nv, nh = self.batch_size, self.n_visible, self.settings.hidden
        n_neg = self.negative.n_negative(B)
        self._sv = np.zeros((B + n_neg, nv), dtype=self.dtype)  # rows [B-m, B): data, [B, B+n): negative
        self._sh = np.zeros((B + n_neg, nh), dtype=self.dtype)
        self._hs = np.zeros((B, nh), dtype=self.dtype)
        self._grad = Params(np.zeros((nv, nh), self.dtype), np.zeros(nv, self.dtype), np.zeros(nh, self.dtype))
        if self.fused:
            self._mask = np.zeros((B + n_neg, nv), dtype=np.uint8)  # 0/1 visible rows: data, then negative
            self._stats = np.zeros((B + n_neg, nh), dtype=self.dtype)  # scaled p(h | v) of those rows
            self._weights_t = np.zeros((nh, nv), dtype=self.dtype)
            self._weights_t_of: np.ndarray | None = None  # the weights array _weights_t is the transpose of

    # -- state ----------------------------------------------------------------------------------------
    def initial_state(self) -> TrainState:
        """Customary initialisation: W ~ N(0, 0.01^2), visible biases at the data's base rate, b = 0."""
        s = self.settings
        rng = generator(s.seed, STREAM_INIT)
        params = Params(
            np.ascontiguousarray(rng.normal(0.0, 0.01, size=(self.n_visible, s.hidden)), dtype=self.dtype),
            np.ascontiguousarray(self.base_rate, dtype=self.dtype),
            np.zeros(s.hidden, dtype=self.dtype),
        )
        state = TrainState(params=params, velocity=Params.zeros_like(params), negative={})
        if s.snapshots:
            state.snapshots = SnapshotLog.plan(s.snapshots, self.total_updates)
            state.snapshots.take(0, params.weights, params.visible_bias, params.hidden_bias)
        if self.tracker is not None:
            self.tracker.reset(self.model(state))
            state.tracker = self.tracker.state_dict()
        if hasattr(self.negative, "init_chains"):
            crng = generator(s.seed, STREAM_CHAINS)
            n_chains = self.negative.n_negative(self.batch_size)
            rows = crng.choice(self.train_data.shape[0], size=n_chains, replace=n_chains > self.train_data.shape[0])
            key = np.uint64(crng.integers(0, 2**64, dtype=np.uint64))
            self.negative.init_chains(params, self.train_data[rows], key)
        state.negative = self.negative.state_dict()
        return state

    def load_negative_state(self, state: TrainState) -> None:
        self.negative.load_state_dict(state.negative)

    @property
    def total_updates(self) -> int:
        """Parameter updates of the whole run (``epochs`` x batches per epoch)."""
        return self.settings.epochs * self.n_batches

    def _take_snapshot(self, state: TrainState) -> None:
        log = state.snapshots
        if log is not None and log.due(state.step):
            p = state.params
            log.take(state.step, p.weights, p.visible_bias, p.hidden_bias)

    def _tracked_log_z(self, state: TrainState, model: RBM):
        """Advance the ln Z tracker to the current model, through the snapshots taken since its
        last point; None when there is no tracker (enumerable models) or it has no start."""
        tracker = self.tracker
        if tracker is None or not tracker.ready:
            return None
        anchors: list[tuple[int, RBM]] = []
        log = state.snapshots
        if log is not None:
            for i, update in enumerate(log.updates):
                if tracker.update < update < state.step:
                    anchors.append((update, self._snapshot_model(log, i)))
        anchors.append((state.step, model))
        chain_updates = (state.step - tracker.update) * (self.batch_size + self.negative.n_negative(self.batch_size))
        tracked = tracker.advance(anchors, tracker.steps_for(chain_updates))
        state.tracker = tracker.state_dict()
        if tracked.spread > LOST_TRACK_NATS:
            self._tracker_lost.append(state.epoch)
        return tracked

    def _snapshot_model(self, log, i: int) -> RBM:
        """The model of training snapshot ``i`` of ``log``."""
        return RBM(log.weights[i], log.visible_bias[i], log.hidden_bias[i])

    def model(self, state: TrainState, name: str = "<memory>") -> RBM:
        p = state.params
        return RBM(p.weights, p.visible_bias, p.hidden_bias, name=name)

    # -- one update -----------------------------------------------------------------------------------
    def keys(self, step: int) -> Callable[[int], np.uint64]:
        from ..kernels.training import call_key

        base = self.base_key
        return lambda stream: call_key(base, step, stream)

    def _transposed_weights(self, params: Params) -> np.ndarray:
        """The contiguous W^T of the fused path: copied when ``params.weights`` is another array than
        last time; :func:`sparse_weight_update` keeps it in sync with its in-place updates."""
        if self._weights_t_of is not params.weights:
            np.copyto(self._weights_t, params.weights.T)
            self._weights_t_of = params.weights
        return self._weights_t

    def _sparse_statistics(self, params: Params, rows: np.ndarray, keys: Callable[[int], np.uint64]) -> tuple[int, int]:
        """Fused path: fill ``_mask`` and ``_stats`` for data ``rows`` (m data rows, then n negative
        rows) with one parallel kernel; returns (m, n). The random streams are those of the BLAS path:
        stream 0 for CD's h ~ p(h | data), 2t + 1 and 2t + 2 for Gibbs step t's v and h."""
        from numba import get_num_threads

        from ..kernels.training import sparse_gibbs_statistics

        m = rows.shape[0]
        chains, from_data = self.negative.gibbs_state(m)
        n = chains.shape[0]
        k = self.settings.k
        keys_v = np.array([keys(2 * t + 1) for t in range(k)], dtype=np.uint64)
        keys_h = np.array([keys(2 * t + 2) for t in range(k)], dtype=np.uint64)
        key_pos = keys(0) if from_data else np.uint64(0)
        sparse_gibbs_statistics(self.train_data, rows, params.weights, self._transposed_weights(params),
                                params.visible_bias, params.hidden_bias, chains, from_data, key_pos, keys_v, keys_h,
                                self._mask[:m + n], self._stats[:m + n], 4 * get_num_threads())
        return m, n

    def statistics(self, params: Params, rows: np.ndarray, keys: Callable[[int], np.uint64]) -> tuple[slice, int]:
        """Fill the stacked positive / negative statistics for data ``rows``; returns (rows slice, m)."""
        from ..kernels.training import sigmoid_sample

        B = self.batch_size
        m = rows.shape[0]
        n = self.negative.n_negative(m)
        sv, sh = self._sv, self._sh
        v_pos, h_pos = sv[B - m:B], sh[B - m:B]
        np.take(self.train_data, rows, axis=0, out=v_pos)
        self.products.hidden_field(v_pos, params.weights, h_pos)
        if self.negative.needs_positive_samples:
            sigmoid_sample(h_pos, params.hidden_bias, keys(0), True, self._hs[:m])
        else:
            sigmoid_sample(h_pos, params.hidden_bias, np.uint64(0), True, self._hs[:0])
        self.negative.run(params, self._hs[:m], sv[B:B + n], sh[B:B + n], keys, self.products)
        return slice(B - m, B + n), m

    def gradient(self, params: Params, rows: np.ndarray, keys: Callable[[int], np.uint64]) -> Params:
        """The CD/PCD estimate of the gradient of the mean log-likelihood on data ``rows``.

        The returned arrays are the trainer's buffers (overwritten by the next call).
        """
        from ..kernels.training import colsum_difference, scale_stats_colsum, sparse_gradient

        if self.fused:
            m, n = self._sparse_statistics(params, rows, keys)
            g = self._grad
            sparse_gradient(self._mask[:m + n], self._stats[:m + n], m, g.weights, g.visible_bias, g.hidden_bias)
            return g
        span, m = self.statistics(params, rows, keys)
        sv, sh, g = self._sv[span], self._sh[span], self._grad
        scale_stats_colsum(sh, m, g.hidden_bias)
        colsum_difference(sv, m, g.visible_bias)
        weight_statistics = getattr(self.negative, "weight_statistics", None)
        if weight_statistics is not None:
            # The negative weight statistic has more than <v h^T> (TAP's Onsager terms): the
            # positive rows (0/1 data) go through the products, the negative part is subtracted.
            if self.products.sparse:
                self.products.weight_gradient(sv[:m], sh[:m], g.weights)
            else:
                np.dot(sv[:m].T, sh[:m], out=g.weights)
            g.weights -= weight_statistics()
        elif self.products.sparse and self.negative.binary_negative:
            self.products.weight_gradient(sv, sh, g.weights)
        else:
            np.dot(sv.T, sh, out=g.weights)
        return g

    def update(self, state: TrainState, rows: np.ndarray) -> None:
        """One parameter update on data ``rows`` (indices into the training data)."""
        from ..kernels.training import momentum_step, sparse_weight_update

        s = self.settings
        lr = s.lr / (1.0 + s.lr_decay * state.epoch)
        p, v = state.params, state.velocity
        if self.fused:
            m, n = self._sparse_statistics(p, rows, self.keys(state.step))
            dt = self.dtype.type
            sparse_weight_update(self._mask[:m + n], self._stats[:m + n], m, p.weights, self._weights_t,
                                 p.visible_bias, p.hidden_bias, v.weights, v.visible_bias, v.hidden_bias,
                                 dt(lr), dt(s.momentum), dt(s.weight_decay))
            state.step += 1
            return
        g = self.gradient(state.params, rows, self.keys(state.step))
        momentum_step(p.weights, g.weights, v.weights, lr, s.momentum, s.weight_decay)
        momentum_step(p.visible_bias[None, :], g.visible_bias[None, :], v.visible_bias[None, :], lr, s.momentum, 0.0)
        momentum_step(p.hidden_bias[None, :], g.hidden_bias[None, :], v.hidden_bias[None, :], lr, s.momentum, 0.0)
        state.step += 1

    def epoch_order(self, epoch: int) -> np.ndarray:
        return generator(self.settings.seed, STREAM_SHUFFLE, epoch).permutation(self.train_data.shape[0])

    def check_finite(self, state: TrainState) -> None:
        p = state.params
        if not (np.isfinite(p.weights).all() and np.isfinite(p.visible_bias).all()
                and np.isfinite(p.hidden_bias).all()):
            raise EstimationFailedError(
                f"training diverged in epoch {state.epoch + 1} (weights became NaN or inf); "
                f"lower --lr (now {self.settings.lr:g}) or --momentum."
            )

    def check_metrics(self, state: TrainState, record: dict[str, Any]) -> None:
        """Refuse a run whose monitored values overflowed (finite parameters can still give an infinite
        free energy or reconstruction error): nothing more is written for it."""
        bad = [key for key in ("log_z", "log_likelihood", "val_log_likelihood", "recon_error", "val_recon_error")
               if key in record and not np.isfinite(record[key])]
        if bad:
            raise EstimationFailedError(
                f"training diverged in epoch {state.epoch} (the monitored {bad[0].replace('_', ' ')} is "
                f"{record[bad[0]]}); lower --lr (now {self.settings.lr:g}) or --momentum."
            )

    # -- the loop -------------------------------------------------------------------------------------
    def run(
        self,
        state: TrainState,
        *,
        checkpoint: Callable[[TrainState, bool], None] | None = None,
        progress: ProgressCallback = None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> bool:
        """Train until ``settings.epochs`` epochs are done; returns True if stopped early.

        ``checkpoint(state, final)`` is called every ``checkpoint_every`` epochs and when
        stopping; ``should_stop()`` is polled after every batch.
        """
        s = self.settings
        B, n_train = self.batch_size, self.train_data.shape[0]
        total = (s.epochs - state.epoch) * n_train - state.batch * B
        done = 0
        start = time.perf_counter()
        last = start
        self.load_negative_state(state)
        if self.tracker is not None:
            self.tracker.load_state_dict(state.tracker)
        self._take_snapshot(state)  # update 0 of a run resumed before its first update
        # Overflow to inf/NaN is caught by check_finite() with one clear message, not warnings.
        errstate = np.errstate(over="ignore", invalid="ignore", divide="ignore")
        errstate.__enter__()
        try:
            while state.epoch < s.epochs:
                order = self.epoch_order(state.epoch)
                desc = f"epoch {state.epoch + 1}/{s.epochs}"
                epoch_start = time.perf_counter()
                epoch_examples = 0
                while state.batch < self.n_batches:
                    rows = order[state.batch * B:(state.batch + 1) * B]
                    self.update(state, rows)
                    self._take_snapshot(state)
                    state.batch += 1
                    done += rows.shape[0]
                    epoch_examples += rows.shape[0]
                    if progress is not None:
                        progress(desc, done, total)
                    if should_stop is not None and should_stop():
                        self.check_finite(state)
                        state.negative = self.negative.state_dict()
                        now = time.perf_counter()
                        state.wall_time_s += now - last
                        last = now
                        if checkpoint is not None:
                            checkpoint(state, False)
                        return True
                epoch_seconds = time.perf_counter() - epoch_start
                self.check_finite(state)
                state.epoch += 1
                state.batch = 0
                record: dict[str, Any] = {"epoch": state.epoch}
                end_epoch = getattr(self.negative, "end_epoch", None)
                if end_epoch is not None:
                    record.update(end_epoch())
                due = s.monitor_every > 0 and (state.epoch == s.epochs or state.epoch % s.monitor_every == 0)
                if due:
                    model = self.model(state)
                    record.update(self.monitor(model, self._tracked_log_z(state, model)))
                    self.check_metrics(state, record)
                now = time.perf_counter()
                state.wall_time_s += now - last
                last = now
                record["lr"] = s.lr / (1.0 + s.lr_decay * (state.epoch - 1))
                record["examples_per_s"] = epoch_examples / epoch_seconds if epoch_seconds > 0 else 0.0
                record["wall_time_s"] = state.wall_time_s
                if due:
                    for key, value in record.items():
                        state.history.setdefault(key, []).append(value)
                if on_epoch is not None:
                    on_epoch(record)
                if checkpoint is not None and s.checkpoint_every and state.epoch % s.checkpoint_every == 0 \
                        and state.epoch < s.epochs:
                    state.negative = self.negative.state_dict()
                    now = time.perf_counter()
                    state.wall_time_s += now - last
                    last = now
                    checkpoint(state, False)
        finally:
            errstate.__exit__(None, None, None)
            if hasattr(self.negative, "warnings"):
                self.warnings.extend(self.negative.warnings())
            if self._tracker_lost:
                epochs = ", ".join(map(str, self._tracker_lost[:5])) + (" ..." if len(self._tracker_lost) > 5 else "")
                self.warnings.append(
                    f"the tracked ln Z was unreliable at epoch(s) {epochs} (its replicates disagree by more than "
                    f"{LOST_TRACK_NATS:g} nat: the model moved too fast for its particles); those log-likelihoods "
                    "are probably too high. Check with 'fecli trajectory' or 'fecli loglik -m ais'."
                )
            state.negative = self.negative.state_dict()
            state.wall_time_s += time.perf_counter() - last
        return False
