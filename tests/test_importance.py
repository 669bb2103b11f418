"""Importance sampling with a factorised proposal, checked against exact enumeration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fecli.errors import DataFileError, InvalidOptionError
from fecli.estimators._sampling_common import AnnealingPath
from fecli.estimators.importance import SAMPLES_PER_CHUNK, importance, log_weights
from fecli.io import load_model

MODELS = Path(__file__).resolve().parent.parent / "sample_models"
REFERENCE = json.loads((MODELS / "reference.json").read_text())


@pytest.mark.parametrize("name,beta", [("weak_24x12.h5", 1.0), ("weak_24x12.h5", 2.0),
                                       ("strong_24x12.h5", 0.5), ("strong_24x12.h5", 1.0)])
def test_importance_within_4_stderr_of_exact(name, beta):
    r = importance(load_model(MODELS / name), beta=beta, seed=21)
    assert r.kind == "stochastic_lower_bound"
    assert abs(r.log_z - REFERENCE[name][str(beta)]) < 4 * r.stderr
    assert r.diagnostics["ess"] > 1


def test_importance_coverage_over_seeds():
    m = load_model(MODELS / "strong_24x12.h5")
    ex = REFERENCE["strong_24x12.h5"]["0.5"]
    hits = [r.ci_low <= ex <= r.ci_high for r in (importance(m, beta=0.5, seed=s, samples=2000) for s in range(30))]
    assert sum(hits) >= 26


def test_importance_on_trained_model_warns_and_stays_below():
    """A factorised proposal misses the modes of the digits model: it must say so, and stay a lower bound."""
    m = load_model(MODELS / "digits_64x16.h5")
    r = importance(m, seed=1)
    assert r.log_z < REFERENCE["digits_64x16.h5"]["1.0"]
    assert any("low effective sample size" in w and "use ais" in w for w in r.warnings)


def test_chunks_merge_and_seeds_repeat():
    m = load_model(MODELS / "weak_24x12.h5")
    path = AnnealingPath(m, 1.0, np.zeros(m.n_visible))
    n = 3 * SAMPLES_PER_CHUNK
    whole = log_weights(path, 5, 0, 3, n)
    parts = np.concatenate([log_weights(path, 5, i, i + 1, n) for i in range(3)])
    np.testing.assert_array_equal(whole, parts)
    assert importance(m, seed=3).log_z == importance(m, seed=3).log_z


def test_bad_input():
    m = load_model(MODELS / "weak_24x12.h5")
    with pytest.raises(InvalidOptionError, match="samples must be an integer >= 1, got 0"):
        importance(m, samples=0)
    with pytest.raises(DataFileError, match="64 columns"):
        importance(m, data=MODELS / "data" / "digits8x8_binary.npy")
