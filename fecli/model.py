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

__all__ = ["RBM", "binary_equivalent", "check_layers", "check_parameters", "SUPPORTED_UNIT_TYPES",
           "HIDDEN_UNIT_TYPES", "softplus", "sigmoid"]


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


class RBM:
    """A Restricted Boltzmann Machine with any two layers of :mod:`fecli.layers`.

    Two ways to build one::

        RBM(visible_layer, hidden_layer, weights)          # any unit types
        RBM(weights, visible_bias, hidden_bias)            # bernoulli-bernoulli (fecli's default)

    Parameters
    ----------
    weights : array (nv, nh), or (nv, q, nh) for a Potts visible layer with q states.
    visible_bias, hidden_bias : the bernoulli form's biases, (nv,) and (nh,).
        Finite real values (stored as float64); anything else raises
        :class:`~fecli.errors.InvalidModelError` (a ValueError; see :func:`check_parameters`).
    name : where the model came from (a file path), used to label results.
    training : metadata of the optional ``training`` group, kept verbatim.
    """

    def __init__(self, *args: Any, name: str = "<memory>", training: dict[str, Any] | None = None, **kwargs: Any):
        where = f"model '{name}'"
        if args and isinstance(args[0], Layer) or "visible" in kwargs:
            visible, hidden, weights = _bind(args, kwargs, ("visible", "hidden", "weights"))
            if not isinstance(visible, Layer) or not isinstance(hidden, Layer):
                raise ValueError("RBM(visible, hidden, weights) needs two layers from fecli.layers")
            weights = check_layers(visible, hidden, weights, where)
        else:
            weights, visible_bias, hidden_bias = _bind(args, kwargs, ("weights", "visible_bias", "hidden_bias"))
            weights, visible_bias, hidden_bias = check_parameters(weights, visible_bias, hidden_bias, where)
            visible, hidden = Bernoulli(visible_bias), Bernoulli(hidden_bias)
        self.visible: Layer = visible
        self.hidden: Layer = hidden
        self.weights = weights
        self.name = name
        self.training = training

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


def check_layers(visible: Layer, hidden: Layer, weights: Any, where: str,
                 error: type[Exception] | None = None) -> np.ndarray:
    """:func:`check_parameters` for any layers: returns the weights as contiguous float64 after
    checking their shape against the layers' (``_axes``) and that every parameter (weights,
    biases, precisions) is finite; raises ``error`` (default InvalidModelError) with one sentence
    that starts with ``where``."""
    from .errors import InvalidModelError

    error = error or InvalidModelError
    try:
        w = np.ascontiguousarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise error(f"{where}: 'weights' is not an array of real numbers ({exc}).") from None
    expected = visible.weight_shape + hidden.weight_shape
    if visible.n == 0 or hidden.n == 0:
        raise error(f"{where}: 'weights' has shape {w.shape}; both layers need at least one unit.")
    if w.shape != expected:
        if w.ndim != len(expected):
            raise error(f"{where}: 'weights' must be {len(expected)}-D {_axes(visible, hidden)}, but has shape "
                        f"{w.shape}.")
        nv = len(visible.weight_shape)
        if w.shape[:nv] != visible.weight_shape:
            raise error(f"{where}: 'visible_bias' has shape {visible.bias.shape}, but 'weights' {w.shape} needs "
                        f"{w.shape[:nv]}.")
        raise error(f"{where}: 'hidden_bias' has shape {hidden.bias.shape}, but 'weights' {w.shape} needs "
                    f"{w.shape[nv:]}.")
    arrays = {"weights": w}
    for side, layer in (("visible", visible), ("hidden", hidden)):
        for role, value in layer.parameters().items():
            arrays[f"{side}_{role}"] = value
    for name, x in arrays.items():
        if not np.isfinite(x).all():
            bad = int(x.size - np.count_nonzero(np.isfinite(x)))
            raise error(f"{where}: '{name}' contains {bad} non-finite value(s) (NaN or inf).")
    return w


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
