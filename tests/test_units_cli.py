"""Acceptance: spin, Gaussian-Bernoulli and Potts-Bernoulli models written by hand in the documented
format, estimated from the command line; train-rbm for each type writes files every command reads;
bad input is one line and exit 1."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from fecli import load_model
from fecli.cli import cli

from .test_units_exact import brute_log_z
from .test_units_train import DATA


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def hand_written(path, kind: str):
    """The README's examples of writing each unit type with h5py."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        if kind == "spin":
            f.attrs.update(format="fecli-rbm", format_version=2, visible_type="spin", hidden_type="spin")
            f["weights"] = 0.3 * rng.normal(size=(10, 6))
            f["visible_bias"], f["hidden_bias"] = 0.1 * rng.normal(size=10), 0.1 * rng.normal(size=6)
        elif kind == "gaussian":
            f.attrs.update(format="fecli-rbm", format_version=2, visible_type="gaussian", hidden_type="bernoulli")
            f["weights"] = 0.3 * rng.normal(size=(8, 6))
            f["visible_bias"], f["hidden_bias"] = rng.normal(size=8), rng.normal(size=6)
            f["visible_precision"] = np.full(8, 1.5)
        else:
            f.attrs.update(format="fecli-rbm", format_version=2, visible_type="potts", hidden_type="bernoulli",
                           visible_states=4)
            f["weights"] = 0.3 * rng.normal(size=(5, 4, 6))
            f["visible_bias"], f["hidden_bias"] = rng.normal(size=(5, 4)), rng.normal(size=6)
    return path


@pytest.mark.parametrize("kind", ["spin", "gaussian", "potts"])
def test_estimate_exact_ais_mf_tap2_on_hand_written_files(tmp_path, kind):
    path = hand_written(tmp_path / f"{kind}.h5", kind)
    result = run("estimate", path, "-m", "exact", "-m", "ais", "-m", "mf", "-m", "tap2", "--steps", "600",
                 "--chains", "64", "--seed", "1", "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in map(json.loads, result.stdout.splitlines())}
    truth = brute_log_z(load_model(path), 1.0)
    assert rows["exact"]["log_z"] == pytest.approx(truth, rel=1e-10)
    assert abs(rows["ais"]["log_z"] - truth) < 4 * rows["ais"]["stderr"] + 0.02
    assert rows["mf"]["log_z"] <= truth and rows["mf"]["kind"] == "lower_bound"
    assert abs(rows["tap2"]["log_z"] - truth) < abs(rows["mf"]["log_z"] - truth)


TRAIN = {
    "spin": ("spin.npy", ["--visible-type", "spin"]),
    "gaussian": ("gauss.npy", ["--visible-type", "gaussian", "--standardize", "--learn-precision"]),
    "potts": ("potts.npy", ["--visible-type", "potts"]),
    "spin-spin": ("spin.npy", ["--visible-type", "spin", "--hidden-type", "spin"]),
}


@pytest.mark.parametrize("name", sorted(TRAIN))
def test_train_rbm_writes_files_the_other_commands_read(tmp_path, name):
    file, options = TRAIN[name]
    kind = name.split("-")[0]
    data = DATA[kind]()
    np.save(tmp_path / file, data)
    model = tmp_path / f"{name}.h5"
    result = run("train-rbm", tmp_path / file, *options, "--hidden", 4, "--epochs", 3, "--seed", 1, "-o", model,
                 "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    rbm = load_model(model)
    assert rbm.visible.name == kind
    info = run("info", model, "--format", "json")
    summary = json.loads(info.stdout)
    assert summary["visible_type"] == kind and summary["format_version"] == 2
    assert "exact" in summary["supported_methods"]
    est = run("estimate", model, "-m", "exact", "-m", "mf", "--format", "json", "-q")
    assert est.exit_code == 0, est.output
    samples = tmp_path / "s.npy"
    assert run("sample", model, "-n", 50, "-o", samples, "--seed", 1, "-q").exit_code == 0
    drawn = np.load(samples)
    assert drawn.shape == (50, rbm.n_visible)
    if kind == "spin":
        assert drawn.dtype == np.int8 and set(np.unique(drawn)) <= {-1, 1}
    elif kind == "potts":
        assert drawn.dtype == np.uint8 and drawn.max() < rbm.visible.q
    else:
        assert drawn.dtype == np.float64
    ll_data = tmp_path / "ll.npy"
    np.save(ll_data, drawn)
    ll = run("loglik", model, ll_data, "--format", "json", "-q")
    assert ll.exit_code == 0, ll.output
    assert np.isfinite(json.loads(ll.stdout)["mean_log_likelihood"])


def test_spin_training_says_which_encoding_it_read(tmp_path):
    np.save(tmp_path / "d.npy", (DATA["spin"]() + 1) / 2)
    result = CliRunner().invoke(cli, ["train-rbm", str(tmp_path / "d.npy"), "--visible-type", "spin", "--hidden", "2",
                                      "--epochs", "1", "-o", str(tmp_path / "m.h5"), "--monitor-every", "0"])
    assert result.exit_code == 0, result.output
    assert "read 0/1 values as spins x = 2y - 1" in result.stderr


def test_fasta_training_and_symbols_outside_the_alphabet(tmp_path):
    good = tmp_path / "a.fasta"
    good.write_text(">s1\nACD-K\n>s2\nAC--K\n>s3\nwcdek\n")
    model = tmp_path / "p.h5"
    result = run("train-rbm", good, "--visible-type", "potts", "--alphabet", "protein", "--hidden", 2, "--epochs", 1,
                 "-o", model, "-q")
    assert result.exit_code == 0, result.output
    assert load_model(model).visible.q == 21
    bad = tmp_path / "b.fasta"
    bad.write_text(">s1\nACD-K\n>s2\nACZ-K\n")
    out = tmp_path / "q.h5"
    result = run("train-rbm", bad, "--visible-type", "potts", "--alphabet", "protein", "--hidden", 2, "-o", out)
    assert result.exit_code == 1
    assert "sequence 's2' has symbol 'Z' at position 3, which is not in the alphabet" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("kind, rows, message", [
    ("potts", [[0, 1, 2, 7, 0]], "holds 7, which is not a Potts state 0..3"),
    ("spin", [[0, 2] * 5], "has values in [0, 2]; spin data must be -1/+1 (or 0/1)"),
])
def test_loglik_refuses_data_of_the_wrong_type(tmp_path, kind, rows, message):
    model = hand_written(tmp_path / "m.h5", kind)
    np.save(tmp_path / "d.npy", np.array(rows, dtype=float))
    result = run("loglik", model, tmp_path / "d.npy")
    assert result.exit_code == 1 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_pm1_data_for_a_bernoulli_model_is_refused(tmp_path):
    from .conftest import SAMPLES

    np.save(tmp_path / "d.npy", np.where(np.random.default_rng(0).random((4, 64)) < 0.5, -1.0, 1.0))
    result = run("loglik", SAMPLES / "digits_64x16.h5", tmp_path / "d.npy")
    assert result.exit_code == 1 and "holds +-1 values, but the model's units are bernoulli" in result.stderr


def test_gaussian_loglik_is_a_normalised_density(tmp_path):
    """One Gaussian visible unit: exp(ln p(v)) integrates to 1 over v (nats per unit of v)."""
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f.attrs.update(format="fecli-rbm", format_version=2, visible_type="gaussian", hidden_type="bernoulli")
        f["weights"], f["visible_bias"], f["hidden_bias"] = [[1.2, -0.7, 0.4]], [0.3], [0.1, -0.5, 0.2]
        f["visible_precision"] = [0.8]
    grid = np.linspace(-20, 20, 4001)[:, None]
    np.save(tmp_path / "grid.npy", grid)
    result = run("loglik", tmp_path / "g.h5", tmp_path / "grid.npy", "--per-example", tmp_path / "per.npy", "-q")
    assert result.exit_code == 0, result.output
    density = np.exp(np.load(tmp_path / "per.npy"))
    assert np.trapezoid(density, grid[:, 0]) == pytest.approx(1.0, abs=1e-8)


def test_trajectory_without_snapshots_is_refused_in_one_line(tmp_path):
    model = hand_written(tmp_path / "g.h5", "gaussian")
    result = run("estimate", model, "-m", "trajectory")
    assert result.exit_code == 1
    assert "has no parameter snapshots" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("kind", ["gaussian", "potts"])
def test_pt_ti_tap3_from_the_command_line(tmp_path, kind):
    model = hand_written(tmp_path / "m.h5", kind)
    exact = brute_log_z(load_model(model), 1.0)
    result = run("estimate", model, "-m", "pt", "-m", "ti", "-m", "tap3", "--samples", 800, "--burn-in", 300,
                 "--steps", 60, "--sweeps", 8, "--chains", 40, "--seed", 1, "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in map(json.loads, result.stdout.splitlines())}
    for method in ("pt", "ti"):
        assert abs(rows[method]["log_z"] - exact) < 4 * rows[method]["stderr"] + 0.02
    assert abs(rows["tap3"]["log_z"] - exact) < 0.5


@pytest.mark.parametrize("kind, shape", [("potts", "1x5"), ("gaussian", "2x4")])
def test_plot_filters_for_potts_and_gaussian_models(tmp_path, kind, shape):
    model = hand_written(tmp_path / "m.h5", kind)
    result = run("plot", "filters", model, "--shape", shape, "-o", tmp_path / "f.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f.png").stat().st_size > 0


def test_train_with_snapshots_then_trajectory_with_potts_data(tmp_path):
    """train-rbm --snapshots on Potts units, then `fecli trajectory --data` reads the Potts rows and
    reports ln Z (exact at the start) and the data's log-likelihood at every snapshot."""
    data = np.random.default_rng(0).integers(0, 3, size=(120, 5))
    np.save(tmp_path / "p.npy", data)
    result = run("train-rbm", tmp_path / "p.npy", "--visible-type", "potts", "--hidden", 3, "--epochs", 3,
                 "--snapshots", 3, "--seed", 1, "-o", tmp_path / "m.h5", "-q")
    assert result.exit_code == 0, result.output
    result = run("trajectory", tmp_path / "m.h5", "--data", tmp_path / "p.npy", "--seed", 1, "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3 and rows[0]["kind"] == "exact"
    model = load_model(tmp_path / "m.h5")
    ll = float(np.mean(-model.free_energy(data.astype(float)))) - brute_log_z(model, 1.0)
    assert rows[-1]["log_likelihood"] == pytest.approx(ll, abs=4 * rows[-1]["stderr"] + 0.01)
