"""Model files: the fecli-rbm HDF5 format, version 1.

Layout (a public contract; other tools write these names):

* root attributes ``format = "fecli-rbm"``, ``format_version = 1``,
  ``visible_type = "bernoulli"``, ``hidden_type = "bernoulli"``;
* root datasets ``weights`` (nv, nh), ``visible_bias`` (nv,), ``hidden_bias`` (nh,),
  floating point;
* optional group ``training`` (settings, seed, data digest, per-epoch metrics);
* optional group ``snapshots``: the parameters at several points of training (see
  :class:`Snapshots`), read only by the commands that use them (:func:`read_snapshots`).
  Any other group is ignored by readers.

Readers validate everything and raise :class:`~fecli.errors.ModelFileError` with
one sentence naming the file and the problem. Writers write a temporary file in
the destination folder and rename it into place, so a crash never leaves a
half-written model behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .errors import ModelFileError
from .model import RBM, RESERVED_UNIT_TYPES, SUPPORTED_UNIT_TYPES, check_parameters

FORMAT_NAME = "fecli-rbm"
FORMAT_VERSION = 1
DATASETS = ("weights", "visible_bias", "hidden_bias")
TRAINING_GROUP = "training"
SNAPSHOTS_GROUP = "snapshots"
SNAPSHOT_DATASETS = ("updates", "weights", "visible_bias", "hidden_bias")


def load_model(path: str | os.PathLike) -> RBM:
    """Read and validate a fecli-rbm model file.

    Raises :class:`ModelFileError` (one clear sentence) for a missing file, a file
    that is not HDF5 or is damaged, wrong format attributes, unsupported unit
    types, missing datasets, wrong shapes, non-float dtypes or non-finite values.
    """
    import h5py

    path = Path(path)
    where = f"model file '{path}'"
    if not path.exists():
        raise ModelFileError(f"{where} does not exist.")
    if path.is_dir():
        raise ModelFileError(f"{where} is a folder, not a file.")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise ModelFileError(f"{where} cannot be read: {exc.strerror or exc}.") from exc
    if not is_hdf5:
        raise ModelFileError(f"{where} is not an HDF5 file.")
    try:
        with h5py.File(path, "r") as f:
            _check_root_attributes(f, where)
            arrays = {name: _read_float_dataset(f, name, where) for name in DATASETS}
            training = _read_group(f[TRAINING_GROUP]) if TRAINING_GROUP in f else None
    except ModelFileError:
        raise
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{where} is truncated or damaged and cannot be read ({_first_line(exc)}).") from exc
    weights, visible_bias, hidden_bias = check_parameters(
        arrays["weights"], arrays["visible_bias"], arrays["hidden_bias"], where, ModelFileError)
    return RBM(weights, visible_bias, hidden_bias, name=str(path), training=training)


def save_model(model: RBM, path: str | os.PathLike, *, overwrite: bool = True,
               snapshots: "Snapshots | None" = None) -> Path:
    """Write ``model`` to ``path`` atomically (temporary file in the same folder, then rename).

    The ``training`` metadata, if any, is written as the ``training`` group, and
    ``snapshots`` (parameters along training) as the ``snapshots`` group.
    Returns the path written.
    """
    import h5py

    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ModelFileError(f"cannot write model file '{path}': folder '{folder}' does not exist.")
    if path.exists() and not overwrite:
        raise ModelFileError(f"model file '{path}' already exists (use --overwrite to replace it).")
    check_parameters(model.weights, model.visible_bias, model.hidden_bias, f"cannot write model file '{path}'",
                     ModelFileError)
    if snapshots is not None:
        snapshots.check(model.n_visible, model.n_hidden, f"cannot write model file '{path}'")
    with atomic_path(path) as tmp_name:
        with h5py.File(tmp_name, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["visible_type"] = "bernoulli"
            f.attrs["hidden_type"] = "bernoulli"
            f.create_dataset("weights", data=np.asarray(model.weights, dtype=np.float64))
            f.create_dataset("visible_bias", data=np.asarray(model.visible_bias, dtype=np.float64))
            f.create_dataset("hidden_bias", data=np.asarray(model.hidden_bias, dtype=np.float64))
            if model.training:
                _write_group(f.create_group(TRAINING_GROUP), model.training)
            if snapshots is not None:
                _write_snapshots(f.create_group(SNAPSHOTS_GROUP), snapshots)
    return path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _as_text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _as_text(value.item())
    if isinstance(value, np.generic):
        return _as_text(value.item())
    return value


def _check_root_attributes(f: Any, where: str) -> None:
    attrs = f.attrs
    fmt = _as_text(attrs.get("format"))
    if fmt is None:
        raise ModelFileError(f"{where} is not a fecli-rbm model: the root attribute 'format' is missing.")
    if fmt != FORMAT_NAME:
        raise ModelFileError(f"{where} has format {fmt!r}, expected {FORMAT_NAME!r}.")
    version = _as_text(attrs.get("format_version"))
    if version is None:
        raise ModelFileError(f"{where} has no 'format_version' attribute.")
    if isinstance(version, str) or isinstance(version, float) and not version.is_integer():
        raise ModelFileError(f"{where} has an invalid format_version {version!r}; expected the integer {FORMAT_VERSION}.")
    if int(version) != FORMAT_VERSION:
        raise ModelFileError(
            f"{where} has format_version {int(version)}, but this fecli reads only version {FORMAT_VERSION}."
        )
    for layer in ("visible_type", "hidden_type"):
        unit_type = _as_text(attrs.get(layer))
        if unit_type is None:
            raise ModelFileError(f"{where} has no '{layer}' attribute.")
        if unit_type in RESERVED_UNIT_TYPES:
            raise ModelFileError(
                f"{where} has {layer} {unit_type!r}, which is reserved but not supported yet "
                f"(fecli supports {', '.join(map(repr, SUPPORTED_UNIT_TYPES))} units)."
            )
        if unit_type not in SUPPORTED_UNIT_TYPES:
            raise ModelFileError(
                f"{where} has unknown {layer} {unit_type!r} "
                f"(fecli supports {', '.join(map(repr, SUPPORTED_UNIT_TYPES))} units)."
            )


def _read_float_dataset(f: Any, name: str, where: str) -> np.ndarray:
    import h5py

    if name not in f:
        present = sorted(k for k in f.keys())
        found = f" (found: {', '.join(present)})" if present else " (the file has no datasets)"
        raise ModelFileError(f"{where} has no dataset '{name}'{found}.")
    node = f[name]
    if not isinstance(node, h5py.Dataset):
        raise ModelFileError(f"{where}: '{name}' must be a dataset, but it is a group.")
    if node.dtype.kind != "f":
        raise ModelFileError(
            f"{where}: dataset '{name}' has dtype {node.dtype}, but a floating-point dtype is required."
        )
    return np.asarray(node[()], dtype=np.float64)  # shapes and finiteness: model.check_parameters


def _read_group(group: Any) -> dict[str, Any]:
    """Read an HDF5 group (attributes, datasets, subgroups) into a nested dict."""
    import h5py

    out: dict[str, Any] = {}
    for key, value in group.attrs.items():
        out[key] = _as_text(value)
    for key, node in group.items():
        if isinstance(node, h5py.Group):
            out[key] = _read_group(node)
        else:
            value = node[()]
            out[key] = _as_text(value) if np.ndim(value) == 0 else np.asarray(value)
    return out


def _write_group(group: Any, values: dict[str, Any]) -> None:
    """Write a nested dict: dicts become groups, arrays and lists datasets, scalars attributes."""
    for key, value in values.items():
        if isinstance(value, dict):
            _write_group(group.create_group(key), value)
        elif isinstance(value, (np.ndarray, list, tuple)):
            arr = np.asarray(value)
            if arr.dtype.kind == "U":
                arr = arr.astype(object)
                group.create_dataset(key, data=arr, dtype=_string_dtype())
            else:
                group.create_dataset(key, data=arr)
        elif value is None:
            continue
        else:
            group.attrs[key] = value


def _string_dtype() -> Any:
    import h5py

    return h5py.string_dtype()


# --------------------------------------------------------------------------- snapshots
@dataclass
class Snapshots:
    """Parameters of one model at several points of its training: the ``snapshots`` group.

    Layout (every name a public contract)::

        snapshots/        attrs: spacing ("log": update 0, then log-spaced up to the last update),
                                 requested (the --snapshots count asked for)
          updates         int64 (S,), strictly increasing, >= 0: parameter updates done when
                          each snapshot was taken (0: the initial model)
          weights         float (S, nv, nh)
          visible_bias    float (S, nv)
          hidden_bias     float (S, nh)

    Parameters are stored in the training dtype (float32 training loses nothing) and read
    back as float64. The group is optional: readers that do not need it never open it.
    """

    updates: np.ndarray
    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    spacing: str = "log"
    requested: int | None = None

    def __len__(self) -> int:
        return int(np.shape(self.updates)[0])

    def model(self, i: int, name: str = "<snapshot>") -> RBM:
        """Snapshot ``i`` as a float64 RBM."""
        return RBM(self.weights[i], self.visible_bias[i], self.hidden_bias[i], name=name)

    def check(self, n_visible: int, n_hidden: int, where: str) -> None:
        """Shapes, dtypes, finiteness and increasing update numbers; ModelFileError naming ``where``."""
        updates = np.asarray(self.updates)
        s = updates.shape[0] if updates.ndim == 1 else -1
        if s < 1:
            raise ModelFileError(f"{where}: snapshot 'updates' must be a non-empty 1-D array, got shape {updates.shape}.")
        if updates.dtype.kind not in "iu":
            raise ModelFileError(f"{where}: snapshot 'updates' has dtype {updates.dtype}; integers are required.")
        if updates[0] < 0 or np.any(np.diff(updates) <= 0):
            raise ModelFileError(f"{where}: snapshot 'updates' must be >= 0 and strictly increasing.")
        for name, shape in (("weights", (s, n_visible, n_hidden)), ("visible_bias", (s, n_visible)),
                            ("hidden_bias", (s, n_hidden))):
            value = np.asarray(getattr(self, name))
            if value.shape != shape:
                raise ModelFileError(
                    f"{where}: snapshot '{name}' has shape {value.shape}, but {s} snapshot(s) of the "
                    f"{n_visible}x{n_hidden} model need {shape}."
                )
            if value.dtype.kind != "f":
                raise ModelFileError(f"{where}: snapshot '{name}' has dtype {value.dtype}; floating point is required.")
            if not np.all(np.isfinite(value)):
                raise ModelFileError(f"{where}: snapshot '{name}' contains NaN or inf.")


def has_snapshots(path: str | os.PathLike) -> bool:
    """Whether the model file at ``path`` has a ``snapshots`` group (False for anything unreadable)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return SNAPSHOTS_GROUP in f
    except (OSError, TypeError):
        return False


def read_snapshots(path: str | os.PathLike, model: RBM | None = None) -> Snapshots | None:
    """The ``snapshots`` group of a model file, validated; None when the file has none.

    ``model`` (the file's model, default: read it) fixes the expected shapes. Raises
    :class:`ModelFileError` naming the file and the problem for a damaged group.
    """
    import h5py

    path = Path(path)
    if model is None:
        model = load_model(path)
    where = f"model file '{path}'"
    try:
        with h5py.File(path, "r") as f:
            if SNAPSHOTS_GROUP not in f:
                return None
            group = f[SNAPSHOTS_GROUP]
            if not isinstance(group, h5py.Group):
                raise ModelFileError(f"{where}: '{SNAPSHOTS_GROUP}' must be a group, but it is a dataset.")
            missing = [name for name in SNAPSHOT_DATASETS if not isinstance(group.get(name), h5py.Dataset)]
            if missing:
                raise ModelFileError(f"{where}: the snapshots group has no dataset {', '.join(map(repr, missing))}.")
            arrays = {name: group[name][()] for name in SNAPSHOT_DATASETS}
            spacing = _as_text(group.attrs.get("spacing", "log"))
            requested = _as_text(group.attrs.get("requested"))
    except ModelFileError:
        raise
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{where}: the snapshots group cannot be read ({_first_line(exc)}).") from exc
    snapshots = Snapshots(**arrays, spacing=str(spacing),
                          requested=None if requested is None else int(requested))
    snapshots.check(model.n_visible, model.n_hidden, where)
    snapshots.updates = np.asarray(snapshots.updates, dtype=np.int64)
    return snapshots


def _write_snapshots(group: Any, snapshots: Snapshots) -> None:
    group.attrs["spacing"] = snapshots.spacing
    if snapshots.requested is not None:
        group.attrs["requested"] = int(snapshots.requested)
    group.create_dataset("updates", data=np.asarray(snapshots.updates, dtype=np.int64))
    weights = np.asarray(snapshots.weights)
    # One chunk per snapshot, so a reader can take one without reading them all.
    group.create_dataset("weights", data=weights, chunks=(1, *weights.shape[1:]))
    group.create_dataset("visible_bias", data=np.asarray(snapshots.visible_bias))
    group.create_dataset("hidden_bias", data=np.asarray(snapshots.hidden_bias))
