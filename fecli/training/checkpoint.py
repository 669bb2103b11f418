"""The ``training`` group of a model file: provenance, per-epoch metrics and resume state.

Layout (written through :func:`fecli.io.save_model`: dicts are groups, arrays datasets,
scalars attributes)::

    training/                 attrs: fecli_version, method, seed, epochs, epochs_done,
                                     complete, wall_time_s, written_at, command
      settings/               attrs: every TrainSettings field (hidden, method, k, lr, ...)
      data/                   attrs: file, sha256 (of the file), key, binarize, scale, rows,
                                     columns, array_sha256 (of the 0/1 rows packed as bits), training_rows,
                                     validation_rows, validation_file, validation_sha256
      metrics/                datasets, one value per monitored epoch: epoch, recon_error,
                              pll, log_likelihood, log_z, val_* , lr, examples_per_s, wall_time_s
      state/                  attrs: resume_format, epoch, batch, step, n_batches
                              datasets: velocity_weights, velocity_visible_bias,
                                        velocity_hidden_bias, negative_* (e.g. PCD chains),
                                        tracker_* (the monitored-ln Z tracker of large models:
                                        its anchor update and parameters, particles, weights)

A file with this group is still a plain fecli-rbm model: readers that do not train
ignore it. Only ``--resume`` needs ``state``. With ``--snapshots`` the parameters along
the run go to the separate root group ``snapshots`` (:class:`fecli.io.Snapshots`).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

from .. import __version__
from ..errors import ModelFileError
from ..model import RBM
from .settings import TrainSettings
from .trainer import Params, Trainer, TrainState

RESUME_FORMAT = 1


def training_group(
    trainer: Trainer,
    state: TrainState,
    *,
    data_info: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    s = trainer.settings
    data = {k: v for k, v in (data_info or {}).items() if v is not None}
    data.update(
        rows=trainer.n_rows,
        columns=trainer.n_visible,
        array_sha256=trainer.data_digest,
        training_rows=int(trainer.train_data.shape[0]),
        validation_rows=0 if trainer.validation_data is None else int(trainer.validation_data.shape[0]),
    )
    metrics = {}
    for key, values in state.history.items():
        metrics[key] = np.asarray(values, dtype=np.int64 if key == "epoch" else np.float64)
    v = state.velocity
    state_group: dict[str, Any] = {
        "resume_format": RESUME_FORMAT,
        "epoch": state.epoch,
        "batch": state.batch,
        "step": state.step,
        "n_batches": trainer.n_batches,
        "velocity_weights": v.weights,
        "velocity_visible_bias": v.visible_bias,
        "velocity_hidden_bias": v.hidden_bias,
    }
    for key, value in state.negative.items():
        state_group["negative_" + key] = value
    for key, value in state.tracker.items():
        state_group["tracker_" + key] = value
    return {
        "fecli_version": __version__,
        "method": s.method,
        "seed": s.seed,
        "epochs": s.epochs,
        "epochs_done": state.epoch,
        "complete": bool(state.epoch >= s.epochs),
        "wall_time_s": float(state.wall_time_s),
        "written_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "settings": {k: val for k, val in s.to_dict().items() if val is not None},
        "data": data,
        "metrics": metrics,
        "state": state_group,
    }


def stored_settings(model: RBM) -> TrainSettings:
    """The settings a checkpoint was trained with; refuses models without resume state."""
    training = model.training or {}
    state = training.get("state")
    if not isinstance(training.get("settings"), dict) or not isinstance(state, dict):
        raise ModelFileError(
            f"model file '{model.name}' has no training state to resume from "
            "(it was not written by fecli train-rbm)."
        )
    version = state.get("resume_format")
    if version != RESUME_FORMAT:
        raise ModelFileError(
            f"model file '{model.name}' has resume format {version!r}; this fecli resumes format {RESUME_FORMAT}."
        )
    settings = dict(training["settings"])
    settings["hidden"] = model.n_hidden
    try:
        return TrainSettings.from_dict(settings)
    except ValueError as exc:
        raise ModelFileError(f"model file '{model.name}' has invalid training settings: {exc}") from exc


def stored_unit_types(path: Any) -> dict[str, Any]:
    """The unit types, Potts states and Gaussian data transform of a checkpoint (to read resumed
    data the way it was read): ``standardize`` is the stored (mean, std) pair or None, ``scale``
    the stored --scale or None."""
    from ..io import load_model

    model = load_model(path)
    data = (model.training or {}).get("data") or {}
    mean, std = data.get("standardize_mean"), data.get("standardize_std")
    return {"visible_type": model.visible.name, "hidden_type": model.hidden.name,
            "states": getattr(model.visible, "q", None),
            "standardize": None if mean is None or std is None else
            (np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)),
            "scale": data.get("scale")}


def restore_state(model: RBM, trainer: Trainer, snapshots: Any = None) -> TrainState:
    """The training state stored in ``model`` (parameters in the training dtype); ``snapshots``
    (:class:`fecli.io.Snapshots` or None) are the file's, continued when --snapshots is set."""
    training = model.training or {}
    stored = training["state"]
    dtype = trainer.dtype
    where = f"model file '{model.name}'"

    def array(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in stored:
            raise ModelFileError(f"{where}: training state has no '{name}'; cannot resume.")
        value = np.asarray(stored[name])
        if value.shape != shape:
            raise ModelFileError(f"{where}: training state '{name}' has shape {value.shape}, expected {shape}.")
        return np.ascontiguousarray(value, dtype=dtype)

    params = Params(
        np.ascontiguousarray(model.weights, dtype=dtype),
        np.ascontiguousarray(model.visible_bias, dtype=dtype),
        np.ascontiguousarray(model.hidden_bias, dtype=dtype),
    )
    restore_params = getattr(trainer, "restore_params", None)  # layer parameters kept in the model (precisions)
    if restore_params is not None:
        params = restore_params(model, params)
    velocity = Params(
        array("velocity_weights", model.weights.shape),
        array("velocity_visible_bias", model.visible_bias.shape),
        array("velocity_hidden_bias", model.hidden_bias.shape),
    )
    negative = {k[len("negative_"):]: np.asarray(v) for k, v in stored.items() if k.startswith("negative_")}
    if int(stored.get("n_batches", -1)) != trainer.n_batches:
        raise ModelFileError(
            f"{where} was trained with {stored.get('n_batches')} batches per epoch, but this data gives "
            f"{trainer.n_batches}; resume with the same training data."
        )
    try:
        trainer.negative.load_state_dict(negative)
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"{where}: cannot restore the {trainer.settings.method} chains ({exc}).") from exc
    history: dict[str, list] = {}
    for key, values in (training.get("metrics") or {}).items():
        history[key] = [v.item() for v in np.atleast_1d(np.asarray(values))]
    tracker = {k[len("tracker_"):]: v for k, v in stored.items() if k.startswith("tracker_")}
    log = None
    if trainer.settings.snapshots:
        from .snapshots import SnapshotLog

        if snapshots is None and int(stored["step"]) > 0:
            raise ModelFileError(
                f"{where} was trained with --snapshots {trainer.settings.snapshots} but has no snapshots group; "
                "cannot continue its snapshots."
            )
        log = SnapshotLog.from_file(snapshots, trainer.settings.snapshots, trainer.total_updates, dtype)
    return TrainState(
        params=params,
        velocity=velocity,
        negative=negative,
        epoch=int(stored["epoch"]),
        batch=int(stored["batch"]),
        step=int(stored["step"]),
        wall_time_s=float(training.get("wall_time_s", 0.0)),
        history=history,
        snapshots=log,
        tracker=tracker,
    )
