"""What a new user meets in the first hour: bare commands, typos, hints, help examples that run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from fecli.cli import PASSIVE_THREAD_SETTINGS, cli, quiet_idle_threads


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_idle_threads_sleep_unless_the_user_chose_a_wait_policy():
    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    quiet_idle_threads(environ)
    assert environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert environ["OPENBLAS_THREAD_TIMEOUT"] == PASSIVE_THREAD_SETTINGS["OPENBLAS_THREAD_TIMEOUT"]
    empty: dict[str, str] = {}
    quiet_idle_threads(empty)
    assert empty == PASSIVE_THREAD_SETTINGS


def test_the_thread_settings_are_in_place_before_numpy_loads():
    """main() sets them first; importing the CLI must not load numpy (whose BLAS reads them once)."""
    code = ("import os, sys; os.environ.pop('OMP_WAIT_POLICY', None); import fecli.cli as c; "
            "assert 'numpy' not in sys.modules and 'numba' not in sys.modules; "
            "sys.argv = ['fecli', '--version']; "
            "import atexit; atexit.register(lambda: print(os.environ['OMP_WAIT_POLICY'])); c.main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "PASSIVE"


def test_bare_commands_print_their_help_on_stdout_and_succeed():
    for args in ([], ["plot"]):
        out = subprocess.run([sys.executable, "-m", "fecli.cli", *args], capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("Usage: fecli") and "Commands:" in out.stdout
        assert out.stderr == ""


def test_a_missing_argument_is_still_a_usage_error():
    result = run("estimate")
    assert result.exit_code == 2
    assert "Missing argument 'MODELS...'" in result.stderr


def test_a_mistyped_method_gets_the_closest_name():
    for args in (["estimate", "sample_models/weak_24x12.h5", "--method", "tpa"],
                 ["compare", "sample_models/weak_24x12.h5", "--methods", "exact,tpa"]):
        result = run(*args)
        assert result.exit_code == 2
        assert "unknown method 'tpa'; did you mean 'tap'? See '" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_mistyped_choice_gets_the_closest_value():
    result = run("sample", "sample_models/weak_24x12.h5", "-n", "3", "-o", "x.npy", "--method", "gibs")
    assert result.exit_code == 2
    assert "'gibs' is not one of 'auto', 'exact', 'gibbs'; did you mean 'gibbs'?" in result.stderr
    result = run("estimate", "sample_models/weak_24x12.h5", "--model-format", "safetensor")
    assert result.exit_code == 2 and "did you mean 'safetensors'?" in result.stderr


def test_the_library_suggests_too_and_lists_the_names_when_nothing_is_close():
    from fecli.errors import InvalidOptionError
    from fecli.estimators import get_method
    from fecli.validation import unknown_names_message

    with pytest.raises(InvalidOptionError, match="unknown method 'tpa'; did you mean 'tap'"):
        get_method("tpa")
    assert unknown_names_message("method", ["zzz"], ["exact", "ais"]) == (
        "unknown method 'zzz'; valid methods are: exact, ais.")
    assert unknown_names_message("method", ["aiss", "zzz"], ["exact", "ais"]) == (
        "unknown methods 'aiss' (did you mean 'ais'?), 'zzz'; valid methods are: exact, ais.")


@pytest.mark.parametrize("name", ["weak.bin", "weak.pt", "weak"])
def test_convert_refuses_an_extension_it_cannot_map_to_a_format(tmp_path, name):
    result = run("convert", "sample_models/weak_24x12.h5", "-o", tmp_path / name)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "cannot tell which format to write" in line
    assert ".h5, .hdf5, .safetensors, .npz" in line and "--to (fecli, rbms, rbmjl, safetensors, npz)" in line
    assert not (tmp_path / name).exists()
    named = run("convert", "sample_models/weak_24x12.h5", "-o", tmp_path / name, "--to", "npz")
    assert named.exit_code == 0 and (tmp_path / name).exists()


@pytest.mark.parametrize("hidden", [["sklearn"], ["sklearn", "joblib"]])
def test_a_pickled_sklearn_model_without_scikit_learn_names_the_extra(hidden):
    code = ("import sys; from fecli.cli import main; "
            + "".join(f"sys.modules[{name!r}] = None; " for name in hidden)
            + "main(['info', 'tests/fixtures/formats/sklearn_rbm.joblib', '--allow-pickle'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 1
    assert out.stderr.strip() == ("fecli: error: model file 'tests/fixtures/formats/sklearn_rbm.joblib' is a pickled "
                                  "scikit-learn model; reading it needs scikit-learn: pip install 'fecli[formats]'.")


def test_exact_sampling_of_a_model_too_large_to_enumerate_points_to_gibbs(tmp_path):
    import numpy as np

    from fecli.io import save_model
    from fecli.model import RBM

    rng = np.random.default_rng(0)
    save_model(RBM(rng.normal(0, 0.1, (30, 26)), np.zeros(30), np.zeros(26)), tmp_path / "big.h5")
    result = run("sample", tmp_path / "big.h5", "-n", "3", "-o", tmp_path / "s.npy", "--method", "exact")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("Use --method gibbs (block Gibbs chains) for this model.")
    assert not (tmp_path / "s.npy").exists()


def _commands(group, path=("fecli",)):
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def help_examples():
    """(command path, example line) for every 'fecli ...' line in every command's --help."""
    import click

    out = []
    for path, command in _commands(cli):
        text = command.get_help(click.Context(command, info_name=" ".join(path)))
        out.extend((path, line.strip()) for line in text.splitlines() if line.strip().startswith("fecli "))
    return out


def test_the_main_commands_have_help_examples():
    have = {path[1] for path, _ in help_examples()}
    assert {"estimate", "compare", "loglik", "convert", "info", "sample", "train-rbm", "trajectory"} <= have


@pytest.mark.parametrize("path, example", help_examples(), ids=lambda x: x if isinstance(x, str) else None)
def test_every_help_example_runs_as_written(tmp_path, monkeypatch, path, example):
    """Each example of every --help, parsed and run as a user would paste it, on a copy of the shipped
    sample models and fixtures (examples write files next to them)."""
    import shlex
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "sample_models", tmp_path / "sample_models")
    shutil.copytree(root / "tests" / "fixtures" / "formats", tmp_path / "tests" / "fixtures" / "formats")
    monkeypatch.chdir(tmp_path)
    words = shlex.split(example)
    assert tuple(words[:len(path)]) == path
    result = run(*words[1:])
    assert result.exit_code == 0, f"{example}\n{result.output}"
    assert result.stdout.strip()


def test_a_negative_ln_z_constant_reads_as_one_sign(tmp_path):
    result = run("convert", "tests/fixtures/formats/rbmjl_standardized.h5", "-o", tmp_path / "st.npz")
    assert result.exit_code == 0
    assert "ln Z of tests/fixtures/formats/rbmjl_standardized.h5 + 0.9494572085 (beta = 1)" in result.stderr
    assert "- -" not in result.stderr and "+ -" not in result.stderr


def test_a_checkpoint_is_named_in_results_however_it_was_chosen():
    rbms = "tests/fixtures/formats/rbms_bbrbm.h5"
    for args in ([f"{rbms}@10"], [rbms, "--checkpoint", "10"]):
        estimate = run("estimate", *args, "-m", "exact", "--format", "csv")
        assert estimate.exit_code == 0 and f"\n{rbms}@10,exact," in estimate.stdout
        compare = run("compare", *args, "-m", "exact,mf")
        assert compare.exit_code == 0 and compare.stdout.startswith(f"{rbms}@10  (reference: exact")
        info = run("info", *args)
        assert "checkpoint update_10, number 2 of 3 checkpoints (updates 0, 10, 100)" in info.stdout
        trajectory = run("trajectory", *args, "--seed", "1", "--format", "csv")
        assert trajectory.exit_code == 0, trajectory.output
        rows = trajectory.stdout.splitlines()[1:]
        assert [r.split(",")[2] for r in rows] == ["0", "10"]  # the run up to checkpoint 10, not past it
        assert rows[0].startswith(f"{rbms}@10,0,0,")


def test_loglik_reads_fasta_in_the_alphabet_the_model_was_trained_with(tmp_path):
    fasta = tmp_path / "a.fasta"
    fasta.write_text(">s1\nACD-K\n>s2\nAC--K\n>s3\nwcdek\n>s4\nACDEK\n")
    model = tmp_path / "p.h5"
    trained = run("train-rbm", fasta, "--visible-type", "potts", "--alphabet", "protein", "--hidden", 2,
                  "--epochs", 1, "-o", model, "-q", "--monitor-every", 0)
    assert trained.exit_code == 0, trained.output
    stored = run("loglik", model, fasta, "-m", "exact", "--format", "json")
    given = run("loglik", model, fasta, "-m", "exact", "--format", "json", "--alphabet", "protein")
    assert stored.exit_code == 0, stored.output
    assert json.loads(stored.stdout)["mean_log_likelihood"] == json.loads(given.stdout)["mean_log_likelihood"]


def test_a_potts_model_without_a_stored_alphabet_still_asks_for_one(tmp_path):
    fasta = tmp_path / "a.fasta"
    fasta.write_text(">s1\nAC\n>s2\nCA\n")
    rows = tmp_path / "s.npy"
    np.save(rows, np.array([[1, 2], [2, 1]]))
    model = tmp_path / "p.h5"
    trained = run("train-rbm", rows, "--visible-type", "potts", "--states", 21, "--hidden", 2, "--epochs", 1,
                  "-o", model, "-q", "--monitor-every", 0)
    assert trained.exit_code == 0, trained.output
    result = run("loglik", model, fasta, "-m", "exact")
    assert result.exit_code == 1 and "give its alphabet (--alphabet" in result.stderr


def test_info_and_the_refusal_quote_the_same_enumeration_time(tmp_path):
    from fecli.estimators.exact import expected_seconds, format_duration
    from fecli.io import load_model, save_model
    from fecli.model import RBM

    rng = np.random.default_rng(0)
    save_model(RBM(rng.normal(0, 0.1, (40, 30)), np.zeros(40), np.zeros(30)), tmp_path / "big.h5")
    info = run("info", tmp_path / "big.h5", "--format", "json")
    seconds = json.loads(info.stdout)["estimators"]["exact"]["expected_seconds"]
    assert seconds == expected_seconds(load_model(tmp_path / "big.h5"))
    refused = run("estimate", tmp_path / "big.h5", "-m", "exact", "--max-units", 20)
    assert refused.exit_code == 1
    assert f"about {format_duration(seconds)} on this machine" in refused.stderr
    assert f"about {format_duration(seconds)} here" in run("info", tmp_path / "big.h5").stdout


def test_the_progress_bar_rate_leaves_out_monitoring_time():
    from fecli.report_train import TrainingRate

    rate = TrainingRate()
    rate.step(0, 0.0)
    rate.step(100, 1.0)       # 100 examples in 1 s of training
    assert rate.per_second() == 100.0
    rate.pause(11.0)          # then 10 s of monitoring, ended by the epoch's record
    assert rate.per_second() == 100.0
    rate.step(300, 12.0)      # the next epoch: 200 in 1 s, the 10 s not counted
    assert rate.per_second() == 200.0
