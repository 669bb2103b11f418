"""Which unit-type combinations each estimator supports, and the dispatch around every estimator.

Every registered method declares its combinations of (visible_type, hidden_type) in the registry
(:mod:`fecli.estimators`). :func:`dispatching` wraps the method's function so that, for every
caller (the library's ``estimate``, the CLI, ``compare --budget``):

1. a combination the method does not support is refused with one line naming it;
2. spin layers are rewritten as 0/1 layers (unless the method declares ``binary_map=False``) (:func:`fecli.model.binary_equivalent`: the same
   distribution, ln Z(beta) = ln Z'(beta) + beta c), so the bernoulli kernels serve spin models
   (the ``data`` option, +-1 rows, is mapped to 0/1 rows the same way), and the result is shifted
   back: ln Z, its interval, and the ln Z-valued diagnostics gain beta c; magnetisations in the
   diagnostics are reported in spin units (2x - 1);
3. a model that is still not bernoulli-bernoulli (Gaussian or Potts layers) goes to the method's
   ``layered`` implementation when it names one (same options), else to the method itself.
"""

from __future__ import annotations

import functools
from itertools import product
from typing import Any, Callable

from ..errors import RefusedError

Combination = tuple[str, str]

#: The unit types' names (fecli.layers.UNIT_TYPES / HIDDEN_UNIT_TYPES; repeated here so that the
#: registry, read by ``fecli --help``, does not import numpy; a test checks they agree).
UNIT_TYPES = ("bernoulli", "spin", "gaussian", "potts")
HIDDEN_UNIT_TYPES = ("bernoulli", "spin", "gaussian")

#: Every combination the file format allows (visible: 4 types, hidden: 3).
ALL_UNITS: frozenset[Combination] = frozenset(product(UNIT_TYPES, HIDDEN_UNIT_TYPES))
#: Models whose layers are bernoulli or spin (0/1 after the spin map).
BINARY_UNITS: frozenset[Combination] = frozenset(product(("bernoulli", "spin"), ("bernoulli", "spin")))

#: Bernoulli-bernoulli models only (e.g. training snapshots, kept for those models alone).
BERNOULLI_UNITS: frozenset[Combination] = frozenset({("bernoulli", "bernoulli")})

#: Diagnostics that hold a value of ln Z (shifted with it).
def describe_units(units: frozenset[Combination]) -> str:
    """Short text for help and refusals: 'every combination', or the layers allowed."""
    if units == ALL_UNITS:
        return "every combination of unit types"
    if units == BINARY_UNITS:
        return "bernoulli and spin layers"
    if units == BERNOULLI_UNITS:
        return "bernoulli-bernoulli models only"
    return ", ".join(f"{v}-{h}" for v, h in sorted(units))


def check_supported(name: str, units: frozenset[Combination], model: Any) -> None:
    """RefusedError (one line) unless ``model``'s unit types are among ``units``."""
    combo = model.unit_types
    if combo not in units:
        raise RefusedError(
            f"method '{name}' does not support {combo[0]}-{combo[1]} models (visible {combo[0]}, hidden "
            f"{combo[1]} units); it supports {describe_units(units)}."
        )


def check_normalisable(model: Any) -> None:
    """RefusedError for a Gaussian-Gaussian model whose Z is infinite (no method gives it a number)."""
    if model.unit_types == ("gaussian", "gaussian"):
        from .exact_layers import gaussian_gaussian_problem

        problem = gaussian_gaussian_problem(model)
        if problem:
            raise RefusedError(f"{model.name} {problem}")


def dispatching(method: Any, func: Callable[..., Any], layered: Callable[..., Any] | None) -> Callable[..., Any]:
    """``func`` wrapped as the module docstring says (the signature, and so the options, are func's)."""

    @functools.wraps(func)
    def run(model: Any, *args: Any, **options: Any) -> Any:
        check_supported(method.name, method.units, model)
        check_normalisable(model)
        if model.is_bernoulli or not getattr(method, "binary_map", True):
            return func(model, *args, **options)
        from ..model import binary_equivalent

        mapped, offset = binary_equivalent(model)
        target = func if mapped.is_bernoulli or layered is None else layered
        if mapped is model:
            return target(model, *args, **options)
        if options.get("data") is not None:
            options["data"] = _binary_data(options["data"], model)
        result = target(mapped, *args, **options)
        return shift_result(result, model, offset)

    return run


def _binary_data(data: Any, model: Any) -> Any:
    """The ``data`` option of a model with spin layers, as the 0/1 rows of its binary equivalent."""
    from ..layer_data import resolve_for
    from ..model import spin_to_binary

    if model.visible.name != "spin":
        return data  # the mapped model keeps the visible layer (and any stored data transform): it reads the data
    rows, _ = resolve_for(data, model)
    return spin_to_binary(rows)


def shift_result(result: Any, model: Any, offset: float) -> Any:
    """A result of the binary-equivalent model as a result of ``model`` (see the module docstring)."""
    from ..result import shift_log_z

    shift = result.beta * offset
    out = shift_log_z(result, shift)
    d = out.diagnostics
    if isinstance(d.get("fixed_points"), list):
        d["fixed_points"] = [_shift_point(fp, shift, model) for fp in d["fixed_points"]]
    for key, layer in (("mean_x", model.visible), ("mean_y", model.hidden)):
        if layer.name == "spin" and isinstance(d.get(key), float):
            d[key] = 2.0 * d[key] - 1.0
    d["binary_equivalent"] = {"offset": shift, "note": "spin layers run as 0/1 layers (x = 2y - 1); "
                                                       "ln Z = ln Z(0/1 model) + offset"}
    out.diagnostics = d
    return out


def _shift_point(point: Any, shift: float, model: Any) -> Any:
    if not isinstance(point, dict):
        return point
    p = dict(point)
    if isinstance(p.get("neg_gamma"), float):
        p["neg_gamma"] += shift
    for key, layer in (("mean_x", model.visible), ("mean_y", model.hidden)):
        if layer.name == "spin" and isinstance(p.get(key), float):
            p[key] = 2.0 * p[key] - 1.0
    return p
