"""DsysDML/rbms HDF5 files (PyPI ``rbms``; layout read from its ``rbms/io.py``, checked on files
its own ``save_model`` wrote).

Root: ``model_type`` (a string dataset: BBRBM, PBRBM, IIRBM, BGRBM, IGRBM, ...), and one group
``update_<k>`` per checkpoint (k = parameter updates done), each with ``params/weight_matrix``,
``params/vbias``, ``params/hbias`` (files written before the ``params`` group hold the arrays
directly in ``update_<k>``; newer files hold both). Other members (``parallel_chains``,
``hyperparameters``, random states, ``time``) are not needed here.

Energies, in rbms' own convention (its ``_compute_energy`` of each model type), all with
``weight_matrix`` W of shape (n_visible, n_hidden), the same orientation as fecli:

* BBRBM  v, h in {0, 1}:   E = -vbias.v - hbias.h - v^T W h
* IIRBM  v, h in {-1, +1}: the same expression (spin units)
* PBRBM  v in {0..q-1}, h in {0, 1}: W (n_visible, q, n_hidden), vbias (n_visible, q):
         E = -sum_i vbias[i, v_i] - hbias.h - sum_i,mu W[i, v_i, mu] h_mu
* BGRBM  v in {0, 1}, h real:  E = -vbias.v - hbias.h - v^T W h + (n_visible / 2) |h|^2
         (hidden precision fixed at n_visible: fecli's Gaussian layer with precision n_visible)
* IGRBM  v in {-1, +1}, h real: the same with spin visible units.

Every layout maps exactly onto fecli's layers: nothing is transposed or shifted, ln Z is the same.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError
from .common import as_text, float_array, hdf5_root
from .spec import ReadOptions, Source

#: model_type -> (visible unit type, hidden unit type).
MODEL_TYPES = {
    "BBRBM": ("bernoulli", "bernoulli"),
    "PBRBM": ("potts", "bernoulli"),
    "IIRBM": ("spin", "spin"),
    "BGRBM": ("bernoulli", "gaussian"),
    "IGRBM": ("spin", "gaussian"),
}
#: (visible, hidden) unit types -> model_type, for writing.
TYPE_OF_UNITS = {units: name for name, units in MODEL_TYPES.items()}
CHECKPOINT = re.compile(r"^update_(\d+)$")
PARAMS = ("weight_matrix", "vbias", "hbias")


def detect(path: Path) -> bool:
    """An HDF5 file (without fecli's 'format' attribute) with 'model_type' or update_<k> groups."""
    root = hdf5_root(path)
    if root is None or "format" in root[0]:
        return False
    return "model_type" in root[1] or any(CHECKPOINT.match(k) for k in root[1])


def checkpoints(f: Any) -> list[int]:
    """The update numbers of the file's checkpoints, in increasing order."""
    return sorted(int(m.group(1)) for m in map(CHECKPOINT.match, f.keys()) if m)


def _describe(updates: list[int]) -> str:
    if len(updates) <= 8:
        return ", ".join(map(str, updates))
    return f"{', '.join(map(str, updates[:4]))}, ..., {', '.join(map(str, updates[-2:]))} ({len(updates)} in all)"


def _model_type(f: Any, where: str) -> str:
    if "model_type" not in f:
        return "BBRBM"  # the only model of the first releases, which did not store it
    value = as_text(f["model_type"][()])
    if not isinstance(value, str):
        raise ModelFileError(f"{where}: 'model_type' is not a string ({value!r}).")
    if value not in MODEL_TYPES:
        raise ModelFileError(f"{where} is a DsysDML/rbms {value} model, which fecli does not support (it reads "
                             f"{', '.join(MODEL_TYPES)}: bernoulli, spin, Potts and Gaussian-hidden units).")
    return value


def _read_params(f: Any, k: int, where: str) -> dict[str, np.ndarray]:
    import h5py

    group = f[f"update_{k}"]
    node = group["params"] if isinstance(group.get("params"), h5py.Group) else group
    missing = [n for n in PARAMS if not isinstance(node.get(n), h5py.Dataset)]
    if missing:
        found = ", ".join(sorted(node.keys())) or "nothing"
        raise ModelFileError(f"{where}: checkpoint update_{k} has no {', '.join(missing)} (found: {found}).")
    return {n: float_array(node[n][()], f"update_{k}/{n}", where) for n in PARAMS}


def _build(params: dict[str, np.ndarray], model_type: str, name: str, where: str) -> Any:
    from ..layers import make_layer
    from ..model import RBM, check_layers

    vis_type, hid_type = MODEL_TYPES[model_type]
    w, a, b = params["weight_matrix"], params["vbias"], params["hbias"]
    want_w = 3 if vis_type == "potts" else 2
    if w.ndim != want_w or a.ndim != want_w - 1 or b.ndim != 1:
        raise ModelFileError(f"{where}: a {model_type} needs weight_matrix {want_w}-D, vbias {want_w - 1}-D and "
                             f"hbias 1-D, but they have shapes {w.shape}, {a.shape}, {b.shape}.")
    if vis_type == "potts" and a.shape[1] < 2:
        raise ModelFileError(f"{where}: a PBRBM needs at least 2 states, but vbias has shape {a.shape}.")
    try:
        visible = make_layer(vis_type, a)
        precision = np.full(b.shape, float(w.shape[0])) if hid_type == "gaussian" else None
        hidden = make_layer(hid_type, b, precision)
    except ValueError as exc:
        raise ModelFileError(f"{where}: {exc}.") from None
    weights = check_layers(visible, hidden, w, where, ModelFileError)
    return RBM(visible, hidden, weights, name=name)


def load(path: Path, options: ReadOptions) -> Any:
    import h5py

    where = f"model file '{path}'"
    try:
        with h5py.File(path, "r") as f:
            model_type = _model_type(f, where)
            updates = checkpoints(f)
            if not updates:
                raise ModelFileError(f"{where} is a DsysDML/rbms file without any update_<k> checkpoint.")
            k = updates[-1] if options.checkpoint is None else options.checkpoint
            if k not in updates:
                raise ModelFileError(f"{where} has no checkpoint {k}; its checkpoints are updates "
                                     f"{_describe(updates)} (pick one with --checkpoint K or {path}@K).")
            params = _read_params(f, k, where)
    except ModelFileError:
        raise
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{where} is truncated or damaged and cannot be read ({exc}).") from exc
    model = _build(params, model_type, str(path), where)
    source = Source("rbms", f"DsysDML/rbms {model_type}", checkpoint=k, checkpoints=updates,
                    format_version=model_type)
    which = "the last" if k == updates[-1] else f"number {updates.index(k) + 1}"
    source.conventions.append(f"checkpoint update_{k}, {which} of {len(updates)} checkpoints (updates "
                              f"{_describe(updates)})")
    if MODEL_TYPES[model_type][1] == "gaussian":
        source.conventions.append(f"hidden precision fixed at n_visible = {model.n_visible} (rbms' energy has "
                                  f"(n_visible / 2) h^2)")
    model.source = source
    return model


def bernoulli_checkpoints(path: Path) -> int:
    """How many checkpoints a BBRBM file holds (0 for other model types or unreadable files)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return len(checkpoints(f)) if _model_type(f, f"model file '{path}'") == "BBRBM" else 0
    except (OSError, ModelFileError):
        return 0


def snapshots(path: Path, last: int | None = None) -> Any:
    """Every checkpoint up to update ``last`` (default: all) as :class:`fecli.io.Snapshots`, for
    ``fecli trajectory``; None when the model is not bernoulli-bernoulli (snapshots hold 0/1 models)."""
    import h5py

    from ..io import Snapshots

    where = f"model file '{path}'"
    with h5py.File(path, "r") as f:
        if _model_type(f, where) != "BBRBM":
            return None
        updates = [k for k in checkpoints(f) if last is None or k <= last]
        params = [_read_params(f, k, where) for k in updates]
    if not updates:
        return None
    shapes = {p["weight_matrix"].shape for p in params}
    if len(shapes) != 1:
        raise ModelFileError(f"{where}: the checkpoints have weight matrices of different shapes {sorted(shapes)}.")
    return Snapshots(updates=np.asarray(updates, dtype=np.int64),
                     weights=np.stack([p["weight_matrix"] for p in params]),
                     visible_bias=np.stack([p["vbias"] for p in params]),
                     hidden_bias=np.stack([p["hbias"] for p in params]), spacing="rbms checkpoints")


def save(model: Any, path: Path) -> Path:
    """Write ``model`` as an rbms file with one checkpoint (its source's update number, else 0).

    rbms' ``rbms.io.load_params(path, k, ...)`` reads it; its ``load_model`` also wants the
    persistent chains of a training run, which a converted model does not have.
    """
    import h5py

    from ..atomic import atomic_path

    where = f"cannot write model file '{path}'"
    model_type = TYPE_OF_UNITS.get(model.unit_types)
    if model_type is None:
        raise ModelFileError(f"{where}: DsysDML/rbms has no {model.combination} model (it has "
                             f"{', '.join(f'{k} ({v[0]}-{v[1]})' for k, v in MODEL_TYPES.items())}).")
    if model.hidden.name == "gaussian" and not np.all(model.hidden.precision == model.n_visible):
        raise ModelFileError(f"{where}: rbms' {model_type} fixes every hidden precision at n_visible = "
                             f"{model.n_visible}, but this model's precisions differ.")
    checkpoints = _checkpoints_of(model)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f["model_type"] = model_type
            for k, arrays in checkpoints.items():
                group = f.create_group(f"update_{k}")
                params = group.create_group("params")
                for name, value in zip(PARAMS, arrays):
                    params[name] = np.asarray(value, dtype=np.float64)
                    group[name] = params[name]  # older readers look here (rbms writes both)
    return path


def _checkpoints_of(model: Any) -> dict[int, tuple]:
    """{update: (weights, visible_bias, hidden_bias)}: the model's training snapshots when it was read
    from a fecli file that has them (the model last, at its training step), else the model alone at
    its source's checkpoint number (0 when it has none)."""
    from ..io import read_snapshots

    source = getattr(model, "source", None)
    last = (model.weights, model.visible_bias, model.hidden_bias)
    if source is not None and source.format == "fecli" and source.path and model.is_bernoulli:
        snaps = read_snapshots(source.path, model)
        if snaps is not None:
            out = {int(u): (snaps.weights[i], snaps.visible_bias[i], snaps.hidden_bias[i])
                   for i, u in enumerate(snaps.updates)}
            final = int(snaps.updates[-1])
            if not all(np.array_equal(a, b) for a, b in zip(out[final], last)):
                step = ((model.training or {}).get("state") or {}).get("step")
                final = int(step) if step is not None and int(step) > final else final + 1
            out[final] = last
            return out
    k = source.checkpoint if source is not None and source.checkpoint is not None else 0
    return {k: last}
