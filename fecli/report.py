"""Presentation: Rich tables, progress bars, JSON lines and CSV. No numerics here."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from typing import Any, Iterable, TextIO

from .result import FIELDS, Result

#: Short labels for result kinds in tables, so bounds and approximations stand out.
KIND_LABELS = {
    "exact": "exact",
    "estimate": "estimate",
    "lower_bound": "lower bound",
    "upper_bound": "upper bound",
    "stochastic_lower_bound": "stoch. lower bound",
    "stochastic_upper_bound": "stoch. upper bound",
    "approximation": "approximation",
}


def make_console(file: TextIO, *, force_plain: bool = False):
    """A Rich console for ``file``: colour only on terminals and without NO_COLOR."""
    from rich.console import Console

    is_tty = hasattr(file, "isatty") and file.isatty()
    plain = force_plain or not is_tty or "NO_COLOR" in os.environ
    return Console(
        file=file,
        no_color=plain,
        color_system=None if plain else "auto",
        highlight=False,
        width=None if is_tty else 200,
        soft_wrap=False,
    )


def stderr_console():
    return make_console(sys.stderr)


class DelayedProgress:
    """A Rich progress bar on stderr that appears only once a run has lasted ``delay`` seconds."""

    def __init__(self, enabled: bool = True, delay: float = 1.0):
        self.enabled = enabled and sys.stderr.isatty()
        self.delay = delay
        self._start = time.perf_counter()
        self._bar = None
        self._task = None

    def __call__(self, description: str, done: float, total: float) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            if time.perf_counter() - self._start < self.delay:
                return
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=stderr_console(),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(description, total=total)
        self._bar.update(self._task, description=description, completed=done, total=total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> "DelayedProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def format_number(value: float | None, digits: int = 6) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def format_interval(low: float | None, high: float | None) -> str:
    """'[a, b]', with an open end written as -inf / +inf (one-sided intervals)."""
    if low is None and high is None:
        return "-"
    finite = lambda x: x is not None and math.isfinite(x)  # noqa: E731
    left = f"[{format_number(low, 4)}" if finite(low) else "(-inf"
    right = f"{format_number(high, 4)}]" if finite(high) else "+inf)"
    return f"{left}, {right}"


#: Marks a value that was moved into the rigorous bracket of fecli.bounds (see clipped_notes).
CLIPPED_MARK = " *"


def clipped_from(result: Result) -> float | None:
    """The value before fecli.bounds.check_result moved it to a rigorous bound, or None when it was
    not moved (``diagnostics['unclipped_log_z']``)."""
    raw = result.diagnostics.get("unclipped_log_z") if result.diagnostics else None
    if raw is None or not math.isfinite(raw) or abs(raw - result.log_z) <= 1e-9 * max(1.0, abs(raw)):
        return None
    return float(raw)


def ln_z_cell(result: Result) -> str:
    """ln Z for a table, marked when it was clipped into the rigorous bracket."""
    return format_number(result.log_z) + (CLIPPED_MARK if clipped_from(result) is not None else "")


def clipped_notes(results: Iterable[Result], name=lambda r: r.method) -> list[str]:
    """One line naming every clipped row with its raw value, so that rows clipped to the same bound
    (cumulant orders 2 and 3 at the mean-field bound) do not look like agreement."""
    raw = [(name(r), r, clipped_from(r)) for r in results]
    moved = [f"{label} {value:.6f}" + ("" if any("reported at the bound" in w for w in r.warnings)
                                        else " (within its own error bar)")
             for label, r, value in raw if value is not None]
    if not moved:
        return []
    return [f"{CLIPPED_MARK.strip()} reported at a rigorous bound on ln Z (fecli.bounds); before clipping: "
            f"{', '.join(moved)} (diagnostics: unclipped_log_z)."]


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def results_table(results: Iterable[Result]):
    """One Rich table, a row per (model, method). Numbers are never truncated or wrapped."""
    from rich.table import Table

    results = list(results)
    show_interval = any(r.ci_low is not None or r.ci_high is not None for r in results if r.kind != "exact")
    exact = {(r.model, r.beta): r.log_z for r in results if r.kind == "exact"}
    show_delta = bool(exact) and any(r.kind != "exact" and (r.model, r.beta) in exact for r in results)
    rows = []
    for r in results:
        row = {
            "model": r.model,
            "method": r.method,
            "beta": f"{r.beta:g}",
            "ln Z": ln_z_cell(r),
            "free energy": format_number(r.free_energy),
            "± stderr": format_number(r.stderr, 4) if r.stderr is not None else "none",
        }
        if show_interval:
            row["95% interval"] = format_interval(r.ci_low, r.ci_high)
        row["kind"] = KIND_LABELS.get(r.kind, r.kind)
        if show_delta:
            ref = exact.get((r.model, r.beta))
            row["Δ vs exact"] = "-" if ref is None else f"{r.log_z - ref:+.4f}"
        row["time"] = format_seconds(r.wall_time_s)
        rows.append(row)
    notes = clipped_notes(results)
    table = Table(title="ln Z estimates", title_justify="left", header_style="bold",
                  caption="\n".join(notes) or None, caption_justify="left")
    for name in rows[0] if rows else ("model", "method", "ln Z"):
        if name in ("model", "method"):
            table.add_column(name, overflow="fold")
        else:
            width = max([len(name)] + [len(row[name]) for row in rows])
            table.add_column(name, justify="right" if name != "kind" else "left", no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(*row.values())
    return table


def loglik_table(records: Iterable[Any]):
    """Rich table for log-likelihood records (see fecli.loglik.LoglikResult)."""
    from rich.table import Table

    table = Table(title="mean log-likelihood per example (nats)", title_justify="left", header_style="bold")
    table.add_column("model", overflow="fold")
    table.add_column("data", overflow="fold")
    table.add_column("method", overflow="fold")
    for name in ("examples", "mean ln p(v)", "± stderr", "± data spread", "kind", "ln Z", "time"):
        table.add_column(name, justify="left" if name == "kind" else "right", no_wrap=True)
    for r in records:
        table.add_row(
            r.model, r.data, r.method, str(r.n_examples), format_number(r.mean_log_likelihood),
            format_number(r.stderr, 4) if r.stderr is not None else "none",
            format_number(r.data_spread_stderr, 4), KIND_LABELS.get(r.kind, r.kind),
            format_number(r.log_z), format_seconds(r.wall_time_s),
        )
    return table


def json_line(record: Any) -> str:
    return json.dumps(record.to_dict(), allow_nan=False)


def csv_header(fields: Iterable[str] = FIELDS) -> str:
    return _csv_row(fields)


def csv_line(record: Any, fields: Iterable[str] = FIELDS) -> str:
    row = record.to_dict()
    cells = []
    for name in fields:
        value = row[name]
        if isinstance(value, (dict, list)):
            value = json.dumps(value, allow_nan=False)
        elif value is None:
            value = ""
        elif isinstance(value, float):
            value = repr(value)
        cells.append(value)
    return _csv_row(cells)


def _csv_row(cells: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(list(cells))
    return buffer.getvalue().rstrip("\n")


def render_plain(renderables: list[Any]) -> str:
    """Rich renderables as plain text (no colour), e.g. for --output files."""
    buffer = io.StringIO()
    console = make_console(buffer, force_plain=True)
    for item in renderables:
        console.print(item)
        console.print()
    return buffer.getvalue()


def render(records: list[Any], fmt: str, fields: Iterable[str] = FIELDS, table: Any = None) -> str:
    """The whole rendering of ``records`` as text (used for --output files)."""
    fields = tuple(fields)
    if fmt == "json":
        return "".join(json_line(r) + "\n" for r in records)
    if fmt == "csv":
        return csv_header(fields) + "\n" + "".join(csv_line(r, fields) + "\n" for r in records)
    buffer = io.StringIO()
    console = make_console(buffer, force_plain=True)
    console.print((table or results_table)(records))
    return buffer.getvalue()


def print_info(console, summary: dict[str, Any]) -> None:
    """Render a ``describe()`` summary as a few small Rich tables."""
    from rich.table import Table

    head = Table(title=summary["model"], title_justify="left", show_header=False, title_style="bold")
    head.add_column(style="bold")
    head.add_column()
    head.add_row("format", f"{summary.get('format') or 'fecli-rbm v' + str(summary['format_version'])} "
                           f"({summary['file_size_bytes']} bytes)")
    for note in (summary.get("source") or {}).get("conventions", []):
        head.add_row("converted", note)
    def unit(layer: str) -> str:
        kind = summary[f"{layer}_type"]
        states = summary.get("layers", {}).get(layer, {}).get("states")
        return f"{kind}, q = {states}" if states else kind

    head.add_row("units", f"{summary['n_visible']} visible ({unit('visible')}) x "
                          f"{summary['n_hidden']} hidden ({unit('hidden')})")
    head.add_row("parameters", str(summary["n_parameters"]))
    console.print(head)

    stats = Table(header_style="bold")
    stats.add_column("parameter")
    for col in ("mean", "std", "min", "max", "mean |x|"):
        stats.add_column(col, justify="right")
    for key in ("weights", "visible_bias", "hidden_bias", "visible_precision", "hidden_precision"):
        if key not in summary:
            continue
        s = summary[key]
        stats.add_row(key, *(f"{s[c]:.4g}" for c in ("mean", "std", "min", "max", "mean_abs")))
    console.print(stats)

    if summary["training"]:
        meta = Table(title="training", title_justify="left", show_header=False)
        meta.add_column(style="bold")
        meta.add_column(overflow="fold")
        for key, value in summary["training"].items():
            meta.add_row(key, str(value))
        console.print(meta)

    est = Table(title="estimators", title_justify="left", header_style="bold")
    est.add_column("method")
    est.add_column("feasible")
    est.add_column("cost", overflow="fold")
    for name, f in summary["estimators"].items():
        est.add_row(name, "yes" if f["feasible"] else "no", f["note"])
    console.print(est)
    if summary.get("unsupported_methods"):
        console.print(f"{summary['visible_type']}-{summary['hidden_type']} units: supported by "
                      f"{', '.join(summary['supported_methods'])}; not by {', '.join(summary['unsupported_methods'])}.")
    console.print()


def comparison_table(comparison: Any):
    """One model's comparison: a heading, a row per method with its difference to the reference, a verdict."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from .compare import label

    ref = comparison.reference
    heading = f"{comparison.model}  (reference: {ref.label}"
    heading += f", ln Z = {ref.value:.6f})" if ref.value is not None and ref.label == "exact" else ")"
    table = Table(header_style="bold")
    table.add_column("method", overflow="fold")
    for name in ("ln Z", "free energy", "± stderr", "95% interval", "kind", "Δ vs ref", "time"):
        table.add_column(name, justify="left" if name == "kind" else "right", no_wrap=True)
    for i, r in enumerate(comparison.results):
        diff = comparison.differences.get(i)
        table.add_row(
            label(r),
            ln_z_cell(r),
            format_number(r.free_energy),
            format_number(r.stderr, 4) if r.stderr is not None else "none",
            format_interval(r.ci_low, r.ci_high) if r.kind != "exact" else "-",
            KIND_LABELS.get(r.kind, r.kind),
            "-" if diff is None else f"{diff:+.4f}",
            format_seconds(r.wall_time_s),
        )
    notes = clipped_notes(comparison.results, label)
    return Group(Text(heading, style="bold"), table, *(Text(line) for line in notes + comparison.verdict))


def trajectory_table(rows: Iterable[Any]):
    """Rich table for `fecli trajectory`: one row per snapshot (see fecli.estimators.trajectory.TrajectoryRow)."""
    from rich.table import Table

    rows = list(rows)
    with_epoch = any(r.epoch is not None for r in rows)
    with_train = any(r.log_likelihood is not None for r in rows)
    with_val = any(r.val_log_likelihood is not None for r in rows)
    title = f"ln Z along training: {rows[0].model}" if rows else "ln Z along training"
    table = Table(title=title, title_justify="left", header_style="bold")
    names = ["snapshot", "update", *(["epoch"] if with_epoch else []), "ln Z", "± stderr", "95% interval", "kind",
             *(["train LL"] if with_train else []), *(["valid LL"] if with_val else []), "ESS", "resampled"]
    for name in names:
        table.add_column(name, justify="left" if name == "kind" else "right", no_wrap=True)
    for r in rows:
        cells = [str(r.snapshot), "model" if r.update is None else f"{r.update:,}"]
        if with_epoch:
            cells.append("-" if r.epoch is None else f"{r.epoch:.3g}")
        cells += [format_number(r.log_z), format_number(r.stderr, 4), format_interval(r.ci_low, r.ci_high),
                  KIND_LABELS.get(r.kind, r.kind)]
        if with_train:
            cells.append(format_number(r.log_likelihood, 4))
        if with_val:
            cells.append(format_number(r.val_log_likelihood, 4))
        cells += [f"{r.ess_fraction:.0%}", str(r.resamplings)]
        table.add_row(*cells)
    return table
