"""What the format modules share: guessing the ``--names`` mapping, the orientation of a weight
matrix read from plain arrays, reading helpers (the options and :class:`Source` live in
:mod:`fecli.formats.spec`).

A model read from another tool's file is a plain :class:`~fecli.model.RBM` with one extra
attribute, ``source`` (a :class:`Source`): the format, the checkpoint, the conventions that
were converted (transposed weights, un-centred or un-standardised parameters, absolute
precisions) and the ln Z constant ``log_z_offset`` between the file's model and the plain one:

    ln Z_file(beta) = ln Z_plain(beta) + beta * log_z_offset        (nats)

The constant is non-zero only for models whose energy carries a constant term once written
as a plain RBM (RestrictedBoltzmannMachines.jl's CenteredRBM and StandardizedRBM).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ModelFileError
from .spec import ROLES, names_hint

#: Names other tools use for each role, most common first (lower case; matched without case).
GUESSES = {
    "weights": ("weights", "weight", "w", "weight_matrix", "w_vh", "components_", "kernel"),
    "visible_bias": ("visible_bias", "vbias", "v_bias", "bias_v", "bv", "b_v", "visible_biases", "a",
                     "intercept_visible_", "vb"),
    "hidden_bias": ("hidden_bias", "hbias", "h_bias", "bias_h", "bh", "b_h", "hidden_biases", "c",
                    "intercept_hidden_", "hb"),
}


def pick_arrays(arrays: Mapping[str, np.ndarray], names: Mapping[str, str],
                where: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The three arrays by role, and their keys: from ``names`` where given, else guessed from
    common names.

    Raises ModelFileError listing the keys found (with shapes) and the --names mapping to use.
    """
    guessed = guess_names(arrays)
    chosen: dict[str, str] = {}
    for role in ROLES:
        if role in names:
            if names[role] not in arrays:
                raise ModelFileError(f"{where} has no array '{names[role]}' (--names {role}={names[role]}); "
                                     f"it holds {describe_keys(arrays)}.")
            chosen[role] = names[role]
        elif role in guessed:
            chosen[role] = guessed[role]
    missing = [role for role in ROLES if role not in chosen]
    if missing:
        hint = {**{r: "KEY" for r in ROLES}, **chosen}
        raise ModelFileError(f"{where}: cannot tell which array is {' / '.join(missing)} (it holds "
                             f"{describe_keys(arrays)}); name them with --names {names_hint(hint)}.")
    return {role: arrays[key] for role, key in chosen.items()}, chosen


def guess_names(arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Roles whose key can be guessed unambiguously from common names (a module prefix such as
    ``rbm.`` is ignored); the pairs (a, b) and (b, c) name visible and hidden biases."""
    by_tail: dict[str, list[str]] = {}
    for key in arrays:
        by_tail.setdefault(key.rsplit(".", 1)[-1].lower(), []).append(key)
    out: dict[str, str] = {}
    tails = set(by_tail)
    candidates = {role: list(names) for role, names in GUESSES.items()}
    if "b" in tails:  # Hinton's a (visible), b (hidden); or b (visible), c (hidden)
        if "a" in tails:
            candidates["hidden_bias"].append("b")
        elif "c" in tails:
            candidates["visible_bias"].append("b")
    for role, names in candidates.items():
        for name in names:
            keys = by_tail.get(name, [])
            if len(keys) == 1:
                out[role] = keys[0]
                break
    if len(set(out.values())) < len(out):
        return {}
    return out


def describe_keys(arrays: Mapping[str, Any]) -> str:
    if not arrays:
        return "no arrays"
    return ", ".join(f"'{k}' {tuple(np.shape(v))}" for k, v in sorted(arrays.items()))


def orient(weights: np.ndarray, visible_bias: np.ndarray, hidden_bias: np.ndarray, transpose: bool | None,
           where: str, keys: Mapping[str, str] | None = None) -> tuple[np.ndarray, bool]:
    """The weights as (n_visible, n_hidden), and whether they were transposed.

    The orientation comes from the bias lengths: (nv, nh) as is, (nh, nv) transposed (the habit of
    scikit-learn and of PyTorch's Linear layers). When nv == nh the two cannot be told apart and
    ``transpose`` (--transpose yes|no) must say. Raises ModelFileError otherwise.
    """
    w = np.asarray(weights)
    nv, nh = np.shape(visible_bias)[0] if np.ndim(visible_bias) == 1 else -1, \
        np.shape(hidden_bias)[0] if np.ndim(hidden_bias) == 1 else -1
    k = {"weights": "weights", "visible_bias": "visible_bias", "hidden_bias": "hidden_bias", **(keys or {})}
    for role in ("visible_bias", "hidden_bias"):
        b = visible_bias if role == "visible_bias" else hidden_bias
        if np.ndim(b) != 1:
            raise ModelFileError(f"{where}: '{k[role]}' ({role}) has shape {np.shape(b)}; a 1-D array is required.")
    if w.ndim != 2:
        raise ModelFileError(f"{where}: '{k['weights']}' (weights) has shape {w.shape}; a 2-D matrix is required.")
    fits = w.shape == (nv, nh)
    flipped = w.shape == (nh, nv)
    if transpose is not None:
        want = (nh, nv) if transpose else (nv, nh)
        if w.shape != want:
            raise ModelFileError(f"{where}: with --transpose {'yes' if transpose else 'no'} '{k['weights']}' must have "
                                 f"shape {want} for {nv} visible and {nh} hidden biases, but it has {w.shape}.")
        return (w.T if transpose else w), bool(transpose)
    if fits and flipped:
        raise ModelFileError(f"{where}: '{k['weights']}' is {nv} x {nh} with {nv} visible and {nh} hidden units, "
                             f"so its orientation is ambiguous; say it with --transpose no (rows are visible units) or "
                             f"--transpose yes (rows are hidden units, as in scikit-learn and torch.nn.Linear).")
    if fits:
        return w, False
    if flipped:
        return w.T, True
    raise ModelFileError(f"{where}: '{k['weights']}' has shape {w.shape}, which fits neither ({nv}, {nh}) nor "
                         f"({nh}, {nv}) for '{k['visible_bias']}' ({nv},) and '{k['hidden_bias']}' ({nh},); check "
                         f"--names.")


def float_array(value: Any, name: str, where: str) -> np.ndarray:
    """A real array as float64 (exact for float16/32/64); ModelFileError for anything else."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        raise ModelFileError(f"{where}: '{name}' has dtype {arr.dtype}; real numbers are required.")
    return np.asarray(arr, dtype=np.float64)


def as_text(value: Any) -> Any:
    """bytes, 0-d arrays and numpy scalars as plain Python values (str for strings)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return as_text(value.item())
    if isinstance(value, np.generic):
        return as_text(value.item())
    return value


def where_of(path: Path) -> str:
    return f"model file '{path}'"


def hdf5_root(path: Path) -> tuple[dict[str, Any], set[str]] | None:
    """(root attributes, root member names) of an HDF5 file, or None when it is not HDF5 or cannot
    be opened (the reader then says why)."""
    import h5py

    try:
        if not h5py.is_hdf5(path):
            return None
        with h5py.File(path, "r") as f:
            return {k: as_text(v) for k, v in f.attrs.items()}, set(f.keys())
    except (OSError, RuntimeError, KeyError):
        return None


def read_head(path: Path, n: int = 64) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""
