"""fecli loglik: mean ln p(v) = mean(-F(v)) - ln Z, checked against a direct enumeration."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from fecli import load_model
from fecli.cli import cli
from fecli.loglik import FLIPPED_KIND, from_log_z, log_likelihood
from fecli.result import KINDS, Result

from .conftest import SAMPLES, all_states, brute_force_log_z, random_rbm

DIGITS = SAMPLES / "data" / "digits8x8_binary.npy"
MODEL = SAMPLES / "digits_64x16.h5"


def brute_force_log_p(model, v):
    """ln p(v) = ln sum_h exp(-E(v,h)) - ln Z, straight from the energy."""
    h = all_states(model.n_hidden)
    neg_e = (v @ model.visible_bias)[:, None] + (h @ model.hidden_bias)[None, :] + v @ model.weights @ h.T
    top = neg_e.max(axis=1, keepdims=True)
    return (top[:, 0] + np.log(np.exp(neg_e - top).sum(axis=1))) - brute_force_log_z(model)


def test_log_likelihood_matches_brute_force_on_a_tiny_model(rng):
    model = random_rbm(rng, 6, 4, 1.5)
    data = rng.integers(0, 2, size=(50, 6)).astype(float)
    result = log_likelihood(model, data)
    expected = brute_force_log_p(model, data)
    np.testing.assert_allclose(result.per_example, expected, rtol=1e-11)
    assert result.mean_log_likelihood == pytest.approx(expected.mean(), rel=1e-12)
    assert result.kind == "exact" and result.stderr == 0.0


def test_probabilities_of_all_states_sum_to_one(rng):
    model = random_rbm(rng, 7, 3, 2.0)
    log_p = log_likelihood(model, all_states(7)).per_example
    assert np.exp(log_p).sum() == pytest.approx(1.0, rel=1e-12)


def test_error_and_bounds_carry_through():
    model = load_model(MODEL)
    data = np.load(DIGITS)[:10].astype(float)
    fake = Result(model.name, "x", 1.0, 80.0, "stochastic_lower_bound", 64, 16, stderr=0.5, ci_low=79.0, ci_high=81.0)
    record = from_log_z(model, data, fake)
    assert record.kind == "stochastic_upper_bound"
    assert record.stderr == 0.5
    assert record.ci_low == pytest.approx(record.mean_neg_free_energy - 81.0)
    assert record.ci_high == pytest.approx(record.mean_neg_free_energy - 79.0)
    assert set(FLIPPED_KIND) == set(KINDS) and set(FLIPPED_KIND.values()) == set(KINDS)


def test_cli_loglik_equals_the_exact_mean_log_likelihood():
    result = CliRunner().invoke(cli, ["loglik", str(MODEL), str(DIGITS), "--format", "json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    model = load_model(MODEL)
    data = np.load(DIGITS).astype(float)
    assert row["mean_log_likelihood"] == pytest.approx(float(np.mean(-model.free_energy(data))) - row["log_z"], rel=1e-12)
    assert row["mean_log_likelihood"] == pytest.approx(-17.4484, abs=1e-3)
    assert row["n_examples"] == 1797 and row["kind"] == "exact"


def test_per_example_file_and_stdin(tmp_path):
    out = tmp_path / "per.npy"
    rows = np.load(DIGITS)[:20]
    payload = tmp_path / "in.npy"
    np.save(payload, rows)
    done = subprocess.run(
        [sys.executable, "-c", "from fecli.cli import main; main()", "loglik", str(MODEL), "-",
         "--per-example", str(out), "--format", "json"],
        input=payload.read_bytes(), capture_output=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    per = np.load(out)
    assert per.shape == (20,)
    assert per.mean() == pytest.approx(row["mean_log_likelihood"], rel=1e-12)


def test_per_example_text_file_holds_every_value_exactly(tmp_path):
    out = tmp_path / "per.csv"
    result = CliRunner().invoke(cli, ["loglik", str(MODEL), str(DIGITS), "--per-example", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    log_z = json.loads(result.stdout)["log_z"]
    values = np.loadtxt(out, delimiter=",")
    neg_f = -load_model(MODEL).free_energy(np.load(DIGITS).astype(float))
    assert values.shape == (1797,) and len(out.read_text().splitlines()) == 1797
    np.testing.assert_array_equal(values, neg_f - log_z)  # 17 significant digits read back exactly


@pytest.mark.parametrize(
    "args, message",
    [
        (["--per-example", "/nonexistent/p.npy"], "folder '/nonexistent' does not exist"),
        (["--method", "exact", "--method", "mf", "--per-example", "p.npy"], "single --method"),
        (["--per-example", "p.dat"], "cannot write --per-example file 'p.dat': the format follows the extension"),
    ],
)
def test_bad_loglik_options(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)  # a relative output that slipped through would land here, not in the repository
    result = CliRunner().invoke(cli, ["loglik", str(MODEL), str(DIGITS), *args])
    assert result.exit_code == 1
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_data_width_must_match(tmp_path):
    path = tmp_path / "narrow.npy"
    np.save(path, np.zeros((3, 5)))
    result = CliRunner().invoke(cli, ["loglik", str(MODEL), str(path)])
    assert result.exit_code == 1
    assert "has 5 columns, but model" in result.stderr and "64 visible units" in result.stderr


def test_empty_stdin_is_a_clear_error():
    result = CliRunner().invoke(cli, ["loglik", str(MODEL), "-"], input=b"")
    assert result.exit_code == 1
    assert "no data arrived on stdin" in result.stderr
