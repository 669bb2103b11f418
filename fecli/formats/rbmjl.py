"""RestrictedBoltzmannMachines.jl HDF5 files (cossio; file format "1.0.0", written by its HDF5
extension's ``save_rbm``; layout read from that extension and the package's layers).

Root datasets: ``rbm_hdf5_file_format_version`` ("1.0.0"), ``rbm_type`` (RBM, CenteredRBM,
StandardizedRBM), ``visible_type`` / ``hidden_type`` (Binary, Spin, Potts, Gaussian, ReLU, dReLU,
...), ``weights``, ``visible_par``, ``hidden_par``; a CenteredRBM adds ``offset_v``, ``offset_h``,
a StandardizedRBM also ``scale_v``, ``scale_h``.

Julia arrays are column-major, so h5py sees every array with its axes reversed: a Julia array
of size (a, b, c) reads as (c, b, a). In Julia's order a layer of size ``sz`` has
``par`` of size (n_par, sz...) (Binary, Spin: theta; Potts: theta over (q, n...); Gaussian:
theta then gamma), and ``weights`` has size (size(visible)..., size(hidden)...). Multi-axis
layers are flattened in Julia's linear (column-major) order.

Energies (the package's convention): Binary and Spin -theta x; Potts -theta[x] on one-hot
states; Gaussian (|gamma| x / 2 - theta) x, so fecli's precision is |gamma|; the interaction
-v^T w h. A StandardizedRBM couples (v - o_v) / s_v and (h - o_h) / s_h (a CenteredRBM has
s = 1). Expanding the product gives the plain RBM exactly:

    W = w / (s_v s_h),   theta_v' = theta_v - W o_h,   theta_h' = theta_h - W^T o_v,
    E_file = E_plain - o_v^T W o_h,   so ln Z_file(beta) = ln Z_plain(beta) + beta o_v^T W o_h

(the package's own ``delta_energy``); that constant is kept as the model's ``log_z_offset``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError
from .common import as_text, float_array, hdf5_root
from .spec import ReadOptions, Source

HEADER = "rbm_hdf5_file_format_version"
VERSION = "1.0.0"
RBM_TYPES = {"RBM": (), "CenteredRBM": ("offset_v", "offset_h"),
             "StandardizedRBM": ("offset_v", "offset_h", "scale_v", "scale_h")}
#: Julia layer type -> (fecli unit type, number of parameter rows in ``par``).
LAYER_TYPES = {"Binary": ("bernoulli", 1), "Spin": ("spin", 1), "Potts": ("potts", 1), "Gaussian": ("gaussian", 2)}
JULIA_NAME = {fecli: julia for julia, (fecli, _) in LAYER_TYPES.items()}
NO_LAYER = ("ReLU", "dReLU", "pReLU", "xReLU", "nsReLU", "PottsGumbel")


def detect(path: Path) -> bool:
    root = hdf5_root(path)
    return root is not None and HEADER in root[1]


def _julia(f: Any, name: str, where: str) -> np.ndarray:
    """Dataset ``name`` as float64 in Julia's axis order (h5py's axes reversed)."""
    import h5py

    if not isinstance(f.get(name), h5py.Dataset):
        raise ModelFileError(f"{where} has no dataset '{name}' (found: {', '.join(sorted(f.keys()))}).")
    return float_array(f[name][()], name, where).T


def _text(f: Any, name: str, where: str) -> str:
    import h5py

    if not isinstance(f.get(name), h5py.Dataset):
        raise ModelFileError(f"{where} has no dataset '{name}' (found: {', '.join(sorted(f.keys()))}).")
    value = as_text(f[name][()])
    if not isinstance(value, str):
        raise ModelFileError(f"{where}: '{name}' is not a string ({value!r}).")
    return value


def _layer(kind: str, par: np.ndarray, side: str, where: str) -> tuple[str, np.ndarray, np.ndarray | None, tuple]:
    """(fecli unit type, bias, precision or None, Julia layer size) of a layer's ``par``."""
    if kind in NO_LAYER or kind not in LAYER_TYPES:
        raise ModelFileError(f"{where} has {side} units of type {kind}, which fecli has no layer for yet (it reads "
                             f"{', '.join(LAYER_TYPES)} units).")
    unit, rows = LAYER_TYPES[kind]
    if par.ndim < 2 or par.shape[0] != rows:
        raise ModelFileError(f"{where}: '{side}_par' of a {kind} layer must have {rows} parameter row(s) in Julia's "
                             f"order (n_par, size...), but it reads as {par.shape} (h5py: {par.T.shape}).")
    size = par.shape[1:]
    if unit == "potts":
        if side == "hidden":
            raise ModelFileError(f"{where} has Potts hidden units, which fecli has no layer for (Potts units must be "
                                 f"visible).")
        if size[0] < 2:
            raise ModelFileError(f"{where}: a Potts layer needs q >= 2 states, but its size is {size}.")
        q = size[0]
        return unit, par[0].reshape(q, -1, order="F").T, None, size
    theta = par[0].reshape(-1, order="F")
    if unit != "gaussian":
        return unit, theta, None, size
    gamma = par[1].reshape(-1, order="F")
    if np.any(gamma == 0):
        raise ModelFileError(f"{where}: a Gaussian {side} unit has gamma = 0 (no precision): its distribution "
                             f"cannot be normalised.")
    return unit, theta, np.abs(gamma), size


def _features(values: np.ndarray, unit: str, size: tuple) -> np.ndarray:
    """A Julia array of a layer's size as fecli's feature vector (Potts: index i q + x)."""
    if unit == "potts":
        return values.reshape(size[0], -1, order="F").T.ravel()
    return values.reshape(-1, order="F")


def load(path: Path, options: ReadOptions) -> Any:
    import h5py

    where = f"model file '{path}'"
    try:
        with h5py.File(path, "r") as f:
            version = _text(f, HEADER, where)
            if version != VERSION:
                raise ModelFileError(f"{where} is a RestrictedBoltzmannMachines.jl file of format version {version}; "
                                     f"fecli reads version {VERSION}.")
            rbm_type = _text(f, "rbm_type", where)
            if rbm_type not in RBM_TYPES:
                raise ModelFileError(f"{where} holds a RestrictedBoltzmannMachines.jl {rbm_type}; fecli reads "
                                     f"{', '.join(RBM_TYPES)}.")
            kinds = (_text(f, "visible_type", where), _text(f, "hidden_type", where))
            pars = (_julia(f, "visible_par", where), _julia(f, "hidden_par", where))
            w = _julia(f, "weights", where)
            extras = {name: _julia(f, name, where) for name in RBM_TYPES[rbm_type]}
    except ModelFileError:
        raise
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{where} is truncated or damaged and cannot be read ({exc}).") from exc
    layers = [_layer(kind, par, side, where) for kind, par, side in zip(kinds, pars, ("visible", "hidden"))]
    (vis_unit, a, vis_prec, vsize), (hid_unit, b, hid_prec, hsize) = layers
    if w.shape != vsize + hsize:
        raise ModelFileError(f"{where}: 'weights' reads as {w.shape} in Julia's order, but the layers' sizes "
                             f"{vsize} and {hsize} need {vsize + hsize} (h5py: {tuple(reversed(vsize + hsize))}).")
    nv_dim, nh_dim = int(np.prod(vsize)), int(np.prod(hsize))
    w2 = w.reshape(vsize[0], -1, nh_dim, order="F").transpose(1, 0, 2).reshape(nv_dim, nh_dim) \
        if vis_unit == "potts" else w.reshape(nv_dim, nh_dim, order="F")
    source = Source("rbmjl", f"RestrictedBoltzmannMachines.jl {rbm_type}", format_version=VERSION)
    source.conventions.append("arrays read in Julia's column-major order (h5py sees them transposed)")
    a_feat, b_feat = a.ravel(), b.copy()
    if rbm_type != "RBM":
        a_feat, b_feat, w2, offset = _unstandardize(extras, vis_unit, vsize, hsize, a_feat, b_feat, w2, where)
        source.log_z_offset = offset
        what = "un-centred" if rbm_type == "CenteredRBM" else "un-standardised (W / (s_v s_h))"
        source.conventions.append(f"{what}: biases shifted by the offsets; ln Z constant o_v^T W o_h = {offset:.10g} "
                                  f"added to ln Z")
    for prec, par, side in ((vis_prec, pars[0], "visible"), (hid_prec, pars[1], "hidden")):
        if prec is not None and np.any(par[1] < 0):
            source.conventions.append(f"{side} precision = |gamma| (the package's Gaussian energy uses |gamma|)")
    from ..layers import make_layer
    from ..model import RBM, check_layers

    vis_bias = a_feat.reshape(a.shape)
    visible = make_layer(vis_unit, vis_bias, vis_prec)
    hidden = make_layer(hid_unit, b_feat, hid_prec)
    weights = check_layers(visible, hidden, w2.reshape(visible.weight_shape + hidden.weight_shape), where,
                           ModelFileError)
    model = RBM(visible, hidden, weights, name=str(path))
    model.source = source
    return model


def _unstandardize(extras: dict[str, np.ndarray], vis_unit: str, vsize: tuple, hsize: tuple, a: np.ndarray,
                   b: np.ndarray, w2: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The plain RBM's (visible bias features, hidden bias, W, ln Z constant) of a centred or
    standardised one (see the module docstring)."""
    ov = extras["offset_v"]
    oh = extras["offset_h"]
    sv = extras.get("scale_v", np.ones(vsize))
    sh = extras.get("scale_h", np.ones(hsize))
    for name, value, size in (("offset_v", ov, vsize), ("scale_v", sv, vsize), ("offset_h", oh, hsize),
                              ("scale_h", sh, hsize)):
        if value.shape != size:
            raise ModelFileError(f"{where}: '{name}' reads as {value.shape} in Julia's order, but the layer's size "
                                 f"is {size}.")
        if not np.all(np.isfinite(value)):
            raise ModelFileError(f"{where}: '{name}' contains NaN or inf.")
    if np.any(sv == 0) or np.any(sh == 0):
        raise ModelFileError(f"{where}: a scale (scale_v or scale_h) is 0, so the standardised model is undefined.")
    ov, sv = _features(ov, vis_unit, vsize), _features(sv, vis_unit, vsize)
    oh, sh = oh.reshape(-1, order="F"), sh.reshape(-1, order="F")
    w_plain = w2 / sv[:, None] / sh[None, :]
    a_plain = a - w_plain @ oh
    b_plain = b - w_plain.T @ ov
    offset = float(ov @ w_plain @ oh)
    return a_plain, b_plain, w_plain, offset


def save(model: Any, path: Path) -> Path:
    """Write ``model`` as a plain ``RBM`` of format "1.0.0" (arrays axis-reversed, so that Julia's
    ``load_rbm`` sees its own order); a model whose layers RestrictedBoltzmannMachines.jl lacks is refused."""
    import h5py

    from ..atomic import atomic_path

    where = f"cannot write model file '{path}'"
    names = (JULIA_NAME.get(model.visible.name), JULIA_NAME.get(model.hidden.name))
    if None in names:
        raise ModelFileError(f"{where}: RestrictedBoltzmannMachines.jl has no layer for {model.combination} units.")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f[HEADER] = VERSION
            f["rbm_type"] = "RBM"
            f["visible_type"], f["hidden_type"] = names
            f["visible_par"] = _julia_par(model.visible).T
            f["hidden_par"] = _julia_par(model.hidden).T
            w = model.weights
            julia_w = w.transpose(1, 0, 2) if model.visible.name == "potts" else w  # (q, n, nh) or (nv, nh)
            f["weights"] = np.ascontiguousarray(julia_w.T)
    return path


def _julia_par(layer: Any) -> np.ndarray:
    """A layer's ``par`` in Julia's order: (n_par, size...) with Potts size (q, n)."""
    if layer.name == "potts":
        return layer.bias.T[None, :, :]
    if layer.name == "gaussian":
        return np.stack([layer.bias, layer.precision])
    return layer.bias[None, :]
