"""Figures (optional extra ``fecli[plot]``, matplotlib): training curves, filters, results.

Each function writes one file whose format follows its extension (.png, .pdf, .svg)
and returns the path. Nothing is shown on screen (the Agg backend is used).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FecliError, InvalidOptionError

FIGURE_FORMATS = (".png", ".pdf", ".svg")
X_AXIS_KEYS = ("epoch", "step", "iteration")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise FecliError("plotting needs matplotlib: install it with pip install 'fecli[plot]'.") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_figure_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise InvalidOptionError(
            f"cannot write figure '{path}': use one of the extensions {', '.join(FIGURE_FORMATS)}."
        )
    if not path.parent.is_dir():
        raise FecliError(f"cannot write figure '{path}': folder '{path.parent}' does not exist.")
    return path


def _save(fig: Any, path: Path, tight: bool = True) -> Path:
    from .atomic import atomic_path

    if tight:  # (a colour bar shared by several axes does not survive tight_layout)
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lower().lstrip("."), bbox_inches="tight", dpi=120)
    _pyplot().close(fig)
    return path


def training_series(training: dict[str, Any] | None) -> tuple[str, np.ndarray | None, dict[str, np.ndarray]]:
    """Per-epoch curves stored in a model's ``training/metrics`` group: (x label, x, {name: y})."""
    metrics = (training or {}).get("metrics")
    if not isinstance(metrics, dict):
        return "", None, {}
    series = {k: np.asarray(v, dtype=float) for k, v in metrics.items()
              if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "biuf" and v.size > 0}
    for key in X_AXIS_KEYS:
        if key in series:
            return key, series.pop(key), series
    return "record", None, series


#: Panels of ``plot training``, in the order a reader looks at them: (title, y label, [(metric, legend)]).
#: A training and a validation metric share a panel. Metrics not named here (from other tools)
#: follow, one panel each, in alphabetical order; timing metrics (TIMING_METRICS) are not drawn.
TRAINING_PANELS = (
    ("log-likelihood", "mean ln p(v) (nats)", (("log_likelihood", "train"), ("val_log_likelihood", "validation"),
                                               ("mean_log_likelihood", "train"))),
    ("pseudo-log-likelihood", "mean PLL (nats)", (("pll", "train"), ("val_pll", "validation"))),
    ("reconstruction error", "mean squared error", (("recon_error", "train"), ("val_recon_error", "validation"))),
    ("log partition function", "ln Z (nats)", (("log_z", None),)),
    ("TAP iteration", "sweeps per update", (("tap_sweeps", None),)),
    ("TAP iteration", "unconverged fraction", (("tap_unconverged", None),)),
    ("learning rate", "lr", (("lr", None),)),
)
#: Per-epoch timings: how fast the machine was, not how training went.
TIMING_METRICS = ("examples_per_s", "wall_time_s")


def training_panels(series: dict[str, np.ndarray]) -> list[tuple[str, str, list[tuple[str, str | None]]]]:
    """The panels to draw for the metrics present: known ones in TRAINING_PANELS order, then the rest."""
    panels, placed = [], set(TIMING_METRICS)
    for title, ylabel, members in TRAINING_PANELS:
        present = [(name, legend) for name, legend in members if name in series]
        if present:
            panels.append((title, ylabel, present))
            placed.update(name for name, _ in present)
    for name in sorted(set(series) - placed):
        panels.append((name.replace("_", " "), "", [(name, None)]))
    return panels


def plot_training(model: Any, path: str | os.PathLike) -> Path:
    """Training curves from ``training/metrics`` against epoch (or step), ordered by meaning.

    Log-likelihood first, then pseudo-log-likelihood, reconstruction error, ln Z, the TAP
    iteration's diagnostics and the learning rate; training and validation curves share a
    panel. Timing metrics (examples per second, wall time) are left out.
    """
    path = check_figure_path(path)
    label, x, series = training_series(model.training)
    panels = training_panels(series)
    if not panels:
        raise FecliError(f"model {model.name} holds no training curves (no 'training/metrics' datasets).")
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(6, 2.2 * len(panels) + 0.4), sharex=True, squeeze=False)
    for ax, (title, ylabel, members) in zip(axes[:, 0], panels):
        for name, legend in members:
            y = series[name]
            xs = x if x is not None and len(x) == len(y) else np.arange(1, len(y) + 1)
            style = "--" if name.startswith("val_") else "-"
            ax.plot(xs, y, style, marker="o", markersize=3, label=legend)
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(members) > 1:
            ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel(label)
    fig.suptitle(f"training curves: {Path(model.name).name}")
    return _save(fig, path)


def parse_shape(text: str, n_visible: int) -> tuple[int, int]:
    """'28x28' -> (28, 28), checked against the number of visible units."""
    try:
        rows, cols = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise InvalidOptionError(f"--shape must look like 28x28, got {text!r}.") from None
    if rows * cols != n_visible:
        raise InvalidOptionError(
            f"--shape {rows}x{cols} has {rows * cols} pixels, but the model has {n_visible} visible units."
        )
    return rows, cols


def plot_filters(model: Any, path: str | os.PathLike, shape: str, max_filters: int = 100) -> Path:
    """Each hidden unit's weight vector W[:, j] as an image, in a grid, on one colour scale (Potts
    visible units: W[i, s, j], the q states of each site in adjacent columns).

    Blue negative, red positive, white zero; the scale is symmetric, +-max |W| over the units
    shown, so units can be compared, and the colour bar gives its values. Units are labelled
    by their index j.
    """
    path = check_figure_path(path)
    rows, cols = parse_shape(shape, model.n_visible)
    if max_filters < 1:
        raise InvalidOptionError(f"--max-filters must be >= 1, got {max_filters}.")
    n = min(model.n_hidden, max_filters)
    grid = int(np.ceil(np.sqrt(n)))
    weights = model.weights2d[:, :n]  # Potts visible units: the q states of each site side by side
    q = model.visible.q if model.visible.name == "potts" else 1
    cols *= q
    limit = float(np.abs(weights).max()) or 1.0
    plt = _pyplot()
    fig, axes = plt.subplots(grid, grid, figsize=(1.2 * grid + 1.2, 1.2 * grid + 0.6), squeeze=False)
    image = None
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            image = ax.imshow(weights[:, k].reshape(rows, cols), cmap="RdBu_r", vmin=-limit, vmax=limit,
                              interpolation="nearest")
            ax.set_title(str(k), fontsize=7, pad=2)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="weight W_ij" if q == 1 else "weight W[i, s, j]")
    shown = f"{n} of {model.n_hidden}" if n < model.n_hidden else f"{n}"
    states = "" if q == 1 else f" (each site's {q} states side by side)"
    fig.suptitle(f"weights of {shown} hidden units{states}: {Path(model.name).name}")
    return _save(fig, path, tight=False)


#: First bytes of the binary files users most often pass where JSON lines are expected.
_BINARY_SIGNATURES = {b"\x89HDF\r\n\x1a\n": "an HDF5 file (a model?)", b"\x93NUMPY": "a NumPy .npy array",
                      b"PK\x03\x04": "a zip archive (an .npz?)", b"\x89PNG": "a PNG image", b"%PDF": "a PDF file"}


def _read_text(path: Path, what: str, expected: str) -> str:
    """The file's text; one clear FecliError for a missing file, a folder, or a binary or non-UTF-8 file."""
    if not path.exists():
        raise FecliError(f"{what} '{path}' does not exist.")
    if path.is_dir():
        raise FecliError(f"{what} '{path}' is a folder, not a file.")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FecliError(f"{what} '{path}' cannot be read ({exc.strerror or exc}).") from None
    for signature, kind in _BINARY_SIGNATURES.items():
        if raw.startswith(signature):
            raise FecliError(f"{what} '{path}' is {kind}, not {expected}.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FecliError(f"{what} '{path}' is not a text file, so not {expected}.") from None


def read_result_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """JSON lines written by ``fecli estimate/compare --format json``.

    Raises :class:`FecliError` (one line) for a missing file, a folder, a binary file (a model,
    an array), a line that is not JSON or not an ln Z record, and a file with no records.
    """
    path = Path(path)
    text = _read_text(path, "results file", "JSON lines from 'fecli estimate/compare --format json'")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise FecliError(f"results file '{path}' line {number} is not JSON (write it with --format json).") from None
        if not isinstance(row, dict) or "log_z" not in row or "method" not in row:
            raise FecliError(f"results file '{path}' line {number} is not an ln Z record.")
        rows.append(row)
    if not rows:
        raise FecliError(f"results file '{path}' holds no results.")
    return rows


#: How ``plot results`` draws each kind of result: (marker, colour, legend label).
RESULT_STYLES = {
    "exact": ("D", "black", "exact"),
    "lower_bound": (">", "tab:blue", "lower bound"),
    "stochastic_lower_bound": (">", "tab:cyan", "stochastic lower bound"),
    "upper_bound": ("<", "tab:red", "upper bound"),
    "stochastic_upper_bound": ("<", "tab:pink", "stochastic upper bound"),
    "estimate": ("o", "tab:green", "estimate"),
    "approximation": ("s", "tab:orange", "approximation"),
}
_OTHER_STYLE = ("o", "tab:gray", "other")


def _interval_note(row: dict[str, Any]) -> str:
    if row.get("ci_low") is not None and row.get("ci_high") is None:
        return " (open above)"
    if row.get("ci_high") is not None and row.get("ci_low") is None:
        return " (open below)"
    return ""


def plot_results(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """ln Z per method with 95% intervals, one panel per model; exact ln Z also as a dashed line.

    The marker and colour say the kind of result (legend); a one-sided interval draws its
    closed side only and its label says which side is open.
    """
    path = check_figure_path(path)
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("log_z") is not None:
            by_model.setdefault(row["model"], []).append(row)
    if not by_model:
        raise FecliError("no result holds a finite ln Z to draw.")
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.transforms import offset_copy

    height = sum(1.0 + 0.4 * len(group) for group in by_model.values())
    fig, axes = plt.subplots(len(by_model), 1, figsize=(7, height), squeeze=False)
    kinds: list[str] = []
    for ax, (model, group) in zip(axes[:, 0], by_model.items()):
        for i, row in enumerate(group):
            marker, colour, _ = RESULT_STYLES.get(row.get("kind"), _OTHER_STYLE)
            lo, hi = row.get("ci_low"), row.get("ci_high")
            err = None
            if lo is not None or hi is not None:  # a one-sided interval draws its closed side only
                err = [[0.0 if lo is None else row["log_z"] - lo], [0.0 if hi is None else hi - row["log_z"]]]
            ax.errorbar(row["log_z"], i, xerr=err, fmt=marker, color=colour, ecolor=colour, capsize=3, markersize=6)
            if row.get("kind") == "exact":
                ax.axvline(row["log_z"], color="grey", lw=0.8, ls="--")
            if row.get("kind") not in kinds:
                kinds.append(row.get("kind"))
        ax.set_yticks(range(len(group)), [r["method"] + _interval_note(r) for r in group])
        ax.set_ylim(-0.6, len(group) - 0.4)
        ax.set_title(Path(model).name, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("ln Z (nats), 95% interval")
    handles = []
    for kind in [k for k in RESULT_STYLES if k in kinds] + [k for k in kinds if k not in RESULT_STYLES][:1]:
        marker, colour, text = RESULT_STYLES.get(kind, _OTHER_STYLE)
        handles.append(Line2D([], [], marker=marker, color=colour, ls="none", label=text))
    fig.tight_layout()
    below_label = offset_copy(axes[-1, 0].transAxes, fig=fig, y=-42, units="points")
    axes[-1, 0].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below_label,
                       ncol=3, fontsize=8, frameon=False)  # below the x label; savefig's tight bbox keeps it
    return _save(fig, path, tight=False)


def plot_log_weights(rows: list[dict[str, Any]], path: str | os.PathLike, bins: int = 30) -> Path:
    """Histograms of annealing log-weights stored in results' ``diagnostics.log_weights``."""
    path = check_figure_path(path)
    chosen = [r for r in rows if isinstance(r.get("diagnostics", {}).get("log_weights"), list)]
    if not chosen:
        raise FecliError("no result holds log-weights (diagnostics.log_weights); run an annealing method with --format json.")
    plt = _pyplot()
    fig, axes = plt.subplots(len(chosen), 1, figsize=(6, 2.6 * len(chosen)), squeeze=False)
    for ax, row in zip(axes[:, 0], chosen):
        w = np.asarray(row["diagnostics"]["log_weights"], dtype=float)
        ax.hist(w - w.max(), bins=bins)
        ess = row["diagnostics"].get("ess")
        title = f"{Path(row['model']).name}: {row['method']}"
        ax.set_title(title + (f" (ESS {ess:.1f} of {len(w)})" if isinstance(ess, (int, float)) else ""), fontsize=10)
        ax.set_xlabel("log-weight - max")
        ax.set_ylabel("chains")
    return _save(fig, path)


def read_trajectory_rows(path: str | os.PathLike) -> list[dict[str, Any]] | None:
    """JSON lines of ``fecli trajectory --format json``; None when ``path`` is an HDF5 file (a model)."""
    path = Path(path)
    if not path.exists():
        raise FecliError(f"file '{path}' does not exist.")
    with open(path, "rb") as fh:
        if fh.read(8) == b"\x89HDF\r\n\x1a\n":
            return None
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise FecliError(
                f"'{path}' is neither a model file nor JSON lines of 'fecli trajectory --format json' "
                f"(line {number} is not JSON)."
            ) from None
        if not isinstance(row, dict) or "log_z" not in row or "snapshot" not in row:
            raise FecliError(f"'{path}' line {number} is not a row of 'fecli trajectory --format json'.")
        rows.append(row)
    if not rows:
        raise FecliError(f"'{path}' holds no trajectory rows.")
    return rows


def plot_trajectory(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """ln Z (top) and the data log-likelihoods (bottom, when present) against parameter updates.

    The x axis is logarithmic beyond one update and linear below (update 0, the initial
    model, stays on the axis); bands are the 95% intervals (the log-likelihood's is that of
    ln Z, flipped: its data term is exact).
    """
    path = check_figure_path(path)
    rows = [r for r in rows if r.get("log_z") is not None]
    if not rows:
        raise FecliError("no trajectory row holds an ln Z value.")
    last_update = max((r["update"] for r in rows if r.get("update") is not None), default=0)
    x = np.array([r["update"] if r.get("update") is not None else last_update + 1 for r in rows], dtype=float)
    log_z = np.array([r["log_z"] for r in rows], dtype=float)
    low = np.array([r["ci_low"] if r.get("ci_low") is not None else r["log_z"] for r in rows], dtype=float)
    high = np.array([r["ci_high"] if r.get("ci_high") is not None else r["log_z"] for r in rows], dtype=float)
    curves = [(key, label) for key, label in (("log_likelihood", "train"), ("val_log_likelihood", "validation"))
              if any(r.get(key) is not None for r in rows)]
    plt = _pyplot()
    fig, axes = plt.subplots(1 + bool(curves), 1, figsize=(7, 3.2 * (1 + bool(curves))), sharex=True, squeeze=False)
    ax = axes[0, 0]
    ax.fill_between(x, low, high, alpha=0.3, label="95% interval (replicates)")
    ax.plot(x, log_z, marker="o", markersize=3, label="ln Z")
    ax.set_ylabel("ln Z")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"ln Z along training: {Path(rows[0]['model']).name}", fontsize=10)
    if curves:
        ax2 = axes[1, 0]
        for key, label in curves:
            ll = np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)
            ax2.fill_between(x, ll - (high - log_z), ll + (log_z - low), alpha=0.3)
            ax2.plot(x, ll, marker="o", markersize=3, label=f"{label} mean ln p(v)")
        ax2.set_ylabel("mean log-likelihood (nats)")
        ax2.legend(fontsize=8, loc="best")
    for a in axes[:, 0]:
        a.set_xscale("symlog", linthresh=1.0)
        a.grid(alpha=0.3, which="both")
    axes[-1, 0].set_xlabel("parameter updates (log scale above 1)")
    return _save(fig, path)
