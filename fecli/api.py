"""The library entry point: ``estimate(model, method, **options)``."""

from __future__ import annotations

import inspect
import os
from typing import Any

from .errors import InvalidOptionError
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
    return get_method(method).load()(model, **options)
