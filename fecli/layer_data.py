"""Data for any unit type: rows of unit values, validated by the model's visible layer.

* bernoulli: 0/1 values (greyscale with ``binarize`` / ``scale``, as :mod:`fecli.data`);
* spin: -1/+1 values (0/1 data is refused, with the map 2x - 1 named);
* gaussian: any finite real values (``standardize`` centres each column and divides it by its
  standard deviation);
* potts: integer states 0..q-1, or aligned sequences from a FASTA file with an ``alphabet``
  (see :mod:`fecli.fasta`).

Files: ``.npy``, ``.npz`` (with ``key``), ``.csv``, ``.txt``, ``-`` (an .npy stream on stdin),
and FASTA (``.fasta``, ``.fa``, ``.a2m``, ...) for Potts layers. Every problem is one
:class:`~fecli.errors.DataFileError` sentence naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataFileError
from .layers import Layer


def read_raw(path: str | os.PathLike, *, key: str | None = None, alphabet: str | None = None) -> tuple[np.ndarray, str]:
    """(raw 2-D array, description) of a data file, before any unit-type check."""
    from . import data as _data
    from .fasta import is_fasta, read_fasta

    if str(path) == "-":
        return _data._read_stdin_npy(), "data from stdin"
    path = Path(path)
    where = f"data file '{path}'"
    if alphabet is not None or is_fasta(path):
        if alphabet is None:
            raise DataFileError(f"{where} looks like FASTA; give its alphabet (--alphabet protein|rna|dna|SYMBOLS).")
        return read_fasta(path, alphabet), where
    if not path.exists():
        raise DataFileError(f"{where} does not exist.")
    suffix = path.suffix.lower()
    if suffix not in _data.FORMATS:
        raise DataFileError(f"{where} has an unsupported extension {suffix or '(none)'!r}; use "
                            f"{', '.join(_data.FORMATS)} or a FASTA file.")
    return _data._read_array(path, suffix, key, where), where


def prepare_for(layer: Layer, raw: Any, where: str, *, binarize: float | None = None, scale: float | None = None,
                standardize: bool = False) -> np.ndarray:
    """Validate raw rows for ``layer`` and return float64 values in the layer's own units."""
    from .data import prepare

    if layer.name == "bernoulli":
        return prepare(raw, where, binarize=binarize, scale=scale)
    if binarize is not None:
        raise DataFileError(f"--binarize applies to bernoulli units; the model's visible units are {layer.name}.")
    data = np.asarray(raw)
    if data.ndim == 2 and (data.shape[0] == 0 or data.shape[1] == 0):
        raise DataFileError(f"{where} is empty (shape {data.shape}).")
    data = layer._check_width(data, where)
    if scale is not None:
        if layer.name != "gaussian":
            raise DataFileError(f"--scale applies to bernoulli and gaussian units, not {layer.name}.")
        if not scale > 0:
            raise DataFileError(f"scale must be > 0, got {scale}.")
        data = data / scale
    if standardize:
        if layer.name != "gaussian":
            raise DataFileError(f"--standardize applies to gaussian units, not {layer.name}.")
        data = standardize_columns(data, where)[0]
    return layer.check_data(data, where)


def standardize_columns(data: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(standardized data, column means, column scales): each column minus its mean, divided by its
    standard deviation (a constant column is only centred: its scale is 1)."""
    mean = data.mean(axis=0)
    std = data.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (data - mean) / std, mean, std


def load_for(layer: Layer, path: str | os.PathLike, *, key: str | None = None, binarize: float | None = None,
             scale: float | None = None, alphabet: str | None = None, standardize: bool = False) -> np.ndarray:
    """Load and validate a data file for ``layer`` (see the module docstring)."""
    if alphabet is not None and layer.name != "potts":
        raise DataFileError(f"--alphabet applies to potts units; the model's visible units are {layer.name}.")
    raw, where = read_raw(path, key=key, alphabet=alphabet)
    return prepare_for(layer, raw, where, binarize=binarize, scale=scale, standardize=standardize)


def check_width(data: np.ndarray, model: Any, source: str) -> None:
    """Raise :class:`DataFileError` unless the rows have one value per visible unit of ``model``."""
    from .data import check_width as _check

    _check(data, model, source)
    if model.visible.name == "potts":
        model.visible.check_data(data, f"data '{source}'")


def resolve_for(data: Any, model: Any) -> tuple[np.ndarray | None, str | None]:
    """``data`` as an estimator receives it (None, a path or an array) -> (validated rows or None, label)."""
    if data is None:
        return None, None
    if isinstance(data, (str, os.PathLike)):
        array, label = load_for(model.visible, data), str(data)
    else:
        array, label = prepare_for(model.visible, data, "data array"), "<array>"
    check_width(array, model, label)
    return array, label


def load_training_rows(unit_type: str, path: str | os.PathLike, *, key: str | None = None,
                       binarize: float | None = None, scale: float | None = None, alphabet: str | None = None,
                       states: int | None = None, standardize: Any = False) -> tuple[np.ndarray, dict[str, Any], str | None]:
    """Training rows for a visible layer of ``unit_type``: (rows, facts for the data record, a note for
    the user or None).

    spin: -1/+1 values are read as they are; 0/1 values are read as spins x = 2y - 1 (the note says
    which). gaussian: ``standardize`` True centres and scales each column by the data's own mean and
    standard deviation (stored in the facts), or by a (mean, std) pair (for validation rows).
    potts: FASTA with ``alphabet`` (q = its size) or integer states (q = ``states``, or max + 1).
    """
    from .data import load_data
    from .layers import make_layer

    if unit_type == "bernoulli":
        if alphabet is not None or standardize:
            raise DataFileError(f"{'--alphabet' if alphabet else '--standardize'} does not apply to bernoulli "
                                f"visible units.")
        return load_data(path, key=key, binarize=binarize, scale=scale), {}, None
    if binarize is not None:
        raise DataFileError(f"--binarize applies to bernoulli units; the visible units are {unit_type}.")
    if alphabet is not None and unit_type != "potts":
        raise DataFileError(f"--alphabet applies to potts units; the visible units are {unit_type}.")
    if standardize is not False and standardize is not None and unit_type != "gaussian":
        raise DataFileError(f"--standardize applies to gaussian units; the visible units are {unit_type}.")
    raw, where = read_raw(path, key=key, alphabet=alphabet)
    layer = make_layer("bernoulli", np.zeros(1))  # only for the shared width / finiteness checks
    data = layer._check_width(raw, where)
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise DataFileError(f"{where} is empty (shape {data.shape}).")
    facts: dict[str, Any] = {}
    note = None
    if unit_type == "spin":
        if np.all((data == -1) | (data == 1)):
            note = f"{where}: read -1/+1 values as spins."
        elif np.all((data == 0) | (data == 1)):
            data = 2.0 * data - 1.0
            note = f"{where}: read 0/1 values as spins x = 2y - 1 (0 -> -1, 1 -> +1)."
            facts["encoding"] = "0/1 mapped to -1/+1"
        else:
            lo, hi = float(data.min()), float(data.max())
            raise DataFileError(f"{where} has values in [{lo:g}, {hi:g}]; spin data must be -1/+1 (or 0/1).")
        return data, facts, note
    if unit_type == "gaussian":
        if scale is not None:
            if not scale > 0:
                raise DataFileError(f"scale must be > 0, got {scale}.")
            data = data / scale
        if isinstance(standardize, tuple):
            mean, std = standardize
            data = (data - mean) / std
        elif standardize:
            data, mean, std = standardize_columns(data, where)
            facts.update(standardize_mean=mean, standardize_std=std)
        return data, facts, None
    if scale is not None:
        raise DataFileError(f"--scale applies to bernoulli and gaussian units, not {unit_type}.")
    if alphabet is not None:
        from .fasta import resolve_alphabet

        symbols, named = resolve_alphabet(alphabet)
        if states is not None and states != len(symbols):
            raise DataFileError(f"--states {states} does not match the alphabet's {len(symbols)} symbols.")
        states = len(symbols)
        facts["alphabet"] = alphabet if named else symbols  # a name keeps its reading rules (lower case)
    if states is None:
        bad = (data != np.round(data)) | (data < 0)
        if bad.any():
            r, c = (int(i) for i in np.argwhere(bad)[0])
            raise DataFileError(f"{where}: row {r}, column {c} holds {data[r, c]:g}, which is not a Potts state "
                                f"(an integer >= 0).")
        states = max(2, int(data.max()) + 1)
    make_layer("potts", np.zeros((data.shape[1], states))).check_data(data, where)
    facts["states"] = states
    return data, facts, None


def alphabet_for(model: Any, path: str | os.PathLike, alphabet: str | None) -> str | None:
    """``alphabet`` (--alphabet) when given; else, for a FASTA data file read under a Potts model, the
    alphabet the model was trained with (``train-rbm --alphabet`` stores its symbols in the training
    group's ``data``), so that loglik and trajectory need not be told it again; else None."""
    from .fasta import is_fasta

    if alphabet is not None or str(path) == "-" or model.visible.name != "potts" or not is_fasta(path):
        return alphabet
    stored = ((getattr(model, "training", None) or {}).get("data") or {}).get("alphabet")
    return stored if isinstance(stored, str) and stored else None
