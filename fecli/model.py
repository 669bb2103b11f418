"""The RBM type and its energies.

Conventions (fixed for all of fecli): units v in {0,1}^nv and h in {0,1}^nh,

    E(v, h) = -a.v - b.h - v^T W h,        W of shape (nv, nh),
    p_beta(v, h) = exp(-beta E(v, h)) / Z(beta),

with ``a = visible_bias`` and ``b = hidden_bias``. Summing out the hidden layer
gives the clamped free energy

    F_beta(v) = -beta a.v - sum_j softplus(beta (b_j + (v^T W)_j)),

so that p_beta(v) = exp(-F_beta(v)) / Z(beta). Everything here is float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Unit types fecli understands today.
SUPPORTED_UNIT_TYPES = ("bernoulli",)
#: Names reserved by the file format for later versions; refused until supported.
RESERVED_UNIT_TYPES = ("spin", "gaussian")


def softplus(x: np.ndarray) -> np.ndarray:
    """softplus(x) = ln(1 + e^x), computed as max(x, 0) + log1p(exp(-|x|)) (no overflow)."""
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + e^-x), stable for large |x|."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def check_parameters(weights: Any, visible_bias: Any, hidden_bias: Any, where: str,
                     error: type[Exception] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one model check, used by the RBM constructor and by every reader and writer.

    Returns the three arrays as contiguous float64: weights (nv, nh), visible_bias (nv,),
    hidden_bias (nh,), both layers with at least one unit, every value finite. Otherwise
    raises ``error`` (default :class:`~fecli.errors.InvalidModelError`) with one sentence
    that starts with ``where`` (e.g. "model file 'm.h5'") and names the array.
    """
    from .errors import InvalidModelError

    error = error or InvalidModelError
    arrays = {}
    for name, value in (("weights", weights), ("visible_bias", visible_bias), ("hidden_bias", hidden_bias)):
        try:
            arrays[name] = np.ascontiguousarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise error(f"{where}: '{name}' is not an array of real numbers ({exc}).") from None
    w, a, b = arrays["weights"], arrays["visible_bias"], arrays["hidden_bias"]
    if w.ndim != 2:
        raise error(f"{where}: 'weights' must be 2-D (n_visible, n_hidden), but has shape {w.shape}.")
    nv, nh = w.shape
    if nv == 0 or nh == 0:
        raise error(f"{where}: 'weights' has shape {w.shape}; both layers need at least one unit.")
    if a.shape != (nv,):
        raise error(f"{where}: 'visible_bias' has shape {a.shape}, but 'weights' {w.shape} needs ({nv},).")
    if b.shape != (nh,):
        raise error(f"{where}: 'hidden_bias' has shape {b.shape}, but 'weights' {w.shape} needs ({nh},).")
    for name, x in arrays.items():
        if not np.isfinite(x).all():
            bad = int(x.size - np.count_nonzero(np.isfinite(x)))
            raise error(f"{where}: '{name}' contains {bad} non-finite value(s) (NaN or inf).")
    return w, a, b


@dataclass
class RBM:
    """A Bernoulli-Bernoulli Restricted Boltzmann Machine.

    Parameters
    ----------
    weights : array (n_visible, n_hidden)
    visible_bias : array (n_visible,)
    hidden_bias : array (n_hidden,)
        Finite real values (stored as float64); anything else raises
        :class:`~fecli.errors.InvalidModelError` (see :func:`check_parameters`).
    name : where the model came from (a file path), used to label results.
    training : metadata of the optional ``training`` group, kept verbatim.
    """

    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    name: str = "<memory>"
    training: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.weights, self.visible_bias, self.hidden_bias = check_parameters(
            self.weights, self.visible_bias, self.hidden_bias, f"model '{self.name}'")

    @property
    def n_visible(self) -> int:
        return self.weights.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.weights.shape[1]

    def transpose(self) -> "RBM":
        """The same distribution with the layers swapped (W -> W^T, a <-> b); Z is unchanged."""
        return RBM(self.weights.T, self.hidden_bias, self.visible_bias, name=self.name)

    def energy(self, v: np.ndarray, h: np.ndarray) -> np.ndarray:
        """E(v, h) = -a.v - b.h - v^T W h for rows of v and h."""
        v = np.asarray(v, dtype=np.float64)
        h = np.asarray(h, dtype=np.float64)
        return -(v @ self.visible_bias) - (h @ self.hidden_bias) - np.einsum("...i,ij,...j->...", v, self.weights, h)

    def free_energy(self, v: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """Clamped free energy F_beta(v) = -beta a.v - sum_j softplus(beta (b_j + (v^T W)_j))."""
        v = np.asarray(v, dtype=np.float64)
        return -beta * (v @ self.visible_bias) - softplus(beta * (v @ self.weights + self.hidden_bias)).sum(axis=-1)
