"""Model files: the fecli-rbm HDF5 format, versions 1 and 2.

Layout (a public contract; other tools write these names):

* root attributes ``format = "fecli-rbm"``, ``format_version``, ``visible_type``,
  ``hidden_type`` (unit types: "bernoulli", "spin", "gaussian", "potts");
* root datasets ``weights``, ``visible_bias``, ``hidden_bias``, floating point:
  (nv, nh), (nv,), (nh,) for scalar units; a Potts visible layer with q states has
  ``weights`` (nv, q, nh), ``visible_bias`` (nv, q) and the root attribute
  ``visible_states = q`` (q >= 2);
* a Gaussian layer adds ``visible_precision`` (nv,) or ``hidden_precision`` (nh,), all > 0;
* optional group ``training`` (settings, seed, data digest, per-epoch metrics).
* optional group ``snapshots``: the parameters of the model at several points of training
  (see :class:`Snapshots`), read only by the commands that use them (:func:`read_snapshots`).
  Any other group is ignored by readers.

A file whose layers are both bernoulli is ``format_version`` 1 (older fecli reads it); any
other file is ``format_version`` 2. Readers accept both and validate everything, raising
:class:`~fecli.errors.ModelFileError` with one sentence naming the file and the problem; a
Gaussian-Gaussian model whose joint precision matrix is not positive definite (not
normalisable) is refused when it is read. Writers write a temporary file in the destination
folder and rename it into place, so a crash never leaves a half-written model behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .errors import ModelFileError
from .layers import HIDDEN_UNIT_TYPES, UNIT_TYPES, make_layer
from .model import RBM, check_layers, check_parameters

FORMAT_NAME = "fecli-rbm"
#: Version written for all-bernoulli models (readable by every fecli).
FORMAT_VERSION = 1
#: Version written for any other unit types.
FORMAT_VERSION_UNITS = 2
READ_VERSIONS = (1, 2)
DATASETS = ("weights", "visible_bias", "hidden_bias")
TRAINING_GROUP = "training"
LAYERS = ("visible", "hidden")


def format_version(model: RBM) -> int:
    """The format_version a model is written with: 1 when both layers are bernoulli, else 2."""
    return FORMAT_VERSION if model.is_bernoulli else FORMAT_VERSION_UNITS
SNAPSHOTS_GROUP = "snapshots"
SNAPSHOT_DATASETS = ("updates", "weights", "visible_bias", "hidden_bias")
#: Datasets of the snapshots group of a model with Gaussian layers.
SNAPSHOT_PRECISIONS = ("visible_precision", "hidden_precision")


def load_model(path: str | os.PathLike) -> RBM:
    """Read and validate a fecli-rbm model file.

    Raises :class:`ModelFileError` (one clear sentence) for a missing file, a file
    that is not HDF5 or is damaged, wrong format attributes, unknown unit types,
    missing datasets, wrong shapes, non-float dtypes, non-finite values, precisions
    that are not > 0, a Potts layer with fewer than 2 states, or a Gaussian-Gaussian
    model that is not normalisable.
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
            types, states = _check_root_attributes(f, where)
            arrays = {name: _read_float_dataset(f, name, where) for name in DATASETS}
            for layer, unit_type in zip(LAYERS, types):
                name = f"{layer}_precision"
                if unit_type == "gaussian":
                    arrays[name] = _read_float_dataset(f, name, where)
                elif name in f:
                    raise ModelFileError(f"{where} has a dataset '{name}', but its {layer} units are {unit_type}, "
                                         f"not gaussian.")
            training = _read_group(f[TRAINING_GROUP]) if TRAINING_GROUP in f else None
    except ModelFileError:
        raise
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{where} is truncated or damaged and cannot be read ({_first_line(exc)}).") from exc
    _check_orientation(arrays, where)
    if types == ("bernoulli", "bernoulli"):
        weights, visible_bias, hidden_bias = check_parameters(
            arrays["weights"], arrays["visible_bias"], arrays["hidden_bias"], where, ModelFileError)
        return RBM(weights, visible_bias, hidden_bias, name=str(path), training=training)
    _check_shapes(arrays, types, states, where)
    visible = make_layer(types[0], arrays["visible_bias"], arrays.get("visible_precision"))
    hidden = make_layer(types[1], arrays["hidden_bias"], arrays.get("hidden_precision"))
    model = RBM(visible, hidden, arrays["weights"], name=str(path), training=training)
    if types == ("gaussian", "gaussian"):
        from .estimators.exact_layers import gaussian_gaussian_problem

        problem = gaussian_gaussian_problem(model)
        if problem:
            raise ModelFileError(f"{where} {problem}")
    return model


def save_model(model: RBM, path: str | os.PathLike, *, overwrite: bool = True,
               snapshots: "Snapshots | None" = None, extra_attrs: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (temporary file in the same folder, then rename).

    format_version 1 for all-bernoulli models, 2 otherwise (see the module docstring). The
    ``training`` metadata, if any, is written as the ``training`` group, and ``snapshots``
    (parameters along training) as the ``snapshots`` group; ``extra_attrs`` become root
    attributes (``fecli convert`` keeps an imported model's ln Z constant in ``log_z_offset``).
    Returns the path written.
    """
    import h5py

    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ModelFileError(f"cannot write model file '{path}': folder '{folder}' does not exist.")
    if path.exists() and not overwrite:
        raise ModelFileError(f"model file '{path}' already exists (use --overwrite to replace it).")
    if model.hidden.name == "potts":
        raise ModelFileError(f"cannot write model file '{path}': the format has no Potts hidden layer.")
    check_layers(model.visible, model.hidden, model.weights, f"cannot write model file '{path}'", ModelFileError)
    arrays = _model_arrays(model)
    if snapshots is not None:
        snapshots.check(model.n_visible, model.n_hidden, f"cannot write model file '{path}'", model)
    with atomic_path(path) as tmp_name:
        with h5py.File(tmp_name, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = format_version(model)
            f.attrs["visible_type"] = model.visible.name
            f.attrs["hidden_type"] = model.hidden.name
            if model.visible.name == "potts":
                f.attrs["visible_states"] = model.visible.q
            for key, value in (extra_attrs or {}).items():
                f.attrs[key] = value
            for name, value in arrays.items():
                f.create_dataset(name, data=np.asarray(value, dtype=np.float64))
            if model.training:
                _write_group(f.create_group(TRAINING_GROUP), model.training)
            if snapshots is not None:
                _write_snapshots(f.create_group(SNAPSHOTS_GROUP), snapshots)
    return path


def _model_arrays(model: RBM) -> dict[str, np.ndarray]:
    """The datasets of a model file, by name."""
    arrays = {"weights": model.weights, "visible_bias": model.visible_bias, "hidden_bias": model.hidden_bias}
    for layer in LAYERS:
        precision = getattr(getattr(model, layer), "precision", None)
        if precision is not None:
            arrays[f"{layer}_precision"] = precision
    return arrays


def _check_orientation(arrays: dict[str, np.ndarray], where: str) -> None:
    """A 2-D 'weights' stored (n_hidden, n_visible), the habit of scikit-learn and PyTorch: say
    "transposed?" rather than a bias-length mismatch."""
    w, a, b = arrays["weights"], arrays["visible_bias"], arrays["hidden_bias"]
    if w.ndim == 2 and a.ndim == 1 and b.ndim == 1 and w.shape != (a.size, b.size) and w.shape == (b.size, a.size):
        raise ModelFileError(f"{where}: 'weights' has shape {w.shape} but the biases say {a.size} visible and "
                             f"{b.size} hidden units: transposed? fecli stores (n_visible, n_hidden); read it as plain "
                             f"arrays, oriented by the biases, with --model-format hdf5 --names weights=weights,"
                             f"visible_bias=visible_bias,hidden_bias=hidden_bias.")


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


def _check_root_attributes(f: Any, where: str) -> tuple[tuple[str, str], int | None]:
    """Validate the root attributes; returns ((visible_type, hidden_type), visible_states or None)."""
    attrs = f.attrs
    fmt = _as_text(attrs.get("format"))
    if fmt is None:
        raise ModelFileError(f"{where} is not a fecli-rbm model: the root attribute 'format' is missing"
                             f"{_foreign_hint(f.filename)}.")
    if fmt != FORMAT_NAME:
        raise ModelFileError(f"{where} has format {fmt!r}, expected {FORMAT_NAME!r}.")
    version = _as_text(attrs.get("format_version"))
    if version is None:
        raise ModelFileError(f"{where} has no 'format_version' attribute.")
    if isinstance(version, str) or isinstance(version, float) and not version.is_integer():
        raise ModelFileError(f"{where} has an invalid format_version {version!r}; expected the integer 1 or 2.")
    if int(version) not in READ_VERSIONS:
        raise ModelFileError(
            f"{where} has format_version {int(version)}, but this fecli reads only versions 1 and 2."
        )
    types = []
    for layer in LAYERS:
        key = f"{layer}_type"
        unit_type = _as_text(attrs.get(key))
        if unit_type is None:
            raise ModelFileError(f"{where} has no '{key}' attribute.")
        if unit_type not in UNIT_TYPES:
            raise ModelFileError(
                f"{where} has unknown {key} {unit_type!r} (fecli supports {', '.join(map(repr, UNIT_TYPES))} units)."
            )
        types.append(unit_type)
    if types[1] not in HIDDEN_UNIT_TYPES:
        raise ModelFileError(f"{where} has hidden_type {types[1]!r}: a Potts layer must be the visible layer "
                             f"(hidden units may be {', '.join(map(repr, HIDDEN_UNIT_TYPES))}).")
    if int(version) == 1 and types != ["bernoulli", "bernoulli"]:
        raise ModelFileError(f"{where} has format_version 1 but {types[0]}-{types[1]} units; format_version 1 "
                             f"holds bernoulli units only (other unit types are format_version 2).")
    states = None
    raw = attrs.get("visible_states")
    if types[0] == "potts":
        if raw is None:
            raise ModelFileError(f"{where} has potts visible units but no 'visible_states' attribute (the number "
                                 f"of states q).")
        raw = _as_text(raw)
        if isinstance(raw, (str, bytes)) or not float(raw).is_integer() or int(raw) < 2:
            raise ModelFileError(f"{where} has visible_states {raw!r}; a Potts layer needs an integer q >= 2.")
        states = int(raw)
    elif raw is not None:
        raise ModelFileError(f"{where} has a 'visible_states' attribute, but its visible units are {types[0]}, "
                             f"not potts.")
    return (types[0], types[1]), states


def _foreign_hint(path: str) -> str:
    """For a file of another tool: which it is and the commands that read it ('' otherwise)."""
    from .formats import detect_format

    fmt = detect_format(Path(path))
    if fmt is None or fmt.name in ("fecli", "hdf5"):
        return ""
    return (f"; it is a {fmt.label} file, which 'fecli estimate' and the other commands that read models "
            f"take as it is, and 'fecli convert {path} -o model.h5' writes as fecli-rbm")


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
    return np.asarray(node[()], dtype=np.float64)  # shapes and finiteness: model.check_parameters / _check_shapes


def _check_shapes(arrays: dict[str, np.ndarray], types: tuple[str, str], states: int | None, where: str) -> None:
    """Shapes and finiteness of the datasets of a file with other unit types than bernoulli-bernoulli,
    and precisions > 0 (all-bernoulli files go through model.check_parameters)."""
    w, a, b = arrays["weights"], arrays["visible_bias"], arrays["hidden_bias"]
    potts = types[0] == "potts"
    axes = "(n_visible, q, n_hidden)" if potts else "(n_visible, n_hidden)"
    if w.ndim != (3 if potts else 2):
        raise ModelFileError(f"{where}: 'weights' must be {3 if potts else 2}-D {axes}, but has shape {w.shape}.")
    nv, nh = w.shape[0], w.shape[-1]
    if nv == 0 or nh == 0:
        raise ModelFileError(f"{where}: 'weights' has shape {w.shape}; both layers need at least one unit.")
    if potts and w.shape[1] != states:
        raise ModelFileError(f"{where}: 'weights' has shape {w.shape}, but visible_states = {states} needs "
                             f"({nv}, {states}, {nh}).")
    want_a = (nv, states) if potts else (nv,)
    if a.shape != want_a:
        raise ModelFileError(
            f"{where}: 'visible_bias' has shape {a.shape}, but 'weights' {w.shape} needs {want_a}."
        )
    if b.shape != (nh,):
        raise ModelFileError(
            f"{where}: 'hidden_bias' has shape {b.shape}, but 'weights' {w.shape} needs ({nh},)."
        )
    for layer, n in (("visible", nv), ("hidden", nh)):
        name = f"{layer}_precision"
        if name in arrays and arrays[name].shape != (n,):
            raise ModelFileError(f"{where}: '{name}' has shape {arrays[name].shape}, but 'weights' {w.shape} "
                                 f"needs ({n},).")
    for name, x in arrays.items():
        if not np.isfinite(x).all():
            bad = int(x.size - np.count_nonzero(np.isfinite(x)))
            raise ModelFileError(f"{where}: '{name}' contains {bad} non-finite value(s) (NaN or inf).")
    for layer in ("visible", "hidden"):
        name = f"{layer}_precision"
        p = arrays.get(name)
        if p is not None and not np.all(p > 0):
            bad = int(np.sum(~(p > 0)))
            raise ModelFileError(f"{where}: '{name}' has {bad} value(s) <= 0 (smallest {float(p.min()):g}); "
                                 f"a Gaussian unit needs a precision > 0.")


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
          weights         float (S, nv, nh); (S, nv, q, nh) for Potts visible units
          visible_bias    float (S, nv); (S, nv, q) for Potts visible units
          hidden_bias     float (S, nh)
          visible_precision, hidden_precision   float (S, nv) / (S, nh): Gaussian layers only

    The unit types are the model's (the file's root attributes). Parameters are stored in the
    training dtype (float32 training loses nothing) and read back as float64. The group is
    optional: readers that do not need it never open it.
    """

    updates: np.ndarray
    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    spacing: str = "log"
    requested: int | None = None
    visible_precision: np.ndarray | None = None
    hidden_precision: np.ndarray | None = None
    #: The model the snapshots belong to (its unit types); None: bernoulli-bernoulli.
    template: RBM | None = None

    def __len__(self) -> int:
        return int(np.shape(self.updates)[0])

    def model(self, i: int, name: str = "<snapshot>") -> RBM:
        """Snapshot ``i`` as a float64 RBM (of the template's unit types)."""
        if self.template is None or self.template.is_bernoulli:
            return RBM(self.weights[i], self.visible_bias[i], self.hidden_bias[i], name=name)
        layers = []
        for side, bias, precision in (("visible", self.visible_bias, self.visible_precision),
                                      ("hidden", self.hidden_bias, self.hidden_precision)):
            layer = getattr(self.template, side)
            params = {"bias": np.asarray(bias[i], dtype=np.float64)}
            if layer.name == "gaussian":
                params["precision"] = np.asarray(precision[i], dtype=np.float64)
            layers.append(layer.replace(**params))
        return RBM(layers[0], layers[1], np.asarray(self.weights[i], dtype=np.float64), name=name)

    def check(self, n_visible: int, n_hidden: int, where: str, model: RBM | None = None) -> None:
        """Shapes, dtypes, finiteness and increasing update numbers; ModelFileError naming ``where``.
        ``model`` (default: a bernoulli one of n_visible x n_hidden) gives the layers' shapes."""
        updates = np.asarray(self.updates)
        s = updates.shape[0] if updates.ndim == 1 else -1
        if s < 1:
            raise ModelFileError(f"{where}: snapshot 'updates' must be a non-empty 1-D array, got shape {updates.shape}.")
        if updates.dtype.kind not in "iu":
            raise ModelFileError(f"{where}: snapshot 'updates' has dtype {updates.dtype}; integers are required.")
        if updates[0] < 0 or np.any(np.diff(updates) <= 0):
            raise ModelFileError(f"{where}: snapshot 'updates' must be >= 0 and strictly increasing.")
        shapes = [("weights", (s, n_visible, n_hidden)), ("visible_bias", (s, n_visible)),
                  ("hidden_bias", (s, n_hidden))]
        if model is not None and not model.is_bernoulli:
            shapes = [("weights", (s, *model.weights.shape)), ("visible_bias", (s, *model.visible.bias.shape)),
                      ("hidden_bias", (s, *model.hidden.bias.shape))]
            shapes += [(f"{side}_precision", (s, getattr(model, side).n)) for side in ("visible", "hidden")
                       if getattr(model, side).name == "gaussian"]
        for name, shape in shapes:
            if getattr(self, name) is None:
                raise ModelFileError(f"{where}: the snapshots group has no dataset '{name}'.")
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
            if name.endswith("_precision") and not np.all(value > 0):
                raise ModelFileError(f"{where}: snapshot '{name}' has values <= 0; precisions must be > 0.")


def has_snapshots(path: str | os.PathLike) -> bool:
    """Whether the model file at ``path`` holds parameter snapshots: a fecli ``snapshots`` group, or
    the checkpoints of a DsysDML/rbms bernoulli file (False for anything unreadable)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if SNAPSHOTS_GROUP in f:
                return True
    except (OSError, TypeError):
        return False
    from .formats import rbms

    return rbms.detect(Path(path)) and rbms.bernoulli_checkpoints(Path(path)) > 0


def _rbms_snapshots(path: str | os.PathLike, last: int | None = None) -> "Snapshots | None":
    """The checkpoints of a DsysDML/rbms file up to update ``last`` (default: all) as snapshots
    (None for other files and for models that are not bernoulli-bernoulli)."""
    from .formats import rbms

    path = Path(path)
    if not rbms.detect(path):
        return None
    return rbms.snapshots(path, last)


def read_snapshots(path: str | os.PathLike, model: RBM | None = None) -> Snapshots | None:
    """The ``snapshots`` group of a model file, validated; None when the file has none. The
    checkpoints of a DsysDML/rbms file are its snapshots (update numbers from ``update_<k>``), up
    to the checkpoint ``model`` was read at.

    ``model`` (the file's model, default: read it) fixes the expected shapes. Raises
    :class:`ModelFileError` naming the file and the problem for a damaged group.
    """
    import h5py

    path = Path(path)
    where = f"model file '{path}'"
    read_at = getattr(getattr(model, "source", None), "checkpoint", None)  # MODEL@K: the run up to K
    from_rbms = _rbms_snapshots(path, read_at)
    if from_rbms is not None:
        if model is not None:
            from_rbms.check(model.n_visible, model.n_hidden, where)
        return from_rbms
    if model is None:
        model = load_model(path)
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
            arrays.update({name: group[name][()] for name in SNAPSHOT_PRECISIONS
                           if isinstance(group.get(name), h5py.Dataset)})
            spacing = _as_text(group.attrs.get("spacing", "log"))
            requested = _as_text(group.attrs.get("requested"))
    except ModelFileError:
        raise
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{where}: the snapshots group cannot be read ({_first_line(exc)}).") from exc
    snapshots = Snapshots(**arrays, spacing=str(spacing),
                          requested=None if requested is None else int(requested), template=model)
    snapshots.check(model.n_visible, model.n_hidden, where, model)
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
    for name in SNAPSHOT_PRECISIONS:
        if getattr(snapshots, name) is not None:
            group.create_dataset(name, data=np.asarray(getattr(snapshots, name)))
