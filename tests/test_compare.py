"""fecli compare: every row present, differences to the reference, verdicts a person can act on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fecli.cli import cli
from fecli.compare import compare_results, reference_of
from fecli.model import RBM
from fecli.result import Result

from .conftest import REFERENCE, SAMPLE_MODELS, SAMPLES


def row(method, log_z, kind, stderr=None):
    return Result("m.h5", method, 1.0, log_z, kind, 4, 3, stderr=stderr)


def test_exact_is_the_reference_and_differences_are_signed():
    c = compare_results("m.h5", [row("exact", 10.0, "exact", 0.0), row("ais", 9.9, "stochastic_lower_bound", 0.05),
                                 row("mf", 9.0, "lower_bound"), row("tap3", 10.8, "approximation")])
    assert c.reference.value == 10.0
    assert [round(c.differences[i], 6) for i in range(4)] == [0.0, -0.1, -1.0, 0.8]
    text = " ".join(c.verdict)
    assert "ais is 0.1 nats below exact" not in text  # 2 sigma is agreement at 3 sigma
    assert "Exact ln Z lies within the error bars of: ais." in text
    assert "Deterministic bounds hold: mf." in text
    assert "Furthest approximation: tap3, 0.8 nats above exact." in text


def test_a_violated_bound_is_called_out():
    c = compare_results("m.h5", [row("exact", 10.0, "exact", 0.0), row("mf", 10.5, "lower_bound")])
    assert any("BOUND VIOLATED" in line and "mf" in line for line in c.verdict)


def test_verdict_sentences_in_order():
    """Agreement, each disagreeing row, the bounds, the furthest approximation: one sentence each, in that order."""
    c = compare_results("m.h5", [row("exact", 10.0, "exact", 0.0), row("ais", 9.95, "stochastic_lower_bound", 0.05),
                                 row("ti", 10.5, "estimate", 0.1), row("mf", 9.0, "lower_bound"),
                                 row("ub", 9.5, "upper_bound"), row("tap2", 9.7, "approximation"),
                                 row("tap3", 10.8, "approximation")])
    assert c.verdict == [
        "Exact ln Z lies within the error bars of: ais.",
        "ti is 0.5 nats above exact (5.0 standard errors).",
        "Deterministic bounds hold: mf.",
        "BOUND VIOLATED (a bug or a failed solve): ub.",
        "Furthest approximation: tap3, 0.8 nats above exact.",
    ]
    sandwich = compare_results("m.h5", [row("ais", 9.8, "stochastic_lower_bound", 0.1),
                                        row("reverse-ais", 10.1, "stochastic_upper_bound", 0.1),
                                        row("tap2", 9.0, "approximation")])
    assert sandwich.verdict == ["ln Z lies in the sandwich [9.8000, 10.1000] (gap 0.3 nats).",
                                "Furthest approximation: tap2, 0.95 nats below the sandwich midpoint."]


def test_without_exact_the_tightest_sandwich_is_the_reference():
    results = [row("ais", 9.8, "stochastic_lower_bound", 0.1), row("mf", 9.0, "lower_bound"),
               row("reverse-ais", 10.1, "stochastic_upper_bound", 0.1)]
    ref = reference_of(results)
    assert (ref.low, ref.high, ref.value) == (9.8, 10.1, pytest.approx(9.95))
    assert "sandwich" in compare_results("m.h5", results).verdict[0]
    assert reference_of([row("tap2", 3.0, "approximation")]).value is None


def test_cli_compare_tables_one_per_model():
    result = CliRunner().invoke(cli, ["compare", *map(str, SAMPLE_MODELS), "--methods", "exact,mf,cumulant"])
    assert result.exit_code == 0, result.output
    for path in SAMPLE_MODELS:
        assert f"{path}  (reference: exact, ln Z = {REFERENCE[path.name]['1.0']:.6f})" in result.stdout
    assert "cumulant (order 3)" in result.stdout and "Deterministic bounds hold: mf" in result.stdout


@pytest.mark.parametrize("path, options", [
    (SAMPLES / "weak_24x12.h5", []),
    pytest.param(SAMPLES / "strong_24x12.h5", [], marks=pytest.mark.slow),
    pytest.param(SAMPLES / "digits_64x16.h5", [], marks=pytest.mark.slow),
], ids=["weak", "strong", "digits"])
def test_compare_every_method_every_row_exact_row_exact_each_within_error_or_marked(path, options):
    """Every registered method on a shipped model (compare's defaults: -m slow, tens of seconds each)."""
    from fecli.estimators import method_names

    result = CliRunner().invoke(cli, ["compare", str(path), "--seed", "3", "--format", "json", *options])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    labels = [r["method"] + (f" {r['params']['order']}" if r["method"] == "cumulant" else "") for r in rows]
    expected = [m for m in method_names(aliases=False) if m != "cumulant"] + ["cumulant 1", "cumulant 2", "cumulant 3"]
    assert sorted(labels) == sorted(expected)
    truth = REFERENCE[path.name]["1.0"]
    exact = next(r for r in rows if r["method"] == "exact")
    assert exact["kind"] == "exact" and exact["log_z"] == pytest.approx(truth, rel=1e-12)
    for r in rows:
        assert r["model"] == str(path)
        assert r["reference"] == "exact" and r["difference"] == pytest.approx(r["log_z"] - truth)
        if r["kind"] == "exact":
            continue
        if r["kind"] == "lower_bound":
            assert r["log_z"] <= truth + 1e-9, r["method"]
        elif r["stderr"] is not None:
            low = -np.inf if r["ci_low"] is None else r["ci_low"]
            high = np.inf if r["ci_high"] is None else r["ci_high"]
            assert low <= truth <= high or r["warnings"], (path.name, r["method"], r["log_z"], low, high)
        else:
            assert r["kind"] == "approximation" and r["stderr"] is None  # marked: no error bar claimed


def test_cli_compare_json_has_reference_and_difference():
    result = CliRunner().invoke(cli, ["compare", str(SAMPLES / "weak_24x12.h5"), "--methods", "exact,mf,ais",
                                      "--steps", "200", "--format", "json"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(r["reference"] == "exact" for r in rows)
    assert rows[0]["method"] == "exact" and rows[0]["difference"] == 0.0


def test_unknown_method_names_are_listed():
    result = CliRunner().invoke(cli, ["compare", str(SAMPLES / "weak_24x12.h5"), "--methods", "exact,nope"])
    assert result.exit_code == 2
    assert "unknown method 'nope'" in result.stderr and "valid methods are: auto, exact" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_agreement_uses_the_reported_interval_even_when_one_sided():
    inside = Result("m.h5", "importance", 1.0, 72.8, "stochastic_lower_bound", 4, 3, stderr=0.13,
                    ci_low=69.1, ci_high=float("inf"))
    outside = Result("m.h5", "ti", 1.0, 77.0, "estimate", 4, 3, stderr=0.1, ci_low=76.8, ci_high=77.2)
    c = compare_results("m.h5", [row("exact", 77.8, "exact", 0.0), inside, outside])
    text = " ".join(c.verdict)
    assert "within the error bars of: importance (one-sided interval: low ESS)" in text
    assert "ti is 0.8 nats below exact (8.0 standard errors)" in text


def test_budget_is_spread_over_sampling_methods_and_checked():
    result = CliRunner().invoke(cli, ["compare", str(SAMPLES / "weak_24x12.h5"), "--methods", "exact,ais,importance",
                                      "--budget", "2", "--seed", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in map(json.loads, result.stdout.splitlines())}
    for name, knob in (("ais", "steps"), ("importance", "samples")):
        budget = rows[name]["diagnostics"]["budget"]
        assert budget["share_s"] == pytest.approx(1.0) and budget["option"] == knob
        assert rows[name]["params"][knob] == budget["chosen_amount"] >= budget["pilot_amount"]
    assert "budget" not in rows["exact"]["diagnostics"]
    for args, message in ((["--budget", "0"], "--budget must be a number of seconds > 0"),
                          (["--budget", "2", "--steps", "10"], "--steps and --budget both set how much")):
        bad = CliRunner().invoke(cli, ["compare", str(SAMPLES / "weak_24x12.h5"), *args])
        assert bad.exit_code == 1 and message in bad.stderr


def test_table_output_file_holds_the_comparison_and_verdict(tmp_path):
    out = tmp_path / "cmp.txt"
    result = CliRunner().invoke(cli, ["compare", str(SAMPLES / "weak_24x12.h5"), "--methods", "exact,mf", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    text = out.read_text()
    assert "(reference: exact, ln Z = 25.724841)" in text and "Deterministic bounds hold: mf." in text
    assert "\x1b[" not in text


def test_compare_uses_auto_as_the_reference_where_exact_cannot_run():
    from fecli.references import ising_torus, kaufman_log_z
    from fecli.runner import compare_model

    model, offset = ising_torus(8, 0.6)
    comparison = compare_model(model, seed=1)
    assert comparison.reference.label.startswith("auto (pt")
    exact = kaufman_log_z(8, 0.6) - offset
    assert comparison.reference.low <= exact <= comparison.reference.high
    assert "auto's agreed routes are the reference" in comparison.notes[0]
    assert comparison.verdict[0].startswith("auto's routes agree (")
    assert not any(r.method == "exact" for r in comparison.results)


def test_compare_skips_series_orders_past_the_layers_joint_series():
    from fecli.layers import Bernoulli, Gaussian
    from fecli.runner import compare_plan

    rng = np.random.default_rng(0)
    model = RBM(Gaussian(rng.normal(size=6), np.full(6, 2.0)), Bernoulli(rng.normal(size=4)),
                0.3 * rng.normal(size=(6, 4)))
    runs, notes = compare_plan(["exact", "cumulant"]).runs_for(model)
    assert [r.label for r in runs] == ["exact", "cumulant order 1", "cumulant order 2"]
    assert "cumulant order 3 skipped" in notes[0] and "order 2" in notes[0]
    binary = RBM(0.1 * rng.normal(size=(6, 4)), np.zeros(6), np.zeros(4))
    binary_runs, binary_notes = compare_plan(["exact", "cumulant"]).runs_for(binary)
    assert [r.label for r in binary_runs][-1] == "cumulant order 3" and binary_notes == []


def test_a_value_clipped_to_a_rigorous_bound_is_flagged_marked_and_keeps_its_raw_value():
    """With --seed 1 the cumulant series at orders 2 and 3 falls below the mean-field bound of the
    bracket (72.4883 and 72.4645 against 72.9647): both are reported at the bound, which alone would
    show two identical numbers; each carries a warning, keeps its raw value in the diagnostics, and the
    table marks the rows and names the raw values."""
    path = str(SAMPLES / "digits_64x16.h5")
    out = CliRunner().invoke(cli, ["compare", path, "-m", "exact,cumulant", "--seed", "1", "--format", "json"])
    assert out.exit_code == 0, out.output
    rows = {r["params"].get("order"): r for r in map(json.loads, out.stdout.splitlines()) if r["method"] == "cumulant"}
    for order in (2, 3):
        r = rows[order]
        raw = r["diagnostics"]["unclipped_log_z"]
        assert raw < r["log_z"] - 0.4 and r["log_z"] == pytest.approx(r["diagnostics"]["bracket"]["lower"])
        assert any("below a rigorous lower bound" in w and f"{raw:.6g}" in w for w in r["warnings"])
    assert rows[2]["diagnostics"]["unclipped_log_z"] != rows[3]["diagnostics"]["unclipped_log_z"]
    table = CliRunner().invoke(cli, ["compare", path, "-m", "exact,cumulant", "--seed", "1"])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    marked = [line for line in lines if "cumulant (order" in line and " *" in line]
    assert len(marked) == 2 and all("order 1" not in line for line in marked)
    note = next(line for line in lines if line.startswith("* reported at a rigorous bound"))
    assert f"cumulant (order 2) {rows[2]['diagnostics']['unclipped_log_z']:.6f}" in note
