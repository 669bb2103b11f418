"""``fecli info``: what a model file holds and which estimators apply to it."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .estimators import METHODS
from .io import FORMAT_VERSION, load_model


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


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """Summary of a model file as a plain dict (rendered by ``fecli info``)."""
    model = load_model(path)
    feasibility = {}
    for name, method in METHODS.items():
        f = method.feasibility(model)
        feasibility[name] = {"feasible": f.feasible, "note": f.note, "expected_seconds": f.expected_seconds}
    return {
        "model": model.name,
        "file_size_bytes": os.path.getsize(path),
        "format_version": FORMAT_VERSION,
        "n_visible": model.n_visible,
        "n_hidden": model.n_hidden,
        "visible_type": "bernoulli",
        "hidden_type": "bernoulli",
        "n_parameters": model.weights.size + model.n_visible + model.n_hidden,
        "weights": {**_stats(model.weights), "frobenius_norm": float(np.linalg.norm(model.weights))},
        "visible_bias": _stats(model.visible_bias),
        "hidden_bias": _stats(model.hidden_bias),
        "training": _flatten(model.training) if model.training else None,
        "estimators": feasibility,
    }
