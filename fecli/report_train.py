"""Presentation for ``fecli train-rbm``: the progress bar, per-epoch lines and the metrics table.

No numerics here. On a terminal a Rich bar on stderr shows the epoch, examples/s and
the latest metrics; elsewhere (logs, pipes) one plain line per monitored epoch goes
to stderr. At the end the monitored metrics go to stdout as a table or JSON lines.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

from .report import make_console, stderr_console

#: Column titles of the metrics, in display order.
METRIC_TITLES = {
    "epoch": "epoch",
    "log_likelihood": "train LL",
    "val_log_likelihood": "valid LL",
    "pll": "train PLL",
    "val_pll": "valid PLL",
    "recon_error": "recon err",
    "val_recon_error": "valid recon",
    "log_z": "ln Z",
    "log_z_stderr": "± ln Z",  # ln Z tracked by SMC (models too large to enumerate)
    "lr": "lr",
    "examples_per_s": "ex/s",
}
SHORT = {"log_likelihood": "LL", "val_log_likelihood": "val LL", "pll": "PLL", "val_pll": "val PLL",
         "recon_error": "recon", "val_recon_error": "val recon"}


def format_metrics(record: dict[str, Any]) -> str:
    parts = [f"{label} {record[key]:.4g}" for key, label in SHORT.items() if key in record]
    return ", ".join(parts)


class TrainingProgress:
    """``progress(description, done, total)`` and ``on_epoch(record)`` callbacks for the trainer."""

    def __init__(self, enabled: bool = True, interval: float = 0.1):
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self.interval = interval
        self._bar = None
        self._task = None
        self._last = 0.0
        self._metrics = ""
        self._rate = TrainingRate()

    def _start(self, total: float) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=stderr_console(),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task("training", total=total, rate="", metrics="")

    def __call__(self, description: str, done: float, total: float) -> None:
        if not self.tty:
            return
        now = time.perf_counter()
        self._rate.step(done, now)
        if self._bar is None:
            self._start(total)
        elif now - self._last < self.interval and done < total:
            return
        self._last = now
        speed = self._rate.per_second()
        rate = f"{speed:,.0f} ex/s" if speed else ""
        self._bar.update(self._task, description=description, completed=done, total=total, rate=rate,
                         metrics=self._metrics)

    def on_epoch(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._rate.pause(time.perf_counter())  # the monitoring just done is no training time
        text = format_metrics(record)
        if self.tty:
            if text:
                self._metrics = text
                if self._bar is not None:
                    self._bar.update(self._task, metrics=text)
            return
        if text:
            rate = record.get("examples_per_s")
            tail = f", {rate:,.0f} ex/s" if rate else ""
            print(f"epoch {record['epoch']}: {text}{tail}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> "TrainingProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TrainingRate:
    """Examples per second of training alone in the current epoch: the time between progress calls,
    less the gap in which the trainer monitored (from its last batch to ``pause``, called when an
    epoch's metrics arrive), as the ex/s of the epoch records is (trainer.py). Each epoch starts
    afresh, so the first epoch's compilation does not weigh on the later ones."""

    def __init__(self) -> None:
        self.examples = 0.0
        self.seconds = 0.0
        self._done: float | None = None
        self._time: float | None = None
        self._last_rate = 0.0

    def step(self, done: float, now: float) -> None:
        if self._done is not None and self._time is not None:
            self.examples += done - self._done
            self.seconds += now - self._time
        self._done, self._time = done, now

    def pause(self, now: float) -> None:
        """Monitoring ended at ``now``: the next epoch's count starts here (the last rate is kept
        until the next epoch has one of its own)."""
        if self._done is not None:
            self._time = now
        self._last_rate = self.per_second() or self._last_rate
        self.examples = self.seconds = 0.0

    def per_second(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else self._last_rate


def _columns(history: dict[str, list]) -> list[str]:
    return [k for k in METRIC_TITLES if k in history and k != "wall_time_s"]


def metrics_table(history: dict[str, list], title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    cols = _columns(history)
    for key in cols:
        table.add_column(METRIC_TITLES[key], justify="right")
    for i in range(len(history.get("epoch", []))):
        cells = []
        for key in cols:
            value = history[key][i]
            if key == "epoch":
                cells.append(str(int(value)))
            elif key == "examples_per_s":
                cells.append(f"{value:,.0f}")
            elif key == "lr":
                cells.append(f"{value:.3g}")
            else:
                cells.append("-" if not math.isfinite(value) else f"{value:.4f}")
        table.add_row(*cells)
    return table


def print_metrics(history: dict[str, list], fmt: str, title: str, model: str) -> None:
    """Monitored metrics to stdout: a table, or one JSON object per monitored epoch."""
    if fmt == "json":
        keys = [k for k in METRIC_TITLES if k in history] + [k for k in history if k not in METRIC_TITLES]
        for i in range(len(history.get("epoch", []))):
            row = {"model": model}
            row.update({k: history[k][i] for k in keys})
            print(json.dumps(row, allow_nan=False))
        return
    if history.get("epoch"):
        make_console(sys.stdout).print(metrics_table(history, title))
