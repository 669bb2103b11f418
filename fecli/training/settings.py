"""Training settings: one dataclass, validated once at the boundary.

Field names are the command-line option names (``batch_size`` is ``--batch-size``), so
error messages name the option the user typed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import InvalidOptionError

DTYPES = ("float32", "float64")
#: Negative-phase methods this trainer implements (see :mod:`fecli.training.negative`).
METHODS = ("cd", "pcd", "tap2", "tap3")
#: The EMF (TAP) methods: their negative phase is deterministic mean field, not Gibbs sampling.
TAP_METHODS = ("tap2", "tap3")
#: Defaults of the TAP fixed-point iteration of EMF training (used when the method is tap2/tap3).
DEFAULT_TAP_TOL = 1e-5
DEFAULT_TAP_MAX_ITER = 500
#: Exact log-likelihood is monitored when the smaller layer has at most this many units.
EXACT_MONITOR_MAX_UNITS = 20


@dataclass
class TrainSettings:
    """Everything that determines a training run (with the data and the seed).

    hidden : number of hidden units.
    method : 'cd' (contrastive divergence, chains start at the data), 'pcd'
        (persistent chains, one per example of a batch, kept across batches), or 'tap2' /
        'tap3' (EMF: persistent TAP magnetisations, Gabrie, Tramel & Krzakala 2015).
    k : Gibbs steps per parameter update (cd/pcd only).
    tap_tol, tap_max_iter : the TAP fixed-point iteration of tap2/tap3 at each update: stop
        when the stationarity residual is below tap_tol, at most tap_max_iter sweeps
        (None for cd/pcd; tap2/tap3 fill in DEFAULT_TAP_TOL, DEFAULT_TAP_MAX_ITER).
    epochs : passes over the training data (the total, also when resuming).
    batch_size : examples per update (and persistent chains for PCD).
    lr : learning rate; lr_decay : epoch e (from 0) uses lr / (1 + lr_decay * e).
    momentum : classical momentum in [0, 1).
    weight_decay : L2 penalty on the weights (not the biases).
    seed : seeds initialisation, shuffling, sampling and the validation split.
    dtype : arithmetic of training ('float32' or 'float64'); the saved model is float64.
    validation : fraction of the rows held out for validation (0 = none).
    monitor_every : compute metrics every N epochs and after the last (0 = never).
    monitor_rows : rows used for reconstruction error and pseudo-log-likelihood.
    checkpoint_every : write the output every N epochs (0 = only at the end or on interrupt).
    visible_type, hidden_type : unit types of the layers (fecli.layers: bernoulli, spin, gaussian,
        potts; a Potts layer is visible only). Other types than bernoulli-bernoulli train with
        cd or pcd on the generic trainer (fecli.training.layered), in float64.
    states : number of states q of a Potts visible layer (None: from the data).
    learn_precision : learn the precisions of Gaussian layers (their log, by plain gradient
        steps); otherwise they stay at their initial values (visible: 1 / the data's variance).
    snapshots : keep this many parameter snapshots (update 0, then log-spaced updates up to the
        last) in the model file's ``snapshots`` group, for ``fecli trajectory`` (0 = none, else >= 2).
    """

    hidden: int = 64
    method: str = "pcd"
    k: int = 1
    epochs: int = 10
    batch_size: int = 20
    lr: float = 0.05
    lr_decay: float = 0.1
    momentum: float = 0.5
    weight_decay: float = 0.0
    seed: int | None = None
    dtype: str = "float32"
    validation: float = 0.0
    monitor_every: int = 1
    monitor_rows: int = 1000
    checkpoint_every: int = 0
    tap_tol: float | None = None
    tap_max_iter: int | None = None
    visible_type: str = "bernoulli"
    hidden_type: str = "bernoulli"
    states: int | None = None
    learn_precision: bool = False
    snapshots: int = 0

    def __post_init__(self) -> None:
        _int_at_least(self, "hidden", 1)
        self._check_units()
        if self.method not in METHODS:
            raise InvalidOptionError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}.")
        _int_at_least(self, "k", 1)
        if self.method in TAP_METHODS:
            if self.k != 1:
                raise InvalidOptionError(
                    f"--k (Gibbs steps) applies to cd and pcd; --method {self.method} iterates TAP "
                    f"equations instead (see --tap-max-iter), got --k {self.k}."
                )
            if self.tap_tol is None:
                self.tap_tol = DEFAULT_TAP_TOL
            if self.tap_max_iter is None:
                self.tap_max_iter = DEFAULT_TAP_MAX_ITER
            _number(self, "tap_tol", low=0.0, low_open=True)
            _int_at_least(self, "tap_max_iter", 1)
        else:
            given = [_flag(n) for n in ("tap_tol", "tap_max_iter") if getattr(self, n) is not None]
            if given:
                raise InvalidOptionError(
                    f"{' and '.join(given)} apply to --method tap2 and tap3, not {self.method}."
                )
        _int_at_least(self, "epochs", 1)
        _int_at_least(self, "batch_size", 1)
        _number(self, "lr", low=0.0, low_open=True)
        _number(self, "lr_decay", low=0.0)
        _number(self, "momentum", low=0.0, high=1.0)
        _number(self, "weight_decay", low=0.0)
        if self.seed is not None:
            _int_at_least(self, "seed", 0)
        if self.dtype not in DTYPES:
            raise InvalidOptionError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}.")
        _number(self, "validation", low=0.0, high=1.0)
        _int_at_least(self, "monitor_every", 0)
        _int_at_least(self, "monitor_rows", 1)
        _int_at_least(self, "checkpoint_every", 0)
        _int_at_least(self, "snapshots", 0)
        if self.snapshots == 1:
            raise InvalidOptionError(
                "--snapshots must be 0 (none) or at least 2 (the initial model and the final one), got 1."
            )

    @property
    def is_bernoulli(self) -> bool:
        return self.visible_type == "bernoulli" and self.hidden_type == "bernoulli"

    def _check_units(self) -> None:
        from ..layers import HIDDEN_UNIT_TYPES, UNIT_TYPES

        if self.visible_type not in UNIT_TYPES:
            raise InvalidOptionError(f"--visible-type must be one of {', '.join(UNIT_TYPES)}, "
                                     f"got {self.visible_type!r}.")
        if self.hidden_type not in HIDDEN_UNIT_TYPES:
            raise InvalidOptionError(f"--hidden-type must be one of {', '.join(HIDDEN_UNIT_TYPES)}, "
                                     f"got {self.hidden_type!r}.")
        if self.states is not None:
            if self.visible_type != "potts":
                raise InvalidOptionError(f"--states applies to potts visible units, not {self.visible_type}.")
            _int_at_least(self, "states", 2)
        self.learn_precision = bool(_plain(self.learn_precision))
        if self.learn_precision and "gaussian" not in (self.visible_type, self.hidden_type):
            raise InvalidOptionError("--learn-precision applies to gaussian units; neither layer is gaussian.")
        if not self.is_bernoulli:
            if self.method in TAP_METHODS:
                raise InvalidOptionError(f"--method {self.method} (EMF) trains bernoulli-bernoulli models; "
                                         f"use cd or pcd for {self.visible_type}-{self.hidden_type} units.")
            self.dtype = "float64"  # the generic trainer computes in float64

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainSettings":
        """Settings from a stored ``settings`` group (unknown keys ignored, missing ones default)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: _plain(v) for k, v in values.items() if k in names})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _plain(value: Any) -> Any:
    """numpy scalars (as read back from HDF5 attributes) -> Python scalars."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _int_at_least(obj: Any, name: str, low: int) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif hasattr(value, "dtype") and getattr(value, "dtype").kind in "iu":
            value = int(value)
        else:
            raise InvalidOptionError(f"{_flag(name)} must be an integer >= {low}, got {value!r}.")
    if value < low:
        raise InvalidOptionError(f"{_flag(name)} must be an integer >= {low}, got {value}.")
    setattr(obj, name, value)


def _number(obj: Any, name: str, *, low: float, high: float | None = None, low_open: bool = False) -> None:
    value = getattr(obj, name)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"{_flag(name)} must be a number, got {value!r}.") from None
    rule = (f"> {low:g}" if low_open else f">= {low:g}") if high is None else (
        f"in [{low:g}, {high:g})" if not low_open else f"in ({low:g}, {high:g})")
    bad = not math.isfinite(value) or value < low or (low_open and value == low) or (high is not None and value >= high)
    if bad:
        raise InvalidOptionError(f"{_flag(name)} must be a finite number {rule}, got {value:g}.")
    setattr(obj, name, value)
