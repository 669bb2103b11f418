"""Ctrl-C handling for training: the first SIGINT asks the loop to stop after the current
batch (the trainer then writes a checkpoint); a second one aborts at once."""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable


class StopOnSigint:
    """Context manager and ``should_stop`` callable.

    Inside the ``with`` block the first SIGINT sets the flag (and calls ``notify`` once);
    the second raises KeyboardInterrupt as usual. The previous handler is restored on exit.
    Outside the main thread it does nothing (signals can only be handled there).
    """

    def __init__(self, notify: Callable[[], None] | None = None):
        self.requested = False
        self.notify = notify
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.notify is not None:
            self.notify()

    def __call__(self) -> bool:
        return self.requested

    def __enter__(self) -> "StopOnSigint":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
