"""fecli estimate with mf/tap2/tap3/cumulant: results, kinds, and one-line errors with exit 1."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from click.testing import CliRunner

from fecli.cli import cli

WEAK = "sample_models/weak_24x12.h5"
DIGITS = "sample_models/digits_64x16.h5"
DATA = "sample_models/data/digits8x8_binary.npy"
REFERENCE = json.load(open("sample_models/reference.json"))


def run(*args: str):
    return CliRunner().invoke(cli, ["estimate", *args])


def test_acceptance_command_prints_every_kind():
    result = run(WEAK, DIGITS, "-m", "mf", "-m", "tap2", "-m", "tap3", "-m", "cumulant", "--order", "3",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 8
    kinds = {r["method"]: r["kind"] for r in rows}
    assert kinds == {"mf": "lower_bound", "tap2": "approximation", "tap3": "approximation",
                     "cumulant": "approximation"}
    for r in rows:
        exact = REFERENCE[os.path.basename(r["model"])]["1.0"]
        if r["method"] == "mf":
            assert r["log_z"] <= exact
        if r["method"] == "cumulant":
            assert len(r["diagnostics"]["partial_sums"]) == 3


def test_data_option_reaches_the_starts():
    result = run(DIGITS, "-m", "tap3", "--data", DATA, "--starts", "4", "--format", "json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["diagnostics"]["start_labels"][0] == "base-rate"
    assert row["params"]["starts"] == 4


@pytest.mark.parametrize(
    "args,needle",
    [
        (["-m", "cumulant", "--order", "0"], "order must be an integer from 1 to 4, got 0"),
        (["-m", "cumulant", "--order", "5"], "order must be an integer from 1 to 4, got 5"),
        (["-m", "tap3", "--damping", "0"], "--damping must be a finite number in (0, 1), got 0.0"),
        (["-m", "tap2", "--damping", "1"], "--damping must be a finite number in (0, 1), got 1.0"),
        (["-m", "mf", "--tol", "0"], "tol must be a finite number > 0"),
        (["-m", "tap3", "--tol", "-1e-3"], "tol must be a finite number > 0"),
        (["-m", "cumulant", "--reference", "base-rate"], "needs data"),
        (["-m", "tap3", "--max-iter", "1", "--damping", "0.9"], "did not converge from any of 8 start(s) within 1 iterations"),
    ],
)
def test_bad_input_one_line_exit_1(args, needle):
    result = run(WEAK if "--max-iter" not in args else DIGITS, *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_non_converged_mf_warns_on_stderr_and_still_reports_the_bound():
    result = run(DIGITS, "-m", "mf", "--max-iter", "2", "--format", "json")
    assert result.exit_code == 0
    assert "did not converge" in result.stderr
    row = json.loads(result.stdout)
    assert row["kind"] == "lower_bound" and row["log_z"] <= REFERENCE["digits_64x16.h5"]["1.0"]


def test_options_that_do_not_apply_are_refused():
    result = run(WEAK, "-m", "exact", "--order", "2")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--order does not apply" in lines[0]


def test_help_lists_methods_and_defaults():
    result = CliRunner().invoke(cli, ["estimate", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for name in ("mf", "tap2", "tap3", "cumulant"):
        assert f" {name} " in text
    details = CliRunner().invoke(cli, ["estimate", "--help-method", "all"])
    assert details.exit_code == 0
    text = " ".join(details.output.split())
    for default in ("[> 0; default: 1e-07]", "[>= 1; default: 2000]", "[in (0, 1); default: 0.3]", "[>= 1; default: 8]",
                    "[default: best]", "[from 1 to 4; default: 2]", "[default: mf]", "[default: joint]",
                    "[>= 16; default: 10000]"):
        assert default in text


def test_real_subprocess_bad_damping():
    from .test_cli import fecli_command

    proc = subprocess.run([*fecli_command(), "estimate", WEAK, "-m", "tap3", "--damping", "1.5"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fecli: error:") and "damping" in lines[0]
