"""The sampling methods through the command line: options, the one table, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fecli.cli import cli

MODELS = Path(__file__).resolve().parent.parent / "sample_models"
REFERENCE = json.loads((MODELS / "reference.json").read_text())
DIGITS = str(MODELS / "digits_64x16.h5")
STRONG = str(MODELS / "strong_24x12.h5")
DATA = str(MODELS / "data" / "digits8x8_binary.npy")
METHODS = ["ais", "reverse-ais", "importance", "pt", "ti"]


def run(*args):
    return CliRunner().invoke(cli, ["estimate", *args], catch_exceptions=False)


def test_all_sampling_methods_agree_with_exact_in_one_run():
    """Acceptance: one table-worthy run, every method within 4 of its own standard errors of exact."""
    args = [STRONG, "--seed", "5", "--format", "json"]
    for m in METHODS:
        args += ["--method", m]
    result = run(*args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["method"] for r in rows] == METHODS
    exact = REFERENCE["strong_24x12.h5"]["1.0"]
    for r in rows:
        assert r["stderr"] is not None and r["stderr"] > 0
        assert abs(r["log_z"] - exact) < 4 * r["stderr"], r
    kinds = {r["method"]: r["kind"] for r in rows}
    assert kinds == {"ais": "stochastic_lower_bound", "reverse-ais": "stochastic_upper_bound",
                     "importance": "stochastic_lower_bound", "pt": "estimate", "ti": "estimate"}


def test_table_shows_the_sandwich():
    result = run(DIGITS, "-m", "ais", "-m", "reverse-ais", "--seed", "1", "--steps", "300", "--data", DATA)
    assert result.exit_code == 0
    assert "stoch. lower bound" in result.stdout and "stoch. upper bound" in result.stdout
    text = " ".join(result.stdout.split())
    line = re.search(r"sandwich .*?: ([\d.]+) <= ln Z <= ([\d.]+), gap (-?[\d.]+) nats", text)
    crossed = re.search(r"forward AIS ([\d.]+) and reverse AIS ([\d.]+) cross by ([\d.]+) nats", text)
    assert line or crossed, result.stdout  # two noisy bounds may cross: the line then says so
    found = line or crossed
    gap = float(found.group(3)) * (1 if line else -1)
    assert gap == pytest.approx(float(found.group(2)) - float(found.group(1)), abs=2e-4)


def test_options_reach_the_library():
    result = run(STRONG, "-m", "ais", "--seed", "2", "--chains", "20", "--steps", "50", "--schedule", "linear",
                 "--sweeps", "2", "--format", "json")
    params = json.loads(result.stdout)["params"]
    assert params == {"chains": 20, "steps": 50, "schedule": "linear", "sweeps": 2, "data": None, "seed": 2}


@pytest.mark.parametrize("args,message", [
    (["-m", "ais", "--chains", "0"], "chains must be an integer >= 1, got 0"),
    (["-m", "reverse-ais", "--steps", "-1"], "steps must be an integer >= 1, got -1"),
    (["-m", "umbrella", "--windows", "1"], "--windows must be an integer from 2 to 256, got 1"),
    (["-m", "ti", "--chains", "1"], "--chains must be an integer >= 2, got 1"),
    (["-m", "importance", "--data", DATA], "has 64 columns, but model .* has 24 visible units"),
])
def test_bad_input_is_one_line_and_exit_1(args, message):
    result = run(STRONG, *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fecli: error: ") and re.search(message, lines[0])


def test_a_schedule_outside_the_choices_is_a_usage_error():
    result = run(STRONG, "-m", "ti", "--schedule", "cosine")
    assert result.exit_code == 2 and result.stdout == ""
    assert "'cosine' is not one of 'linear', 'sigmoid', 'sm08'" in result.stderr


def test_failed_run_says_why(tmp_path):
    from fecli.io import save_model
    from fecli.model import RBM

    path = tmp_path / "huge.h5"
    save_model(RBM(np.full((6, 4), 1e308), np.zeros(6), np.zeros(4)), path)
    result = run(str(path), "-m", "ais", "--steps", "5")
    assert result.exit_code == 1 and result.stdout == ""
    assert "the run failed" in result.stderr and "no estimate is reported" in result.stderr
    assert "Traceback" not in result.stderr


def test_real_subprocess_bad_option_and_success():
    exe = [sys.executable, "-m", "fecli.cli"]
    bad = subprocess.run([*exe, "estimate", STRONG, "-m", "ais", "--chains", "-2"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip() == "fecli: error: --chains must be an integer >= 1, got -2."
    ok = subprocess.run([*exe, "estimate", STRONG, "-m", "umbrella", "--windows", "4", "--samples", "30",
                         "--burn-in", "5", "--seed", "1", "--format", "json"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["method"] == "umbrella"  # nothing but the JSON line on stdout


def test_help_lists_the_methods_and_defaults():
    text = " ".join(CliRunner().invoke(cli, ["estimate", "--help"]).output.split())
    for name in METHODS:
        assert name in text
    from fecli.estimators import ais, importance, pt, ti

    def method_help(name):
        return " ".join(CliRunner().invoke(cli, ["estimate", "--help-method", name], terminal_width=200).output.split())

    assert f"[>= 1; default: {ais.DEFAULT_STEPS}]" in method_help("ais")
    assert f"[>= 1; default: {ti.DEFAULT_STEPS}]" in method_help("ti")
    assert f"[>= 1; default: {pt.DEFAULT_SAMPLES}]" in method_help("pt")
    assert f"[>= 2; default: {pt.DEFAULT_CHAINS}]" in method_help("pt")
    assert f"[>= 1; default: {importance.DEFAULT_SAMPLES}]" in method_help("importance")
