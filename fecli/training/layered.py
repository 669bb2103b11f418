"""CD-k and PCD for any unit types (fecli.layers), on the layer protocol: BLAS and numpy, float64.

The bernoulli-bernoulli trainer (:mod:`fecli.training.trainer`, its fused Numba kernels) stays
the bernoulli specialisation; this one serves every other combination with the same settings,
loop, checkpoints and exact resume (it subclasses :class:`~fecli.training.trainer.Trainer` and
replaces the update). One update on m data rows V and n negative rows:

    I = phi(V) W,  p_pos = E[phi(h) | V] (the hidden layer's ``mean``)
    CD-k: h ~ p(h | V), then k steps v' ~ p(v | h), h ~ p(h | v'); PCD-k: the same from
    batch_size persistent hidden chains; p_neg = E[phi(h) | v']
    dW = phi(V)^T p_pos / m - phi(v')^T p_neg / n,   da = mean phi(V) - mean phi(v'),
    db = mean p_pos - mean p_neg,
    vel <- momentum vel + lr (grad - weight_decay W);  parameters += vel.

Gaussian precisions (``learn_precision``): d ln p(v) / d gamma_i = -v_i^2 / 2 + <x_i^2 / 2>_model
(for a hidden unit, E[h^2 | v] = mean^2 + 1 / gamma in both phases); the log-precision moves by
lr * gamma * gradient (plain steps, no momentum, so the model file itself holds that state).
Fixed precisions stay at their initial values: 1 / (the data's variance) per visible unit, 1 for
hidden units. Initial biases fit the data with W = 0 (smoothed base rates, log frequencies of
Potts states, gamma times the mean of Gaussian units); W ~ N(0, 0.01^2).

Randomness: update t draws from Generator(PCG64(SeedSequence(seed, spawn_key=(5, t)))), the
epoch's shuffle from (seed, epoch), so a run resumes bit for bit from a checkpoint.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..errors import DataFileError, EstimationFailedError
from ..layers import Layer, make_layer
from ..model import RBM
from .settings import EXACT_MONITOR_MAX_UNITS, TrainSettings
from .trainer import STREAM_CHAINS, STREAM_INIT, STREAM_MONITOR, STREAM_SAMPLING, Params, Trainer, TrainState, generator

#: Smallest precision a Gaussian unit starts with (a constant column would give 1 / 0).
MIN_VARIANCE = 1e-6
#: Divergence (Gaussian visible units): the reconstruction's squared error is this many times the
#: data's mean square, i.e. the model's means are ~100x farther out than any data row.
MAX_RECONSTRUCTION_BLOWUP = 1e4
#: Training rows the divergence check reconstructs at the end of every epoch.
DIVERGENCE_ROWS = 64


def _standardized(data: np.ndarray) -> bool:
    """Whether every column has mean ~0 and standard deviation ~1 (or is constant)."""
    mean, std = data.mean(axis=0), data.std(axis=0)
    return bool(np.all(np.abs(mean) <= 1e-6 * np.maximum(std, 1.0)) and np.all((np.abs(std - 1.0) <= 1e-6) | (std == 0)))


def layer_array_digest(data: np.ndarray) -> str:
    """SHA-256 of the float64 rows (then the shape): the provenance of non-binary training data."""
    data = np.ascontiguousarray(data, dtype=np.float64)
    digest = hashlib.sha256(data.tobytes())
    digest.update(repr(tuple(data.shape)).encode())
    return digest.hexdigest()


def visible_layer_for(settings: TrainSettings, data: np.ndarray) -> Layer:
    """A visible layer of the settings' type (zero biases) to validate data with; Potts q from
    ``settings.states`` or, when not given, max state + 1 (at least 2), stored back into the settings."""
    n = data.shape[1]
    if settings.visible_type == "potts":
        if settings.states is None:
            top = np.nanmax(data) if data.size else 0
            settings.states = max(2, int(top) + 1 if np.isfinite(top) and top == int(top) else 2)
        return make_layer("potts", np.zeros((n, settings.states)))
    if settings.visible_type == "gaussian":
        return make_layer("gaussian", np.zeros(n), np.ones(n))
    return make_layer(settings.visible_type, np.zeros(n))


class _Negative:
    """CD or PCD chains of the generic trainer (the ``negative`` of the Trainer contract)."""

    def __init__(self, method: str, k: int, batch_size: int, n_hidden_dim: int):
        self.name, self.k = method, k
        self.persistent = method == "pcd"
        self.chains = np.zeros((batch_size, n_hidden_dim)) if self.persistent else None

    def n_negative(self, n_pos: int) -> int:
        return self.chains.shape[0] if self.persistent else n_pos

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"chains": self.chains.copy()} if self.persistent else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not self.persistent:
            return
        chains = np.asarray(state["chains"], dtype=np.float64)
        if chains.shape != self.chains.shape:
            raise ValueError(f"stored chains have shape {chains.shape}, expected {self.chains.shape}")
        self.chains[...] = chains


class LayeredTrainer(Trainer):
    """CD-k / PCD-k for any combination of unit types (see the module docstring)."""

    def __init__(self, data: np.ndarray, settings: TrainSettings, *, validation_data: np.ndarray | None = None,
                 data_name: str = "data", products: str = "auto"):
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[0] < 2:
            raise DataFileError(f"{data_name} has shape {data.shape}; training needs a 2-D array with at least 2 rows.")
        if settings.seed is None:
            settings.seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
        self.settings = settings
        self.warnings: list[str] = []
        self.dtype = np.dtype(np.float64)
        layer = visible_layer_for(settings, data)
        data = layer.check_data(data, data_name)
        if validation_data is not None:
            validation_data = layer.check_data(np.asarray(validation_data, dtype=np.float64), "validation data")
            if validation_data.shape[1] != data.shape[1]:
                raise DataFileError(f"validation data has {validation_data.shape[1]} columns, but {data_name} "
                                    f"has {data.shape[1]}.")
            if settings.validation:
                raise DataFileError("give either a validation fraction or validation data, not both.")
        self.data_digest = layer_array_digest(data)
        train, validation = self._split(data, validation_data, data_name)
        self.train_data = np.ascontiguousarray(train, dtype=np.float64)
        self.validation_data = validation
        self.n_visible, self.n_rows = data.shape[1], data.shape[0]
        n_train = self.train_data.shape[0]
        if settings.batch_size > n_train:
            self.warnings.append(
                f"--batch-size {settings.batch_size} is larger than the {n_train} training rows; using {n_train}."
            )
            settings.batch_size = n_train
        self.batch_size = settings.batch_size
        self.n_batches = -(-n_train // self.batch_size)
        self._template = layer
        self._hidden_template = make_layer(settings.hidden_type, np.zeros(settings.hidden),
                                           np.ones(settings.hidden) if settings.hidden_type == "gaussian" else None)
        self.negative = _Negative(settings.method, settings.k, self.batch_size, self._hidden_template.dim)
        self.visible_precision = self.hidden_precision = None
        if settings.visible_type == "gaussian":
            self.visible_precision = 1.0 / np.maximum(self.train_data.var(axis=0), MIN_VARIANCE)
        if settings.hidden_type == "gaussian":
            self.hidden_precision = np.ones(settings.hidden)
        self.fused = False
        #: ln |dz/dx| of the transform the data were given through (--scale, --standardize), added to the
        #: monitored log-likelihoods so that they are densities of the original data (set by the run).
        self.log_jacobian = 0.0
        self._monitor = None
        #: Monitored ln Z of models too large for exact ln Z: SMC along the run (None when not needed).
        self.tracker = None
        if settings.monitor_every > 0 and not exact_monitorable(
                RBM(layer, self._hidden_template, np.zeros(layer.weight_shape + self._hidden_template.weight_shape))):
            from .tracking import LayeredLogZTracker

            self.tracker = LayeredLogZTracker(settings.seed, self._build)
        self._tracker_lost: list[int] = []

    # -- parameters ---------------------------------------------------------------------------------
    def _layers(self, params: Params) -> tuple[Layer, Layer]:
        s = self.settings
        return (make_layer(s.visible_type, params.visible_bias, self.visible_precision),
                make_layer(s.hidden_type, params.hidden_bias, self.hidden_precision))

    def model(self, state: TrainState, name: str = "<memory>") -> RBM:
        vis, hid = self._layers(state.params)
        return RBM(vis, hid, state.params.weights, name=name)

    def _build(self, weights: np.ndarray, visible_bias: np.ndarray, hidden_bias: np.ndarray,
               visible_precision: np.ndarray | None = None, hidden_precision: np.ndarray | None = None) -> RBM:
        """The RBM of the settings' unit types with these parameters (snapshots, the tracker's checkpoints)."""
        s = self.settings
        return RBM(make_layer(s.visible_type, visible_bias, visible_precision),
                   make_layer(s.hidden_type, hidden_bias, hidden_precision), weights)

    def _snapshot_model(self, log, i: int) -> RBM:
        """The model of training snapshot ``i``, with its layers' precisions where they are trained."""
        precisions = [p[i] if p else None for p in (log.visible_precision, log.hidden_precision)]
        return self._build(log.weights[i], log.visible_bias[i], log.hidden_bias[i], *precisions)

    def restore_params(self, model: RBM, params: Params) -> Params:
        """Checkpoint hook: the precisions live in the model file (see the module docstring)."""
        self.visible_precision = getattr(model.visible, "precision", None)
        self.hidden_precision = getattr(model.hidden, "precision", None)
        return params

    def initial_state(self) -> TrainState:
        from ..estimators.meanfield_layers import base_rate_means

        s = self.settings
        rng = generator(s.seed, STREAM_INIT)
        vis = self._template
        shape = vis.weight_shape + self._hidden_template.weight_shape
        weights = np.ascontiguousarray(rng.normal(0.0, 0.01, size=shape))
        means = base_rate_means(vis, self.train_data)
        if vis.name == "gaussian":
            bias = self.visible_precision * means
        else:
            bias = vis.natural(np.clip(means, 1e-6, None) if vis.name == "potts" else means).reshape(vis.bias.shape)
            if vis.name == "potts":
                bias = bias - bias.mean(axis=1, keepdims=True)
        params = Params(weights, np.ascontiguousarray(bias), np.zeros(s.hidden))
        state = TrainState(params=params, velocity=Params.zeros_like(params), negative={})
        if s.snapshots:
            from .snapshots import SnapshotLog

            state.snapshots = SnapshotLog.plan(s.snapshots, self.total_updates)
            self._take(state)
        if self.tracker is not None:
            self.tracker.reset(self.model(state))
            state.tracker = self.tracker.state_dict()
        if self.negative.persistent:
            crng = generator(s.seed, STREAM_CHAINS)
            n = self.negative.chains.shape[0]
            rows = crng.choice(self.train_data.shape[0], size=n, replace=n > self.train_data.shape[0])
            v_layer, h_layer = self._layers(params)
            field = v_layer.project(self.train_data[rows], params.weights.reshape(v_layer.dim, -1))
            self.negative.chains[...] = h_layer.features(h_layer.sample(field, crng))
        state.negative = self.negative.state_dict()
        return state

    def _take_snapshot(self, state: TrainState) -> None:
        log = state.snapshots
        if log is not None and log.due(state.step):
            self._take(state)

    def _take(self, state: TrainState) -> None:
        """Keep the current parameters (and Gaussian precisions, which may be learned) as a snapshot."""
        p = state.params
        state.snapshots.take(state.step, p.weights, p.visible_bias, p.hidden_bias, self.visible_precision,
                             self.hidden_precision)

    # -- one update ---------------------------------------------------------------------------------
    def gradient(self, params: Params, rows: np.ndarray, rng: np.random.Generator):
        """(gradient Params, visible d/d log-precision, hidden d/d log-precision) on data ``rows``."""
        vis, hid = self._layers(params)
        w = params.weights.reshape(vis.dim, hid.dim)
        v = self.train_data[rows]
        m = v.shape[0]
        fv = vis.features(v)
        field = fv @ w
        p_pos = hid.mean(field)
        if self.negative.persistent:
            h = self.negative.chains
        else:
            h = hid.features(hid.sample(field, rng))
        for step in range(self.settings.k):
            v_neg = vis.sample(h @ w.T, rng)
            field_neg = vis.project(v_neg, w)
            if self.negative.persistent or step + 1 < self.settings.k:
                h = hid.features(hid.sample(field_neg, rng))
        if self.negative.persistent:
            self.negative.chains[...] = h
        n = v_neg.shape[0]
        fn = vis.features(v_neg)
        p_neg = hid.mean(field_neg)
        grad = Params(((fv.T @ p_pos) / m - (fn.T @ p_neg) / n).reshape(params.weights.shape),
                      (fv.mean(axis=0) - fn.mean(axis=0)).reshape(params.visible_bias.shape),
                      p_pos.mean(axis=0) - p_neg.mean(axis=0))
        g_vis = g_hid = None
        if self.settings.learn_precision:
            if vis.name == "gaussian":
                g_vis = vis.precision * (0.5 * (v_neg * v_neg).mean(axis=0) - 0.5 * (v * v).mean(axis=0))
            if hid.name == "gaussian":
                second_pos = p_pos * p_pos + 1.0 / hid.precision
                second_neg = p_neg * p_neg + 1.0 / hid.precision
                g_hid = hid.precision * 0.5 * (second_neg.mean(axis=0) - second_pos.mean(axis=0))
        return grad, g_vis, g_hid

    def update(self, state: TrainState, rows: np.ndarray) -> None:
        s = self.settings
        lr = s.lr / (1.0 + s.lr_decay * state.epoch)
        rng = generator(s.seed, STREAM_SAMPLING, state.step)
        grad, g_vis, g_hid = self.gradient(state.params, rows, rng)
        p, vel = state.params, state.velocity
        vel.weights[...] = s.momentum * vel.weights + lr * (grad.weights - s.weight_decay * p.weights)
        vel.visible_bias[...] = s.momentum * vel.visible_bias + lr * grad.visible_bias
        vel.hidden_bias[...] = s.momentum * vel.hidden_bias + lr * grad.hidden_bias
        p.weights += vel.weights
        p.visible_bias += vel.visible_bias
        p.hidden_bias += vel.hidden_bias
        if g_vis is not None:
            self.visible_precision = self.visible_precision * np.exp(lr * g_vis)
        if g_hid is not None:
            self.hidden_precision = self.hidden_precision * np.exp(lr * g_hid)
        state.step += 1
        self._check_precisions(state)  # the next update cannot even build its layers from these

    def _diverged(self, epoch: int, what: str) -> EstimationFailedError:
        """The one-line error of a diverging run, with the remedy: for Gaussian visible units whose
        data are not standardized, --standardize first (the steps' scale follows the data's)."""
        hint = f"lower --lr (now {self.settings.lr:g})"
        if self.settings.visible_type == "gaussian" and not _standardized(self.train_data):
            hint = f"train on standardized data (--standardize) or {hint}"
        return EstimationFailedError(f"training diverged in epoch {epoch} ({what}); {hint}.")

    def _check_precisions(self, state: TrainState) -> None:
        for name, prec in (("visible", self.visible_precision), ("hidden", self.hidden_precision)):
            if prec is not None and not (np.all(np.isfinite(prec)) and np.all(prec > 0)):
                raise self._diverged(state.epoch + 1, f"the {name} precisions left (0, inf)")

    def check_finite(self, state: TrainState) -> None:
        p = state.params
        if not (np.isfinite(p.weights).all() and np.isfinite(p.visible_bias).all()
                and np.isfinite(p.hidden_bias).all()):
            raise self._diverged(state.epoch + 1, "weights became NaN or inf")
        self._check_precisions(state)
        if self.settings.visible_type == "gaussian" and self.settings.hidden_type == "gaussian":
            from ..estimators.exact_layers import gaussian_gaussian_problem

            if gaussian_gaussian_problem(self.model(state)):
                raise EstimationFailedError(
                    f"training left the normalisable region in epoch {state.epoch + 1}: the Gaussian-Gaussian "
                    f"model's joint precision matrix is no longer positive definite; lower --lr or raise "
                    f"--weight-decay."
                )
        if self.settings.visible_type == "gaussian":
            ratio = self._reconstruction_blowup(state)
            if not ratio <= MAX_RECONSTRUCTION_BLOWUP:
                size = "NaN or inf" if not np.isfinite(ratio) else f"{ratio:.3g}"
                raise self._diverged(state.epoch + 1, f"the squared reconstruction error is {size} times the "
                                                      f"data's mean square: the model's means left the data's range")

    def check_metrics(self, state: TrainState, record: dict[str, Any]) -> None:
        bad = [key for key in ("log_z", "log_likelihood", "val_log_likelihood", "recon_error", "val_recon_error")
               if key in record and not np.isfinite(record[key])]
        if bad:  # the epoch just done (its counter has moved on)
            raise self._diverged(state.epoch, f"the monitored {bad[0].replace('_', ' ')} is {record[bad[0]]}")

    def _reconstruction_blowup(self, state: TrainState) -> float:
        """Squared error of the mean-field reconstruction of at most DIVERGENCE_ROWS fixed training
        rows, over their mean square: O(1) for any model that describes the data, huge (or not
        finite) once the updates have run away."""
        rows = self.train_data[:DIVERGENCE_ROWS]
        scale = float(np.mean(np.sum(rows * rows, axis=1))) + 1e-300
        return LayeredMonitor.reconstruction_error(self.model(state), rows) / scale

    # -- monitoring ---------------------------------------------------------------------------------
    @property
    def monitor(self):
        if self._monitor is None:
            self._monitor = LayeredMonitor(self.train_data, self.validation_data, self.settings.monitor_rows,
                                           generator(self.settings.seed, STREAM_MONITOR), self.log_jacobian)
        return self._monitor


class LayeredMonitor:
    """Metrics of one epoch: ``recon_error`` (squared error of the mean-field reconstruction of the
    features, phi(v) -> E[phi(h)] -> E[phi(v)]), and, when exact ln Z is cheap (an enumerated layer of
    at most 2^EXACT_MONITOR_MAX_UNITS states, or a Gaussian-Gaussian model), ``log_z`` and the exact
    mean ``log_likelihood`` (otherwise the same with ln Z tracked along the run by SMC,
    :class:`fecli.training.tracking.LayeredLogZTracker`, and ``log_z_stderr``) (a density for Gaussian visible units, in the original data's units:
    ``log_jacobian`` of the --scale / --standardize transform added); ``val_`` the same on validation rows."""

    def __init__(self, train: np.ndarray, validation: np.ndarray | None, rows: int, rng: np.random.Generator,
                 log_jacobian: float = 0.0):
        self.train, self.validation = train, validation
        self.log_jacobian = log_jacobian
        self.train_subset = train if train.shape[0] <= rows else train[np.sort(rng.choice(train.shape[0], rows, False))]
        self.val_subset = None
        if validation is not None:
            self.val_subset = validation if validation.shape[0] <= rows else \
                validation[np.sort(rng.choice(validation.shape[0], rows, False))]

    @staticmethod
    def reconstruction_error(model: RBM, v: np.ndarray) -> float:
        h = model.hidden.mean(model.hidden_input(v))
        r = model.visible.mean(h @ model.weights2d.T)
        return float(np.mean(np.sum((model.visible.features(v) - r) ** 2, axis=1)))

    def __call__(self, model: RBM, tracked: Any = None) -> dict[str, float]:
        """The metrics of ``model``; ``tracked`` (the tracker's combined estimate, ``log_z`` and
        ``stderr``) supplies ln Z for models too large for exact ln Z."""
        from ..estimators.exact import log_partition

        out = {"recon_error": self.reconstruction_error(model, self.train_subset)}
        if self.val_subset is not None:
            out["val_recon_error"] = self.reconstruction_error(model, self.val_subset)
        if exact_monitorable(model):
            log_z = log_partition(model)
            out["log_z"] = log_z
        elif tracked is not None:
            log_z = tracked.log_z
            out["log_z"], out["log_z_stderr"] = log_z, tracked.stderr
        else:
            return out
        out["log_likelihood"] = float(np.mean(-model.free_energy(self.train))) - log_z + self.log_jacobian
        if self.validation is not None:
            out["val_log_likelihood"] = (float(np.mean(-model.free_energy(self.validation))) - log_z
                                         + self.log_jacobian)
        return out


def exact_monitorable(model: RBM) -> bool:
    """Whether the monitor computes ln Z exactly: an enumerated layer of at most
    2^EXACT_MONITOR_MAX_UNITS states (spin layers as their 0/1 equivalents), or closed form."""
    from ..estimators.exact_layers import plan
    from ..model import binary_equivalent

    p = plan(binary_equivalent(model)[0], "auto")
    return p.layer == "closed-form" or p.bits <= EXACT_MONITOR_MAX_UNITS + 1e-9


def make_trainer(data: np.ndarray, settings: TrainSettings, **kwargs: Any) -> Trainer:
    """The bernoulli trainer for bernoulli-bernoulli settings, the layered one otherwise."""
    return Trainer(data, settings, **kwargs) if settings.is_bernoulli else LayeredTrainer(data, settings, **kwargs)
