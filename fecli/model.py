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


@dataclass
class RBM:
    """A Bernoulli-Bernoulli Restricted Boltzmann Machine.

    Parameters
    ----------
    weights : array (n_visible, n_hidden)
    visible_bias : array (n_visible,)
    hidden_bias : array (n_hidden,)
    name : where the model came from (a file path), used to label results.
    training : metadata of the optional ``training`` group, kept verbatim.
    """

    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    name: str = "<memory>"
    training: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.weights = np.ascontiguousarray(self.weights, dtype=np.float64)
        self.visible_bias = np.ascontiguousarray(self.visible_bias, dtype=np.float64)
        self.hidden_bias = np.ascontiguousarray(self.hidden_bias, dtype=np.float64)
        if self.weights.ndim != 2:
            raise ValueError(f"weights must be 2-D (n_visible, n_hidden), got shape {self.weights.shape}")
        nv, nh = self.weights.shape
        if self.visible_bias.shape != (nv,):
            raise ValueError(f"visible_bias must have shape ({nv},), got {self.visible_bias.shape}")
        if self.hidden_bias.shape != (nh,):
            raise ValueError(f"hidden_bias must have shape ({nh},), got {self.hidden_bias.shape}")

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
