"""fecli's own format (fecli-rbm HDF5, :mod:`fecli.io`), with the optional root attribute
``log_z_offset`` that ``fecli convert`` writes for a model imported with a ln Z constant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import io
from .common import as_text, hdf5_root
from .spec import ReadOptions, Source

#: Root attribute holding the ln Z constant per unit beta (see :mod:`fecli.formats.constant`).
OFFSET_ATTR = "log_z_offset"


def detect(path: Path) -> bool:
    """An HDF5 file with a root attribute 'format' (its value is checked by the reader)."""
    root = hdf5_root(path)
    return root is not None and "format" in root[0]


def load(path: Path, options: ReadOptions) -> Any:
    model = io.load_model(path)
    attrs = hdf5_root(path)[0]  # type: ignore[index]
    offset = as_text(attrs.get(OFFSET_ATTR, 0.0))
    source = Source("fecli", f"fecli-rbm v{io.format_version(model)}", format_version=io.format_version(model))
    if offset:
        source.log_z_offset = float(offset)
        source.conventions.append(f"ln Z constant {float(offset):.10g} (stored by fecli convert) added to ln Z")
    model.source = source
    return model


def save(model: Any, path: Path) -> Path:
    """``io.save_model``, keeping a ln Z constant (root attribute ``log_z_offset``) and the
    checkpoints of a DsysDML/rbms file up to the one read (as the ``snapshots`` group, so that
    ``fecli trajectory`` follows the converted file too)."""
    from .constant import log_z_offset

    offset = log_z_offset(model)
    snapshots = None
    source = getattr(model, "source", None)
    if source is not None and source.format == "rbms" and model.is_bernoulli and source.path:
        from . import rbms

        snapshots = rbms.snapshots(Path(source.path), last=source.checkpoint)
        if snapshots is not None:
            snapshots.spacing = "rbms checkpoints"
    return io.save_model(model, path, extra_attrs={OFFSET_ATTR: offset} if offset else None, snapshots=snapshots)
