"""Unit types as layers: one module per type, one protocol (:class:`fecli.layers.base.Layer`).

=========  ============  ============================================  ====================
name       values        energy E(x)                                  parameters
=========  ============  ============================================  ====================
bernoulli  {0, 1}        -theta x                                      bias (n,)
spin       {-1, +1}      -theta x                                      bias (n,)
gaussian   real          gamma x^2 / 2 - theta x                       bias, precision (n,)
potts      {0 .. q-1}    -theta(x)                                     bias (n, q)
=========  ============  ============================================  ====================

The names are the model file's ``visible_type`` / ``hidden_type`` values.
"""

from __future__ import annotations

from .base import Layer
from .bernoulli import Bernoulli
from .gaussian import Gaussian
from .potts import Potts
from .spin import Spin

#: Unit types by their file-format name.
LAYER_TYPES: dict[str, type[Layer]] = {cls.name: cls for cls in (Bernoulli, Spin, Gaussian, Potts)}
UNIT_TYPES = tuple(LAYER_TYPES)
#: Unit types a model file may give its hidden layer (a Potts hidden layer is not part of the format).
HIDDEN_UNIT_TYPES = ("bernoulli", "spin", "gaussian")

__all__ = ["Layer", "Bernoulli", "Spin", "Gaussian", "Potts", "LAYER_TYPES", "UNIT_TYPES", "HIDDEN_UNIT_TYPES",
           "make_layer"]


def make_layer(unit_type: str, bias, precision=None) -> Layer:
    """A layer of ``unit_type`` with the given parameters (precision for gaussian units only)."""
    try:
        cls = LAYER_TYPES[unit_type]
    except KeyError:
        raise ValueError(f"unknown unit type {unit_type!r}; valid types are: {', '.join(UNIT_TYPES)}") from None
    if cls is Gaussian:
        return cls(bias, precision)
    if precision is not None:
        raise ValueError(f"{unit_type} units have no precision")
    return cls(bias)
