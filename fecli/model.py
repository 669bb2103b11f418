"""The RBM type: two layers of units and the weights between them.

    E(v, h) = E_v(v) + E_h(h) - phi(v)^T W phi(h),      p_beta(v, h) = exp(-beta E(v, h)) / Z(beta),

with the unit types of :mod:`fecli.layers` (bernoulli, spin, gaussian, potts). For bernoulli
units (fecli's default) E_v(v) = -a.v, E_h(h) = -b.h and phi(x) = x, so

    E(v, h) = -a.v - b.h - v^T W h,      a = visible_bias, b = hidden_bias, W (nv, nh).

Summing out the hidden layer gives the clamped free energy, written once for every unit type
through the hidden layer's log-partition Gamma_h (its cumulant generating function):

    F_beta(v) = beta E_v(v) - sum_mu Gamma_h,mu(I_mu(v)),    I(v) = W^T phi(v),

(bernoulli: F_beta(v) = -beta a.v - sum_j softplus(beta (b_j + (v^T W)_j))), so that
p_beta(v) = exp(-F_beta(v)) / Z(beta). Everything here is float64.

Weights have the layers' axes in order: (nv, nh); a Potts visible layer with q states gives
(nv, q, nh). ``weights2d`` is the same array as a (v.dim, h.dim) matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .layers import HIDDEN_UNIT_TYPES, UNIT_TYPES, Bernoulli, Layer
from .numerics import sigmoid, softplus  # noqa: F401  (re-exported: fecli.model.softplus / sigmoid)

#: Unit types fecli understands (the file format's visible_type / hidden_type names).
SUPPORTED_UNIT_TYPES = UNIT_TYPES

__all__ = ["RBM", "binary_equivalent", "SUPPORTED_UNIT_TYPES", "HIDDEN_UNIT_TYPES", "softplus", "sigmoid"]


class RBM:
    """A Restricted Boltzmann Machine with any two layers of :mod:`fecli.layers`.

    Two ways to build one::

        RBM(visible_layer, hidden_layer, weights)          # any unit types
        RBM(weights, visible_bias, hidden_bias)            # bernoulli-bernoulli (fecli's default)

    Parameters
    ----------
    weights : array (nv, nh), or (nv, q, nh) for a Potts visible layer with q states.
    name : where the model came from (a file path), used to label results.
    training : metadata of the optional ``training`` group, kept verbatim.

    Raises ValueError when shapes do not match.
    """

    def __init__(self, *args: Any, name: str = "<memory>", training: dict[str, Any] | None = None, **kwargs: Any):
        if args and isinstance(args[0], Layer) or "visible" in kwargs:
            visible, hidden, weights = _bind(args, kwargs, ("visible", "hidden", "weights"))
        else:
            weights, visible_bias, hidden_bias = _bind(args, kwargs, ("weights", "visible_bias", "hidden_bias"))
            visible, hidden = Bernoulli(visible_bias), Bernoulli(hidden_bias)
        if not isinstance(visible, Layer) or not isinstance(hidden, Layer):
            raise ValueError("RBM(visible, hidden, weights) needs two layers from fecli.layers")
        self.visible: Layer = visible
        self.hidden: Layer = hidden
        self.weights = np.ascontiguousarray(weights, dtype=np.float64)
        self.name = name
        self.training = training
        expected = visible.weight_shape + hidden.weight_shape
        if self.weights.shape != expected:
            w = self.weights.shape
            if self.weights.ndim != len(expected):
                raise ValueError(f"weights must be {len(expected)}-D {_axes(visible, hidden)}, got shape {w}")
            nv = len(visible.weight_shape)
            if w[:nv] != visible.weight_shape:
                raise ValueError(f"visible_bias must have shape {w[:nv]}, got {visible.bias.shape}")
            raise ValueError(f"hidden_bias must have shape {w[nv:]}, got {hidden.bias.shape}")

    # -- parameters -------------------------------------------------------------------------------
    @property
    def visible_bias(self) -> np.ndarray:
        """Biases of the visible layer: (nv,), or (nv, q) for Potts units."""
        return self.visible.bias

    @property
    def hidden_bias(self) -> np.ndarray:
        return self.hidden.bias

    @property
    def weights2d(self) -> np.ndarray:
        """The weights as a (v.dim, h.dim) matrix (a view)."""
        return self.weights.reshape(self.visible.dim, self.hidden.dim)

    @property
    def n_visible(self) -> int:
        return self.visible.n

    @property
    def n_hidden(self) -> int:
        return self.hidden.n

    @property
    def unit_types(self) -> tuple[str, str]:
        """(visible_type, hidden_type)."""
        return self.visible.name, self.hidden.name

    @property
    def is_bernoulli(self) -> bool:
        """Both layers bernoulli (the kernels' native case)."""
        return self.visible.name == "bernoulli" and self.hidden.name == "bernoulli"

    @property
    def combination(self) -> str:
        """'visible-hidden' unit types, e.g. 'gaussian-bernoulli'."""
        return f"{self.visible.name}-{self.hidden.name}"

    def __repr__(self) -> str:
        return f"RBM({self.combination}, {self.n_visible}x{self.n_hidden}, name={self.name!r})"

    # -- structure ---------------------------------------------------------------------------------
    def transpose(self) -> "RBM":
        """The same distribution with the layers swapped (visible <-> hidden); Z is unchanged."""
        w = self.weights2d.T.reshape(self.hidden.weight_shape + self.visible.weight_shape)
        return RBM(self.hidden, self.visible, w, name=self.name)

    def replace(self, visible: Layer | None = None, hidden: Layer | None = None,
                weights: np.ndarray | None = None) -> "RBM":
        """A copy with some parts replaced (name and training metadata kept)."""
        return RBM(visible if visible is not None else self.visible, hidden if hidden is not None else self.hidden,
                   self.weights if weights is None else weights, name=self.name, training=self.training)

    # -- energies ---------------------------------------------------------------------------------
    def hidden_input(self, v: np.ndarray) -> np.ndarray:
        """I(v) = W^T phi(v): the field the visible states (rows) send to the hidden layer."""
        return self.visible.project(v, self.weights2d)

    def energy(self, v: np.ndarray, h: np.ndarray) -> np.ndarray:
        """E(v, h) = E_v(v) + E_h(h) - phi(v)^T W phi(h) for rows of v and h."""
        coupling = np.einsum("...j,...j->...", self.hidden_input(v), self.hidden.features(h))
        return self.visible.energy(v) + self.hidden.energy(h) - coupling

    def free_energy(self, v: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """F_beta(v) = beta E_v(v) - Gamma_h,beta(W^T phi(v)) (hidden layer summed out; nats)."""
        return self.visible.energy(v, beta) - self.hidden.cgf(self.hidden_input(v), beta)


def _bind(args: tuple, kwargs: dict, names: tuple[str, str, str]) -> list:
    if len(args) > 3:
        raise TypeError(f"RBM takes 3 arguments ({', '.join(names)}), got {len(args)}")
    values = list(args) + [None] * (3 - len(args))
    for i, key in enumerate(names):
        if key in kwargs:
            if i < len(args):
                raise TypeError(f"RBM got two values for {key!r}")
            values[i] = kwargs.pop(key)
    if kwargs:
        raise TypeError(f"RBM got unexpected argument(s) {', '.join(kwargs)}")
    missing = [key for key, value in zip(names, values) if value is None]
    if missing:
        raise TypeError(f"RBM is missing {', '.join(missing)}")
    return values


def _axes(visible: Layer, hidden: Layer) -> str:
    v = "(n_visible, q, " if visible.name == "potts" else "(n_visible, "
    h = "n_hidden, q)" if hidden.name == "potts" else "n_hidden)"
    return v + h


def binary_equivalent(model: RBM) -> tuple[RBM, float]:
    """The model with every spin layer rewritten as a 0/1 layer, and the constant c with

        ln Z_model(beta) = ln Z_equivalent(beta) + beta c.

    With x = 2y - 1 (y in {0, 1}) for a spin layer with bias theta: theta.x = 2 theta.y - sum theta,
    and phi(x)^T W phi(o) = 2 y^T W phi(o) - 1^T W phi(o). So the 0/1 layer has bias 2 theta, its
    weights double, the other layer's linear bias gains -1^T W (over the spin units), and
    c gains -sum theta. For a spin-spin model this gives W' = 4W, a' = 2a - 2 W 1,
    b' = 2b - 2 W^T 1 and c = 1^T W 1 - sum a - sum b. The map is a bijection of states with
    E(x) = E'(y) - c, so probabilities (and free-energy differences) are unchanged. A model
    without spin layers is returned as it is, with c = 0.
    """
    offset = 0.0
    vis, hid = model.visible, model.hidden
    w = model.weights2d
    if vis.name == "spin":
        hid = hid.replace(bias=_shift_bias(hid, -w.sum(axis=0)))
        offset -= float(vis.bias.sum())
        vis, w = Bernoulli(2.0 * vis.bias), 2.0 * w
    if hid.name == "spin":
        vis = vis.replace(bias=_shift_bias(vis, -w.sum(axis=1)))
        offset -= float(hid.bias.sum())
        hid, w = Bernoulli(2.0 * hid.bias), 2.0 * w
    if vis is model.visible and hid is model.hidden:
        return model, 0.0
    mapped = RBM(vis, hid, w.reshape(vis.weight_shape + hid.weight_shape), name=model.name, training=model.training)
    return mapped, offset


def _shift_bias(layer: Layer, shift: np.ndarray) -> np.ndarray:
    """layer.bias + shift, with shift given per feature (reshaped to the bias for Potts units)."""
    return layer.bias + shift.reshape(layer.bias.shape)


def spin_to_binary(x: np.ndarray) -> np.ndarray:
    """y = (x + 1) / 2: +-1 spins as 0/1 values."""
    return 0.5 * (np.asarray(x, dtype=np.float64) + 1.0)
