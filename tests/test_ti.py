"""Thermodynamic integration, checked against exact enumeration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fecli.errors import InvalidOptionError
from fecli.estimators.ti import ti, trapezoid
from fecli.io import load_model

MODELS = Path(__file__).resolve().parent.parent / "sample_models"
REFERENCE = json.loads((MODELS / "reference.json").read_text())
DATA = MODELS / "data" / "digits8x8_binary.npy"


@pytest.mark.parametrize("name,beta,data", [("weak_24x12.h5", 1.0, None), ("strong_24x12.h5", 1.0, None),
                                            ("strong_24x12.h5", 0.5, None), ("digits_64x16.h5", 1.0, None),
                                            ("digits_64x16.h5", 1.0, DATA)])
def test_ti_within_4_stderr_of_exact(name, beta, data):
    r = ti(load_model(MODELS / name), beta=beta, data=data, seed=31)
    assert r.kind == "estimate"
    assert abs(r.log_z - REFERENCE[name][str(beta)]) < 4 * r.stderr
    assert r.stderr >= r.diagnostics["sampling_stderr"]


@pytest.mark.slow
def test_ti_coverage_over_seeds():
    m = load_model(MODELS / "strong_24x12.h5")
    ex = REFERENCE["strong_24x12.h5"]["1.0"]
    hits = [r.ci_low <= ex <= r.ci_high for r in (ti(m, seed=s, steps=100, sweeps=10) for s in range(30))]
    assert sum(hits) >= 26


@pytest.mark.slow
def test_ti_is_not_biased_by_lag_on_the_trained_model():
    """Chains moving only up the path lagged: 14/20 intervals held, mean z -1.25 on digits.
    Up and down chains cancel the lag and keep what is left in the error bar."""
    m = load_model(MODELS / "digits_64x16.h5")
    ex = REFERENCE["digits_64x16.h5"]["1.0"]
    runs = [ti(m, seed=s) for s in range(20)]
    assert sum(r.ci_low <= ex <= r.ci_high for r in runs) >= 18
    z = np.array([(r.log_z - ex) / r.stderr for r in runs])
    assert abs(z.mean()) < 0.5
    first = runs[0].diagnostics
    assert first["lag_error"] == pytest.approx(0.5 * abs(first["log_z_down"] - first["log_z_up"]))
    assert first["down_start"] == "exact samples of the target"


def test_ti_needs_two_chains():
    with pytest.raises(InvalidOptionError, match="ti needs chains >= 2"):
        ti(load_model(MODELS / "weak_24x12.h5"), chains=1)


def test_trapezoid_is_exact_for_linear_integrands_on_any_grid():
    ts = np.array([0.0, 0.1, 0.5, 0.55, 1.0])
    assert trapezoid(3 * ts + 1, ts) == pytest.approx(2.5)


def test_quadrature_error_is_reported_and_warned_for_a_coarse_grid():
    r = ti(load_model(MODELS / "strong_24x12.h5"), seed=1, steps=2, sweeps=10)
    assert r.diagnostics["quadrature_error"] > r.diagnostics["sampling_stderr"]
    assert any("quadrature error" in w for w in r.warnings)


def test_same_seed_same_answer():
    m = load_model(MODELS / "strong_24x12.h5")
    assert ti(m, seed=2, steps=20).log_z == ti(m, seed=2, steps=20).log_z


@pytest.mark.parametrize("option,value", [("chains", 0), ("steps", 0), ("sweeps", -1), ("schedule", "cubic")])
def test_bad_options(option, value):
    with pytest.raises(InvalidOptionError):
        ti(load_model(MODELS / "weak_24x12.h5"), **{option: value})
