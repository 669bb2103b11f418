"""fecli plot: figures are written, non-empty, and bad input is one clear line."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest
from click.testing import CliRunner

from fecli.cli import cli

from .conftest import SAMPLE_MODELS, SAMPLES

pytest.importorskip("matplotlib")

MODEL = SAMPLES / "digits_64x16.h5"
PNG = b"\x89PNG\r\n\x1a\n"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_training_curves_png(tmp_path):
    out = tmp_path / "curves.png"
    result = run("plot", "training", MODEL, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 5000


def test_filters_png_svg_and_pdf(tmp_path):
    for name in ("f.png", "f.svg", "f.pdf"):
        out = tmp_path / name
        result = run("plot", "filters", MODEL, "--shape", "8x8", "-o", out)
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 1000
    assert (tmp_path / "f.png").read_bytes().startswith(PNG)
    assert (tmp_path / "f.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:2000]


def test_results_chart_from_json_lines(tmp_path):
    rows = tmp_path / "r.jsonl"
    estimate = run("estimate", *SAMPLE_MODELS, "--format", "json", "-o", rows)
    assert estimate.exit_code == 0
    out = tmp_path / "chart.png"
    result = run("plot", "results", rows, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    "args, message",
    [
        (["filters", MODEL, "--shape", "9x8", "-o", "x.png"], "--shape 9x8 has 72 pixels, but the model has 64 visible units"),
        (["filters", MODEL, "--shape", "big", "-o", "x.png"], "--shape must look like 28x28"),
        (["filters", MODEL, "--shape", "8x8", "-o", "x.gif"], "use one of the extensions .png, .pdf, .svg"),
        (["training", SAMPLES / "weak_24x12.h5", "-o", "x.png"], "holds no training curves"),
        (["training", MODEL, "-o", "/nonexistent/x.png"], "folder '/nonexistent' does not exist"),
        (["results", MODEL, "-o", "x.png"], f"results file '{MODEL}' is an HDF5 file (a model?), not JSON lines"),
        (["ais-weights", MODEL, "-o", "x.png"], "is an HDF5 file (a model?), not JSON lines"),
        (["results", SAMPLES / "data" / "digits8x8_binary.npy", "-o", "x.png"], "is a NumPy .npy array, not JSON"),
        (["results", SAMPLES, "-o", "x.png"], f"results file '{SAMPLES}' is a folder, not a file"),
        (["results", "missing.jsonl", "-o", "x.png"], "results file 'missing.jsonl' does not exist"),
    ],
)
def test_bad_plot_input_is_one_line_exit_1(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = run("plot", *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_bad_results_file(tmp_path):
    bad = tmp_path / "r.jsonl"
    bad.write_text("model,method\n")
    result = run("plot", "results", bad, "-o", tmp_path / "c.png")
    assert result.exit_code == 1 and "line 1 is not JSON" in result.stderr
    bad.write_text(json.dumps({"a": 1}) + "\n")
    assert "not an ln Z record" in run("plot", "results", bad, "-o", tmp_path / "c.png").stderr
    bad.write_bytes(b"\xff\xfe\x00binary")
    result = run("plot", "results", bad, "-o", tmp_path / "c.png")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"fecli: error: results file '{bad}' is not a text file, so not JSON lines " \
                                    "from 'fecli estimate/compare --format json'."


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = run("plot", "filters", MODEL, "--shape", "8x8", "-o", tmp_path / "f.png")
    assert result.exit_code == 1
    assert "pip install 'fecli[plot]'" in result.stderr


def test_ais_weight_histograms_from_json_lines(tmp_path):
    rows = tmp_path / "r.jsonl"
    done = run("estimate", SAMPLES / "weak_24x12.h5", "-m", "ais", "-m", "reverse-ais", "-m", "importance",
               "--steps", "100", "--seed", "1", "--format", "json", "-o", rows)
    assert done.exit_code == 0, done.output
    records = [json.loads(line) for line in rows.read_text().splitlines()]
    assert len(records[0]["diagnostics"]["log_weights"]) == records[0]["params"]["chains"]
    out = tmp_path / "w.png"
    result = run("plot", "ais-weights", rows, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG)
    chart = tmp_path / "c.png"
    assert run("plot", "results", rows, "-o", chart).exit_code == 0  # one-sided intervals draw too
    exact_only = tmp_path / "e.jsonl"
    run("estimate", SAMPLES / "weak_24x12.h5", "--format", "json", "-o", exact_only)
    missing = run("plot", "ais-weights", exact_only, "-o", tmp_path / "x.png")
    assert missing.exit_code == 1 and "no result holds log-weights" in missing.stderr


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures the plot functions save, kept open for inspection."""
    import fecli.plots as plots

    kept = []
    real_save = plots._save

    def keep(fig, path, tight=True):
        kept.append(fig)
        fig.canvas.draw()
        return path

    monkeypatch.setattr(plots, "_save", keep)
    yield kept
    monkeypatch.setattr(plots, "_save", real_save)
    import matplotlib.pyplot as plt

    for fig in kept:
        plt.close(fig)


def test_training_panels_are_ordered_by_meaning_without_timings():
    from fecli.plots import training_panels

    names = ["epoch", "examples_per_s", "log_likelihood", "log_z", "lr", "pll", "recon_error", "tap_sweeps",
             "tap_unconverged", "val_log_likelihood", "val_pll", "val_recon_error", "wall_time_s", "zeta"]
    series = {name: np.arange(3.0) for name in names if name != "epoch"}
    panels = training_panels(series)
    assert [(title, [m for m, _ in members]) for title, _, members in panels] == [
        ("log-likelihood", ["log_likelihood", "val_log_likelihood"]),
        ("pseudo-log-likelihood", ["pll", "val_pll"]),
        ("reconstruction error", ["recon_error", "val_recon_error"]),
        ("log partition function", ["log_z"]),
        ("TAP iteration", ["tap_sweeps"]),
        ("TAP iteration", ["tap_unconverged"]),
        ("learning rate", ["lr"]),
        ("zeta", ["zeta"]),  # a metric of another tool: after the known ones
    ]


def test_training_figure_of_a_trained_model(tmp_path, figures):
    from fecli.io import load_model
    from fecli.plots import plot_training

    model = load_model(MODEL)
    model.training = {"metrics": {"epoch": np.arange(1, 4), "examples_per_s": np.array([9e4, 8e4, 7e4]),
                                  "recon_error": np.array([3.0, 2.0, 1.5]), "lr": np.full(3, 0.05),
                                  "log_likelihood": np.array([-30.0, -25.0, -22.0]),
                                  "val_log_likelihood": np.array([-31.0, -26.0, -23.0])}}
    plot_training(model, tmp_path / "t.png")
    axes = figures[0].axes
    assert [ax.get_title(loc="left") for ax in axes] == ["log-likelihood", "reconstruction error", "learning rate"]
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["train", "validation"]
    assert axes[0].get_ylabel() == "mean ln p(v) (nats)" and axes[-1].get_xlabel() == "epoch"


def test_filters_share_one_scale_with_a_colour_bar(tmp_path, figures):
    from fecli.io import load_model
    from fecli.plots import plot_filters

    model = load_model(MODEL)
    plot_filters(model, tmp_path / "f.png", "8x8", max_filters=5)
    fig = figures[0]
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "weight W_ij"]
    assert len(bars) == 1
    images = [im for ax in fig.axes for im in ax.get_images()]
    limit = np.abs(model.weights[:, :5]).max()
    assert len(images) == 5 and all(im.get_clim() == (-limit, limit) for im in images)
    assert "weights of 5 of 16 hidden units" in fig._suptitle.get_text()


def test_results_legend_names_each_kind_by_its_marker(tmp_path, figures):
    from fecli.plots import RESULT_STYLES, plot_results

    rows = [{"model": "m.h5", "method": "exact", "log_z": 10.0, "kind": "exact", "ci_low": 10.0, "ci_high": 10.0},
            {"model": "m.h5", "method": "mf", "log_z": 9.0, "kind": "lower_bound"},
            {"model": "m.h5", "method": "ais", "log_z": 9.9, "kind": "stochastic_lower_bound", "ci_low": 9.7,
             "ci_high": None},
            {"model": "m.h5", "method": "tap2", "log_z": 10.3, "kind": "approximation"}]
    plot_results(rows, tmp_path / "r.png")
    ax = figures[0].axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["exact", "lower bound", "stochastic lower bound",
                                                          "approximation"]
    assert [h.get_marker() for h in getattr(legend, "legend_handles", None) or legend.legendHandles] == [RESULT_STYLES[k][0] for k in
                                                               ("exact", "lower_bound", "stochastic_lower_bound",
                                                                "approximation")]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["exact", "mf", "ais (open above)", "tap2"]
    assert ax.get_xlabel() == "ln Z (nats), 95% interval"
