"""fecli plot: figures are written, non-empty, and bad input is one clear line."""

from __future__ import annotations

import builtins
import json

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
