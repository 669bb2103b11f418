"""Parameter snapshots along training (``train-rbm --snapshots N``) and the schedule that places them.

Snapshots are taken after the parameter updates given by :func:`snapshot_schedule`: update 0
(the initial model), then log-spaced update numbers up to the last update of the run, as in
DsysDML/rbms (Béreux et al., ICLR 2025), so the early part of training, where the model moves
fastest per update, is sampled densely. They are written to the model file's ``snapshots``
group (see :class:`fecli.io.Snapshots`) at every checkpoint and at the end, and read back by
``--resume``, which then takes the remaining ones exactly where an uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def snapshot_schedule(count: int, total_updates: int) -> np.ndarray:
    """``count`` update numbers: 0, then ``count - 1`` log-spaced values in [1, total_updates].

    The values are rounded to integers and made strictly increasing, ending at
    ``total_updates``; when ``count - 1 > total_updates`` every update is taken (so fewer
    than ``count`` snapshots). Requires count >= 2 and total_updates >= 1.
    """
    if count < 2 or total_updates < 1:
        raise ValueError(f"need count >= 2 and total_updates >= 1, got {count}, {total_updates}")
    m = count - 1
    if m >= total_updates:
        return np.arange(total_updates + 1, dtype=np.int64)
    points = np.rint(np.geomspace(1.0, float(total_updates), m)).astype(np.int64)
    points[-1] = total_updates  # (geomspace with one point gives its start)
    for i in range(1, m):  # strictly increasing from the left ...
        points[i] = max(points[i], points[i - 1] + 1)
    for i in range(m - 1, -1, -1):  # ... and room left at the right end (m <= total_updates)
        points[i] = min(points[i], total_updates - (m - 1 - i))
    return np.concatenate([[0], points]).astype(np.int64)


@dataclass
class SnapshotLog:
    """The snapshots taken so far (parameters as float arrays in the training dtype) and the plan."""

    requested: int
    schedule: np.ndarray
    updates: list[int] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    visible_bias: list[np.ndarray] = field(default_factory=list)
    hidden_bias: list[np.ndarray] = field(default_factory=list)
    #: Gaussian layers' precisions at each snapshot (empty lists otherwise).
    visible_precision: list[np.ndarray] = field(default_factory=list)
    hidden_precision: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def plan(cls, requested: int, total_updates: int) -> "SnapshotLog":
        return cls(requested, snapshot_schedule(requested, total_updates))

    def replan(self, total_updates: int) -> None:
        """A new total (resume with other --epochs): taken snapshots stay, the rest follow the new plan."""
        self.schedule = snapshot_schedule(self.requested, total_updates)

    def due(self, update: int) -> bool:
        """Whether the model after ``update`` updates is to be kept (and has not been yet)."""
        if self.updates and update <= self.updates[-1]:
            return False
        i = int(np.searchsorted(self.schedule, update))
        return i < self.schedule.size and int(self.schedule[i]) == update

    def take(self, update: int, weights: np.ndarray, visible_bias: np.ndarray, hidden_bias: np.ndarray,
             visible_precision: np.ndarray | None = None, hidden_precision: np.ndarray | None = None) -> None:
        self.updates.append(int(update))
        self.weights.append(np.array(weights, copy=True))
        self.visible_bias.append(np.array(visible_bias, copy=True))
        self.hidden_bias.append(np.array(hidden_bias, copy=True))
        for kept, value in ((self.visible_precision, visible_precision), (self.hidden_precision, hidden_precision)):
            if value is not None:
                kept.append(np.array(value, copy=True))

    def __len__(self) -> int:
        return len(self.updates)

    def to_file(self):
        """The :class:`fecli.io.Snapshots` to write (None before the first snapshot)."""
        from ..io import Snapshots

        if not self.updates:
            return None
        return Snapshots(np.asarray(self.updates, dtype=np.int64), np.stack(self.weights),
                         np.stack(self.visible_bias), np.stack(self.hidden_bias), spacing="log",
                         requested=self.requested,
                         visible_precision=np.stack(self.visible_precision) if self.visible_precision else None,
                         hidden_precision=np.stack(self.hidden_precision) if self.hidden_precision else None)

    @classmethod
    def from_file(cls, snapshots, requested: int, total_updates: int, dtype: np.dtype) -> "SnapshotLog":
        """The log of a checkpoint's stored snapshots (``snapshots`` may be None: none taken yet)."""
        log = cls.plan(requested, total_updates)
        if snapshots is not None:
            for i in range(len(snapshots)):
                precisions = [None if p is None else np.asarray(p[i], dtype=dtype)
                              for p in (snapshots.visible_precision, snapshots.hidden_precision)]
                log.take(int(snapshots.updates[i]), np.asarray(snapshots.weights[i], dtype=dtype),
                         np.asarray(snapshots.visible_bias[i], dtype=dtype),
                         np.asarray(snapshots.hidden_bias[i], dtype=dtype), *precisions)
        return log
