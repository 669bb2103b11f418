"""Exact ln Z: the ground truth every other estimator is checked against."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fecli import estimate, load_model
from fecli.errors import InvalidOptionError, RefusedError
from fecli.estimators.exact import estimate_exact, log_partition
from fecli.model import RBM

from .conftest import REFERENCE, SAMPLE_MODELS, SAMPLES, brute_force_log_z, random_rbm


@st.composite
def models(draw):
    nv = draw(st.integers(1, 10))
    nh = draw(st.integers(1, 10))
    scale = draw(st.sampled_from([0.0, 0.01, 0.5, 2.0, 10.0, 50.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    return random_rbm(np.random.default_rng(seed), nv, nh, scale)


@settings(max_examples=60, deadline=None)
@given(model=models(), beta=st.sampled_from([0.1, 0.5, 1.0, 2.0, 3.7]))
def test_exact_equals_brute_force_over_both_layers(model, beta):
    expected = brute_force_log_z(model, beta)
    got = log_partition(model, beta)
    assert got == pytest.approx(expected, rel=1e-11, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(model=models(), beta=st.sampled_from([0.5, 1.0, 2.0]))
def test_enumerating_visible_or_hidden_gives_the_same_number(model, beta):
    by_hidden = log_partition(model, beta, layer="hidden")
    by_visible = log_partition(model, beta, layer="visible")
    assert by_hidden == pytest.approx(by_visible, rel=1e-11, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(model=models(), seed=st.integers(0, 1000))
def test_permuting_units_and_transposing_leave_ln_z_unchanged(model, seed):
    rng = np.random.default_rng(seed)
    pv = rng.permutation(model.n_visible)
    ph = rng.permutation(model.n_hidden)
    permuted = RBM(model.weights[pv][:, ph], model.visible_bias[pv], model.hidden_bias[ph])
    reference = log_partition(model)
    assert log_partition(permuted) == pytest.approx(reference, rel=1e-11, abs=1e-9)
    assert log_partition(model.transpose()) == pytest.approx(reference, rel=1e-11, abs=1e-9)


def test_zero_weights_have_the_closed_form():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=9), rng.normal(size=4)
    model = RBM(np.zeros((9, 4)), a, b)
    expected = np.logaddexp(0, a).sum() + np.logaddexp(0, b).sum()
    assert log_partition(model) == pytest.approx(expected, rel=1e-13)


def test_huge_weights_give_a_finite_correct_ln_z():
    rng = np.random.default_rng(7)
    model = RBM(1e3 * rng.normal(size=(9, 6)), 1e3 * rng.normal(size=9), 1e3 * rng.normal(size=6))
    got = log_partition(model)
    assert np.isfinite(got)
    assert got == pytest.approx(brute_force_log_z(model), rel=1e-12)


def test_chunked_enumeration_matches_brute_force_across_chunk_boundaries():
    # 2^14 states: several chunks of 2^12 and more than one kernel call's worth of chunks
    rng = np.random.default_rng(11)
    model = random_rbm(rng, 14, 5, 0.7)
    assert log_partition(model, layer="visible") == pytest.approx(brute_force_log_z(model), rel=1e-11)


def test_progress_is_reported_up_to_the_total():
    calls = []
    log_partition(random_rbm(np.random.default_rng(0), 6, 16, 0.3), progress=lambda d, done, total: calls.append((done, total)))
    assert calls[-1] == (2**6, 2**6)


@pytest.mark.parametrize("path", SAMPLE_MODELS, ids=lambda p: p.name)
def test_sample_models_match_their_recorded_reference(path):
    model = load_model(path)
    for beta, value in REFERENCE[path.name].items():
        assert log_partition(model, float(beta)) == pytest.approx(value, rel=1e-12)


def test_result_record_is_complete_and_consistent():
    result = estimate(SAMPLES / "weak_24x12.h5", method="exact", beta=2.0)
    assert result.kind == "exact"
    assert result.beta == 2.0
    assert result.free_energy == pytest.approx(-result.log_z / 2.0)
    assert result.stderr == 0.0 and result.ci_low == result.ci_high == result.log_z
    assert (result.n_visible, result.n_hidden) == (24, 12)
    assert result.params["layer"] == "hidden"
    assert result.diagnostics["states"] == 2**12
    row = result.to_dict()
    assert list(row) == [
        "model", "method", "beta", "log_z", "free_energy", "stderr", "ci_low", "ci_high", "kind",
        "wall_time_s", "n_visible", "n_hidden", "params", "diagnostics", "warnings",
    ]


def test_refuses_layers_above_the_limit_with_the_expected_time():
    model = RBM(np.zeros((40, 35)), np.zeros(40), np.zeros(35), name="big.h5")
    with pytest.raises(RefusedError, match=r"2\^35 states .* above the limit of 30 units; raise --max-units"):
        estimate_exact(model)
    with pytest.raises(RefusedError, match="limit of 10 units"):
        estimate_exact(random_rbm(np.random.default_rng(0), 12, 11), max_units=10)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "x"])
def test_rejects_invalid_beta(bad):
    with pytest.raises(InvalidOptionError, match="beta"):
        estimate_exact(random_rbm(np.random.default_rng(0), 3, 3), beta=bad)


def test_library_rejects_options_the_method_does_not_take():
    with pytest.raises(InvalidOptionError, match="does not take option.*chains"):
        estimate(SAMPLES / "weak_24x12.h5", method="exact", chains=10)
    with pytest.raises(InvalidOptionError, match="unknown method 'nope'.*exact"):
        estimate(SAMPLES / "weak_24x12.h5", method="nope")


def test_same_answer_for_any_thread_count():
    code = (
        "from fecli import estimate; from fecli.model import RBM; import numpy as np;"
        "r = np.random.default_rng(5);"
        "m = RBM(r.normal(size=(30, 17)), r.normal(size=30), r.normal(size=17));"
        "print(repr(estimate(m).log_z))"
    )
    outputs = set()
    for threads in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": threads}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outputs.add(done.stdout.strip())
    assert len(outputs) == 1, outputs
