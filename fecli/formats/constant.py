"""The ln Z constant of an imported model: ln Z_file(beta) = ln Z_plain(beta) + beta * log_z_offset.

A RestrictedBoltzmannMachines.jl CenteredRBM or StandardizedRBM couples the units through
(v - o_v) / s_v and (h - o_h) / s_h. Written as a plain RBM its energy is the plain energy
plus a constant c = -o_v^T W o_h (W the plain weights), so Z_file(beta) = exp(-beta c) Z_plain(beta)
and log_z_offset = -c. Estimators work on the plain model; :func:`shift_result` adds the
constant to what they report, so that ln Z refers to the user's model. Probabilities (ln p(v),
samples) are the same for both.
"""

from __future__ import annotations

from typing import Any


def log_z_offset(model: Any) -> float:
    """The model's ln Z constant per unit beta (0 for models read without one)."""
    source = getattr(model, "source", None)
    return float(getattr(source, "log_z_offset", 0.0) or 0.0)


def without_constant(model: Any) -> Any:
    """The plain model, the same parameters without the ln Z constant (``source`` dropped)."""
    from ..model import RBM

    return RBM(model.visible, model.hidden, model.weights, name=model.name, training=model.training)


def shift_result(result: Any, model: Any) -> Any:
    """``result`` (computed on the plain model) as a result for ``model``: ln Z and its interval
    moved by beta * log_z_offset, the constant recorded in the diagnostics."""
    offset = log_z_offset(model)
    if not offset:
        return result
    from ..result import shift_log_z

    shift = result.beta * offset
    out = shift_log_z(result, shift)
    d = out.diagnostics
    d["file_constant"] = {"log_z_offset": shift,
                          "note": f"ln Z of the file's model ({model.source.label}) = ln Z of the plain RBM + "
                                  f"{shift:.10g}"}
    out.diagnostics = d
    return out
