"""The two commands fecli was specified with, run exactly as written in its brief and README."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fecli.cli import cli
from fecli.io import load_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    shutil.copy(ROOT / "sample_models" / "weak_24x12.h5", tmp_path / "model.h5")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "data.npy", (rng.random((60, 12)) < 0.3).astype(np.float64))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_estimate_method_tap_is_second_order_tap(workdir):
    result = CliRunner().invoke(cli, "estimate model.h5 --method tap --format json".split())
    assert result.exit_code == 0, result.output
    import json

    row = json.loads(result.output)
    assert row["method"] == "tap" and row["kind"] == "approximation"
    assert row["diagnostics"]["order"] == 2
    tap2 = json.loads(CliRunner().invoke(cli, "estimate model.h5 --method tap2 --format json".split()).output)
    assert row["log_z"] == tap2["log_z"]


def test_method_all_runs_tap_once_under_its_order_name(workdir):
    from fecli.estimators import method_names

    assert "tap" in method_names() and "tap" not in method_names(aliases=False)
    assert "tap2" in method_names(aliases=False)


def test_train_rbm_without_output_writes_next_to_the_data(workdir):
    result = CliRunner().invoke(cli, "train-rbm data.npy --epochs 2 --hidden 4".split())
    assert result.exit_code == 0, result.output
    written = workdir / "data-rbm.h5"
    assert "model written to data-rbm.h5" in result.output
    assert load_model(written).n_hidden == 4

    again = CliRunner().invoke(cli, "train-rbm data.npy --epochs 2 --hidden 4".split())
    assert again.exit_code == 1
    assert "already exists (use --overwrite" in again.output
    replaced = CliRunner().invoke(cli, "train-rbm data.npy --epochs 1 --hidden 3 --overwrite".split())
    assert replaced.exit_code == 0, replaced.output
    assert load_model(written).n_hidden == 3


def test_train_rbm_as_written_in_the_brief(workdir):
    result = CliRunner().invoke(cli, ["train-rbm", "data.npy"])
    assert result.exit_code == 0, result.output
    assert (workdir / "data-rbm.h5").exists()


def test_train_rbm_from_stdin_still_needs_output(workdir):
    result = CliRunner().invoke(cli, ["train-rbm", "-"], input="0 1\n1 0\n")
    assert result.exit_code == 2
    assert "-o/--output" in result.output
