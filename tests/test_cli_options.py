"""Options declared once, help that starts with real examples, one way to name methods, checks
that run once, seeds that survive JSON, named exit statuses (issue 14, items 1 and 4-9, 16)."""

from __future__ import annotations

import ast
import inspect
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fecli
from fecli.cli import cli, main
from fecli.errors import (EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, EstimationFailedError, InvalidModelError,
                          InvalidOptionError, ModelFileError)
from fecli.estimators import COMMON_OPTIONS, METHODS, RAISE
from fecli.io import save_model
from fecli.model import RBM
from fecli.result import Result

from .conftest import REFERENCE, ROOT, SAMPLES
from .test_cli import fecli_command

WEAK = str(SAMPLES / "weak_24x12.h5")
DIGITS = str(SAMPLES / "digits_64x16.h5")
DATA = str(SAMPLES / "data" / "digits8x8_binary.npy")
COMMANDS = ("estimate", "compare", "loglik")


def run(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fecli: error: ") and "Traceback" not in result.output
    return lines[0]


# --------------------------------------------------------------------------- item 7: declared once
@pytest.mark.parametrize("entry", [*METHODS.values(), RAISE], ids=lambda m: m.name)
def test_each_method_takes_exactly_its_declared_options_with_the_declared_defaults(entry):
    params = list(inspect.signature(entry.load()).parameters.values())
    keywords = {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY and not p.name.startswith("_")}
    declared = entry.defaults()
    assert set(keywords) == set(declared) | set(COMMON_OPTIONS)
    for name, default in declared.items():
        assert keywords[name] == default, (entry.name, name)


def test_every_declared_option_is_a_flag_with_its_default_in_the_method_help():
    for command in COMMANDS:
        entries = [*METHODS.values(), *([RAISE] if command == "loglik" else [])]
        for entry in entries:
            result = run(command, "--help-method", entry.name, terminal_width=300)
            assert result.exit_code == 0, result.output
            text = " ".join(result.output.split())
            for option in entry.options:
                if not option.cli or (command == "loglik" and option.name == "data"):
                    assert f"{option.cli_flag} " not in text
                    continue
                assert f"{option.cli_flag} " in text, (command, entry.name, option.name)
                assert f"default: {option.describe_default()}]" in text, (command, entry.name, option.name)


def test_a_shared_flag_carries_each_methods_own_default_and_constraint():
    ais = json.loads(run("estimate", WEAK, "-m", "ais", "--steps", "20", "--seed", "1", "--format", "json").stdout)
    assert ais["params"]["chains"] == METHODS["ais"].defaults()["chains"]
    bad = run("estimate", WEAK, "-m", "ais,ti", "--chains", "1")
    assert bad.exit_code == EXIT_FAILURE
    assert "--chains must be an integer >= 2, got 1" in one_error_line(bad)  # ti's rule, named by its flag


def test_the_run_policy_is_a_library_call():
    from fecli.runner import MethodPlan, compare_model, compare_plan, run_methods

    model = fecli.load_model(WEAK)
    plan = MethodPlan(["exact", "mf", "cumulant"], options={"order": 3})
    assert [r.method for r in run_methods(plan, model)] == ["exact", "mf", "cumulant"]
    comparison = compare_model(model, ["exact", "mf", "cumulant"])
    labels = [(r.method, r.params.get("order")) for r in comparison.results]
    assert labels == [("exact", None), ("mf", None), ("cumulant", 1), ("cumulant", 2), ("cumulant", 3)]
    assert comparison.reference.value == pytest.approx(REFERENCE["weak_24x12.h5"]["1.0"], rel=1e-12)
    giant = RBM(np.zeros((40, 33)), np.zeros(40), np.zeros(33), name="giant")
    runs, notes = compare_plan().runs_for(giant)
    assert "exact" not in {r.method for r in runs} and "exact enumeration skipped" in notes[0]
    runs, _ = compare_plan(["exact", "mf"]).runs_for(giant)  # named explicitly: kept (and refused when run)
    assert [r.method for r in runs] == ["exact", "mf"]


# --------------------------------------------------------------------------- item 4: help
@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_short_starts_with_examples_and_lists_no_method_flag(command):
    result = run(command, "--help", terminal_width=100)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) <= 60
    assert lines[2].strip() == "Examples:" and lines[3].strip().startswith(f"fecli {command} ")
    option_rows = [line.split()[0] for line in lines if line.startswith("  -")]
    for flag in ("--max-units", "--chains", "--schedule", "--damping", "--windows", "--order"):
        assert flag not in option_rows
    assert "--help-method NAME" in result.output
    seed_help = " ".join(result.output.split())
    raise_ = ", raise" if command == "loglik" else ""
    assert (f"[default: auto, ais, reverse-ais, importance, pt, umbrella, ti, trajectory{raise_}: a fresh random seed below "
            f"2^53, recorded in the results; mf, tap, tap2, tap3, cumulant: 0]") in seed_help  # each one's, declared


@pytest.mark.parametrize("command", COMMANDS)
def test_the_examples_in_the_help_run_as_written(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    text = run(command, "--help").output
    examples = [line.strip() for line in text.splitlines() if line.strip().startswith(f"fecli {command} ")]
    assert len(examples) == 2
    for example in examples:
        result = run(*shlex.split(example)[1:], "-q")
        assert result.exit_code == 0, (example, result.output)
        assert result.stdout.strip()


def test_schedule_is_a_choice_and_method_help_shows_it():
    result = run("estimate", WEAK, "-m", "ais", "--schedule", "cosine")
    assert result.exit_code == EXIT_USAGE
    assert "'cosine' is not one of 'linear', 'sigmoid', 'sm08'" in one_error_line(result)
    assert "--schedule [linear|sigmoid|sm08]" in run("estimate", "--help-method", "ais").output


def test_help_method_all_and_unknown():
    text = run("compare", "--help-method", "all").output
    assert all(f"{name}: " in text for name in METHODS)
    assert run("estimate", "--help-method", "nope").exit_code == EXIT_USAGE


# --------------------------------------------------------------------------- item 5: seeds
def test_fresh_seeds_fit_a_json_double_and_reproduce_the_run():
    args = ("estimate", WEAK, "-m", "importance", "--samples", "300", "--format", "json")
    rows = [json.loads(run(*args).stdout) for _ in range(3)]
    seeds = [r["params"]["seed"] for r in rows]
    assert all(isinstance(s, int) and 0 <= s < 2**53 for s in seeds) and len(set(seeds)) == 3
    assert all(float(s) == s for s in seeds)  # what jq 1.6 reads back
    again = json.loads(run(*args, "--seed", seeds[0]).stdout)
    assert again["log_z"] == rows[0]["log_z"]
    big = json.loads(run(*args, "--seed", 2**60 + 1).stdout)  # given seeds are taken as today
    assert big["params"]["seed"] == 2**60 + 1


# --------------------------------------------------------------------------- item 6: naming methods
@pytest.mark.parametrize("spelling", [["-m", "exact,mf"], ["-m", "exact", "-m", "mf"], ["--methods", "exact,mf"],
                                      ["--method", "exact", "--methods", "mf"]])
def test_every_command_takes_every_spelling_of_a_method_list(spelling):
    estimate = run("estimate", WEAK, *spelling, "--format", "json")
    assert [json.loads(line)["method"] for line in estimate.stdout.splitlines()] == ["exact", "mf"]
    compare = run("compare", WEAK, *spelling, "--format", "json")
    assert [json.loads(line)["method"] for line in compare.stdout.splitlines()] == ["exact", "mf"]
    loglik = run("loglik", DIGITS, DATA, *spelling, "--format", "json")
    assert [json.loads(line)["method"] for line in loglik.stdout.splitlines()] == ["exact", "mf"]


@pytest.mark.parametrize("args", [("estimate", WEAK), ("compare", WEAK), ("loglik", DIGITS, DATA)])
def test_an_unknown_method_is_a_usage_error_everywhere(args):
    for spelling in (["-m", "nope"], ["--methods", "exact,nope"]):
        result = run(*args, *spelling)
        assert result.exit_code == EXIT_USAGE
        line = one_error_line(result)
        assert "unknown method 'nope'" in line and "valid methods are: auto, exact, mf" in line
        assert result.stdout == ""


# --------------------------------------------------------------------------- item 8: one model check, one validator
def test_a_model_with_nan_or_inf_cannot_be_built_loaded_or_estimated(tmp_path):
    bad = np.zeros((3, 2))
    bad[1, 1] = np.nan
    with pytest.raises(InvalidModelError, match="'weights' contains 1 non-finite value"):
        RBM(bad, np.zeros(3), np.zeros(2))
    with pytest.raises(InvalidModelError, match="'hidden_bias' contains 1 non-finite"):
        RBM(np.zeros((3, 2)), np.zeros(3), np.array([0.0, np.inf]))
    with pytest.raises(InvalidModelError, match=r"'visible_bias' has shape \(2,\)"):
        RBM(np.zeros((3, 2)), np.zeros(2), np.zeros(2))
    model = RBM(np.zeros((3, 2)), np.zeros(3), np.zeros(2))
    model.weights[0, 0] = np.nan  # changed after the check: writers check again (readers: see test_io)
    with pytest.raises(ModelFileError, match="'weights' contains 1 non-finite"):
        save_model(model, tmp_path / "m.h5")


@pytest.mark.parametrize("method, options, message", [
    ("exact", {"max_units": True}, "max_units must be an integer >= 1, got True"),
    ("ais", {"chains": 2.0}, "chains must be an integer >= 1, got 2.0"),
    ("mf", {"damping": float("nan")}, "damping must be a finite number in (0, 1), got nan"),
    ("mf", {"tol": False}, "tol must be a finite number > 0, got False"),
    ("cumulant", {"variant": "both"}, "variant must be one of joint, marginal, got 'both'"),
    ("ti", {"schedule": "cosine"}, "schedule must be one of linear, sigmoid, sm08, got 'cosine'"),
    ("exact", {"beta": True}, "beta must be a finite number > 0, got True"),
])
def test_the_library_checks_every_option_against_its_declaration(method, options, message):
    with pytest.raises(InvalidOptionError, match=re.escape(message)):
        fecli.estimate(WEAK, method, **options)


def test_a_result_never_holds_a_non_finite_log_z():
    for bad in (float("nan"), float("inf"), -float("inf"), np.float32("nan")):
        with pytest.raises(EstimationFailedError, match="no result is reported"):
            Result("m.h5", "ais", 1.0, bad, "estimate", 4, 3)
    assert Result("m.h5", "ais", 1.0, np.float64(1.5), "estimate", 4, 3).log_z == 1.5


# --------------------------------------------------------------------------- item 9: checked once
@pytest.mark.parametrize("args, message", [
    (["--beta", "0"], "--beta must be a finite number > 0, got 0.0"),
    (["-m", "ais", "--chains", "0"], "--chains must be an integer >= 1, got 0"),
    (["-m", "exact", "--order", "2"], "--order does not apply to the selected method(s): exact"),
    (["--seed", "-1"], "--seed must be an integer >= 0, got -1"),
])
@pytest.mark.parametrize("command", ["estimate", "compare"])
def test_option_errors_are_reported_once_for_many_models(command, args, message):
    result = run(command, str(SAMPLES / "*.h5"), *args)
    assert result.exit_code == EXIT_FAILURE and result.stdout == ""
    assert message in one_error_line(result)


# --------------------------------------------------------------------------- item 1 (with -m exact now that auto is the default)
def test_exact_refused_on_a_large_model_names_the_methods_that_apply(tmp_path):
    path = tmp_path / "giant.h5"
    save_model(RBM(np.zeros((784, 500)), np.zeros(784), np.zeros(500)), path)
    result = run("estimate", path, "-m", "exact")
    assert result.exit_code == EXIT_FAILURE and result.stdout == ""
    line = one_error_line(result)
    assert "2^500 states" in line and "years" in line
    applicable = line.split("Methods that apply to this model: ")[1].rstrip(".").split(", ")
    assert applicable[:2] == ["auto", "ais"] and {"mf", "pt", "reverse-ais", "tap3"} <= set(applicable)
    assert not {"exact", "umbrella", "tap"} & set(applicable)  # aliases are not named twice


# --------------------------------------------------------------------------- item 16: exit statuses
def test_no_exit_status_is_a_bare_number_in_the_code():
    """sys.exit / ctx.exit / exit_code = ... take the named constants of fecli.errors, never literals."""
    offenders = []
    for path in (ROOT / "fecli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            value = None
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "exit":
                value = node.args[0] if node.args else None
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "exit_code" for t in node.targets):
                value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, int):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_usage_and_interrupt_statuses(monkeypatch, capsys):
    for argv in (["estimate"], ["estimate", WEAK, "--format", "xml"], ["estimate", WEAK, "--no-such-option"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == EXIT_USAGE
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fecli: error: ") and "fecli estimate --help" in err[0]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("fecli.runner.MethodPlan.run", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        main(["estimate", WEAK])
    assert exit_info.value.code == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == "fecli: interrupted."


def test_real_subprocess_one_line_usage_error():
    done = subprocess.run([*fecli_command(), "compare", WEAK, "--methods", "exact,nope"], capture_output=True,
                          text=True)
    assert done.returncode == EXIT_USAGE and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "unknown method 'nope'" in done.stderr
