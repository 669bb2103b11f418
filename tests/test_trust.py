"""The trust issue's measured cases: every result covers the exact ln Z or carries a warning.

Exact values come from enumeration, or from Kaufman's formula for Ising tori too large to enumerate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fecli import estimate
from fecli.bounds import rigorous_bracket, upper_bound
from fecli.references import (
    bars_and_stripes_model,
    block_composite,
    ising_torus,
    issue_cases_composite,
    kaufman_log_z,
    near_deterministic_model,
    two_mode_model,
)

from .conftest import SAMPLES, brute_force_log_z, random_rbm

SAMPLING = ("ais", "reverse-ais", "importance", "ti")


def covers_or_warns(result, exact: float) -> bool:
    covered = result.ci_low - 1e-9 <= exact <= result.ci_high + 1e-9
    return covered or bool(result.warnings)


# ------------------------------------------------------------------ references
@pytest.mark.parametrize("L,K", [(4, 0.3), (4, 0.6), (6, 0.44)])
def test_ising_torus_rbm_matches_kaufman(L, K):
    model, offset = ising_torus(L, K)
    assert estimate(model, "exact").log_z + offset == pytest.approx(kaufman_log_z(L, K), abs=1e-9)


def test_block_composite_log_z_is_the_sum_of_its_blocks():
    rng = np.random.default_rng(5)
    blocks = [random_rbm(rng, 5, 3, 2.0), two_mode_model(16), bars_and_stripes_model()]
    composite = block_composite(blocks, seed=1)
    expected = sum(estimate(b, "exact").log_z for b in blocks)
    assert estimate(composite, "exact").log_z == pytest.approx(expected, abs=1e-9)


def test_the_issue_exact_values():
    assert estimate(two_mode_model(16), "exact").log_z == pytest.approx(3.7457594086, abs=1e-9)
    assert estimate(near_deterministic_model(3), "exact", beta=50).log_z == pytest.approx(1376.4807520572, abs=1e-8)
    assert estimate(bars_and_stripes_model(), "exact").log_z == pytest.approx(59.6749019726, abs=1e-8)


# ------------------------------------------------------------------ the bracket
def test_bracket_holds_on_random_models():
    rng = np.random.default_rng(0)
    for trial in range(30):
        scale = [0.1, 1.0, 5.0][trial % 3]
        model = random_rbm(rng, 6, 4, scale)
        beta = [0.5, 1.0, 3.0][trial % 3]
        exact = brute_force_log_z(model, beta)
        states = (rng.random((20, 6)) < 0.5).astype(float)
        bracket = rigorous_bracket(model, beta, [states])
        assert bracket.lower <= exact + 1e-9 <= bracket.upper + 2e-9


def test_upper_bound_is_tight_for_a_factorised_model():
    model = random_rbm(np.random.default_rng(1), 5, 3, 0.0)
    assert upper_bound(model) == pytest.approx(brute_force_log_z(model), abs=1e-12)


# ------------------------------------------------------------------ the measured cases
@pytest.mark.parametrize("method", SAMPLING)
@pytest.mark.parametrize("strength", [8, 16, 32])
def test_two_mode_model_covers_or_warns(method, strength):
    model = two_mode_model(strength)
    exact = estimate(model, "exact").log_z
    assert covers_or_warns(estimate(model, method, seed=1), exact)


def test_two_mode_model_stochastic_lower_bounds_never_sit_below_mean_field():
    model = two_mode_model(16)
    mf = estimate(model, "mf").log_z
    for method in ("ais", "importance"):
        assert estimate(model, method, seed=0).log_z >= mf - 1e-9


@pytest.mark.parametrize("method", SAMPLING)
def test_bars_and_stripes_covers_or_warns(method):
    model = bars_and_stripes_model()
    for steps in ({"steps": 100}, {"steps": 1000}) if method in ("ais", "reverse-ais") else ({},):
        assert covers_or_warns(estimate(model, method, seed=0, **steps), 59.6749019726)


@pytest.mark.parametrize("method", SAMPLING)
def test_near_deterministic_target_covers_or_warns(method):
    model = near_deterministic_model(3)
    result = estimate(model, method, beta=50, seed=0)
    assert covers_or_warns(result, 1376.4807520572)
    assert result.ci_high > result.ci_low  # never a zero-width interval


def _random_near_deterministic(seed: int, nv: int, nh: int):
    from fecli.model import RBM

    rng = np.random.default_rng(seed)
    return RBM(1.5 * rng.normal(size=(nv, nh)), rng.normal(size=nv), rng.normal(size=nh))


@pytest.mark.parametrize("method", [*SAMPLING, "pt"])
@pytest.mark.parametrize("seed,nv,nh", [(1, 60, 20), (2, 100, 18)])
def test_larger_near_deterministic_targets_cover_or_warn(method, seed, nv, nh):
    """The issue's construction at 60 x 20 and 100 x 18, beta 50: reverse AIS from exact samples
    was 0.56 and 3.3 nats above exact with intervals 0.7 nats wide and no warning (its weights' tail
    unsampled); forward AIS on the same path now bounds it from below."""
    model = _random_near_deterministic(seed, nv, nh)
    exact = estimate(model, "exact", beta=50).log_z
    result = estimate(model, method, beta=50, seed=0)
    assert covers_or_warns(result, exact)


def test_reverse_ais_reaches_down_to_forward_ais_when_they_do_not_meet():
    model = _random_near_deterministic(2, 100, 18)
    exact = estimate(model, "exact", beta=50).log_z
    result = estimate(model, "reverse-ais", beta=50, seed=0)
    forward = result.diagnostics["forward_ais"]
    assert result.log_z - exact > 2.0  # the stochastic upper bound is far above
    assert forward["log_z"] < result.log_z - 2.0
    # Warned by the check against forward AIS, or before it by the weights' low ESS (12 of 100; k-hat
    # 0.74), which leaves the interval open below down to the rigorous lower bound.
    assert any(key in w for w in result.warnings
               for key in ("forward AIS along the same path", "heavy-tailed weights", "low effective sample size"))
    assert result.ci_low <= max(forward["ci_low"], result.diagnostics["bracket"]["lower"]) + 1e-9
    assert result.ci_low <= exact <= result.ci_high


def test_saturated_weights_never_give_a_zero_width_interval_excluding_exact():
    base = near_deterministic_model(3)
    from fecli.model import RBM

    model = RBM(base.weights * 1e6, base.visible_bias, base.hidden_bias)
    exact = estimate(model, "exact").log_z
    for method in ("ais", "importance"):
        result = estimate(model, method, seed=0)
        assert covers_or_warns(result, exact)


@pytest.mark.parametrize("method", SAMPLING)
def test_ordered_ising_torus_covers_or_warns(method):
    model, offset = ising_torus(8, 0.6)
    exact = kaufman_log_z(8, 0.6) - offset
    assert covers_or_warns(estimate(model, method, seed=0), exact)


@pytest.mark.parametrize("method", ["tap2", "tap3", "cumulant"])
def test_impossible_approximations_are_clipped_and_flagged(method):
    from fecli.errors import EstimationFailedError

    model = random_rbm(np.random.default_rng(2), 8, 5, 1e12)
    try:
        result = estimate(model, method)
    except EstimationFailedError:  # refusing (no fixed point) is honest too
        return
    bracket = result.diagnostics["bracket"]
    assert bracket["lower"] - 1e-3 * abs(bracket["lower"]) <= result.log_z <= bracket["upper"] * (1 + 1e-9)
    if "unclipped_log_z" in result.diagnostics:
        assert any("rigorous" in w for w in result.warnings)


# ------------------------------------------------------------------ an RBM trained on real MNIST (784 x 20)
MNIST20 = Path(__file__).parent / "fixtures" / "mnist784x20"
MNIST20_LOG_Z = 245.7482666688


def _mnist20():
    from fecli.io import load_model

    rows = np.unpackbits(np.load(MNIST20 / "train500_packed.npy"), axis=1)[:, :784]
    return load_model(MNIST20 / "model.h5"), rows


def test_the_mnist_784x20_fixture_is_exact():
    model, _ = _mnist20()
    assert estimate(model, "exact").log_z == pytest.approx(MNIST20_LOG_Z, abs=1e-8)


def test_likeliest_hidden_states_give_a_tight_rigorous_lower_bound():
    """76% of Z lies in seven hidden states, each spread over many visible states: the data rows
    bound ln Z from 23 nats below, their likeliest hidden states from within a nat."""
    from fecli.bounds import hidden_states_bound, likeliest_hidden, states_lower_bound

    model, rows = _mnist20()
    assert states_lower_bound(model, 1.0, rows) < MNIST20_LOG_Z - 20
    hidden_bound = states_lower_bound(model.transpose(), 1.0, likeliest_hidden(model, rows))
    assert MNIST20_LOG_Z - 1.0 < hidden_bound <= MNIST20_LOG_Z
    with_flips, _ = hidden_states_bound(model, 1.0, rows)
    assert hidden_bound <= with_flips <= MNIST20_LOG_Z
    bracket = rigorous_bracket(model, 1.0, [rows])
    assert bracket.lower == pytest.approx(with_flips) and "hidden states" in bracket.lower_source


def test_hidden_states_bound_is_rigorous_on_random_models():
    from fecli.bounds import hidden_states_bound

    rng = np.random.default_rng(8)
    for scale in (0.1, 1.0, 3.0):
        model = random_rbm(rng, 10, 7, scale)
        rows = (rng.random((30, 10)) < 0.5).astype(float)
        bound, count = hidden_states_bound(model, 1.0, rows)
        assert bound <= brute_force_log_z(model) + 1e-9 and count >= 7


def test_single_flips_of_the_best_hidden_state_count_the_mass_next_to_it():
    """CD-1 on MNIST (784 x 20): 66% of Z in one hidden state, most of the rest one flip away.
    importance without data saw only that state: 0.42 nats low with an interval 0.007 wide and no
    warning, before the flips joined the bound."""
    from fecli.io import load_model

    model = load_model(MNIST20 / "cd1_model.h5")
    exact = 223.2519567419
    assert estimate(model, "exact").log_z == pytest.approx(exact, abs=1e-8)
    for seed in (0, 1):
        result = estimate(model, "importance", seed=seed)
        assert result.diagnostics["bracket"]["lower"] > exact - 0.1
        assert result.ci_low <= exact <= result.ci_high or result.warnings


@pytest.mark.parametrize("method", ["ais", "pt", "importance"])
def test_mnist_784x20_with_data_covers_or_warns(method):
    """ais from the data's base rate was 1.3 nats low with an interval 0.9 wide and no warning (pt
    0.7), before the likeliest hidden states joined the bracket."""
    model, rows = _mnist20()
    for seed in (0, 1):
        result = estimate(model, method, data=rows, seed=seed, **({"samples": 1000} if method == "pt" else {}))
        assert result.ci_low <= MNIST20_LOG_Z <= result.ci_high or result.warnings


# ------------------------------------------------------------------ no crying wolf
@pytest.mark.parametrize("method", ["ais", "reverse-ais", "ti"])
def test_weakly_coupled_models_get_no_warnings(method):
    model = random_rbm(np.random.default_rng(4), 64, 20, 0.05)
    exact = estimate(model, "exact").log_z
    result = estimate(model, method, seed=0)
    assert result.ci_low <= exact <= result.ci_high
    assert result.warnings == []


# ------------------------------------------------------------------ auto
def test_auto_is_exact_when_enumeration_is_cheap():
    result = estimate(two_mode_model(16), "auto")
    assert result.kind == "exact" and result.diagnostics["routes"] == ["exact"]


def test_auto_lands_within_half_a_nat_on_an_ordered_ising_torus():
    model, offset = ising_torus(8, 0.6)
    exact = kaufman_log_z(8, 0.6) - offset
    result = estimate(model, "auto", seed=0, budget=60)
    assert abs(result.log_z - exact) < 0.5
    assert result.ci_low <= exact <= result.ci_high
    assert {r["method"] for r in result.diagnostics["routes"]} == {"pt", "ais", "reverse-ais"}
    assert len(result.diagnostics["agreeing_routes"]) >= 2


# ------------------------------------------------------------------ a trained 784-unit model
@pytest.mark.parametrize("method", ["ais", pytest.param("reverse-ais", marks=pytest.mark.slow),
                                    pytest.param("pt", marks=pytest.mark.slow)])
def test_trained_784_unit_model_without_data_covers_or_warns(method):
    """Case 5's kind: a trained model with 784 visible units, no --data (sample_models/hard)."""
    import json

    from fecli.io import load_model

    hard = Path(__file__).resolve().parents[1] / "sample_models" / "hard"
    exact = json.loads((hard / "reference.json").read_text())["digits28_784x20.h5"]["1.0"]
    result = estimate(load_model(hard / "digits28_784x20.h5"), method, seed=0)
    assert covers_or_warns(result, exact)


def test_auto_adds_ln_z_along_training_when_the_file_holds_snapshots(tmp_path):
    from click.testing import CliRunner

    from fecli.cli import cli
    from fecli.io import load_model

    rng = np.random.default_rng(0)
    np.save(tmp_path / "d.npy", (rng.random((200, 10)) < 0.3).astype(float))
    out = CliRunner().invoke(cli, ["train-rbm", str(tmp_path / "d.npy"), "--hidden", "6", "--epochs", "3",
                                   "--snapshots", "5", "--seed", "1", "-q", "-o", str(tmp_path / "m.h5")])
    assert out.exit_code == 0, out.output
    model = load_model(tmp_path / "m.h5")
    exact = estimate(model, "exact").log_z
    result = estimate(model, "auto", seed=1, budget=1e-9)  # no time to enumerate: one round of the routes
    assert {r["method"] for r in result.diagnostics["routes"]} == {"pt", "ais", "reverse-ais", "trajectory"}
    assert covers_or_warns(result, exact)


def _route(method: str, log_z: float, warnings: list[str]):
    from fecli.result import Result

    return Result(model="m", method=method, beta=1.0, log_z=log_z, kind="estimate", n_visible=4, n_hidden=2,
                  stderr=0.05, ci_low=log_z - 0.1, ci_high=log_z + 0.1, warnings=warnings)


def test_auto_agreement_needs_routes_without_standing_warnings_and_moves_route_warnings():
    """pt's 'no round trip' says its error bar may be too small; two routes agreeing within the
    target answer that, so it moves to the diagnostics. A route that missed a mode or broke a
    rigorous bound never counts as agreeing (the AIS routes' base comes from pt's samples: they can
    miss the same mode together)."""
    import time

    from fecli.estimators.auto import _agreeing, _combine

    model = two_mode_model(16)
    trips = "3 of 8 ladders made no round trip between the base model and the target in 2000 rounds"
    modes = "all of the run's 100 final states sat in one of 2 mean-field modes within 3 nats of each other"
    results = [_route("pt", 10.0, [trips]), _route("ais", 10.1, []), _route("reverse-ais", 10.2, [modes])]
    agreeing = _agreeing(results, 0.5)
    assert [r.method for r in agreeing] == ["pt", "ais"]  # a route with a standing warning never agrees
    agreed = _combine(model, 1.0, results, [], agreeing, 0.5, 120.0, 1, time.perf_counter())
    assert agreed.warnings == []  # the routes whose values make the answer have no warning that stands
    assert agreed.diagnostics["route_warnings"] == [f"pt: {trips}", f"reverse-ais: {modes}"]
    assert agreed.log_z == pytest.approx(10.05) and agreed.ci_high == pytest.approx(10.1 + 1.959963984540054 * 0.05)
    results = [_route("pt", 10.0, [trips]), _route("ais", 11.0, []), _route("reverse-ais", 12.5, [])]
    apart = _combine(model, 1.0, results, [], _agreeing(results, 0.5), 0.5, 120.0, 1, time.perf_counter())
    assert "disagree by 2.5 nats" in apart.warnings[0] and f"pt: {trips}" in apart.warnings


def test_auto_warns_when_a_precise_route_contradicts_the_agreeing_ones():
    import time

    from fecli.estimators.auto import _agreeing, _combine

    results = [_route("pt", 10.0, []), _route("ais", 10.1, []), _route("reverse-ais", 13.0, [])]
    agreeing = _agreeing(results, 0.5)
    out = _combine(two_mode_model(16), 1.0, results, [], agreeing, 0.5, 120.0, 1, time.perf_counter())
    assert [r.method for r in agreeing] == ["pt", "ais"] and out.ci_high < 13.0
    assert "but the 95% interval of reverse-ais, a precise route, lies outside theirs" in out.warnings[0]
    results[2] = _route("reverse-ais", 10.65, [])  # outside the agreeing pair, but its interval meets theirs
    results[2].stderr, results[2].ci_low, results[2].ci_high = 0.25, 10.16, 11.14
    out = _combine(two_mode_model(16), 1.0, results, [], _agreeing(results, 0.5), 0.5, 120.0, 1, time.perf_counter())
    assert out.warnings == []


def test_auto_keeps_its_answer_inside_the_tightest_bracket_of_its_routes():
    """Each route's bracket holds the states it saw. On a CD-1-trained 784 x 500 MNIST model the
    states pt visited put ln Z at least 5 nats above the routes' values; auto's answer must not
    sit below a rigorous bound one of its own routes found."""
    import time

    from fecli.bounds import Bracket
    from fecli.estimators.auto import _agreeing, _combine

    def bracket(lower: float, upper: float, source: str) -> dict:
        return Bracket(lower, upper, source, "factorised upper bound").as_dict()

    model = two_mode_model(16)
    results = [_route("pt", 10.0, []), _route("ais", 10.1, []), _route("reverse-ais", 10.05, [])]
    for r, low, high in zip(results, (9.0, 10.6, 8.0), (40.0, 30.0, 20.0)):
        r.diagnostics["bracket"] = bracket(low, high, f"{r.method}'s states")
    out = _combine(model, 1.0, results, [], _agreeing(results, 0.5), 0.5, 120.0, 1, time.perf_counter())
    assert out.log_z == pytest.approx(10.6) and out.kind == "lower_bound"
    assert out.diagnostics["bracket"] == bracket(10.6, 20.0, "ais's states")
    assert any("below a rigorous lower bound on ln Z (10.6, ais's states)" in w for w in out.warnings)
    results[1].diagnostics["bracket"] = bracket(10.15, 30.0, "ais's states")  # within the routes' interval
    out = _combine(model, 1.0, results, [], _agreeing(results, 0.5), 0.5, 120.0, 1, time.perf_counter())
    assert out.log_z == pytest.approx(10.15) and out.ci_low == pytest.approx(10.15) and out.warnings == []
    assert out.stderr == pytest.approx((out.ci_high - out.ci_low) / (2 * 1.959963984540054))


def test_auto_does_not_count_pt_whose_ladders_made_no_round_trip():
    from fecli.estimators.auto import _agreeing

    stuck = _route("pt", 10.0, [])
    stuck.diagnostics["round_trips_per_ladder"] = [0, 0, 0, 1, 0, 2, 0, 0]
    mixing = _route("pt", 10.0, [])
    mixing.diagnostics["round_trips_per_ladder"] = [0, 3, 2, 1, 4, 2, 0, 5]
    reverse = _route("reverse-ais", 10.1, [])
    assert _agreeing([stuck, reverse], 0.5) == []
    assert [r.method for r in _agreeing([mixing, reverse], 0.5)] == ["pt", "reverse-ais"]


def _pt_and_forward_ais(model, seed: int):
    """auto's first round of pt and of forward AIS from the base rate of pt's samples."""
    from fecli.estimators.auto import _run_route

    latest, runs = {}, {}
    for name, effort in (("pt", 1000), ("ais", 750)):
        latest[name] = _run_route(model, name, latest, {"beta": 1.0}, effort, seed, None, runs)
    return latest


def test_forward_ais_whose_base_missed_a_mode_does_not_count_as_agreeing_with_pt():
    """The composite of the issue's cases (16 two-mode blocks among others): the base rate of pt's
    samples gives each block's broad mode (5% of its Z) almost no weight, so AIS from it is 0.7-0.9
    nats low with a small error bar and no warning, and pt converges from below: they agreed, both
    low. AIS's weighted final states and pt's samples differ by 7.5-12 standard errors in mean
    -F(v) at seeds 0-3, and the pair does not count as agreeing. (With two-mode blocks alone the
    rigorous bound from the states pt visited already catches AIS.)"""
    from fecli.estimators.auto import MISSED_MODE, _agreeing, _check_forward_ais_against_pt, _to_rerun

    model, _ = issue_cases_composite()
    latest = _pt_and_forward_ais(model, seed=0)
    _check_forward_ais_against_pt(model, latest, target_error=2.0)
    ais, pt = latest["ais"], latest["pt"]
    mismatch = ais.diagnostics["mean_neg_free_energy_minus_pt"]
    assert mismatch["difference"] > 4 * mismatch["stderr"]
    assert any(MISSED_MODE in text for text in ais.warnings)
    assert abs(ais.log_z - pt.log_z) < 2.0 and _agreeing([pt, ais], 2.0) == []
    assert {"pt", "ais"} <= _to_rerun(["pt", "ais"], latest, 2.0)
    _check_forward_ais_against_pt(model, latest, target_error=2.0)  # checking again adds nothing
    assert sum(MISSED_MODE in text for text in ais.warnings) == 1


def test_forward_ais_and_pt_that_sample_the_same_target_may_agree():
    """No crying wolf: on a composite of easy trained and random blocks the two sample one
    distribution (differences under 2 standard errors at seeds 0-3)."""
    from fecli.estimators.auto import _agreeing, _check_forward_ais_against_pt
    from fecli.io import load_model

    blocks = [load_model(SAMPLES / name) for name in ("digits_64x16.h5", "strong_24x12.h5", "weak_24x12.h5")]
    model = block_composite(blocks, seed=0)
    latest = _pt_and_forward_ais(model, seed=1)
    _check_forward_ais_against_pt(model, latest, target_error=0.5)
    mismatch = latest["ais"].diagnostics["mean_neg_free_energy_minus_pt"]
    assert abs(mismatch["difference"]) < 3 * mismatch["stderr"]
    assert latest["ais"].warnings == [] and len(_agreeing([latest["pt"], latest["ais"]], 0.5)) == 2


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_auto_on_a_composite_of_the_issue_cases_lands_within_half_a_nat(seed):
    """The hard composite (16 two-mode, 8 bars-and-stripes, 4 near-deterministic blocks, 280 x 88):
    auto was 0.77-0.90 nats low with an interval excluding exact and no warning, its pt and forward
    AIS agreeing while both were low. About 100 s per seed on 2 cores."""
    model, exact = issue_cases_composite()
    result = estimate(model, "auto", seed=seed)
    assert abs(result.log_z - exact) < 0.5
    assert covers_or_warns(result, exact)


def test_a_rigorous_lower_bound_below_a_better_one_is_kept_without_a_warning():
    from fecli.io import load_model

    model = load_model(SAMPLES / "digits_64x16.h5")
    result = estimate(model, "mf", seed=1)
    below = result.diagnostics["below_best_lower_bound"]
    assert below > 0.5  # these starts found a worse fixed point than the bracket's 8 starts
    assert result.kind == "lower_bound" and result.warnings == []
    assert result.log_z == pytest.approx(result.diagnostics["bracket"]["lower"] - below)
