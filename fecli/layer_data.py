"""Data for any unit type: rows of unit values, validated by the model's visible layer.

* bernoulli: 0/1 values (greyscale with ``binarize`` / ``scale``, as :mod:`fecli.data`);
* spin: -1/+1 values, or 0/1 values read as spins x = 2y - 1 (as train-rbm reads them; the
  reader says which encoding it read);
* gaussian: any finite real values (``standardize`` centres each column and divides it by its
  standard deviation);
* potts: integer states 0..q-1, or aligned sequences from a FASTA file with an ``alphabet``
  (see :mod:`fecli.fasta`).

A Gaussian model written by ``fecli train-rbm --scale S --standardize`` stores the transform it
trained on (``training/data``: ``scale``, ``standardize_mean``, ``standardize_std``): its
parameters describe z = (x / S - mean) / std. Data for such a model, files and arrays alike, are
in the original units x: :func:`resolve_for` (what estimators call), :func:`fecli.loglik.from_log_z`
and the trajectory apply the stored transform once, and ln p(x) includes its log-Jacobian
(:class:`DataTransform`), so a log-likelihood is a density of the data as the user holds them.

Files: ``.npy``, ``.npz`` (with ``key``), ``.csv``, ``.txt``, ``-`` (an .npy stream on stdin),
and FASTA (``.fasta``, ``.fa``, ``.a2m``, ...) for Potts layers. Every problem is one
:class:`~fecli.errors.DataFileError` sentence naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
                standardize: bool = False, notes: list[str] | None = None) -> np.ndarray:
    """Validate raw rows for ``layer`` and return float64 values in the layer's own units.

    Spin rows of 0/1 values are mapped to -1/+1 (x = 2y - 1); ``notes`` (when given) receives the
    sentence saying which encoding was read."""
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
    if layer.name == "spin":
        data, note = read_spins(data, where)
        if notes is not None:
            notes.append(note)
    return layer.check_data(data, where)


def read_spins(data: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """(spin rows, a note saying which encoding was read): -1/+1 values as they are, 0/1 values as
    x = 2y - 1 (rows that are all 1 read as spins); anything else raises :class:`DataFileError`."""
    if np.all((data == -1) | (data == 1)):
        return data, f"{where}: read -1/+1 values as spins."
    if np.all((data == 0) | (data == 1)):
        return 2.0 * data - 1.0, f"{where}: read 0/1 values as spins x = 2y - 1 (0 -> -1, 1 -> +1)."
    lo, hi = float(data.min()), float(data.max())
    raise DataFileError(f"{where} has values in [{lo:g}, {hi:g}]; spin data must be -1/+1 (or 0/1).")


def standardize_columns(data: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(standardized data, column means, column scales): each column minus its mean, divided by its
    standard deviation (a constant column is only centred: its scale is 1)."""
    mean = data.mean(axis=0)
    std = data.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (data - mean) / std, mean, std


def load_for(layer: Layer, path: str | os.PathLike, *, key: str | None = None, binarize: float | None = None,
             scale: float | None = None, alphabet: str | None = None, standardize: bool = False,
             notes: list[str] | None = None) -> np.ndarray:
    """Load and validate a data file for ``layer`` (see the module docstring)."""
    if alphabet is not None and layer.name != "potts":
        raise DataFileError(f"--alphabet applies to potts units; the model's visible units are {layer.name}.")
    raw, where = read_raw(path, key=key, alphabet=alphabet)
    return prepare_for(layer, raw, where, binarize=binarize, scale=scale, standardize=standardize, notes=notes)


def load_for_model(model: Any, path: str | os.PathLike, *, key: str | None = None, binarize: float | None = None,
                   scale: float | None = None, alphabet: str | None = None,
                   notes: list[str] | None = None) -> np.ndarray:
    """A data file for ``model``, checked against its width, in the data's original units.

    For a model with a stored transform (:func:`stored_transform`) the transform itself is
    applied later, once, by the functions that take the rows; a ``scale`` given again must
    equal the stored one (it is then not applied twice), otherwise :class:`DataFileError`."""
    from .data import load_data

    transform = stored_transform(model)
    if transform is not None and transform.scale != 1.0 and scale is not None:
        if scale != transform.scale:
            raise DataFileError(f"model '{model.name}' was trained on data divided by {transform.scale:g} (stored in "
                                f"the file, and applied by fecli); --scale {scale:g} differs: give the data in "
                                f"the units it was trained on, without --scale.")
        scale = None
    alphabet = _stored_alphabet(model, path, alphabet)
    if model.is_bernoulli:
        rows = load_data(path, key=key, binarize=binarize, scale=scale)
    else:
        rows = load_for(model.visible, path, key=key, binarize=binarize, scale=scale, alphabet=alphabet, notes=notes)
    check_width(rows, model, str(path))
    return rows


def _stored_alphabet(model: Any, path: str | os.PathLike, alphabet: str | None) -> str | None:
    """The alphabet to read ``path`` with for a Potts model trained on FASTA (its symbols are stored in
    ``training/data``): the stored one when none is given and the file is FASTA; a given one must
    have the same symbols in the same order (else the states would silently mean other symbols)."""
    from .fasta import ALPHABETS, is_fasta, resolve_alphabet

    stored = ((getattr(model, "training", None) or {}).get("data") or {}).get("alphabet")
    if model.visible.name != "potts" or not isinstance(stored, str) or str(path) == "-":
        return alphabet
    if alphabet is None:
        if not is_fasta(Path(path)):
            return None
        return stored if stored in ALPHABETS else next((n for n, sym in ALPHABETS.items() if sym == stored), stored)
    if resolve_alphabet(alphabet)[0] != resolve_alphabet(stored)[0]:  # stored as a name or as its symbols
        raise DataFileError(f"model '{model.name}' was trained on FASTA in the alphabet {stored!r} (stored in the "
                            f"file); --alphabet {alphabet} would give its states other symbols.")
    return alphabet


@dataclass(frozen=True)
class DataTransform:
    """The map train-rbm applied to a Gaussian model's data, z = (x / scale - mean) / std per
    column (x: the data as given, z: the model's units), and its log-Jacobian in nats,
    ln |dz/dx| = -n ln scale - sum_i ln std_i, so that ln p(x) = ln p_model(z) + log_jacobian."""

    scale: float
    mean: np.ndarray
    std: np.ndarray

    @property
    def log_jacobian(self) -> float:
        return float(-len(self.std) * np.log(self.scale) - np.sum(np.log(self.std)))

    def to_model_units(self, x: np.ndarray) -> np.ndarray:
        """(n, nv) data rows -> the model's units."""
        return (np.asarray(x, dtype=np.float64) / self.scale - self.mean) / self.std

    def to_data_units(self, z: np.ndarray) -> np.ndarray:
        """(n, nv) rows in the model's units -> the data's units (samples, reconstructions)."""
        return (np.asarray(z, dtype=np.float64) * self.std + self.mean) * self.scale

    def folded(self, model: Any) -> Any:
        """The same density of the original data x as an RBM without a transform (for formats that
        cannot store one): with S = scale std and mu = scale mean, z = (x - mu) / S gives
        gamma' = gamma / S^2, theta' = theta / S + gamma mu / S^2, W' = W / S (rows), hidden bias
        b' = b - W^T (mu / S); the dropped constant energy only moves ln Z, so p(x) = p_model(z) / prod S."""
        from .model import RBM

        s_total, mu = self.scale * self.std, self.scale * self.mean
        vis = model.visible
        gamma = vis.precision
        visible = vis.replace(bias=vis.bias / s_total + gamma * mu / s_total**2, precision=gamma / s_total**2)
        w = model.weights2d
        hid = model.hidden
        hidden = hid.replace(bias=hid.bias - w.T @ (mu / s_total))
        return RBM(visible, hidden, w / s_total[:, None], name=model.name)

    def describe(self) -> str:
        parts = ([f"divided by {self.scale:g}"] if self.scale != 1.0 else []) + \
                (["standardized by the stored column means and deviations"] if np.any(self.std != 1.0)
                 or np.any(self.mean != 0.0) else [])
        return " and ".join(parts)


def stored_transform(model: Any) -> DataTransform | None:
    """The data transform a Gaussian-visible model was trained with (``training/data`` of a file
    written by train-rbm with ``--scale`` and/or ``--standardize``), or None (any other model)."""
    if getattr(getattr(model, "visible", None), "name", None) != "gaussian":
        return None
    info = ((getattr(model, "training", None) or {}).get("data") or {})
    return transform_from_info(info, model.n_visible, f"model '{model.name}'")


def transform_from_info(info: dict[str, Any], n: int, where: str) -> DataTransform | None:
    """The :class:`DataTransform` recorded in a training group's ``data`` entries (``scale``,
    ``standardize_mean``, ``standardize_std``) of a Gaussian visible layer of ``n`` units, or None."""
    scale = info.get("scale")
    scale = 1.0 if scale is None else float(scale)
    mean, std = info.get("standardize_mean"), info.get("standardize_std")
    mean = np.zeros(n) if mean is None else np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.ones(n) if std is None else np.asarray(std, dtype=np.float64).reshape(-1)
    if scale == 1.0 and not np.any(mean) and np.all(std == 1.0):
        return None
    if mean.shape != (n,) or std.shape != (n,) or not (scale > 0 and np.all(std > 0) and np.all(np.isfinite(mean))):
        from .errors import ModelFileError

        raise ModelFileError(f"{where}: the stored data transform (training/data scale, "
                             f"standardize_mean, standardize_std) does not fit its {n} visible units.")
    return DataTransform(scale, mean, std)


def to_model_units(rows: np.ndarray, model: Any) -> np.ndarray:
    """Data rows (original units) in ``model``'s units: the stored transform applied, if any."""
    transform = stored_transform(model)
    return rows if transform is None or rows is None else transform.to_model_units(rows)


def log_jacobian(model: Any) -> float:
    """ln |dz/dx| of ``model``'s stored data transform (0 without one), nats per row."""
    transform = stored_transform(model)
    return 0.0 if transform is None else transform.log_jacobian


def check_width(data: np.ndarray, model: Any, source: str) -> None:
    """Raise :class:`DataFileError` unless the rows have one value per visible unit of ``model``."""
    from .data import check_width as _check

    _check(data, model, source)
    if model.visible.name == "potts":
        model.visible.check_data(data, f"data '{source}'")


def resolve_for(data: Any, model: Any) -> tuple[np.ndarray | None, str | None]:
    """``data`` as an estimator receives it (None, a path or an array, in the data's original units)
    -> (validated rows in the model's units or None, label); see the module docstring."""
    if data is None:
        return None, None
    if isinstance(data, (str, os.PathLike)):
        array, label = load_for(model.visible, data), str(data)
    else:
        array, label = prepare_for(model.visible, data, "data array"), "<array>"
    check_width(array, model, label)
    return to_model_units(array, model), label


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
        mapped, note = read_spins(data, where)
        if mapped is not data:
            facts["encoding"] = "0/1 mapped to -1/+1"
        return mapped, facts, note
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
