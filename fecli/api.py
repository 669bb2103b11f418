"""The library entry point: ``estimate(model, method, **options)``."""

from __future__ import annotations

import os
from typing import Any

from .errors import FecliError, InvalidOptionError, RefusedError
from .estimators import COMMON_OPTIONS, METHODS, Method, get_method, method_names
from .model import RBM
from .result import Result
from .validation import check_beta

__all__ = ["applicable_methods", "check_options", "estimate", "method_names", "method_options"]


def method_options(method: str) -> list[str]:
    """Keyword options accepted by ``method`` (besides the model): beta, progress and its declared options."""
    return [*COMMON_OPTIONS, *(option.name for option in get_method(method).options)]


def check_options(method: Method, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against ``method``'s declarations and normalised (the one validator).

    Raises :class:`InvalidOptionError` for an option the method does not take or a value its
    declaration does not allow. ``beta`` is checked here too; ``progress`` passes through.
    """
    declared = {option.name: option for option in method.options}
    unknown = sorted(set(options) - set(declared) - set(COMMON_OPTIONS))
    if unknown:
        takes = ", ".join([*COMMON_OPTIONS, *declared])
        raise InvalidOptionError(
            f"method {method.name!r} does not take option(s) {', '.join(unknown)}; it takes: {takes}."
        )
    checked = {name: declared[name].check(value) for name, value in options.items() if name in declared}
    if "beta" in options:
        checked["beta"] = check_beta(options["beta"])
    if "progress" in options:
        checked["progress"] = options["progress"]
    return checked


def applicable_methods(model: RBM, exclude: tuple[str, ...] = ()) -> list[str]:
    """Registered methods (aliases left out) that apply to ``model``: auto first, then the sampling
    methods (they carry error bars), then the rest."""
    feasible = [m for m in METHODS.values()
                if m.name not in exclude and m.alias_of is None and m.feasibility(model).feasible]
    return [m.name for m in sorted(feasible, key=lambda m: (m.in_all, m.budget_option is None))]


def estimate(model: RBM | str | os.PathLike, method: str = "exact", **options: Any) -> Result:
    """Estimate ln Z of ``model`` (an :class:`RBM` or a model file path) with ``method``.

    ``options`` are the method's declared options (``fecli estimate --help-method NAME`` lists
    them with their defaults), plus ``beta`` and ``progress``; an option the method does not
    take, or a value outside its declared range, raises :class:`InvalidOptionError`. A method
    that refuses the model (:class:`RefusedError`, e.g. exact enumeration of a large layer)
    names the methods that do apply.
    """
    if not isinstance(model, RBM):
        from .formats import open_model

        model = open_model(model)
    from .formats import log_z_offset, shift_result, without_constant

    if log_z_offset(model):  # a model read with a ln Z constant: run on the plain RBM, report for the file's
        return shift_result(estimate(without_constant(model), method, **options), model)
    entry = get_method(method)
    checked = check_options(entry, options)
    try:
        result = entry.load()(model, **checked)
    except RefusedError as exc:
        others = applicable_methods(model, exclude=(method,))
        if not others:
            raise
        raise RefusedError(f"{exc} Methods that apply to this model: {', '.join(others)}.") from exc
    return check_against_bracket(model, result, checked.get("data"))


def check_against_bracket(model: RBM, result: Result, data: Any = None) -> Result:
    """Keep ``result`` inside the model's rigorous bracket on ln Z (:mod:`fecli.bounds`), built
    from mean field, ``data`` and the states the method visited; what lay outside is clipped and
    named in the result's warnings."""
    if result.kind == "exact":
        return result
    if not model.is_bernoulli:  # spin, Gaussian and Potts layers: fecli.bounds_layers
        from .bounds_layers import check_against_layered_bracket

        return check_against_layered_bracket(model, result, data)
    from .bounds import check_result, missed_modes, rigorous_bracket
    from .data import resolve_data

    rows = None
    if data is not None:
        try:
            rows, _ = resolve_data(data, model)
        except FecliError:  # the method already read (or refused) the data; the bracket does without it
            rows = None
    bracket = rigorous_bracket(model, result.beta, [rows, result.states])
    if result.kind != "lower_bound" and result.stderr is not None:
        missed = missed_modes(model, result.beta, result.states)
        if missed is not None:
            result.warnings.append(missed)
    return check_result(result, bracket)
