"""Library entry points: :func:`train` and :func:`resume`.

Both validate everything (settings, data, the output path) before any work, write
checkpoints atomically to ``output`` and return a :class:`TrainingOutcome`. A run
stopped by ``should_stop()`` (e.g. Ctrl-C, see :class:`StopOnSigint`) finishes its
batch, writes a checkpoint and returns with ``interrupted=True``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InvalidOptionError, ModelFileError
from ..model import RBM
from ..progress import ProgressCallback
from .checkpoint import restore_state, stored_settings, training_group
from .settings import TrainSettings
from .layered import make_trainer
from .trainer import Trainer, TrainingOutcome, TrainState

#: Settings that may change when resuming (they do not change the trajectory of the model).
RESUMABLE_CHANGES = ("epochs", "monitor_every", "monitor_rows", "checkpoint_every")


def check_output(output: str | os.PathLike | None, *, overwrite: bool, resume_from: Path | None = None) -> Path | None:
    """Refuse an output path that cannot be written, before any training happens.

    An existing file is refused unless ``overwrite`` (or it is the checkpoint being resumed).
    The folder is probed by creating and removing a temporary file.
    """
    if output is None:
        return None
    path = Path(output)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ModelFileError(f"cannot write model file '{path}': folder '{folder}' does not exist.")
    if path.is_dir():
        raise ModelFileError(f"cannot write model file '{path}': it is a folder.")
    same = resume_from is not None and path.exists() and path.resolve() == Path(resume_from).resolve()
    if path.exists() and not overwrite and not same:
        raise ModelFileError(f"model file '{path}' already exists (use --overwrite to replace it).")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ModelFileError(f"cannot write model file '{path}': {exc.strerror or exc}.") from None
    os.close(fd)
    os.unlink(probe)
    return path


def train(
    data: np.ndarray,
    settings: TrainSettings | None = None,
    *,
    validation_data: np.ndarray | None = None,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    data_info: dict[str, Any] | None = None,
    command: str | None = None,
    progress: ProgressCallback = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options: Any,
) -> TrainingOutcome:
    """Train a new RBM on ``data`` (rows = examples) with CD-k, PCD or EMF (tap2, tap3).

    ``options`` are :class:`TrainSettings` fields (hidden, method, k, epochs, batch_size,
    lr, lr_decay, momentum, weight_decay, seed, dtype, validation, monitor_every,
    monitor_rows, checkpoint_every, visible_type, hidden_type, states, learn_precision); a
    ``settings`` object may be given instead. Rows hold the visible units' values: 0/1
    (bernoulli), -1/+1 (spin), reals (gaussian), states 0..q-1 (potts).
    ``output``: model file written at checkpoints and at the end (atomically).
    """
    if settings is None:
        settings = make_settings(**options)
    elif options:
        raise InvalidOptionError("give either settings or keyword options, not both.")
    output_path = check_output(output, overwrite=overwrite)
    trainer = make_trainer(data, settings, validation_data=validation_data, data_name=_name(data_info, "data"))
    state = trainer.initial_state()
    return _run(trainer, state, output_path, data_info, command, progress, on_epoch, should_stop, [])


def resume(
    checkpoint: str | os.PathLike | RBM,
    data: np.ndarray,
    *,
    validation_data: np.ndarray | None = None,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    data_info: dict[str, Any] | None = None,
    command: str | None = None,
    progress: ProgressCallback = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options: Any,
) -> TrainingOutcome:
    """Continue training from a model file written by :func:`train` (a checkpoint).

    The stored settings are used; ``epochs`` (the new total), ``monitor_every``,
    ``monitor_rows`` and ``checkpoint_every`` may change; any other option must equal
    the stored value. With the same data, the result is bit-for-bit the model an
    uninterrupted run would have produced on this machine.
    ``output`` defaults to the checkpoint file itself (updated atomically).
    """
    from ..data import check_width
    from ..io import load_model, read_snapshots

    source = None
    if isinstance(checkpoint, RBM):
        model = checkpoint
    else:
        source = Path(checkpoint)
        model = load_model(source)
    settings = stored_settings(model)
    for key, value in options.items():
        if value is None:
            continue
        if key not in settings.to_dict():
            raise InvalidOptionError(f"unknown training option {key!r}.")
        if key in RESUMABLE_CHANGES:
            setattr(settings, key, value)
        elif _differs(getattr(settings, key), value):
            raise InvalidOptionError(
                f"--{key.replace('_', '-')} cannot change when resuming: the checkpoint was trained with "
                f"{getattr(settings, key)!r}, got {value!r}."
            )
    settings = TrainSettings(**settings.to_dict())  # validate the changed values
    training = model.training or {}
    epochs_done = int(training["state"]["epoch"])
    if epochs_done >= settings.epochs:
        raise InvalidOptionError(
            f"model file '{model.name}' is already trained for {epochs_done} epoch(s); "
            f"ask for more with --epochs (greater than {epochs_done})."
        )
    check_width(np.asarray(data), model, _name(data_info, "data"))
    if output is None:
        output = source
    output_path = check_output(output, overwrite=overwrite, resume_from=source)
    warnings: list[str] = []
    trainer = make_trainer(data, settings, validation_data=validation_data, data_name=_name(data_info, "data"))
    stored_digest = (training.get("data") or {}).get("array_sha256")
    if stored_digest is not None and stored_digest != trainer.data_digest:
        warnings.append(
            "the data differ from the data this checkpoint was trained on; training continues on the new data."
        )
    snapshots = None
    if settings.snapshots:
        origin = source if source is not None else Path(model.name)
        snapshots = read_snapshots(origin, model) if origin.is_file() else None
    state = restore_state(model, trainer, snapshots)
    old_info = dict(training.get("data") or {})
    kept = ("file", "sha256", "key", "binarize", "scale", "validation_file", "validation_sha256", "alphabet",
            "encoding", "standardize", "standardize_mean", "standardize_std")
    # a value the caller leaves None keeps the stored one (the stored data transform above all)
    info = {**{k: old_info.get(k) for k in kept}, **{k: v for k, v in (data_info or {}).items() if v is not None}}
    return _run(trainer, state, output_path, info, command, progress, on_epoch, should_stop, warnings)


def make_settings(**options: Any) -> TrainSettings:
    known = set(TrainSettings.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidOptionError(f"unknown training option(s): {', '.join(unknown)}.")
    return TrainSettings(**{k: v for k, v in options.items() if v is not None})


def _differs(stored: Any, given: Any) -> bool:
    if isinstance(stored, float) or isinstance(given, float):
        try:
            return float(stored) != float(given)
        except (TypeError, ValueError):
            return True
    return stored != given


def _name(data_info: dict[str, Any] | None, default: str) -> str:
    if data_info and data_info.get("file"):
        return f"data file '{data_info['file']}'"
    return default


def _run(
    trainer: Trainer,
    state: TrainState,
    output: Path | None,
    data_info: dict[str, Any] | None,
    command: str | None,
    progress: ProgressCallback,
    on_epoch: Callable[[dict[str, Any]], None] | None,
    should_stop: Callable[[], bool] | None,
    warnings: list[str],
) -> TrainingOutcome:
    from ..io import save_model

    if trainer.settings.visible_type == "gaussian":
        from ..layer_data import transform_from_info

        transform = transform_from_info(data_info or {}, trainer.n_visible, _name(data_info, "data"))
        # log-likelihoods in the data's original units, as 'fecli loglik' reports them for the file
        trainer.log_jacobian = 0.0 if transform is None else transform.log_jacobian

    def to_model(st: TrainState) -> RBM:
        model = trainer.model(st, name=str(output) if output is not None else "<memory>")
        model.training = training_group(trainer, st, data_info=data_info, command=command)
        return model

    def snapshots(st: TrainState):
        return st.snapshots.to_file() if st.snapshots is not None else None

    def checkpoint(st: TrainState, final: bool) -> None:
        if output is not None:
            save_model(to_model(st), output, overwrite=True, snapshots=snapshots(st))

    interrupted = trainer.run(
        state, checkpoint=checkpoint, progress=progress, on_epoch=on_epoch, should_stop=should_stop
    )
    model = to_model(state)
    if output is not None and not interrupted:
        save_model(model, output, overwrite=True, snapshots=snapshots(state))
    return TrainingOutcome(
        model=model,
        history=state.history,
        interrupted=interrupted,
        epochs_done=state.epoch,
        epochs=trainer.settings.epochs,
        batches_done=state.batch,
        n_batches=trainer.n_batches,
        output=output,
        warnings=[*trainer.warnings, *warnings],
        wall_time_s=state.wall_time_s,
        snapshots=snapshots(state),
    )


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (provenance of the training data)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
