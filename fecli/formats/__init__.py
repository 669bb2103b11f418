"""Model files of other RBM tools behind one entry point, :func:`open_model`.

Each format is one module with ``detect(path) -> bool``, ``load(path, options) -> RBM`` and, where
fecli can write it, ``save(model, path)``; :data:`FORMATS` lists them in detection order.

=============  =====================================================  ======  ==========================
name           files                                                  write   needs
=============  =====================================================  ======  ==========================
fecli          fecli-rbm HDF5 (format_version 1, 2)                    yes     -
rbms           DsysDML/rbms HDF5 (``model_type``, ``update_<k>``)      yes     -
rbmjl          RestrictedBoltzmannMachines.jl HDF5 (format "1.0.0")    yes     -
hdf5           any other HDF5 file of three arrays (``--names``)       no      -
skops          scikit-learn BernoulliRBM saved by skops                no      skops (fecli[formats])
safetensors    ``.safetensors`` weights                                yes     safetensors (fecli[formats])
npz            numpy ``.npz`` archives                                 yes     -
pt             PyTorch state dicts ``.pt``/``.pth`` (weights_only)     no      torch (fecli[torch])
pickle         scikit-learn BernoulliRBM pickled or joblib-dumped      no      --allow-pickle
=============  =====================================================  ======  ==========================

Every reader validates what it reads and raises :class:`~fecli.errors.ModelFileError` with one
sentence naming the file, the problem and what to do. The model returned carries ``source``
(:class:`~fecli.formats.common.Source`): the format, checkpoint, conventions applied and the
ln Z constant (see :mod:`fecli.formats.common`).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelFileError
from .spec import ReadOptions, Source, parse_names

__all__ = ["FORMATS", "Format", "ReadOptions", "Source", "open_model", "save_as", "convert_file", "format_names",
           "detect_format", "split_checkpoint", "log_z_offset", "without_constant", "shift_result"]


@dataclass(frozen=True)
class Format:
    """A registered model-file format (the functions live in ``module``, imported on use)."""

    name: str
    label: str
    module: str
    can_save: bool = False
    checkpoints: bool = False
    takes_names: bool = False
    suffix: str = ".h5"

    def _module(self) -> Any:
        return importlib.import_module(f"{__name__}.{self.module}")

    def _function(self, verb: str) -> Any:
        """The module's ``verb_<name>`` (a module serving several formats) or ``verb``."""
        module = self._module()
        return getattr(module, f"{verb}_{self.name}", None) or getattr(module, verb)

    def detect(self, path: Path) -> bool:
        return bool(self._function("detect")(path))

    def load(self, path: Path, options: ReadOptions) -> Any:
        return self._function("load")(path, options)

    def save(self, model: Any, path: Path) -> Path:
        if not self.can_save:
            raise ModelFileError(f"fecli cannot write {self.label} files; it writes: "
                                 f"{', '.join(f.name for f in FORMATS.values() if f.can_save)}.")
        return self._function("save")(model, path)


#: The formats, in detection order (the most specific first).
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("fecli", "fecli-rbm HDF5", "fecli_hdf5", can_save=True),
    Format("rbms", "DsysDML/rbms HDF5", "rbms", can_save=True, checkpoints=True),
    Format("rbmjl", "RestrictedBoltzmannMachines.jl HDF5", "rbmjl", can_save=True),
    Format("hdf5", "plain HDF5 arrays", "arrays", takes_names=True),
    Format("skops", "scikit-learn BernoulliRBM (skops)", "sklearn", suffix=".skops"),
    Format("safetensors", "safetensors", "arrays", can_save=True, takes_names=True, suffix=".safetensors"),
    Format("npz", "numpy .npz", "arrays", can_save=True, takes_names=True, suffix=".npz"),
    Format("pt", "PyTorch state dict", "arrays", takes_names=True, suffix=".pt"),
    Format("pickle", "scikit-learn BernoulliRBM (pickle/joblib)", "sklearn", suffix=".pkl"),
)}


def format_names() -> tuple[str, ...]:
    return tuple(FORMATS)


def detect_format(path: Path) -> Format | None:
    """The first format whose detector accepts ``path`` (by content, not by name), or None."""
    for fmt in FORMATS.values():
        if fmt.detect(path):
            return fmt
    return None


def split_checkpoint(path: str | os.PathLike) -> tuple[Path, int | None]:
    """``MODEL.h5@K`` -> (MODEL.h5, K) when MODEL.h5 exists and the path itself does not."""
    text = os.fspath(path)
    if "@" in text and not Path(text).exists():
        base, _, tail = text.rpartition("@")
        if Path(base).exists():
            try:
                return Path(base), int(tail)
            except ValueError:
                raise ModelFileError(f"model '{text}': the checkpoint after '@' must be an integer update number, "
                                     f"got '{tail}'.") from None
    return Path(text), None


def open_model(path: str | os.PathLike, format: str = "auto", *, checkpoint: int | None = None,
               names: dict[str, str] | str | None = None, transpose: bool | None = None,
               allow_pickle: bool = False) -> Any:
    """Read a model file of any registered format as an :class:`~fecli.model.RBM`.

    path : the file; ``MODEL.h5@K`` selects checkpoint K of a DsysDML/rbms file.
    format : a name of :data:`FORMATS`, or "auto" (detected from the content).
    checkpoint : update number of a DsysDML/rbms checkpoint (default: the last).
    names : for npz, safetensors, pt and plain HDF5 files, the keys of weights, visible_bias and
        hidden_bias ({"weights": "W", ...} or "weights=W,visible_bias=bv,hidden_bias=bh").
    transpose : whether the weight matrix is stored (n_hidden, n_visible); None: from the biases.
    allow_pickle : read pickle/joblib files (a pickle can run code: only files you trust).

    The model's ``source`` says what was read and converted. Raises ModelFileError (one sentence).
    """
    base, at = split_checkpoint(path)
    if at is not None and checkpoint is not None and at != checkpoint:
        raise ModelFileError(f"model '{path}' names checkpoint {at}, but --checkpoint is {checkpoint}.")
    checkpoint = at if at is not None else checkpoint
    options = ReadOptions(format=format, checkpoint=checkpoint,
                          names=parse_names(names) if isinstance(names, str) or names is None else dict(names),
                          transpose=transpose, allow_pickle=allow_pickle)
    where = f"model file '{base}'"
    if not base.exists():
        raise ModelFileError(f"{where} does not exist.")
    if base.is_dir():
        raise ModelFileError(f"{where} is a folder, not a file.")
    fmt = _choose(base, format, where)
    if checkpoint is not None and not fmt.checkpoints:
        raise ModelFileError(f"{where} is a {fmt.label} file, which has no checkpoints; --checkpoint and "
                             f"MODEL@K apply to DsysDML/rbms files.")
    if (options.names or transpose is not None) and not fmt.takes_names:
        flag = "--names" if options.names else "--transpose"
        raise ModelFileError(f"{where} is a {fmt.label} file, whose layout is known; {flag} applies to npz, "
                             f"safetensors, pt and plain HDF5 files.")
    model = fmt.load(base, options)
    model.source.path = str(base)
    if checkpoint is not None:  # MODEL@K or --checkpoint K: results name the checkpoint they are about
        model.name = f"{base}@{checkpoint}"
    return model


def _choose(path: Path, format: str, where: str) -> Format:
    if format != "auto":
        if format not in FORMATS:
            raise ModelFileError(f"unknown model format '{format}'; the formats are: auto, {', '.join(FORMATS)}.")
        fmt = FORMATS[format]
        if not fmt.detect(path):
            found = detect_format(path)
            other = (f"; it is a {found.label} file (drop --model-format, or use --model-format {found.name})"
                     if found else "")
            raise ModelFileError(f"{where} is not a {fmt.label} file{other}.")
        return fmt
    fmt = detect_format(path)
    if fmt is None:
        from .arrays import unknown_file_message

        raise ModelFileError(unknown_file_message(path, where))
    return fmt


def save_as(model: Any, path: str | os.PathLike, to: str) -> Path:
    """Write ``model`` as a ``to`` file (a format of :data:`FORMATS` that fecli can write)."""
    if to not in FORMATS:
        raise ModelFileError(f"unknown model format '{to}'; fecli writes: "
                             f"{', '.join(f.name for f in FORMATS.values() if f.can_save)}.")
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ModelFileError(f"cannot write model file '{path}': folder '{folder}' does not exist.")
    return FORMATS[to].save(model, path)


def writable_formats() -> list[str]:
    return [f.name for f in FORMATS.values() if f.can_save]


def convert_file(source: str | os.PathLike, output: str | os.PathLike, to: str | None = None, *,
                 overwrite: bool = False, **read: Any) -> tuple[Path, list[str]]:
    """Read ``source`` (any format, ``read`` as for :func:`open_model`) and write it to ``output``
    as ``to`` (default: from the extension, .npz or .safetensors, else fecli). Returns the path
    written and notes for the user: what was converted on reading, what the target cannot hold.
    """
    output = Path(output)
    if output.exists() and not overwrite:
        raise ModelFileError(f"output file '{output}' already exists (use --overwrite to replace it).")
    if output.is_dir():
        raise ModelFileError(f"cannot write model file '{output}': it is a folder.")
    to = to or format_for_suffix(output)
    model = open_model(source, **read)
    src = model.source
    notes = [f"read {source} as {src.label}" + (f" ({'; '.join(src.conventions)})" if src.conventions else "")]
    offset = log_z_offset(model)
    if offset and to != "fecli":
        notes.append(f"the ln Z constant {offset:.10g} of the source has no place in a {FORMATS[to].label} file: "
                     f"ln Z of {output} = ln Z of {source} {'-' if offset >= 0 else '+'} {abs(offset):.10g} (beta = 1); "
                     f"--to fecli keeps it.")
    from ..layer_data import stored_transform

    transform = stored_transform(model)
    if transform is not None and to != "fecli":  # the parameters alone would describe the transformed data
        model = transform.folded(model)
        notes.append(f"{source} was trained on the data {transform.describe()}; a {FORMATS[to].label} file cannot "
                     f"hold that transform, so it is folded into the parameters: {output} is the same density of "
                     f"the original data (its ln Z differs by a constant).")
    save_as(model, output, to)
    notes.append(f"wrote {output} as {FORMATS[to].label}")
    return output, notes


#: Output extensions that mean a fecli-rbm file when no format is named.
HDF5_SUFFIXES = (".h5", ".hdf5")


def format_for_suffix(path: Path) -> str:
    """The writable format an output name's extension names: .npz -> npz, .safetensors ->
    safetensors, .h5/.hdf5 -> fecli. Raises InvalidOptionError for any other extension (fecli
    never guesses a format the name does not say), naming the extensions and formats it writes."""
    from ..errors import InvalidOptionError

    suffix = path.suffix.lower()
    if suffix in HDF5_SUFFIXES:
        return "fecli"
    for fmt in FORMATS.values():
        if fmt.can_save and fmt.suffix == suffix and fmt.suffix != ".h5":
            return fmt.name
    known = [*HDF5_SUFFIXES, *(f.suffix for f in FORMATS.values() if f.can_save and f.suffix != ".h5")]
    raise InvalidOptionError(
        f"cannot tell which format to write from the extension of '{path}': use {', '.join(known)}, "
        f"or name the format with --to ({', '.join(writable_formats())}).")


from .constant import log_z_offset, shift_result, without_constant  # noqa: E402 (light: no numpy)
