"""Data files: binary examples as rows, for every command that takes ``--data``, and array outputs.

Accepted formats: ``.npy``, ``.npz`` (one array, or the one named by ``key``),
``.csv`` / ``.txt`` (numeric text; comma, or whitespace for .txt). Values must be
0/1. Greyscale data is accepted with ``binarize=THRESHOLD`` (values > threshold
become 1), after optional division by ``scale`` (e.g. 255 for 0..255 images); a
threshold outside the range of the (scaled) values, or one meant for [0, 1] data
applied to larger values, is refused.

Arrays that commands write (``fecli sample``'s samples, ``fecli loglik --per-example``)
go through :func:`save_array`, in the same four formats, chosen by the extension, so
they read back with :func:`load_data`.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np

from .errors import DataFileError, InvalidOptionError

FORMATS = (".npy", ".npz", ".csv", ".txt")
#: Default pseudo-count (in examples) that keeps base-rate logits finite.
DEFAULT_PSEUDOCOUNT = 1.0


def load_data(
    path: str | os.PathLike,
    *,
    key: str | None = None,
    binarize: float | None = None,
    scale: float | None = None,
) -> np.ndarray:
    """Load a 2-D array of binary examples (rows) as float64 0/1 values; ``"-"`` reads .npy from stdin.

    Raises :class:`DataFileError` with one sentence naming the file and the problem
    (missing file, unknown format, ragged text, not 2-D, empty, NaN/inf, values that
    are not 0/1 without ``binarize``).
    """
    if str(path) == "-":
        return prepare(_read_stdin_npy(), "data from stdin", binarize=binarize, scale=scale)
    path = Path(path)
    where = f"data file '{path}'"
    if not path.exists():
        raise DataFileError(f"{where} does not exist.")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataFileError(f"{where} has an unsupported extension {suffix or '(none)'!r}; use {', '.join(FORMATS)}.")
    raw = _read_array(path, suffix, key, where)
    return prepare(raw, where, binarize=binarize, scale=scale)


def prepare(raw: np.ndarray, where: str, *, binarize: float | None = None, scale: float | None = None) -> np.ndarray:
    """Validate an in-memory array of examples and return it as float64 0/1 values."""
    data = np.asarray(raw)
    if data.dtype.kind not in "biuf":
        raise DataFileError(f"{where} holds {data.dtype} values; numeric 0/1 data is required.")
    if data.ndim == 1:
        raise DataFileError(f"{where} is 1-D with shape {data.shape}; examples must be rows of a 2-D array.")
    if data.ndim != 2:
        raise DataFileError(f"{where} has shape {data.shape}; a 2-D array (examples x units) is required.")
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise DataFileError(f"{where} is empty (shape {data.shape}).")
    data = data.astype(np.float64)
    if not np.all(np.isfinite(data)):
        raise DataFileError(f"{where} contains NaN or inf values.")
    if scale is not None:
        if not scale > 0:
            raise DataFileError(f"scale must be > 0, got {scale}.")
        data = data / scale
    if binarize is not None:
        check_threshold(binarize, data, where, scale)
        return (data > binarize).astype(np.float64)
    if not np.all((data == 0) | (data == 1)):
        lo, hi = float(data.min()), float(data.max())
        if np.all((data == -1) | (data == 1)):
            raise DataFileError(f"{where} holds +-1 values, but the model's units are bernoulli (0/1); map them "
                                f"with (x + 1) / 2, or use a spin model.")
        factor = hi * (scale or 1.0)  # the data's own maximum (0..16 digits are not 0..255 pixels)
        hint = f" (try --scale {factor:g} --binarize 0.5)" if hi > 1 else " (try --binarize 0.5)"
        raise DataFileError(f"{where} has values in [{lo:g}, {hi:g}] that are not binary 0/1{hint}.")
    return data


def check_array_path(path: str | os.PathLike, what: str = "output file") -> Path:
    """Refuse an output path whose extension names none of the formats :func:`save_array` writes."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InvalidOptionError(
            f"cannot write {what} '{path}': the format follows the extension, one of {', '.join(FORMATS)}."
        )
    return path


def save_array(path: str | os.PathLike, array: np.ndarray, *, key: str = "data") -> Path:
    """Write ``array`` (1-D or 2-D) atomically in the format its extension names.

    ``.npy``: the array as is; ``.npz``: one array named ``key``; ``.csv`` / ``.txt``: one row
    per line, comma- or space-separated (integers as integers, floats with 17 significant
    digits, so they read back exactly). Raises :class:`InvalidOptionError` for any other extension.
    """
    from .atomic import atomic_path

    path = check_array_path(path)
    suffix = path.suffix.lower()
    array = np.asarray(array)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            if suffix == ".npy":
                np.save(fh, array)
            elif suffix == ".npz":
                np.savez(fh, **{key: array})
            else:
                number = "%d" if array.dtype.kind in "biu" else "%.17g"
                np.savetxt(fh, array, fmt=number, delimiter="," if suffix == ".csv" else " ")
    return path


def check_threshold(threshold: float, data: np.ndarray, where: str, scale: float | None = None) -> None:
    """Refuse a --binarize threshold that cannot be what the user meant, with the fix.

    Refused: a threshold that is not a finite number; one outside [min, max) of the (scaled)
    values, which would make every value 0 or every value 1; and one strictly between 0 and 1
    on values that go above 1, a threshold for [0, 1] data applied to unscaled data (0..255
    pixels with 0.5 would turn nearly every pixel on); the fix it names divides by the data's
    maximum. Raises :class:`DataFileError`.
    """
    lo, hi = float(data.min()), float(data.max())
    scaled = f" after --scale {scale:g}" if scale is not None else ""
    if not math.isfinite(threshold):
        raise DataFileError(f"--binarize must be a finite number, got {threshold!r}.")
    if hi > 1.0 and 0.0 < threshold < 1.0:
        factor = hi * (scale or 1.0)  # the data's own maximum, in the file's units
        raise DataFileError(
            f"--binarize {threshold:g} is a threshold for values in [0, 1], but {where} has values in [{lo:g}, {hi:g}]"
            f"{scaled}: {'use' if scale else 'add'} --scale {factor:g} to divide them first, or give the threshold "
            f"in the data's units (e.g. --binarize {threshold * hi:g}; --binarize 0 makes every nonzero value 1)."
        )
    if not lo <= threshold < hi:
        every = "0" if threshold >= hi else "1"
        raise DataFileError(
            f"--binarize {threshold:g} is outside the range [{lo:g}, {hi:g}] of {where}{scaled}, so every value "
            f"would become {every}; choose a threshold in [{lo:g}, {hi:g}) (values > threshold become 1)."
        )


def _read_stdin_npy() -> np.ndarray:
    """An .npy stream on stdin (e.g. ``python make.py | fecli loglik model.h5 -``)."""
    import io
    import sys

    raw = sys.stdin.buffer.read()
    if not raw:
        raise DataFileError("no data arrived on stdin (expected an .npy stream).")
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(f"stdin does not hold an .npy array ({str(exc).splitlines()[0]}).") from exc


def _read_array(path: Path, suffix: str, key: str | None, where: str) -> np.ndarray:
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                if key is None:
                    if len(names) != 1:
                        raise DataFileError(f"{where} holds arrays {', '.join(names)}; choose one with --key.")
                    key = names[0]
                if key not in names:
                    raise DataFileError(f"{where} has no array {key!r} (found: {', '.join(names)}).")
                return archive[key]
        delimiter = "," if suffix == ".csv" else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below as empty
            return np.loadtxt(path, delimiter=delimiter, ndmin=2)
    except DataFileError:
        raise
    except ValueError as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataFileError(f"{where} could not be parsed ({text}); rows must all have the same number of numbers.") from exc
    except (OSError, EOFError) as exc:
        raise DataFileError(f"{where} cannot be read ({exc}).") from exc


def check_width(data: np.ndarray, model, source: str) -> None:
    """Raise :class:`DataFileError` unless data rows have one value per visible unit of ``model``."""
    if data.shape[1] != model.n_visible:
        raise DataFileError(
            f"data '{source}' has {data.shape[1]} columns, but model {model.name} has {model.n_visible} visible units."
        )


def base_rate_bias(data: np.ndarray, pseudocount: float = DEFAULT_PSEUDOCOUNT) -> np.ndarray:
    """Visible biases of the 'base-rate' model: logit of each unit's smoothed mean activity.

    p_i = (sum_n v_ni + pseudocount/2) / (N + pseudocount), a_i = ln p_i - ln(1 - p_i)
    (Salakhutdinov & Murray 2008); the pseudo-count keeps the logits finite.
    """
    data = np.asarray(data)  # no float64 copy of the whole array: the sum converts as it goes
    return base_rate_from_sums(data.sum(axis=0, dtype=np.float64), data.shape[0], pseudocount)


def base_rate_from_sums(sums: np.ndarray, n_rows: int, pseudocount: float = DEFAULT_PSEUDOCOUNT) -> np.ndarray:
    """:func:`base_rate_bias` from the column sums of the data (e.g. counts of ones) and its row count."""
    if pseudocount <= 0:
        raise ValueError(f"pseudocount must be > 0, got {pseudocount}")
    p = (np.asarray(sums, dtype=np.float64) + 0.5 * pseudocount) / (n_rows + pseudocount)
    return np.log(p) - np.log1p(-p)


def resolve_data(data, model) -> tuple[np.ndarray | None, str | None]:
    """``data`` as an estimator receives it (None, a path or an array) -> (0/1 array or None, label).

    A path is loaded with :func:`load_data`; an array is validated with :func:`prepare`;
    either must have one column per visible unit of ``model``.
    """
    if data is None:
        return None, None
    if isinstance(data, (str, os.PathLike)):
        array, label = load_data(data), str(data)
    else:
        array, label = prepare(data, "data array"), "<array>"
    check_width(array, model, label)
    return array, label
