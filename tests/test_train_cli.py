"""fecli train-rbm: acceptance, output, resume, every bad input, and Ctrl-C through a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fecli.cli import cli
from fecli.io import load_model
from fecli.training import TrainSettings

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "sample_models" / "data" / "digits8x8_binary.npy"


def run(*args):
    return CliRunner().invoke(cli, ["train-rbm", *[str(a) for a in args]])


def one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("fecli: error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def small_data(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "small.npy"
    np.save(path, (rng.random((80, 10)) < 0.3).astype(np.uint8))
    return path


def test_acceptance_digits_then_exact_estimate(tmp_path):
    out = tmp_path / "m.h5"
    result = run(DIGITS, "--hidden", 16, "--epochs", 6, "--seed", 1, "-o", out)
    assert result.exit_code == 0, result.output
    assert "train LL" in result.output and "train PLL" in result.output and "recon err" in result.output
    model = load_model(out)
    lls = model.training["metrics"]["log_likelihood"]
    assert len(lls) == 6 and lls[-1] > lls[0] + 1.0
    est = CliRunner().invoke(cli, ["estimate", str(out), "--method", "exact", "--format", "json"])
    assert est.exit_code == 0, est.output
    row = json.loads(est.output.strip().splitlines()[-1])
    assert row["log_z"] == pytest.approx(model.training["metrics"]["log_z"][-1], abs=1e-9)
    t = model.training
    assert t["data"]["file"] == str(DIGITS) and len(t["data"]["sha256"]) == 64
    assert t["settings"]["hidden"] == 16 and t["epochs_done"] == 6 and t["complete"]


def test_json_metrics_validation_and_resume_via_cli(tmp_path, small_data):
    out = tmp_path / "m.h5"
    result = run(small_data, "--hidden", 3, "--epochs", 2, "--seed", 4, "--validation", 0.25,
                 "--format", "json", "-q", "-o", out)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"log_likelihood", "val_log_likelihood", "pll", "val_pll", "recon_error"} <= set(rows[0])
    again = run(small_data, "--resume", out, "--epochs", 3, "-q")
    assert again.exit_code == 0, again.output
    assert load_model(out).training["epochs_done"] == 3
    same = run(small_data, "--hidden", 3, "--epochs", 3, "--seed", 4, "--validation", 0.25, "-q",
               "-o", tmp_path / "direct.h5")
    assert same.exit_code == 0
    np.testing.assert_array_equal(load_model(out).weights, load_model(tmp_path / "direct.h5").weights)
    changed = run(small_data, "--resume", out, "--epochs", 4, "--hidden", 5)
    assert "--hidden cannot change when resuming" in one_error_line(changed)
    assert changed.exit_code == 1


def test_validation_data_file_and_binarize(tmp_path):
    rng = np.random.default_rng(1)
    grey = tmp_path / "grey.csv"
    np.savetxt(grey, rng.integers(0, 256, (40, 6)), delimiter=",", fmt="%d")
    valid = tmp_path / "valid.csv"
    np.savetxt(valid, rng.integers(0, 256, (10, 6)), delimiter=",", fmt="%d")
    out = tmp_path / "m.h5"
    result = run(grey, "--scale", 255, "--binarize", 0.5, "--validation-data", valid, "--hidden", 2,
                 "--epochs", 1, "-q", "-o", out)
    assert result.exit_code == 0, result.output
    data = load_model(out).training["data"]
    assert data["validation_rows"] == 10 and data["validation_file"] == str(valid)
    assert data["binarize"] == 0.5 and data["scale"] == 255


def write(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return path


BAD_DATA = {
    "empty": (lambda p: write(p, "e.npy", np.zeros((0, 5))), "is empty"),
    "one row": (lambda p: write(p, "one.npy", np.ones((1, 5))), "only 1 row"),
    "nan": (lambda p: write(p, "nan.npy", np.array([[0.0, 1.0], [np.nan, 0.0]])), "NaN or inf"),
    "inf": (lambda p: write(p, "inf.npy", np.array([[0.0, 1.0], [np.inf, 0.0]])), "NaN or inf"),
    "non-binary": (lambda p: write(p, "grey.npy", np.array([[0.0, 0.5], [1.0, 0.2]])), "--binarize"),
    "ragged csv": (lambda p: (p / "r.csv").write_text("0,1,0\n1,0\n") and p / "r.csv", "same number"),
    "missing": (lambda p: p / "nothing.npy", "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_is_one_line_exit_1_and_no_output(tmp_path, case):
    make, message = BAD_DATA[case]
    data = make(tmp_path)
    out = tmp_path / "m.h5"
    result = run(data, "--hidden", 2, "--epochs", 1, "-o", out)
    assert result.exit_code == 1
    assert message in one_error_line(result)
    assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".m.h5")]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hidden", 0], "--hidden must be an integer >= 1, got 0"),
        (["--lr", -0.5], "--lr must be a finite number > 0, got -0.5"),
        (["--momentum", 1.5], "--momentum must be"),
        (["--batch-size", 0], "--batch-size must be"),
        (["--epochs", 0], "--epochs must be"),
        (["--validation", 1.2], "--validation must be"),
    ],
)
def test_bad_settings_are_one_line_exit_1(tmp_path, small_data, args, message):
    out = tmp_path / "m.h5"
    result = run(small_data, *args, "-o", out)
    assert result.exit_code == 1
    assert message in one_error_line(result)
    assert not out.exists()


def test_unwritable_outputs(tmp_path, small_data):
    missing = run(small_data, "--hidden", 2, "-o", tmp_path / "no" / "m.h5")
    assert "does not exist" in one_error_line(missing) and missing.exit_code == 1
    folder = run(small_data, "--hidden", 2, "-o", tmp_path)
    assert "it is a folder" in one_error_line(folder) and folder.exit_code == 1
    parent_is_file = run(small_data, "--hidden", 2, "-o", small_data / "m.h5")
    assert parent_is_file.exit_code == 1
    one_error_line(parent_is_file)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs a folder where nobody can create files")
def test_output_in_a_folder_that_refuses_files(small_data):
    result = run(small_data, "--hidden", 2, "--epochs", 1, "-o", "/proc/fecli-test-m.h5")
    assert result.exit_code == 1
    assert "cannot write model file" in one_error_line(result)


def test_existing_output_is_refused_unless_overwrite(tmp_path, small_data):
    out = tmp_path / "m.h5"
    out.write_bytes(b"precious")
    result = run(small_data, "--hidden", 2, "--epochs", 1, "-o", out)
    assert result.exit_code == 1
    assert "already exists (use --overwrite" in one_error_line(result)
    assert out.read_bytes() == b"precious"
    ok = run(small_data, "--hidden", 2, "--epochs", 1, "-q", "-o", out, "--overwrite")
    assert ok.exit_code == 0, ok.output
    assert load_model(out).n_hidden == 2


def test_resume_with_other_width_or_plain_model(tmp_path, small_data):
    out = tmp_path / "m.h5"
    assert run(small_data, "--hidden", 2, "--epochs", 1, "-q", "-o", out).exit_code == 0
    before = out.read_bytes()
    wide = write(tmp_path, "wide.npy", np.eye(12))
    result = run(wide, "--resume", out, "--epochs", 2)
    assert result.exit_code == 1
    assert "has 12 columns" in one_error_line(result)
    assert out.read_bytes() == before
    plain = run(write(tmp_path, "w24.npy", np.eye(24)), "--resume", ROOT / "sample_models" / "weak_24x12.h5",
                "-o", tmp_path / "x.h5")
    assert "no training state" in one_error_line(plain)
    assert not (tmp_path / "x.h5").exists()


def test_help_defaults_match_the_library():
    text = CliRunner().invoke(cli, ["train-rbm", "--help"], terminal_width=200).output
    text = re.sub(r"\s+", " ", text[text.index("Options:"):])  # the options, not the examples above them
    defaults = TrainSettings()
    for name in ("hidden", "method", "k", "epochs", "batch_size", "lr", "lr_decay", "momentum",
                 "weight_decay", "dtype", "monitor_every", "monitor_rows", "checkpoint_every"):
        flag = "--" + name.replace("_", "-")
        match = re.search(re.escape(flag) + r" .*?\[default: ([^\],]+)", text)
        assert match, flag
        assert match.group(1).strip() == f"{getattr(defaults, name):g}" if not isinstance(
            getattr(defaults, name), str) else match.group(1).strip() == getattr(defaults, name), flag


# -- real processes -----------------------------------------------------------------------------------


def fecli_command() -> list[str]:
    script = Path(sys.executable).parent / "fecli"
    return [str(script)] if script.exists() else [sys.executable, "-m", "fecli.cli"]


def test_real_subprocess_bad_input(tmp_path):
    grey = write(tmp_path, "grey.npy", np.array([[0.0, 3.0], [1.0, 255.0]]))
    out = tmp_path / "m.h5"
    proc = subprocess.run([*fecli_command(), "train-rbm", str(grey), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--scale 255 --binarize 0.5" in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()


def test_sigint_writes_a_valid_checkpoint_that_resumes(tmp_path):
    out = tmp_path / "ckpt.h5"
    cmd = [*fecli_command(), "train-rbm", str(DIGITS), "--hidden", "8", "--epochs", "100000",
           "--seed", "3", "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        seen = []
        while time.monotonic() < deadline:  # non-terminal stderr: one line per monitored epoch
            line = proc.stderr.readline()
            seen.append(line)
            if line.startswith("epoch 2:"):
                break
            assert line, "".join(seen)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "checkpoint written to" in stderr and "--resume" in stderr and "Traceback" not in stderr
    model = load_model(out)
    t = model.training
    assert t["epochs_done"] >= 2 and not t["complete"]
    assert len(t["metrics"]["log_likelihood"]) == t["epochs_done"]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    done = t["epochs_done"] + 1
    again = subprocess.run([*fecli_command(), "train-rbm", str(DIGITS), "--resume", str(out), "--epochs",
                            str(done), "-q"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert load_model(out).training["epochs_done"] == done


def test_same_model_whatever_the_thread_count(tmp_path):
    """Cached kernels, another thread count, same bits (the generator is counter-based)."""
    args = [str(DIGITS), "--hidden", "6", "--epochs", "2", "--seed", "9", "-q"]
    here = tmp_path / "here.h5"
    assert run(*args, "-o", here).exit_code == 0
    # Numba's thread count only: OpenBLAS may split large products differently with another
    # thread count (last-bit differences), which the README states.
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    there = tmp_path / "there.h5"
    proc = subprocess.run([*fecli_command(), "train-rbm", *args, "-o", str(there)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    a, b = load_model(here), load_model(there)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.visible_bias, b.visible_bias)
    assert a.training["metrics"]["pll"].tolist() == b.training["metrics"]["pll"].tolist()


def test_cli_methods_are_the_trainer_methods():
    from fecli.training import METHODS, NEGATIVE_PHASES

    option = next(p for p in cli.commands["train-rbm"].params if p.name == "method")
    assert list(option.type.choices) == list(METHODS) == list(NEGATIVE_PHASES)
