"""``fecli info``: what a model file holds and which estimators apply to it."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .estimators import METHODS
from .io import format_version


def _stats(x: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(np.mean(x)),
        "std": float(np.std(x)),
        "min": float(np.min(x)),
        "max": float(np.max(x)),
        "mean_abs": float(np.mean(np.abs(x))),
    }


def _flatten(meta: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested training metadata; arrays are summarised by shape."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "/"))
        elif isinstance(value, np.ndarray) and value.size > 8:
            out[name] = f"array {value.dtype} {value.shape}"
        else:
            out[name] = value
    return out


def describe(path: str | os.PathLike, model: Any = None) -> dict[str, Any]:
    """Summary of a model file as a plain dict (rendered by ``fecli info``).

    ``model``: the file's model when already read (default: ``open_model(path)``). ``format``
    names the detected format; ``source`` says what was converted to read it (transposed,
    un-centred, un-standardised weights) and the constant added to ln Z (``log_z_offset``).
    """
    from .formats import open_model, split_checkpoint

    if model is None:
        model = open_model(path)
    source = getattr(model, "source", None)
    feasibility = {}
    for name, method in METHODS.items():
        f = method.feasibility(model)
        feasibility[name] = {"feasible": f.feasible, "note": f.note, "expected_seconds": f.expected_seconds}
    layers = {"visible": model.visible.describe(), "hidden": model.hidden.describe()}
    summary = {
        "model": model.name,
        "file_size_bytes": os.path.getsize(split_checkpoint(path)[0]),
        "format": source.label if source is not None else "fecli-rbm",
        "format_version": format_version(model) if source is None or source.format == "fecli" else None,
        "source": source.to_dict() if source is not None else None,
        "n_visible": model.n_visible,
        "n_hidden": model.n_hidden,
        "visible_type": model.visible.name,
        "hidden_type": model.hidden.name,
        "layers": layers,
        "n_parameters": int(model.weights.size + sum(np.size(v) for layer in (model.visible, model.hidden)
                                                     for v in layer.parameters().values())),
        "weights": {**_stats(model.weights), "frobenius_norm": float(np.linalg.norm(model.weights))},
        "visible_bias": _stats(model.visible_bias),
        "hidden_bias": _stats(model.hidden_bias),
    }
    for layer in ("visible", "hidden"):
        precision = getattr(getattr(model, layer), "precision", None)
        if precision is not None:
            summary[f"{layer}_precision"] = _stats(precision)
    summary.update(
        supported_methods=[name for name, m in METHODS.items() if m.supports(model)],
        unsupported_methods=[name for name, m in METHODS.items() if not m.supports(model)],
        training=_flatten(model.training) if model.training else None,
        estimators=feasibility,
    )
    return summary
