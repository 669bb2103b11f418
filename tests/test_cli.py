"""The command line as users run it: renderings, exit statuses and one-line errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fecli.cli import cli
from fecli.io import load_model, save_model
from fecli.model import RBM

from .conftest import REFERENCE, SAMPLE_MODELS, SAMPLES, brute_force_log_z
from .test_io import BAD_FILES

KEYS = ["model", "method", "beta", "log_z", "free_energy", "stderr", "ci_low", "ci_high", "kind",
        "wall_time_s", "n_visible", "n_hidden", "params", "diagnostics", "warnings"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_table_shows_ln_z_free_energy_and_kind():
    result = run("estimate", SAMPLES / "digits_64x16.h5", "--method", "exact")
    assert result.exit_code == 0, result.output
    expected = REFERENCE["digits_64x16.h5"]["1.0"]
    assert f"{expected:.6f}" in result.stdout
    assert f"{-expected:.6f}" in result.stdout
    assert "exact" in result.stdout and "\x1b[" not in result.stdout


def test_json_lines_one_object_per_model_with_every_key():
    result = run("estimate", *SAMPLE_MODELS, "--method", "exact", "--format", "json", "--beta", "0.5")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["model"] for r in rows] == [str(p) for p in SAMPLE_MODELS]
    for row, path in zip(rows, SAMPLE_MODELS):
        assert list(row) == KEYS
        assert row["log_z"] == pytest.approx(REFERENCE[path.name]["0.5"], rel=1e-12)
        assert row["free_energy"] == pytest.approx(-row["log_z"] / 0.5)
        assert row["kind"] == "exact" and row["beta"] == 0.5


def test_csv_has_a_header_and_one_row_per_model():
    result = run("estimate", *SAMPLE_MODELS, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(SAMPLE_MODELS)
    assert list(rows[0]) == KEYS
    assert float(rows[0]["log_z"]) == pytest.approx(REFERENCE[SAMPLE_MODELS[0].name]["1.0"], rel=1e-12)
    assert json.loads(rows[0]["params"])["layer"] == "hidden"


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_output_file_gets_the_results_and_stdout_stays_empty(tmp_path, fmt):
    out = tmp_path / f"res.{fmt}"
    result = run("estimate", SAMPLES / "weak_24x12.h5", "--format", fmt, "--output", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    text = out.read_text()
    assert f"{REFERENCE['weak_24x12.h5']['1.0']:.12g}"[:8] in text


@pytest.mark.parametrize("suffix, explicit, parse", [
    ("json", None, lambda text: json.loads(text.splitlines()[0])["log_z"]),
    ("csv", None, lambda text: next(csv.DictReader(io.StringIO(text)))["log_z"]),
    ("json", "table", lambda text: "ln Z estimates" in text or None),
])
def test_output_extension_chooses_the_format_unless_format_is_given(tmp_path, suffix, explicit, parse):
    out = tmp_path / f"res.{suffix}"
    given = ("--format", explicit) if explicit else ()
    result = run("estimate", SAMPLES / "weak_24x12.h5", "-m", "exact", *given, "-o", out)
    assert result.exit_code == 0, result.output
    assert parse(out.read_text()) is not None


def test_output_into_a_missing_folder_fails_before_any_work(tmp_path):
    result = run("estimate", SAMPLES / "weak_24x12.h5", "--output", tmp_path / "nope" / "r.json")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "folder" in result.stderr and "does not exist" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_every_bad_model_file_gives_one_line_and_exit_1(tmp_path, case):
    make, message = BAD_FILES[case]
    path = make(tmp_path)
    result = run("estimate", path, "--method", "exact")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fecli: error: "), result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_exact_above_the_unit_limit_is_refused_with_the_expected_time(tmp_path):
    path = tmp_path / "big.h5"
    save_model(RBM(np.zeros((40, 33)), np.zeros(40), np.zeros(33)), path)
    result = run("estimate", path, "-m", "exact")
    assert result.exit_code == 1
    assert "2^33 states" in result.stderr and "--max-units" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_max_units_lowers_and_raises_the_limit():
    path = SAMPLES / "weak_24x12.h5"
    assert run("estimate", path, "-m", "exact", "--max-units", "11").exit_code == 1
    assert run("estimate", path, "-m", "exact", "--max-units", "12").exit_code == 0


def test_one_bad_model_does_not_stop_the_others(tmp_path):
    result = run("estimate", tmp_path / "absent.h5", SAMPLES / "weak_24x12.h5", "--format", "json")
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 1
    assert "absent.h5" in result.stderr


def test_invalid_beta_is_one_line_exit_1():
    result = run("estimate", SAMPLES / "weak_24x12.h5", "--beta", "-1")
    assert result.exit_code == 1
    assert "beta must be a finite number > 0" in result.stderr


def test_usage_errors_exit_2():
    assert run("estimate", SAMPLES / "weak_24x12.h5", "--method", "nope").exit_code == 2
    assert run("estimate").exit_code == 2
    assert run("estimate", SAMPLES / "weak_24x12.h5", "--format", "xml").exit_code == 2


def test_layer_option_reaches_the_method(small_model_file):
    """--layer picks the enumerated layer (a 7 x 5 model: 2^7 visible or 2^5 hidden states)."""
    rows = {}
    for layer in ("visible", "hidden"):
        result = run("estimate", small_model_file, "-m", "exact", "--layer", layer, "--format", "json")
        assert result.exit_code == 0, result.output
        rows[layer] = json.loads(result.stdout)
        assert rows[layer]["params"]["layer"] == layer
    assert rows["visible"]["diagnostics"]["states"] == 2**7 and rows["hidden"]["diagnostics"]["states"] == 2**5
    assert rows["visible"]["log_z"] == pytest.approx(rows["hidden"]["log_z"], rel=1e-12)
    assert rows["visible"]["log_z"] == pytest.approx(brute_force_log_z(load_model(small_model_file)), rel=1e-12)


def test_info_reports_sizes_statistics_metadata_and_feasibility():
    result = run("info", SAMPLES / "digits_64x16.h5", "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["n_visible"], summary["n_hidden"]) == (64, 16)
    assert summary["training"]["method"].startswith("exact-gradient")
    assert summary["estimators"]["exact"]["feasible"] is True
    assert "2^16 states x 64 softplus" in summary["estimators"]["exact"]["note"]
    table = run("info", SAMPLES / "digits_64x16.h5")
    assert "64 visible (bernoulli) x 16 hidden (bernoulli)" in table.stdout
    assert "exact" in table.stdout


def test_info_says_when_exact_is_out_of_reach(tmp_path):
    path = tmp_path / "big.h5"
    save_model(RBM(np.zeros((784, 500)), np.zeros(784), np.zeros(500)), path)
    summary = json.loads(run("info", path, "--format", "json").stdout)
    assert summary["estimators"]["exact"]["feasible"] is False
    assert "2^500 states" in summary["estimators"]["exact"]["note"]


def test_info_on_a_bad_file_is_one_line_exit_1(tmp_path):
    result = run("info", tmp_path / "absent.h5")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"fecli: error: model file '{tmp_path / 'absent.h5'}' does not exist."


def fecli_command() -> list[str]:
    """The installed `fecli` console script next to this Python, else the same entry point via -c."""
    script = Path(sys.executable).with_name("fecli")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from fecli.cli import main; main()"]


def fecli_subprocess(*args, **kwargs):
    return subprocess.run([*fecli_command(), *map(str, args)], capture_output=True, text=True, **kwargs)


def test_real_subprocess_json_pipeline_and_bad_input(tmp_path):
    done = fecli_subprocess("estimate", *SAMPLE_MODELS, "--method", "exact", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert len([json.loads(line) for line in done.stdout.splitlines()]) == len(SAMPLE_MODELS)

    bad = tmp_path / "bad.h5"
    bad.write_text("not a model")
    done = fecli_subprocess("estimate", bad)
    assert done.returncode == 1
    assert done.stderr.strip() == f"fecli: error: model file '{bad}' is not an HDF5 file."
    assert done.stdout == ""


def test_debug_shows_the_traceback(tmp_path):
    args = ("estimate", SAMPLES / "weak_24x12.h5", "--output", tmp_path / "nope" / "r.json")
    quiet = fecli_subprocess(*args)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    loud = fecli_subprocess("--debug", *args)
    assert loud.returncode == 1
    assert "Traceback" in loud.stderr and "FecliError" in loud.stderr


def test_help_lists_exactly_the_registered_methods():
    from fecli.estimators import method_names

    text = run("estimate", "--help").stdout
    for name in method_names():
        assert f"  {name} " in text


def test_quoted_globs_expand_and_fail_fast_stops_the_batch(tmp_path):
    pattern = str(SAMPLES / "*.h5")
    expanded = run("estimate", pattern, "--format", "json")
    assert expanded.exit_code == 0
    assert len(expanded.stdout.splitlines()) == len(SAMPLE_MODELS)

    keep_going = run("estimate", tmp_path / "absent.h5", pattern, "--format", "json")
    assert keep_going.exit_code == 1 and len(keep_going.stdout.splitlines()) == len(SAMPLE_MODELS)
    stop = run("estimate", tmp_path / "absent.h5", pattern, "--format", "json", "--fail-fast")
    assert stop.exit_code == 1 and stop.stdout == ""


def test_unmatched_glob_is_reported_as_missing(tmp_path):
    result = run("estimate", tmp_path / "*.h5")
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_estimate_table_shows_the_distance_to_exact_when_exact_is_among_the_rows():
    result = run("estimate", SAMPLES / "weak_24x12.h5", SAMPLES / "strong_24x12.h5", "-m", "exact", "-m", "mf")
    assert result.exit_code == 0, result.output
    assert "Δ vs exact" in result.stdout
    mf_rows = [line for line in result.stdout.splitlines() if "│ mf " in line]
    assert len(mf_rows) == 2 and all("-0.0864" in r or "-2.2820" in r for r in mf_rows)
    alone = run("estimate", SAMPLES / "weak_24x12.h5", "-m", "mf")
    assert "Δ vs exact" not in alone.stdout
