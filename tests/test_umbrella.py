"""Umbrella sampling with replica exchange and MBAR, checked against exact enumeration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fecli.errors import InvalidOptionError
from fecli.estimators.umbrella import umbrella
from fecli.io import load_model

MODELS = Path(__file__).resolve().parent.parent / "sample_models"
REFERENCE = json.loads((MODELS / "reference.json").read_text())


@pytest.mark.parametrize("name,beta,options", [
    ("weak_24x12.h5", 1.0, dict(windows=12, samples=150)),
    ("strong_24x12.h5", 1.0, dict(windows=16, samples=150)),
    ("strong_24x12.h5", 0.5, dict(windows=12, samples=150)),
    pytest.param("digits_64x16.h5", 1.0, {}, marks=pytest.mark.slow),  # the defaults (10-20 s)
])
def test_umbrella_within_4_stderr_of_exact(name, beta, options):
    r = umbrella(load_model(MODELS / name), beta=beta, seed=41, **options)
    assert r.kind == "estimate"
    assert abs(r.log_z - REFERENCE[name][str(beta)]) < 4 * r.stderr
    d = r.diagnostics
    assert len(d["neighbour_overlap"]) == r.params["windows"] - 1
    assert all(0 < a <= 1 for a in d["exchange_acceptance"])
    assert sum(d["samples_per_window"]) > 0


@pytest.mark.slow
def test_umbrella_coverage_over_seeds():
    m = load_model(MODELS / "strong_24x12.h5")
    ex = REFERENCE["strong_24x12.h5"]["1.0"]
    results = [umbrella(m, seed=s, windows=12, samples=100, burn_in=50) for s in range(30)]
    hits = [r.ci_low <= ex <= r.ci_high for r in results]
    assert sum(hits) >= 26


def test_poor_overlap_is_warned():
    """Two windows (BAR) on a strongly coupled model cannot overlap: say so."""
    r = umbrella(load_model(MODELS / "digits_64x16.h5"), seed=1, windows=2, samples=100, burn_in=20)
    assert r.diagnostics["min_neighbour_overlap"] < 0.03
    assert any("poor overlap" in w for w in r.warnings)


def test_same_seed_same_answer():
    m = load_model(MODELS / "strong_24x12.h5")
    kw = dict(windows=6, samples=60, burn_in=10)
    assert umbrella(m, seed=2, **kw).log_z == umbrella(m, seed=2, **kw).log_z


def test_pymbar_banner_stays_off_stdout():
    code = ("from fecli.io import load_model; from fecli.estimators.umbrella import umbrella; "
            f"umbrella(load_model({str(MODELS / 'weak_24x12.h5')!r}), seed=1, windows=3, samples=20, burn_in=5)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == ""
    assert "JAX" not in proc.stderr and "timeseries" not in proc.stderr


@pytest.mark.parametrize("option,value,message", [("windows", 0, "windows must be an integer >= 1, got 0"),
                                                  ("windows", 1, "windows must be an integer >= 2"),
                                                  ("chains", -1, "chains"), ("samples", 0, "samples"),
                                                  ("schedule", "x", "unknown schedule")])
def test_bad_options(option, value, message):
    with pytest.raises(InvalidOptionError, match=message):
        umbrella(load_model(MODELS / "weak_24x12.h5"), **{option: value})
