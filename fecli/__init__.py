"""fecli: free energies (ln Z) of Restricted Boltzmann Machines.

Library use, without the command line::

    from fecli import load_model, estimate
    model = load_model("sample_models/digits_64x16.h5")
    result = estimate(model, method="exact")
    print(result.log_z, result.free_energy)

Heavy modules (numba, h5py) load on first use, so importing fecli is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["RBM", "Result", "__version__", "estimate", "load_model", "save_model", "method_names"]

if TYPE_CHECKING:  # pragma: no cover
    from .model import RBM
    from .result import Result


def __getattr__(name: str) -> Any:
    if name == "RBM":
        from .model import RBM

        return RBM
    if name == "Result":
        from .result import Result

        return Result
    if name == "load_model":  # every format fecli reads (fecli.formats.open_model)
        from .formats import open_model

        return open_model
    if name == "save_model":
        from . import io

        return io.save_model
    if name in ("estimate", "method_names"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'fecli' has no attribute {name!r}")
