"""Parallel tempering + BAR (pt, and its old name umbrella), checked against exact enumeration,
on multimodal models where it must cover the exact value or warn, and on its failure paths."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fecli import references
from fecli.errors import EstimationFailedError, InvalidOptionError
from fecli.estimators import method_names
from fecli.estimators import pt as pt_module
from fecli.estimators.exact import estimate_exact
from fecli.estimators.pt import bar_pair, place_rungs, pt, tempered_samples, umbrella, visited_lower_bound
from fecli.io import load_model
from fecli.model import RBM, sigmoid, softplus

from .conftest import all_states

MODELS = Path(__file__).resolve().parent.parent / "sample_models"
REFERENCE = json.loads((MODELS / "reference.json").read_text())
#: Short runs for the tests (the defaults take a second or two per model).
QUICK = dict(chains=4, samples=1000, burn_in=500)


def two_mode(strength: float) -> RBM:
    """Issue 10, case 2 (fecli.references): at strength 16 the state 'all on' holds about 95% of Z
    and is out of reach of Gibbs moves from 'all off'."""
    return references.two_mode_model(strength)


def ising_torus(L: int, K: float) -> RBM:
    """The L x L Ising torus at coupling K as an RBM (fecli.references; ln Z_RBM = ln Z_Ising - 2 K L^2)."""
    return references.ising_torus(L, K)[0]


def uniform_base(model, beta, data):
    """A mode-covering base model (all visible units at 1/2), as issue 10 asks of the default."""
    return np.zeros(model.n_visible), "uniform"


def covers(r, exact: float) -> bool:
    return r.ci_low <= exact <= r.ci_high


# --------------------------------------------------------------------------- against exact
@pytest.mark.parametrize("name,beta,options", [
    ("weak_24x12.h5", 1.0, QUICK),
    ("strong_24x12.h5", 1.0, QUICK),
    ("strong_24x12.h5", 0.5, QUICK),
    ("digits_64x16.h5", 1.0, {}),  # the defaults
])
def test_pt_covers_exact_on_the_sample_models(name, beta, options):
    r = pt(load_model(MODELS / name), beta=beta, seed=41, **options)
    exact = REFERENCE[name][str(beta)]
    assert r.kind == "estimate" and r.method == "pt"
    assert covers(r, exact) and abs(r.log_z - exact) < 4 * r.stderr
    assert not r.warnings
    d = r.diagnostics
    K = d["rungs"]
    assert len(d["ladder"]) == K and d["ladder"][0] == 0.0 and d["ladder"][-1] == 1.0
    assert len(d["exchange_acceptance"]) == K - 1 and min(d["exchange_acceptance"]) > 0.2
    assert len(d["round_trips_per_ladder"]) == r.params["chains"] and min(d["round_trips_per_ladder"]) > 0
    assert d["visited_lower_bound"] <= exact


def test_ladder_spacing_follows_the_measured_exchange_rates():
    """A pair that exchanges rarely is far apart: it gets more rungs; the count meets the target rate."""
    ts = np.linspace(0.0, 1.0, 5)
    new = place_rungs(ts, np.array([0.9, 0.9, 0.9, 0.01]), None)
    assert np.all(np.diff(new) > 0) and new[0] == 0.0 and new[-1] == 1.0
    assert np.sum(new > 0.75) > np.sum((new > 0.5) & (new <= 0.75))
    assert place_rungs(ts, np.full(4, 0.9), 7).size == 7
    assert place_rungs(ts, np.ones(4), None).size == 2  # identical rungs: base and target suffice


# --------------------------------------------------------------------------- multimodal: cover or warn
@pytest.mark.parametrize("strength", [8.0, 16.0, 32.0])
def test_two_mode_model_is_covered_or_warned(strength):
    m = two_mode(strength)
    exact = estimate_exact(m).log_z
    if strength == 16.0:
        assert exact == pytest.approx(3.7457594086, abs=1e-9)
    r = pt(m, seed=3, **QUICK)
    assert covers(r, exact) or r.warnings, (r.log_z, r.ci_low, r.ci_high)


@pytest.mark.parametrize("strength", [8.0, 16.0, 32.0])
def test_two_mode_model_with_a_mode_covering_base_is_covered_without_warnings(strength, monkeypatch):
    monkeypatch.setattr(pt_module, "base_model", uniform_base)
    m = two_mode(strength)
    r = pt(m, seed=3, **QUICK)
    assert covers(r, estimate_exact(m).log_z) and not r.warnings


@pytest.mark.parametrize("L,K", [(6, 0.6), (4, 0.6), (6, 0.44)])
def test_ising_torus_is_covered_or_warned(L, K):
    m = ising_torus(L, K)
    r = pt(m, seed=5, **QUICK)
    assert covers(r, estimate_exact(m).log_z) or r.warnings


def test_ordered_ising_torus_with_a_mode_covering_base_is_covered_without_warnings(monkeypatch):
    monkeypatch.setattr(pt_module, "base_model", uniform_base)
    m = ising_torus(6, 0.6)
    r = pt(m, seed=5, **QUICK)
    assert covers(r, estimate_exact(m).log_z) and not r.warnings


@pytest.mark.parametrize("L,K", [(8, 0.6), (16, 0.6), (16, 0.4407)])
def test_ising_tori_too_large_to_enumerate_cover_kaufmans_value(L, K):
    """Issue 10, case 4 (ordered, and near critical), against Kaufman's exact ln Z, at the defaults."""
    from fecli.references import ising_torus, kaufman_log_z

    m, offset = ising_torus(L, K)
    r = pt(m, seed=1)
    assert covers(r, kaufman_log_z(L, K) - offset) and not r.warnings


def test_bars_and_stripes_is_covered():
    """PyDeep's 2x2 bars-and-stripes test RBM (issue 10, case 1), as fecli.references rebuilds it."""
    from fecli.references import bars_and_stripes_model

    m = bars_and_stripes_model()
    r = pt(m, seed=1, **QUICK)
    assert covers(r, 59.6749019726) and not r.warnings


def test_ising_mapping_matches_the_spin_model():
    """ln Z_RBM + 2 L^2 K is the spin model's ln Z, brute-forced over all 2^16 spin states of a 4x4 torus."""
    L, K = 4, 0.6
    spins = 2 * all_states(L * L) - 1
    s = spins.reshape(-1, L, L)
    energy = (s * np.roll(s, 1, axis=1)).sum(axis=(1, 2)) + (s * np.roll(s, 1, axis=2)).sum(axis=(1, 2))
    x = K * energy
    spin_log_z = x.max() + math.log(np.exp(x - x.max()).sum())
    assert estimate_exact(ising_torus(L, K)).log_z + 2 * L * L * K == pytest.approx(spin_log_z, abs=1e-9)


def test_no_round_trip_is_warned():
    """With the mean-field base the 'all on' mode of the two-mode model is cut off from t = 0."""
    r = pt(two_mode(16.0), seed=3, **QUICK)
    if min(r.diagnostics["round_trips_per_ladder"]) == 0:
        assert any("no round trip" in w for w in r.warnings)
    else:  # a better base model (issue 10) connects the modes: then there is nothing to warn about
        assert covers(r, estimate_exact(two_mode(16.0)).log_z)


def test_estimate_below_the_visited_states_bound_is_raised_to_it_and_warned(monkeypatch):
    m = load_model(MODELS / "strong_24x12.h5")
    honest = pt(m, seed=2, **QUICK)
    high = honest.ci_high + 5.0
    monkeypatch.setattr(pt_module, "visited_lower_bound", lambda rows, neg_f: (high, 7))
    r = pt(m, seed=2, **QUICK)
    assert r.log_z == high and r.kind == "lower_bound" and r.ci_low == high and r.ci_high > high
    assert r.diagnostics["bar_log_z"] == honest.log_z
    assert any("rigorous lower bound" in w and "7 distinct states" in w for w in r.warnings)


def test_estimate_a_little_below_the_visited_states_bound_is_raised_quietly(monkeypatch):
    """Noise below a bound that the interval allows is no missed mode: no warning."""
    m = load_model(MODELS / "strong_24x12.h5")
    honest = pt(m, seed=2, **QUICK)
    high = 0.5 * (honest.log_z + honest.ci_high)
    monkeypatch.setattr(pt_module, "visited_lower_bound", lambda rows, neg_f: (high, 7))
    r = pt(m, seed=2, **QUICK)
    assert (r.log_z, r.ci_low, r.ci_high, r.kind) == (high, high, honest.ci_high, "estimate") and not r.warnings


def test_visited_states_bound_is_a_lower_bound():
    m = load_model(MODELS / "weak_24x12.h5")
    rng = np.random.default_rng(0)
    rows = (rng.random((100, 24)) < 0.5).astype(np.uint8)
    rows = np.concatenate([rows, rows[:10]])  # repeats count once
    neg_f = -m.free_energy(rows.astype(float))
    bound, distinct = visited_lower_bound(rows, neg_f)
    assert distinct == 100
    top = neg_f[:100].max()
    assert bound == pytest.approx(top + math.log(np.exp(neg_f[:100] - top).sum()), abs=1e-12)
    assert bound < REFERENCE["weak_24x12.h5"]["1.0"]


def test_recorded_free_energies_and_works_of_the_top_rung_are_exact():
    """The kernel's ln f_1 of each top-rung state is -F_beta(v) (the bound's ingredient), and its
    work towards the rung below is ln f_{t_2}(v) - ln f_1(v) (BAR's)."""
    m = load_model(MODELS / "strong_24x12.h5")
    path = pt_module.AnnealingPath(m, 0.7, np.zeros(24))
    ladders = pt_module.Ladders(path, np.linspace(0.0, 1.0, 4), 2, entropy=5)
    rec = ladders.run(30, record=True)
    rows = rec.top.reshape(-1, 24).astype(float)
    np.testing.assert_allclose(rec.top_lf.ravel(), -m.free_energy(rows, 0.7), rtol=0, atol=1e-10)
    down = path.log_f(rows, 2.0 / 3.0) - path.log_f(rows, 1.0)  # the work of the top rung's samples
    np.testing.assert_allclose(rec.down[:, :, 3].ravel(), down, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- error bars
def test_interval_is_never_zero_width_even_when_every_work_is_zero():
    """The uniform model, equal to the (uniform) base model: every BAR work is 0."""
    m = RBM(np.zeros((6, 3)), np.zeros(6), np.zeros(3))
    r = pt(m, seed=1, chains=2, samples=100, burn_in=40)
    exact = estimate_exact(m).log_z
    assert r.log_z == pytest.approx(exact, abs=1e-12)
    assert r.stderr > 0 and r.ci_high > r.ci_low and covers(r, exact)


def test_near_deterministic_target_is_covered_or_warned_with_a_nonzero_interval():
    """Issue 10, case 3: a 14x6 model at beta 50, where AIS's interval had zero width."""
    rng = np.random.default_rng(3)
    m = RBM(1.5 * rng.normal(size=(14, 6)), rng.normal(size=14), rng.normal(size=6))
    exact = estimate_exact(m, beta=50.0).log_z
    assert exact == pytest.approx(1376.4807520572, abs=1e-6)
    r = pt(m, beta=50.0, seed=1, **QUICK)
    assert r.ci_high > r.ci_low
    assert covers(r, exact) or r.warnings


def test_error_bar_is_the_larger_of_asymptotic_and_ladder_spread():
    r = pt(load_model(MODELS / "strong_24x12.h5"), seed=7, **QUICK)
    d = r.diagnostics
    assert r.stderr == max(d["asymptotic_stderr"], d["ladder_spread_stderr"])
    spread = np.std(d["ladder_log_z"], ddof=1) / math.sqrt(r.params["chains"])
    assert d["ladder_spread_stderr"] == pytest.approx(spread, rel=1e-12)
    assert r.ci_high - r.log_z >= 1.959963984540054 * r.stderr * (1 - 1e-12)


# --------------------------------------------------------------------------- BAR failures
def test_bar_of_nearly_identical_neighbours_is_solved():
    """pymbar stops on a relative change of Delta f, so a root near 0 never converges; inside
    MBAR's BAR initialisation that became `NameError: name 'ConvergenceError' is not defined`
    (the old umbrella at strength 8 of the two-mode model). Shifting the works solves it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    w = 1e-9 * x
    delta, stderr = bar_pair(w[:200], -w[200:])
    assert abs(delta) < 1e-8 and 0.0 <= stderr < 1e-8


def test_bar_answers_like_pymbar_on_ordinary_works():
    from pymbar.other_estimators import bar

    rng = np.random.default_rng(1)
    w_F, w_R = rng.normal(1.0, 1.0, 300), rng.normal(-0.5, 1.0, 300)
    expected = bar(w_F, w_R)
    assert bar_pair(w_F, w_R) == pytest.approx((expected["Delta_f"], expected["dDelta_f"]), rel=1e-9)


def test_two_mode_model_at_strength_8_runs_where_umbrella_crashed():
    m = two_mode(8.0)
    r = umbrella(m, seed=1, chains=4, samples=300, burn_in=100)
    assert r.method == "umbrella" and covers(r, estimate_exact(m).log_z)


def test_bar_failing_once_is_retried_from_another_start(monkeypatch):
    from pymbar import other_estimators
    from pymbar.utils import ConvergenceError

    m = load_model(MODELS / "weak_24x12.h5")
    kw = dict(seed=4, chains=2, samples=200, burn_in=50)
    plain = pt(m, **kw)
    real = other_estimators.bar
    failed = []

    def flaky(w_F, w_R, **options):
        shifted = w_F.min() >= 1.0 and w_R.max() <= -1.0  # bar_pair's later attempts move the root
        if not shifted:
            failed.append(1)
            raise ConvergenceError("did not converge")
        return real(w_F, w_R, **options)

    monkeypatch.setattr(other_estimators, "bar", flaky)
    r = pt(m, **kw)
    assert failed and r.log_z == pytest.approx(plain.log_z, abs=1e-8)


def test_bar_that_never_converges_fails_naming_the_rungs(monkeypatch):
    from pymbar import other_estimators
    from pymbar.utils import BoundsError

    def broken(w_F, w_R, **options):
        raise BoundsError("Cannot determine bound on free energy")

    monkeypatch.setattr(other_estimators, "bar", broken)
    with pytest.raises(EstimationFailedError) as info:
        pt(load_model(MODELS / "weak_24x12.h5"), seed=1, chains=2, samples=50, burn_in=20)
    message = str(info.value)
    assert message.startswith("the run failed: BAR could not combine the samples of rungs t = 0 and t = ")
    assert "do not overlap" in message and "--rungs" in message and "no estimate is reported" in message


def test_overflowing_model_fails_with_a_message():
    m = RBM(np.full((6, 4), 1e308), np.zeros(6), np.zeros(4))
    with pytest.raises(EstimationFailedError, match="the run failed"):
        pt(m, seed=1, chains=2, samples=20, burn_in=20)


# --------------------------------------------------------------------------- repeatability, options, alias
def test_same_seed_same_answer():
    m = load_model(MODELS / "strong_24x12.h5")
    kw = dict(chains=3, samples=200, burn_in=100)
    a, b = pt(m, seed=2, **kw), pt(m, seed=2, **kw)
    assert (a.log_z, a.ci_low, a.ci_high, a.diagnostics["ladder"]) == (b.log_z, b.ci_low, b.ci_high,
                                                                       b.diagnostics["ladder"])
    assert pt(m, seed=3, **kw).log_z != a.log_z


def test_umbrella_is_pt_under_its_old_name():
    m = load_model(MODELS / "weak_24x12.h5")
    a = umbrella(m, seed=2, windows=5, chains=2, samples=100, burn_in=30)
    b = pt(m, seed=2, rungs=5, chains=2, samples=100, burn_in=30)
    assert a.method == "umbrella" and a.log_z == b.log_z and a.params["windows"] == 5
    assert "umbrella" in method_names() and "umbrella" not in method_names(aliases=False)
    assert "pt" in method_names(aliases=False)


@pytest.mark.parametrize("func,option,value,message", [
    (pt, "rungs", 1, "rungs must be an integer from 2"),
    (pt, "rungs", 0, "rungs must be an integer >= 1, got 0"),
    (umbrella, "windows", 1, "windows must be an integer from 2"),
    (pt, "chains", 1, "chains must be an integer >= 2"),
    (pt, "samples", 0, "samples must be an integer >= 1"),
    (pt, "sweeps", -1, "sweeps must be an integer >= 1"),
    (pt, "schedule", "x", "unknown schedule"),
])
def test_bad_options(func, option, value, message):
    with pytest.raises(InvalidOptionError, match=message):
        func(load_model(MODELS / "weak_24x12.h5"), **{option: value})


def test_pymbar_banner_stays_off_stdout():
    code = ("from fecli.io import load_model; from fecli.estimators.pt import pt; "
            f"pt(load_model({str(MODELS / 'weak_24x12.h5')!r}), seed=1, chains=2, samples=20, burn_in=5)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == ""
    assert "JAX" not in proc.stderr and "timeseries" not in proc.stderr


def test_cli_runs_pt_and_umbrella():
    from click.testing import CliRunner

    from fecli.cli import cli

    strong = str(MODELS / "strong_24x12.h5")
    run = CliRunner().invoke(cli, ["estimate", strong, "-m", "pt", "--rungs", "4", "--chains", "2", "--samples",
                                   "200", "--burn-in", "50", "--seed", "3", "--format", "json"])
    assert run.exit_code == 0, run.output
    row = json.loads(run.stdout)
    assert row["method"] == "pt" and row["params"]["rungs"] == 4 and row["diagnostics"]["rungs"] == 4
    old = CliRunner().invoke(cli, ["estimate", strong, "-m", "umbrella", "--windows", "4", "--chains", "2",
                                   "--samples", "200", "--burn-in", "50", "--seed", "3", "--format", "json"])
    assert old.exit_code == 0, old.output
    assert json.loads(old.stdout)["log_z"] == row["log_z"]
    bad = CliRunner().invoke(cli, ["estimate", strong, "-m", "pt", "--windows", "4"])
    assert bad.exit_code == 1 and "--windows does not apply" in bad.stderr


# --------------------------------------------------------------------------- samples for reverse AIS
def exact_visible_means(model: RBM, beta: float = 1.0) -> np.ndarray:
    """E[v_i] under p_beta, summing over every hidden state."""
    h = all_states(model.n_hidden)
    field = beta * (model.visible_bias[None, :] + h @ model.weights.T)  # (2^nh, nv)
    log_p = beta * h @ model.hidden_bias + softplus(field).sum(axis=1)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    return p @ sigmoid(field)


def test_tempered_samples_have_the_target_marginals():
    m = load_model(MODELS / "strong_24x12.h5")
    out = tempered_samples(m, 1.0, n=400, seed=3, chains=4, rounds=1000, burn_in=300)
    assert out.v.shape == (400, 24) and set(np.unique(out.v)) <= {0.0, 1.0}
    assert np.abs(out.v.mean(axis=0) - exact_visible_means(m)).max() < 0.12
    assert out.diagnostics["thin"] >= 1 and "parallel tempering" in out.note and not out.warnings


def test_tempered_samples_find_both_modes_with_a_mode_covering_base(monkeypatch):
    monkeypatch.setattr(pt_module, "base_model", uniform_base)
    m = two_mode(16.0)
    out = tempered_samples(m, 1.0, n=200, seed=1, chains=4, rounds=1000, burn_in=300)
    all_on = float(np.mean(out.v.sum(axis=1) == 12))
    assert all_on == pytest.approx(exact_visible_means(m).mean(), abs=0.08)  # about 0.95


def test_tempered_samples_run_longer_when_thinning_leaves_too_few():
    m = load_model(MODELS / "weak_24x12.h5")
    out = tempered_samples(m, 1.0, n=300, seed=2, chains=2, rounds=20, burn_in=20)
    assert out.v.shape == (300, 24)


# --------------------------------------------------------------------------- slow: coverage
@pytest.mark.slow
def test_coverage_over_30_seeds_on_a_trained_model():
    m = load_model(MODELS / "digits_64x16.h5")
    exact = REFERENCE["digits_64x16.h5"]["1.0"]
    hits = [covers(pt(m, seed=s, samples=1500), exact) for s in range(30)]
    assert sum(hits) >= 27


def test_round_trips_are_counted_as_chains_travel_between_the_ends():
    """With identical rungs every exchange is accepted, so the chains' walk is known: count it here too."""
    m = RBM(np.zeros((5, 3)), np.zeros(5), np.zeros(3))
    path = pt_module.AnnealingPath(m, 1.0, np.zeros(5))
    K, rounds = 4, 50
    ladders = pt_module.Ladders(path, np.linspace(0.0, 1.0, K), 2, entropy=1)
    ladders.run(rounds, count_trips=True)
    assert np.all(ladders.acceptance() == 1.0)
    chain_at, last_end, half = list(range(K)), {}, dict.fromkeys(range(K), 0)
    for i in range(rounds):
        for k in range(i % 2, K - 1, 2):
            chain_at[k], chain_at[k + 1] = chain_at[k + 1], chain_at[k]
        for end, c in ((0, chain_at[0]), (1, chain_at[-1])):
            if last_end.get(c, end) != end:
                half[c] += 1
            last_end[c] = end
    expected = sum(h // 2 for h in half.values())
    assert expected > 5 and ladders.round_trips().tolist() == [expected, expected]


def test_a_tempering_run_made_longer_gives_the_numbers_of_one_longer_run():
    """auto doubles pt's effort by extending its ladders: the result must be that of one pt run of
    the longer length (same seed), with nothing recorded twice."""
    from fecli.estimators.pt import TemperingRun

    model = references.two_mode_model(16.0)
    options = dict(chains=4, burn_in=300, seed=11)
    run = TemperingRun(model, **options)
    short = run.result(400)
    long = run.result(800)
    assert run.samples_run == 800
    assert short.log_z == pytest.approx(pt(model, samples=400, **options).log_z, abs=1e-12)
    once = pt(model, samples=800, **options)
    assert long.log_z == pytest.approx(once.log_z, abs=1e-12) and long.stderr == pytest.approx(once.stderr, abs=1e-12)
    assert long.diagnostics["round_trips_per_ladder"] == once.diagnostics["round_trips_per_ladder"]
    assert long.params["samples"] == 800 and np.array_equal(long.states, once.states)
    with pytest.raises(InvalidOptionError, match="at least the 800 rounds"):
        run.result(600)
