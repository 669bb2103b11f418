"""loglik --method raise: RAISE's per-example lower bounds against the exact log-likelihood."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fecli.cli import cli
from fecli.data import load_data
from fecli.errors import InvalidOptionError
from fecli.estimators import ais, method_names
from fecli.io import load_model
from fecli.loglik import FIELDS, log_likelihood, raise_loglik

MODELS = Path(__file__).resolve().parent.parent / "sample_models"
DIGITS = MODELS / "digits_64x16.h5"
DATA = MODELS / "data" / "digits8x8_binary.npy"


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    rows = load_data(DATA)[:20]
    path = tmp_path_factory.mktemp("raise") / "rows20.npy"
    np.save(path, rows.astype(np.uint8))
    return rows, path


@pytest.fixture(scope="module")
def exact(subset):
    return log_likelihood(load_model(DIGITS), subset[0], "exact")


def test_raise_is_below_exact_within_error_and_close(subset, exact):
    model = load_model(DIGITS)
    r = raise_loglik(model, subset[0], "rows20", seed=1)
    assert r.kind == "stochastic_lower_bound" and r.method == "raise" and r.n_examples == 20
    assert r.stderr is not None and 0 < r.stderr < 0.5
    # a stochastic lower bound (of the annealed model's ln p): below, or above by at most 3 stderr
    assert r.mean_log_likelihood <= exact.mean_log_likelihood + 3 * r.stderr
    assert abs(r.mean_log_likelihood - exact.mean_log_likelihood) < 2.0
    # every row close to its exact value with the default settings
    assert np.abs(r.per_example - exact.per_example).max() < 2.0
    # implied ln Z: mean(-F) - mean ln p
    assert math.isclose(r.log_z, r.mean_neg_free_energy - r.mean_log_likelihood)
    assert abs(r.log_z - exact.log_z) < 2.0
    assert math.isclose(r.mean_neg_free_energy, exact.mean_neg_free_energy)
    assert "implied" in r.diagnostics["log_z"]
    assert r.ci_low < r.mean_log_likelihood < r.ci_high


def test_stderr_is_combined_from_rows(subset):
    model = load_model(DIGITS)
    r = raise_loglik(model, subset[0], seed=2, steps=200)
    raised = ais.raise_log_likelihood(model, subset[0], seed=2, steps=200)
    assert np.array_equal(r.per_example, raised.log_p)
    assert math.isclose(r.stderr, math.sqrt(np.sum(raised.stderr**2)) / 20)
    assert raise_loglik(model, subset[0], seed=2, steps=50, repeats=1).stderr is None


def test_raise_is_not_a_registry_method():
    assert "raise" not in method_names()


def test_bad_options(subset):
    model = load_model(DIGITS)
    for kwargs in ({"repeats": 0}, {"steps": 0}, {"schedule": "cubic"}, {"sweeps": 0}, {"beta": 0.0}):
        with pytest.raises(InvalidOptionError):
            raise_loglik(model, subset[0], **kwargs)


def test_cli_json_record_and_per_example(subset, tmp_path):
    rows, path = subset
    per = tmp_path / "per.npy"
    res = CliRunner().invoke(cli, ["loglik", str(DIGITS), str(path), "-m", "raise", "--seed", "3", "--steps",
                                   "500", "--chains", "5", "--format", "json", "--per-example", str(per), "-q"])
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(record) == set(FIELDS)
    assert record["method"] == "raise" and record["kind"] == "stochastic_lower_bound"
    assert record["n_examples"] == 20 and record["params"]["repeats"] == 5 and record["params"]["steps"] == 500
    values = np.load(per)
    assert values.shape == (20,) and math.isclose(values.mean(), record["mean_log_likelihood"])
    lib = raise_loglik(load_model(DIGITS), rows, seed=3, steps=500, repeats=5)
    assert np.array_equal(values, lib.per_example)


def test_cli_raise_with_exact_side_by_side(subset):
    res = CliRunner().invoke(cli, ["loglik", str(DIGITS), str(subset[1]), "-m", "exact", "-m", "raise",
                                   "--steps", "300", "--seed", "1", "--format", "json", "-q"])
    assert res.exit_code == 0, res.output
    methods = [json.loads(line)["method"] for line in res.stdout.strip().splitlines()]
    assert methods == ["exact", "raise"]


@pytest.mark.parametrize("args, message", [
    (["-m", "raise", "--max-units", "10"], "--max-units does not apply to the selected method(s): raise"),
    (["-m", "raise", "--steps", "0"], "steps must be an integer >= 1"),
    (["-m", "raise", "-m", "exact", "--per-example", "x.npy"], "choose a single --method"),
])
def test_cli_bad_input(subset, args, message):
    res = CliRunner().invoke(cli, ["loglik", str(DIGITS), str(subset[1]), *args])
    assert res.exit_code == 1
    assert message in res.output
