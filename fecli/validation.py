"""Option checks shared by every estimator: one place, one wording.

Each check returns the normalised value or raises :class:`~fecli.errors.InvalidOptionError`
with a message that names the option and says what arrived (scikit-learn style).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InvalidOptionError


def check_beta(beta: Any) -> float:
    """An inverse temperature: finite and > 0."""
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"beta must be a positive number, got {beta!r}.") from None
    if not (math.isfinite(beta) and beta > 0):
        raise InvalidOptionError(f"beta must be a finite number > 0, got {beta!r}.")
    return beta


def check_positive_int(name: str, value: Any) -> int:
    """An option that must be an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidOptionError(f"{name} must be an integer >= 1, got {value!r}.")
    if value < 1:
        raise InvalidOptionError(f"{name} must be an integer >= 1, got {value}.")
    return int(value)


def check_seed(seed: Any) -> int:
    """A seed: an integer >= 0 (None is handled by the caller: fresh entropy or a fixed default)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidOptionError(f"seed must be an integer >= 0, got {seed!r}.")
    return int(seed)
