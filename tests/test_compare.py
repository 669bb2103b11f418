"""fecli compare: every row present, differences to the reference, verdicts a person can act on."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fecli.cli import cli
from fecli.compare import compare_results, reference_of
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
    assert "ais is 0.1 nats below exact (2.0 standard errors)" not in text  # 2 sigma is agreement at 3 sigma
    assert "Within 3 standard errors of exact: ais." in text
    assert "Deterministic bounds hold: mf." in text
    assert "Furthest approximation: tap3, 0.8 nats above exact." in text


def test_a_violated_bound_is_called_out():
    c = compare_results("m.h5", [row("exact", 10.0, "exact", 0.0), row("mf", 10.5, "lower_bound")])
    assert any("BOUND VIOLATED" in line and "mf" in line for line in c.verdict)


def test_without_exact_the_tightest_sandwich_is_the_reference():
    results = [row("ais", 9.8, "stochastic_lower_bound", 0.1), row("mf", 9.0, "lower_bound"),
               row("reverse-ais", 10.1, "stochastic_upper_bound", 0.1)]
    ref = reference_of(results)
    assert (ref.low, ref.high, ref.value) == (9.8, 10.1, pytest.approx(9.95))
    assert "sandwich" in compare_results("m.h5", results).verdict[0]
    assert reference_of([row("tap2", 3.0, "approximation")]).value is None


def test_cli_compare_tables_one_per_model():
    result = CliRunner().invoke(cli, ["compare", *map(str, SAMPLE_MODELS)])
    assert result.exit_code == 0, result.output
    for path in SAMPLE_MODELS:
        assert f"{path}  (reference: exact, ln Z = {REFERENCE[path.name]['1.0']:.6f})" in result.stdout


def test_cli_compare_json_has_reference_and_difference():
    result = CliRunner().invoke(cli, ["compare", str(SAMPLES / "weak_24x12.h5"), "--format", "json"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(r["reference"] == "exact" for r in rows)
    assert rows[0]["method"] == "exact" and rows[0]["difference"] == 0.0


def test_unknown_method_names_are_listed():
    result = CliRunner().invoke(cli, ["compare", str(SAMPLES / "weak_24x12.h5"), "--methods", "exact,nope"])
    assert result.exit_code == 1
    assert "unknown method(s) 'nope'" in result.stderr and "valid methods are: exact" in result.stderr
