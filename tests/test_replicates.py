"""Error bars from the spread of independent replicates (issue 10, build 2): ESS alone does not
certify an interval. ais, reverse-ais and importance split their chains (samples) into independent
groups, report each group's ln Z, and never claim a standard error below their spread's."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fecli import estimate
from fecli.estimators._sampling_common import (
    REPLICATES,
    contiguous_groups,
    pareto_khat,
    replicate_spread,
    summarize_log_weights,
)
from fecli.io import load_model

from .conftest import REFERENCE, SAMPLES, random_rbm

DIGITS = SAMPLES / "digits_64x16.h5"
DIGITS_DATA = SAMPLES / "data" / "digits8x8_binary.npy"


def test_contiguous_groups_split_evenly_and_need_enough_chains():
    labels = contiguous_groups(100)
    assert np.unique(labels).size == REPLICATES
    assert np.bincount(labels).min() >= 12 and np.all(np.diff(labels) >= 0)
    assert np.unique(contiguous_groups(12)).size == 3  # at least 4 chains a group
    assert replicate_spread(np.zeros(12), contiguous_groups(12), "x") is None  # too few groups to judge


def test_replicate_stderr_matches_the_weights_own_on_well_behaved_weights():
    rng = np.random.default_rng(3)
    logw = rng.normal(0.0, 0.3, 800)
    summary = summarize_log_weights(logw, 1)
    spread = summary.replicates
    assert spread is not None and spread.log_means.size == REPLICATES
    own = 0.3 / math.sqrt(800)
    assert 0.4 * own < spread.stderr < 2.5 * own
    assert summary.stderr >= spread.stderr and not summary.warnings


def test_replicates_stuck_in_different_modes_widen_the_interval_and_warn():
    """Each group's weights agree perfectly (ESS within a group is perfect), but the groups sit
    3 nats apart: only the spread between replicates shows it."""
    logw = np.repeat(np.tile([0.0, 3.0], 4), 12)
    groups = np.repeat(np.arange(8), 12)
    summary = summarize_log_weights(logw, 1, groups=groups, grouping="one mode per group")
    assert summary.replicates.stderr == pytest.approx(np.std([0.0, 3.0] * 4, ddof=1) / math.sqrt(8))
    assert summary.stderr == summary.replicates.stderr
    half = summary.replicates.t_quantile * summary.replicates.stderr
    assert summary.ci_low <= summary.log_mean - half + 1e-12 and summary.ci_high >= summary.log_mean + half - 1e-12
    assert any("independent replicates (one mode per group) disagree" in w for w in summary.warnings)


def test_reverse_sign_negates_the_replicates():
    logw = np.random.default_rng(0).normal(0, 0.2, 64)
    forward, reverse = summarize_log_weights(logw, 1), summarize_log_weights(logw, 1, sign=-1.0)
    assert np.allclose(reverse.replicates.log_means, -forward.replicates.log_means)
    assert reverse.stderr == forward.stderr


@pytest.mark.parametrize("method", ["ais", "reverse-ais", "importance"])
def test_sampling_results_carry_their_replicates(method):
    model = load_model(DIGITS)
    result = estimate(model, method, seed=2, data=DIGITS_DATA)
    d = result.diagnostics
    assert len(d["replicate_log_z"]) == REPLICATES
    assert sum(d["replicate_sizes"]) == result.params.get("chains", result.params.get("samples"))
    assert result.stderr >= d["replicate_stderr"]
    # the replicates' ln Z are estimates of the same ln Z (with ln Z_A added back)
    assert abs(np.mean(d["replicate_log_z"]) - result.log_z) < 1.0


def test_reverse_ais_from_tempered_starts_groups_chains_by_ladder():
    """Chains started from one tempering ladder share its history; replicates are whole ladders."""
    model = load_model(SAMPLES / "strong_24x12.h5")
    result = estimate(model, "reverse-ais", seed=1, exact_max_units=0, burn_in=200, steps=200)
    assert result.diagnostics["replicate_grouping"] == "chains started from the same tempering ladder"
    assert len(result.diagnostics["replicate_log_z"]) == 8


@pytest.mark.parametrize("method", ["ais", "reverse-ais", "pt"])  # importance: ESS 22 of 10,000 there, warned
def test_trained_model_with_data_covers_exact_without_warnings(method):
    """No crying wolf: a trained model with --data, which every sampling method handles."""
    model = load_model(DIGITS)
    exact = REFERENCE["digits_64x16.h5"]["1.0"]
    result = estimate(model, method, seed=0, data=DIGITS_DATA)
    assert result.ci_low <= exact <= result.ci_high
    assert result.warnings == []


def test_weakly_coupled_importance_gets_no_warnings():
    model = random_rbm(np.random.default_rng(4), 64, 20, 0.05)
    exact = estimate(model, "exact").log_z
    result = estimate(model, "importance", seed=0)
    assert result.ci_low <= exact <= result.ci_high and result.warnings == []


def test_reverse_ais_from_given_states_picks_evenly_and_groups_by_source():
    from fecli.errors import InvalidOptionError
    from fecli.estimators.ais import reverse_ais_from_states

    model = load_model(SAMPLES / "strong_24x12.h5")
    rng = np.random.default_rng(0)
    start = (rng.random((64, 24)) < 0.5).astype(float)
    result = reverse_ais_from_states(model, start, groups=np.arange(64) % 8, steps=50, seed=1, chains=32)
    assert result.params["chains"] == 32 and result.kind == "estimate"
    assert result.diagnostics["replicate_grouping"] == "chains started from the same tempering ladder"
    assert sum(result.diagnostics["replicate_sizes"]) == 32
    with pytest.raises(InvalidOptionError):
        reverse_ais_from_states(model, start[:, :5], steps=50, seed=1)


# ------------------------------------------------------------------ heavy-tailed weights
def test_pareto_khat_recovers_the_tail_of_generalised_pareto_weights():
    from scipy.stats import genpareto

    rng = np.random.default_rng(0)
    for k in (0.0, 0.5, 1.2):
        khats = [pareto_khat(np.log(genpareto.rvs(k, size=1000, random_state=rng))) for _ in range(20)]
        assert np.mean(khats) == pytest.approx(k, abs=0.15)
    assert math.isnan(pareto_khat(np.zeros(20)))  # too few weights to fit a tail


def test_sm_ais_on_an_mnist_trained_model_warns():
    """The log weights of S&M's AIS (data base rate, 60,000 linear steps) on a 784 x 500 RBM trained
    on real MNIST digits: 4.9 nats below the long reference (470.88), ESS 10.4 of 100, a bootstrap
    error of 0.3 and, while the low-ESS line was at 10%, no warning."""
    logw = np.load(Path(__file__).parent / "fixtures" / "mnist784x500_sm_ais_60000_log_weights.npy")
    summary = summarize_log_weights(logw, entropy=1)
    assert 10.0 < summary.ess < 15.0 and summary.khat > 0.7
    assert summary.interval == "one-sided (Markov, low ESS)" and math.isinf(summary.ci_high)
    assert any("low effective sample size" in w for w in summary.warnings)


def test_a_heavy_tail_with_an_ess_under_a_fifth_warns():
    from scipy.stats import genpareto

    for seed in range(200):  # the first draw of 100 Pareto(k = 0.9) weights in the band
        logw = np.log(genpareto.rvs(0.9, size=100, random_state=np.random.default_rng(seed)))
        summary = summarize_log_weights(logw, entropy=1)
        if 15.0 <= summary.ess < 20.0 and summary.khat > 0.7:
            break
    else:
        pytest.fail("no draw in the band")
    assert summary.interval == "one-sided (Markov, heavy tail)" and math.isinf(summary.ci_high)
    assert any("heavy-tailed weights" in w for w in summary.warnings)


def test_lognormal_weights_with_a_moderate_ess_are_rarely_flagged():
    """Lognormal weights (sd 1, ESS about 37% of 100) have light tails: their mean is reliable.
    From 100 of them ESS and k-hat are noisy, so a few runs fall in the heavy-tail band (0.6% of
    1,000); far more would be crying wolf."""
    rng = np.random.default_rng(3)
    flagged = sum(any("heavy-tailed" in w for w in summarize_log_weights(rng.normal(0, 1.0, 100), 1).warnings)
                  for _ in range(400))
    assert flagged <= 8
