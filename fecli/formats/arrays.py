"""Models stored as named arrays: ``.npz``, ``.safetensors``, PyTorch ``.pt``/``.pth`` state dicts
and HDF5 files of no known layout.

The three arrays are found by ``--names weights=KEY,visible_bias=KEY,hidden_bias=KEY`` or, for
npz, safetensors and pt files, guessed from common names (W, weight, weight_matrix, vbias, a,
hbias, ... ; a module prefix such as ``rbm.`` is ignored). The orientation of a 2-D weight
matrix comes from the bias lengths (``(n_hidden, n_visible)``, the habit of scikit-learn and of
torch.nn.Linear, is transposed and said so); when n_visible == n_hidden it is ambiguous and
``--transpose yes|no`` must say. Units are bernoulli unless the file says otherwise: fecli's
own npz and safetensors files store ``visible_type`` / ``hidden_type`` (npz: 0-d string arrays;
safetensors: metadata) and, for Gaussian units, ``visible_precision`` / ``hidden_precision``;
a Potts visible layer has 3-D weights (n_visible, q, n_hidden).

PyTorch files are read with ``torch.load(..., weights_only=True)`` (no code runs) and need the
optional extra ``fecli[torch]``; safetensors files need ``fecli[formats]``.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ModelFileError
from .common import as_text, describe_keys, float_array, guess_names, hdf5_root, orient, pick_arrays, read_head
from .spec import ROLES, ReadOptions, Source, names_hint

UNIT_KEYS = ("visible_type", "hidden_type")
PRECISION_KEYS = ("visible_precision", "hidden_precision")


# --------------------------------------------------------------------------- detection (by content)
def _zip_names(path: Path) -> list[str] | None:
    if read_head(path, 4) != b"PK\x03\x04":
        return None
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError):
        return None


def detect_hdf5(path: Path) -> bool:
    return hdf5_root(path) is not None


def detect_npz(path: Path) -> bool:
    names = _zip_names(path)
    return bool(names) and all(n.endswith(".npy") for n in names)


def detect_pt(path: Path) -> bool:
    """A zip archive holding ``<name>/data.pkl`` (torch.save's format since PyTorch 1.6)."""
    names = _zip_names(path)
    return bool(names) and any(n.endswith("data.pkl") for n in names)


def detect_safetensors(path: Path) -> bool:
    """8 bytes of little-endian header length, then a JSON object."""
    head = read_head(path, 9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (n,) = struct.unpack("<Q", head[:8])
    try:
        return 0 < n <= path.stat().st_size - 8
    except OSError:
        return False


#: What a file's extension promises, for the message about a file that is none of the formats.
SUFFIX_KINDS = {".h5": "an HDF5 file", ".hdf5": "an HDF5 file", ".hdf": "an HDF5 file", ".npz": "an npz archive",
                ".safetensors": "a safetensors file", ".skops": "a skops file", ".pt": "a PyTorch file",
                ".pth": "a PyTorch file", ".pkl": "a pickle", ".joblib": "a joblib file"}


def unknown_file_message(path: Path, where: str) -> str:
    """What to say about a file no format recognises (by what its extension promised)."""
    kinds = ("fecli-rbm, DsysDML/rbms or RestrictedBoltzmannMachines.jl HDF5, .npz, .safetensors, .skops, .pt or "
             "pickle")
    if not read_head(path, 8):
        return f"{where} is empty or unreadable, not a model file ({kinds})."
    damaged = _hdf5_damage(path)
    if damaged:
        return f"{where} is truncated or damaged and cannot be read ({damaged})."
    promised = SUFFIX_KINDS.get(path.suffix.lower())
    if promised:
        return f"{where} is not {promised}."
    return f"{where} is not a model file fecli knows ({kinds})."


def _hdf5_damage(path: Path) -> str | None:
    """Why a file with an HDF5 signature cannot be opened, or None (not HDF5, or it opens)."""
    import h5py

    try:
        if not h5py.is_hdf5(path):
            return None
        with h5py.File(path, "r"):
            return None
    except (OSError, RuntimeError) as exc:
        text = str(exc).strip().splitlines()
        return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- loading
def load_npz(path: Path, options: ReadOptions) -> Any:
    where = f"model file '{path}'"
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError as exc:
        raise ModelFileError(f"{where} holds Python objects (pickled arrays), which fecli does not load from .npz "
                             f"files ({exc}).") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{where} is truncated or damaged and cannot be read ({exc}).") from None
    meta = {k: as_text(arrays.pop(k)) for k in UNIT_KEYS if k in arrays}
    return model_from_arrays(arrays, meta, options, path, Source("npz", "numpy .npz"))


def load_safetensors(path: Path, options: ReadOptions) -> Any:
    where = f"model file '{path}'"
    try:
        from safetensors import safe_open
    except ImportError:
        raise ModelFileError(f"{where} is a safetensors file; reading it needs the safetensors package: "
                             f"pip install 'fecli[formats]'.") from None
    try:
        with safe_open(str(path), framework="np") as f:
            meta = dict(f.metadata() or {})
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # the package raises its own error types (SafetensorError, TypeError for bf16)
        raise ModelFileError(f"{where} cannot be read as safetensors ({str(exc).splitlines()[0]}).") from None
    meta = {k: meta[k] for k in UNIT_KEYS if k in meta}
    return model_from_arrays(arrays, meta, options, path, Source("safetensors", "safetensors"))


def load_pt(path: Path, options: ReadOptions) -> Any:
    where = f"model file '{path}'"
    try:
        import torch
    except ImportError:
        raise ModelFileError(f"{where} is a PyTorch file; reading it needs torch: pip install 'fecli[torch]' "
                             f"(or save the state dict with safetensors and read that).") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for non-tensor objects, RuntimeError for damaged archives
        raise ModelFileError(f"{where} cannot be read as a PyTorch state dict with weights_only=True (tensors only, "
                             f"no code runs): {str(exc).strip().splitlines()[0]}") from None
    arrays = {k: (v.detach().cpu().double() if v.is_floating_point() else v.detach().cpu()).numpy()
              for k, v in _flatten(state).items() if isinstance(v, torch.Tensor)}
    return model_from_arrays(arrays, {}, options, path, Source("pt", "PyTorch state dict"))


def load_hdf5(path: Path, options: ReadOptions) -> Any:
    import h5py

    where = f"model file '{path}'"
    arrays: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            def visit(name: str, node: Any) -> None:
                if isinstance(node, h5py.Dataset) and node.dtype.kind in "fiu" and node.ndim in (1, 2, 3):
                    arrays[name] = node[()]
            f.visititems(visit)
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{where} is truncated or damaged and cannot be read ({exc}).") from None
    if not options.names:
        guess = {**{r: "KEY" for r in ROLES}, **guess_names(arrays)}
        raise ModelFileError(f"{where} is an HDF5 file of no known layout (not fecli-rbm, DsysDML/rbms or "
                             f"RestrictedBoltzmannMachines.jl); it holds {describe_keys(arrays)}; read it with "
                             f"--names {names_hint(guess)}.")
    return model_from_arrays(arrays, {}, options, path, Source("hdf5", "plain HDF5 arrays"))


def _flatten(state: Any, prefix: str = "") -> dict[str, Any]:
    """A (possibly nested) state dict as one level, keys joined with '.'."""
    out: dict[str, Any] = {}
    if isinstance(state, Mapping):
        for key, value in state.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: state}


def model_from_arrays(arrays: dict[str, np.ndarray], meta: Mapping[str, str], options: ReadOptions, path: Path,
                      source: Source) -> Any:
    """The RBM held by named ``arrays`` (see the module docstring); ``meta`` may give unit types."""
    from ..layers import HIDDEN_UNIT_TYPES, UNIT_TYPES, make_layer
    from ..model import RBM, check_layers

    where = f"model file '{path}'"
    types = (meta.get("visible_type", "bernoulli"), meta.get("hidden_type", "bernoulli"))
    for side, unit in zip(("visible", "hidden"), types):
        allowed = UNIT_TYPES if side == "visible" else HIDDEN_UNIT_TYPES
        if unit not in allowed:
            raise ModelFileError(f"{where} says its {side} units are {unit!r}; fecli reads {', '.join(allowed)} "
                                 f"{side} units.")
    picked, keys = pick_arrays(arrays, options.names, where)
    w = float_array(picked["weights"], keys["weights"], where)
    a = float_array(picked["visible_bias"], keys["visible_bias"], where)
    b = float_array(picked["hidden_bias"], keys["hidden_bias"], where)
    transposed = False
    if types[0] != "potts":
        w, transposed = orient(w, a, b, options.transpose, where, keys)
    precisions = {}
    for side, unit, key in zip(("visible", "hidden"), types, PRECISION_KEYS):
        if unit == "gaussian":
            if key not in arrays:
                raise ModelFileError(f"{where} has gaussian {side} units but no '{key}' array.")
            precisions[side] = float_array(arrays[key], key, where)
    try:
        visible = make_layer(types[0], a, precisions.get("visible"))
        hidden = make_layer(types[1], b, precisions.get("hidden"))
    except ValueError as exc:
        raise ModelFileError(f"{where}: {exc}.") from None
    weights = check_layers(visible, hidden, w, where, ModelFileError)
    model = RBM(visible, hidden, weights, name=str(path))
    guessed = not all(role in options.names for role in ROLES)
    source.conventions.append(f"arrays {'guessed' if guessed else 'named'}: {names_hint(keys)}")
    if transposed:
        source.conventions.append(f"weights transposed: '{keys['weights']}' is stored (n_hidden, n_visible)")
    model.source = source
    return model


# --------------------------------------------------------------------------- writing
def _named_arrays(model: Any) -> dict[str, np.ndarray]:
    out = {"weights": model.weights, "visible_bias": model.visible_bias, "hidden_bias": model.hidden_bias}
    for side, key in zip(("visible", "hidden"), PRECISION_KEYS):
        precision = getattr(getattr(model, side), "precision", None)
        if precision is not None:
            out[key] = precision
    return {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in out.items()}


def save_npz(model: Any, path: Path) -> Path:
    """fecli's names as float64 arrays, the unit types as 0-d string arrays (np.load reads it
    with allow_pickle=False)."""
    from ..atomic import atomic_path

    arrays = {**_named_arrays(model), "visible_type": np.array(model.visible.name),
              "hidden_type": np.array(model.hidden.name)}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return path


def save_safetensors(model: Any, path: Path) -> Path:
    """fecli's names as float64 tensors; unit types in the metadata."""
    from ..atomic import atomic_path

    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise ModelFileError("writing safetensors files needs the safetensors package: "
                             "pip install 'fecli[formats]'.") from None
    meta = {"format": "fecli-rbm", "visible_type": model.visible.name, "hidden_type": model.hidden.name}
    with atomic_path(path) as tmp:
        save_file(_named_arrays(model), tmp, metadata=meta)
    return path

