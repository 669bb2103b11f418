"""Training RBMs from data: CD-k and PCD with Numba kernels, monitoring, exact resume.

Library use::

    from fecli.data import load_data
    from fecli.training import train
    outcome = train(load_data("digits.npy"), hidden=16, epochs=20, seed=1, output="m.h5")
    outcome.history["log_likelihood"]     # exact average log-likelihood per monitored epoch

See :mod:`fecli.training.trainer` for the update, :mod:`fecli.training.negative` for
the negative phases (the piece a new method such as TAP plugs into),
:mod:`fecli.training.monitor` for the metrics and :mod:`fecli.training.checkpoint`
for the ``training`` group of the model file.
"""

from __future__ import annotations

from .checkpoint import stored_unit_types
from .interrupt import StopOnSigint
from .negative import NEGATIVE_PHASES
from .run import check_output, file_digest, make_settings, resume, train
from .settings import EXACT_MONITOR_MAX_UNITS, METHODS, TrainSettings
from .trainer import Trainer, TrainingOutcome

__all__ = [
    "EXACT_MONITOR_MAX_UNITS",
    "METHODS",
    "NEGATIVE_PHASES",
    "StopOnSigint",
    "TrainSettings",
    "Trainer",
    "TrainingOutcome",
    "check_output",
    "file_digest",
    "make_settings",
    "resume",
    "stored_unit_types",
    "train",
]
