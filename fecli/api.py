"""The library entry point: ``estimate(model, method, **options)``."""

from __future__ import annotations

import inspect
import os
from typing import Any

from .errors import FecliError, InvalidOptionError
from .estimators import get_method, method_names
from .model import RBM
from .result import Result

__all__ = ["estimate", "method_names", "method_options"]


def method_options(method: str) -> list[str]:
    """Keyword options accepted by ``method`` (besides the model)."""
    func = get_method(method).load()
    params = list(inspect.signature(func).parameters.values())[1:]
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def estimate(model: RBM | str | os.PathLike, method: str = "exact", **options: Any) -> Result:
    """Estimate ln Z of ``model`` (an :class:`RBM` or a model file path) with ``method``.

    ``options`` are passed to the method (see ``fecli estimate --help`` or the
    method's docstring); an option the method does not take is an error.
    """
    if not isinstance(model, RBM):
        from .io import load_model

        model = load_model(model)
    accepted = method_options(method)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidOptionError(
            f"method {method!r} does not take option(s) {', '.join(unknown)}; it takes: {', '.join(accepted)}."
        )
    result = get_method(method).load()(model, **options)
    return check_against_bracket(model, result, options.get("data"))


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
    result.states = None
    return check_result(result, bracket)
