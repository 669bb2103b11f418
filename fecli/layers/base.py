"""The layer protocol: what every unit type answers (as in cossio's RestrictedBoltzmannMachines.jl).

A layer of n units has an energy E(x) = sum_i E_i(x_i) and a feature map phi(x) of dimension
``dim`` (phi(x) = x for scalar units; the one-hot code of the states for Potts units, dim = n q).
Two layers interact through phi(v)^T W phi(h), W of shape (v.dim, h.dim), so that

    E(v, h) = E_v(v) + E_h(h) - phi(v)^T W phi(h),     p_beta(v, h) ~ exp(-beta E(v, h)).

Given the input field I = W phi(h) (a row of ``dim`` numbers, no bias) a layer's units are
independent, and its log-partition at inverse temperature beta (the cumulant generating function)

    Gamma_beta(I) = ln sum_x exp(-beta E(x) + beta I.phi(x))    (an integral for real units)

gives everything else: the mean of phi(x) is dGamma/d(beta I), its variance the second
derivative, and the free energy of the other layer is F(v) = beta E_v(v) - Gamma_h,beta(W^T phi(v)).

Mean field needs the Legendre transform of Gamma: for a factorized q with feature means m (and,
for real units, variance c), ``neg_conjugate(m, c) = max_q {E_q[-beta E] + H(q)}``; the naive
mean-field bound is then sum over both layers of neg_conjugate + m_v^T W m_h (Gibbs, exact for
every m). ``tilted(B, A)`` gives the mean and variance of q(x) ~ exp(-beta E(x) + B.phi(x) - A x^2 / 2),
the building block of the TAP (Plefka) fixed points of Tramel, Gabrie, Manoel, Caltagirone &
Krzakala (Phys. Rev. X 8, 041006, 2018).

Every array argument has the units (or features) on its last axis; leading axes are rows.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..errors import DataFileError


class Layer:
    """Base class of the unit types (bernoulli, spin, gaussian, potts); see the module docstring."""

    #: The file format's name of the unit type (``visible_type`` / ``hidden_type``).
    name: ClassVar[str] = ""
    #: Whether a unit has finitely many states (then ``values`` lists them).
    finite: ClassVar[bool] = True
    #: The values one unit takes (finite layers).
    values: np.ndarray

    def __init__(self, bias: np.ndarray):
        self.bias = np.ascontiguousarray(bias, dtype=np.float64)
        if self.bias.ndim != 1:
            raise ValueError(f"a {self.name} layer's bias must be 1-D (n_units,), got shape {self.bias.shape}")

    # -- sizes and parameters ------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of units."""
        return self.bias.shape[0]

    @property
    def dim(self) -> int:
        """Dimension of the feature vector phi(x) (the layer's side of the weight matrix)."""
        return self.n

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """This layer's axes in the model's weight array: (n,) or (n, q) for Potts."""
        return (self.n,)

    @property
    def n_states(self) -> int:
        """States of one unit (finite layers)."""
        return len(self.values)

    def log_states(self) -> float:
        """ln of the number of joint states of the layer (inf for real units)."""
        return self.n * float(np.log(self.n_states)) if self.finite else float("inf")

    def parameters(self) -> dict[str, np.ndarray]:
        """The layer's parameters by their file-format role: 'bias' and, for Gaussian units, 'precision'."""
        return {"bias": self.bias}

    def replace(self, **params: np.ndarray) -> "Layer":
        """A layer of the same type with some parameters replaced (e.g. ``bias=...``)."""
        return type(self)(**{**self.parameters(), **params})

    def scaled(self, beta: float) -> "Layer":
        """The layer whose energy is beta times this one's (every parameter times beta)."""
        return type(self)(**{k: beta * v for k, v in self.parameters().items()})

    def describe(self) -> dict[str, Any]:
        """Summary for ``fecli info``."""
        return {"type": self.name, "units": self.n}

    # -- features ------------------------------------------------------------------------------
    def features(self, x: np.ndarray) -> np.ndarray:
        """phi(x): (..., dim) float64."""
        return np.asarray(x, dtype=np.float64)

    def project(self, x: np.ndarray, w2d: np.ndarray) -> np.ndarray:
        """phi(x) @ w2d: the input field that states x (rows) send to the other layer."""
        return self.features(x) @ w2d

    # -- energy and cgf (overridden per type) ---------------------------------------------------
    def energy(self, x: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """beta E(x) summed over units, per row."""
        raise NotImplementedError

    def cgf(self, field: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """Gamma_beta(I) summed over units, per row (field: (..., dim), without the bias)."""
        raise NotImplementedError

    def mean(self, field: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """E[phi(x)] given the field: (..., dim)."""
        return self.tilted(beta * np.asarray(field, dtype=np.float64), 0.0, beta)[0]

    def var(self, field: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """Var[phi(x)_k] per feature given the field: (..., dim)."""
        return self.tilted(beta * np.asarray(field, dtype=np.float64), 0.0, beta)[1]

    def sample(self, field: np.ndarray, rng: np.random.Generator, beta: float = 1.0) -> np.ndarray:
        """Independent draws x ~ p(x | field) at beta: (..., n) in the layer's values (float64)."""
        raise NotImplementedError

    # -- finite layers: enumeration -------------------------------------------------------------
    def state_columns(self, w2d: np.ndarray) -> np.ndarray:
        """(n, n_states, w2d.shape[1]): the field unit i in state s sends through w2d."""
        return self.values[None, :, None] * w2d[:, None, :]

    def state_neg_energies(self) -> np.ndarray:
        """(n, n_states): -E_i(s), unit i in state s (beta = 1)."""
        return self.bias[:, None] * self.values[None, :]

    def states_from_digits(self, digits: np.ndarray) -> np.ndarray:
        """Unit values from state indices 0..n_states-1 (finite layers)."""
        return self.values[np.asarray(digits, dtype=np.intp)]

    # -- mean field ------------------------------------------------------------------------------
    def neg_conjugate(self, m: np.ndarray, var: np.ndarray | None = None, beta: float = 1.0) -> np.ndarray:
        """max over factorized q with feature means m (and variance var, real units) of
        E_q[-beta E] + H(q), summed over units, per row: -Gamma*(m), the Legendre transform."""
        raise NotImplementedError

    def tilted(self, b: np.ndarray, a: np.ndarray | float, beta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(mean, variance) of phi(x) under q(x) ~ exp(-beta E(x) + b.phi(x) - a x^2 / 2), per unit.

        ``b`` (..., dim) and ``a`` (broadcastable; for Potts units one value per state) are
        already multiplied by beta where they come from couplings.
        """
        raise NotImplementedError

    def natural(self, m: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """The total linear coefficient lambda of the factorized q(x) ~ exp(lambda.phi(x) [- beta
        gamma x^2 / 2]) whose feature means are m (the inverse of ``tilted`` at a = 0)."""
        raise NotImplementedError

    def moment_variance(self, m: np.ndarray) -> np.ndarray | None:
        """Variance of phi(x) implied by its mean m (finite units); None for real units."""
        raise NotImplementedError

    def log_prob_factorized(self, x: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """ln q(x) of the factorized distribution with natural parameters lam (and, for real units,
        this layer's precision), summed over units, per row."""
        raise NotImplementedError

    # -- data ------------------------------------------------------------------------------------
    def check_data(self, x: np.ndarray, where: str) -> np.ndarray:
        """Validate rows of unit values for this layer (one column per unit) and return them as
        float64; raise :class:`~fecli.errors.DataFileError` with one clear sentence otherwise."""
        raise NotImplementedError

    def _check_width(self, x: np.ndarray, where: str) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise DataFileError(f"{where} holds {x.dtype} values; numeric data is required.")
        if x.ndim != 2:
            raise DataFileError(f"{where} has shape {x.shape}; a 2-D array (examples x units) is required.")
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise DataFileError(f"{where} contains NaN or inf values.")
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n})"

