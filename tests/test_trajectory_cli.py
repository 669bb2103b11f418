"""The command line of ln Z along training: train-rbm --snapshots, fecli trajectory, estimate -m
trajectory, plot trajectory; refusals are one clear line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fecli.cli import cli
from fecli.estimators.exact import log_partition
from fecli.io import load_model, read_snapshots

from .conftest import ROOT, SAMPLES

DIGITS = ROOT / "sample_models" / "data" / "digits8x8_binary.npy"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("fecli: error: ") and "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def snap_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    data = folder / "rows.npy"
    np.save(data, np.load(DIGITS)[:500])
    path = folder / "m.h5"
    result = run("train-rbm", data, "--hidden", 6, "--epochs", 3, "--seed", 1, "--snapshots", 7,
                 "--monitor-every", 0, "-o", path)
    assert result.exit_code == 0, result.output
    return path, data


def test_train_rbm_writes_the_snapshots(snap_model):
    path, _ = snap_model
    snaps = read_snapshots(path)
    assert len(snaps) == 7 and snaps.updates[0] == 0 and snaps.updates[-1] == 3 * 25


def test_trajectory_json_rows_one_per_snapshot_with_log_likelihoods(snap_model):
    path, data = snap_model
    result = run("trajectory", path, "--data", data, "--validation-data", data, "--seed", 2, "--steps", 10,
                 "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["snapshot"] for r in rows] == list(range(7))
    assert [r["update"] for r in rows] == read_snapshots(path).updates.tolist()
    final = rows[-1]
    exact = log_partition(load_model(path))
    assert final["ci_low"] - 0.05 <= exact <= final["ci_high"] + 0.05
    assert final["log_likelihood"] == pytest.approx(final["val_log_likelihood"])  # same rows twice
    assert final["params"]["seed"] == 2 and final["params"]["steps"] == 10 and final["kind"] == "stochastic_lower_bound"
    assert rows[0]["kind"] == "exact" and len(final["diagnostics"]["replicate_log_z"]) == 8


def test_trajectory_table_and_csv(snap_model, tmp_path):
    path, data = snap_model
    table = run("trajectory", path, "--data", data, "--seed", 2, "--steps", 5)
    assert table.exit_code == 0, table.output
    assert "ln Z along training" in table.stdout and "train LL" in table.stdout and "valid LL" not in table.stdout
    out = tmp_path / "t.csv"
    csv = run("trajectory", path, "--seed", 2, "--steps", 5, "--format", "csv", "-o", out)
    assert csv.exit_code == 0 and csv.stdout == ""
    lines = out.read_text().splitlines()
    assert lines[0].startswith("model,snapshot,update,epoch,log_z,stderr") and len(lines) == 8


def test_estimate_method_trajectory_and_one_line_refusals(snap_model, tmp_path):
    path, data = snap_model
    ok = run("estimate", path, "-m", "trajectory", "--seed", 1, "--steps", 10, "--replicates", 4, "--format", "json")
    assert ok.exit_code == 0, ok.output
    row = json.loads(ok.stdout)
    assert row["method"] == "trajectory" and row["params"]["replicates"] == 4
    plain = SAMPLES / "weak_24x12.h5"
    refused = run("estimate", plain, "-m", "trajectory")
    assert refused.exit_code == 1
    assert "has no parameter snapshots" in one_error_line(refused) and "--snapshots N" in refused.output
    refused = run("trajectory", plain)
    assert refused.exit_code == 1 and "train-rbm --snapshots N" in one_error_line(refused)
    bad = run("trajectory", path, "--replicates", 1)
    assert bad.exit_code == 1 and "replicates must be an integer >= 2" in one_error_line(bad)
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, np.zeros((5, 40)))
    wrong = run("trajectory", path, "--data", narrow)
    assert wrong.exit_code == 1 and "has 40 columns, but model" in one_error_line(wrong)
    usage = run("train-rbm", data, "--snapshots", 1, "-o", tmp_path / "x.h5")
    assert usage.exit_code == 1 and "--snapshots must be 0 (none) or at least 2" in one_error_line(usage)


def test_trajectory_is_named_not_in_all_and_info_says_where_it_applies(snap_model):
    from fecli.estimators import METHODS, method_names
    from fecli.info import describe

    path, _ = snap_model
    assert "trajectory" in method_names() and "trajectory" not in method_names(aliases=False)
    assert not METHODS["trajectory"].in_all
    assert describe(path)["estimators"]["trajectory"]["feasible"]
    plain = describe(SAMPLES / "weak_24x12.h5")["estimators"]["trajectory"]
    assert not plain["feasible"] and "train-rbm --snapshots N" in plain["note"]


def test_plot_trajectory_from_model_and_from_json(snap_model, tmp_path):
    pytest.importorskip("matplotlib")
    path, data = snap_model
    png = tmp_path / "t.png"
    result = run("plot", "trajectory", path, "-o", png, "--data", data, "--seed", 1, "-q")
    assert result.exit_code == 0, result.output
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10000
    rows = tmp_path / "rows.jsonl"
    rows.write_text(run("trajectory", path, "--seed", 1, "--steps", 5, "--format", "json").stdout)
    svg = tmp_path / "t.svg"
    assert run("plot", "trajectory", rows, "-o", svg).exit_code == 0 and b"<svg" in svg.read_bytes()[:2000]
    mixed = run("plot", "trajectory", rows, "-o", svg, "--data", data)
    assert mixed.exit_code == 2 and "apply when SOURCE is a model file" in mixed.output
    junk = tmp_path / "junk.txt"
    junk.write_text("not json\n")
    assert "neither a model file nor JSON lines" in one_error_line(run("plot", "trajectory", junk, "-o", png))


def test_estimate_help_names_the_trajectory_defaults():
    from fecli.estimators import trajectory as t

    text = " ".join(run("estimate", "--help").output.split())
    assert "trajectory" in text and "train-rbm --snapshots N" in text
    help_method = " ".join(run("estimate", "--help-method", "trajectory").output.split())
    assert f"[>= 1; default: {t.DEFAULT_CHAINS}]" in help_method and f"[>= 2; default: {t.DEFAULT_REPLICATES}]" in help_method
    own = " ".join(run("trajectory", "--help").output.split())
    assert f"[>= 1; default: {t.DEFAULT_STEPS}]" in own and "--resample-ess" in own
