"""Data as the user holds them, for every command that takes data, on every unit type:

* a Gaussian model trained with --standardize (or --scale) stores its transform; loglik, trajectory,
  estimate --data and sample work in the data's original units (ln p includes the log-Jacobian), and
  train-rbm's monitored log-likelihood is the same number loglik gives;
* a spin model reads 0/1 data as train-rbm does (x = 2y - 1, and says so);
* a diverging Gaussian training run is refused in one line, with nothing written.

The reference densities here are computed independently: a Gaussian-Bernoulli RBM is a mixture over
the hidden states h of Gaussians N((theta + W h) / gamma, 1 / gamma), and a change of units x = s z + m
divides the density by prod(s).
"""

from __future__ import annotations

import itertools
import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.special import logsumexp

from fecli import load_model
from fecli.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def shifted_scaled(n: int, seed: int) -> np.ndarray:
    """Three correlated columns with means 100, -5, 1000 and deviations ~10, ~3, ~50."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
    z[: n // 2] += 1.5  # two clusters, so the hidden units have something to model
    return z * np.array([10.0, 3.0, 50.0]) + np.array([100.0, -5.0, 1000.0])


def gaussian_bernoulli_log_density(path, z: np.ndarray) -> np.ndarray:
    """ln p(z) of the fecli-rbm file's Gaussian-Bernoulli model (parameters read with h5py), by
    exact enumeration of the hidden layer: a mixture of 2^nh Gaussians."""
    with h5py.File(path, "r") as f:
        w, theta, b, gamma = (np.asarray(f[k]) for k in ("weights", "visible_bias", "hidden_bias",
                                                          "visible_precision"))
    log_terms = []
    for bits in itertools.product((0.0, 1.0), repeat=len(b)):
        h = np.array(bits)
        field = theta + w @ h
        mu = field / gamma
        log_weight = b @ h + np.sum(field**2 / (2 * gamma)) + np.sum(0.5 * np.log(2 * np.pi / gamma))
        log_normal = np.sum(-0.5 * gamma * (z - mu) ** 2 + 0.5 * np.log(gamma / (2 * np.pi)), axis=1)
        log_terms.append((log_weight, log_normal))
    weights = np.array([t[0] for t in log_terms])
    normals = np.stack([t[1] for t in log_terms])
    return logsumexp(weights[:, None] + normals, axis=0) - logsumexp(weights)


@pytest.fixture(scope="module")
def standardized(tmp_path_factory):
    """(folder, data file, model file): a 3x3 Gaussian-Bernoulli model trained with --standardize."""
    folder = tmp_path_factory.mktemp("standardized")
    data = shifted_scaled(200, 0)
    np.save(folder / "x.npy", data)
    model = folder / "m.h5"
    result = run("train-rbm", folder / "x.npy", "--visible-type", "gaussian", "--standardize", "--hidden", 3,
                 "--epochs", 4, "--seed", 1, "--snapshots", 3, "-o", model, "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    return folder, data, model


def test_loglik_of_a_standardized_model_is_the_density_of_the_original_data(standardized):
    folder, data, model = standardized
    result = run("loglik", model, folder / "x.npy", "-m", "exact", "--per-example", folder / "per.npy",
                 "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    # independent: the data's own means and deviations, the mixture density, the change of units
    mean, std = data.mean(axis=0), data.std(axis=0)
    truth = gaussian_bernoulli_log_density(model, (data - mean) / std) - np.sum(np.log(std))
    np.testing.assert_allclose(np.load(folder / "per.npy"), truth, rtol=0, atol=1e-9)
    assert record["mean_log_likelihood"] == pytest.approx(truth.mean(), abs=1e-9)
    assert record["diagnostics"]["log_jacobian"] == pytest.approx(-np.sum(np.log(std)), abs=1e-12)
    # what train-rbm monitored on the same rows is the same number
    history = load_model(model).training["metrics"]["log_likelihood"]
    assert history[-1] == pytest.approx(truth.mean(), abs=1e-9)


def test_the_density_of_one_standardized_unit_integrates_to_one_over_the_original_units(tmp_path):
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(480.0, 20.0, 150), rng.normal(560.0, 30.0, 150)])[:, None]
    np.save(tmp_path / "x.npy", x)
    model = tmp_path / "m.h5"
    assert run("train-rbm", tmp_path / "x.npy", "--visible-type", "gaussian", "--standardize", "--hidden", 2,
               "--epochs", 3, "--seed", 2, "-o", model, "-q").exit_code == 0
    grid = np.linspace(0.0, 1100.0, 22001)[:, None]
    np.save(tmp_path / "grid.npy", grid)
    result = run("loglik", model, tmp_path / "grid.npy", "-m", "exact", "--per-example", tmp_path / "p.npy", "-q")
    assert result.exit_code == 0, result.output
    assert np.trapezoid(np.exp(np.load(tmp_path / "p.npy")), grid[:, 0]) == pytest.approx(1.0, abs=1e-6)


def test_sample_trajectory_and_estimate_data_of_a_standardized_model_are_in_the_original_units(standardized):
    folder, data, model = standardized
    out = folder / "s.npy"
    assert run("sample", model, "-n", 2000, "-o", out, "--seed", 1, "--overwrite", "-q").exit_code == 0
    drawn = np.load(out)
    std = data.std(axis=0)
    assert np.all(np.abs(drawn.mean(axis=0) - data.mean(axis=0)) < 0.15 * std)
    assert np.all(np.abs(drawn.std(axis=0) / std - 1.0) < 0.15)
    exact = json.loads(run("loglik", model, folder / "x.npy", "-m", "exact", "--format", "json", "-q").stdout)
    result = run("trajectory", model, "--data", folder / "x.npy", "--seed", 1, "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.splitlines()[-1])
    assert last["log_likelihood"] == pytest.approx(exact["mean_log_likelihood"], abs=0.02)
    # estimators that start from data (mean field's data starts, AIS's base model) read it in the same units
    result = run("estimate", model, "-m", "exact", "-m", "mf", "-m", "ais", "--data", folder / "x.npy", "--steps", 300,
                 "--seed", 1, "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["mf"]["log_z"] <= rows["exact"]["log_z"] + 1e-9
    assert rows["exact"]["log_z"] - rows["mf"]["log_z"] < 0.5
    assert abs(rows["ais"]["log_z"] - rows["exact"]["log_z"]) < 4 * rows["ais"]["stderr"] + 0.02


def test_library_data_for_a_standardized_model_is_mapped_once(standardized):
    from fecli.layer_data import resolve_for
    from fecli.loglik import log_likelihood

    folder, data, model = standardized
    rbm = load_model(model)
    rows, _ = resolve_for(data, rbm)
    np.testing.assert_allclose(rows, (data - data.mean(axis=0)) / data.std(axis=0), atol=1e-12)
    cli_value = json.loads(run("loglik", model, folder / "x.npy", "-m", "exact", "--format", "json", "-q").stdout)
    assert log_likelihood(rbm, data).mean_log_likelihood == pytest.approx(cli_value["mean_log_likelihood"], abs=1e-12)


def test_resume_reuses_the_stored_standardization(tmp_path):
    data = shifted_scaled(120, 1)
    np.save(tmp_path / "x.npy", data)
    common = ["--visible-type", "gaussian", "--hidden", 2, "--seed", 4, "-q"]
    assert run("train-rbm", tmp_path / "x.npy", "--standardize", "--epochs", 4, "-o", tmp_path / "full.h5",
               *common).exit_code == 0
    assert run("train-rbm", tmp_path / "x.npy", "--standardize", "--epochs", 2, "-o", tmp_path / "half.h5",
               *common).exit_code == 0
    # without --standardize: the checkpoint's stored means and deviations are used, not the raw data
    result = run("train-rbm", tmp_path / "x.npy", "--resume", tmp_path / "half.h5", "--epochs", 4, "-q")
    assert result.exit_code == 0, result.output
    full, resumed = load_model(tmp_path / "full.h5"), load_model(tmp_path / "half.h5")
    assert np.array_equal(full.weights, resumed.weights)
    assert np.array_equal(full.visible.bias, resumed.visible.bias)
    np.testing.assert_array_equal(resumed.training["data"]["standardize_std"], data.std(axis=0))
    a = json.loads(run("loglik", tmp_path / "full.h5", tmp_path / "x.npy", "-m", "exact", "--format", "json").stdout)
    b = json.loads(run("loglik", tmp_path / "half.h5", tmp_path / "x.npy", "-m", "exact", "--format", "json").stdout)
    assert a["mean_log_likelihood"] == b["mean_log_likelihood"]


def test_a_stored_scale_is_applied_once(tmp_path):
    rng = np.random.default_rng(5)
    data = rng.normal(size=(150, 2)) * 40.0 + 120.0
    np.save(tmp_path / "x.npy", data)
    model = tmp_path / "m.h5"
    assert run("train-rbm", tmp_path / "x.npy", "--visible-type", "gaussian", "--scale", 100, "--hidden", 2,
               "--epochs", 2, "--seed", 1, "-o", model, "-q").exit_code == 0
    values = []
    for extra in ([], ["--scale", 100]):
        result = run("loglik", model, tmp_path / "x.npy", "-m", "exact", "--per-example", tmp_path / "p.npy",
                     "--format", "json", "-q", *extra)
        assert result.exit_code == 0, result.output
        values.append(np.load(tmp_path / "p.npy"))
    truth = gaussian_bernoulli_log_density(model, data / 100.0) - 2 * np.log(100.0)
    for per in values:
        np.testing.assert_allclose(per, truth, atol=1e-9)
    result = run("loglik", model, tmp_path / "x.npy", "--scale", 255)
    assert result.exit_code == 1 and "trained on data divided by 100" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("extra", [[], ["--learn-precision"]])
def test_diverging_gaussian_training_is_refused_in_one_line(tmp_path, extra):
    np.save(tmp_path / "x.npy", shifted_scaled(300, 0))
    out = tmp_path / "m.h5"
    result = run("train-rbm", tmp_path / "x.npy", "--visible-type", "gaussian", "--hidden", 3, "--epochs", 5,
                 "--seed", 1, "-o", out, *extra)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "training diverged in epoch" in lines[0] and "--standardize" in lines[0]
    assert "--lr" in lines[0] and not out.exists()


def test_a_spin_model_reads_its_own_0_1_training_data_everywhere(tmp_path):
    rng = np.random.default_rng(0)
    protos = rng.integers(0, 2, size=(2, 8))
    y = protos[rng.integers(0, 2, 150)]
    y = np.where(rng.random(y.shape) < 0.1, 1 - y, y).astype(float)
    np.save(tmp_path / "y01.npy", y)
    np.save(tmp_path / "pm.npy", 2 * y - 1)
    model = tmp_path / "m.h5"
    result = run("train-rbm", tmp_path / "y01.npy", "--visible-type", "spin", "--hidden", 3, "--epochs", 3,
                 "--seed", 1, "--snapshots", 3, "-o", model, "--format", "json")
    assert result.exit_code == 0, result.output
    ll = {}
    for name in ("y01.npy", "pm.npy"):
        result = run("loglik", model, tmp_path / name, "-m", "exact", "-m", "raise", "--steps", 50, "--seed", 1,
                     "--format", "json")
        assert result.exit_code == 0, result.output
        ll[name] = [json.loads(line)["mean_log_likelihood"] for line in result.stdout.splitlines()]
    assert ll["y01.npy"] == ll["pm.npy"]
    assert "read 0/1 values as spins x = 2y - 1" in run("loglik", model, tmp_path / "y01.npy", "-m", "exact").stderr
    assert load_model(model).training["metrics"]["log_likelihood"][-1] == pytest.approx(ll["pm.npy"][0], abs=1e-9)
    est = {}
    for name in ("y01.npy", "pm.npy"):
        result = run("estimate", model, "-m", "mf", "--data", tmp_path / name, "--format", "json", "-q")
        assert result.exit_code == 0, result.output
        est[name] = json.loads(result.stdout)["log_z"]
    assert est["y01.npy"] == est["pm.npy"]
    result = run("trajectory", model, "--data", tmp_path / "y01.npy", "--seed", 1, "--format", "json")
    assert result.exit_code == 0, result.output
    assert "read 0/1 values as spins" in result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["log_likelihood"] == pytest.approx(ll["pm.npy"][0], abs=0.05)


@pytest.mark.parametrize("to", ["rbmjl", "npz"])
def test_convert_folds_the_stored_transform_into_a_foreign_format(standardized, to):
    """A RestrictedBoltzmannMachines.jl or .npz file cannot hold --standardize's means and deviations:
    the converted parameters describe the same density of the original data."""
    folder, data, model = standardized
    out = folder / f"c.{to}"
    result = run("convert", model, "-o", out, "--to", to, "--overwrite")
    assert result.exit_code == 0, result.output
    assert "folded into the parameters" in result.stderr
    values = []
    for path, extra in ((model, []), (out, ["--transpose", "no"] if to == "npz" else [])):  # 3 x 3: say it
        result = run("loglik", path, folder / "x.npy", "-m", "exact", "--per-example", folder / "p.npy", "-q", *extra)
        assert result.exit_code == 0, result.output
        values.append(np.load(folder / "p.npy"))
    np.testing.assert_allclose(values[1], values[0], rtol=0, atol=1e-9)


def test_a_potts_model_trained_on_fasta_reads_fasta_in_its_own_alphabet(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "a.fasta").write_text("".join(f">s{i}\n{''.join(rng.choice(list('ACDE-'), 6))}\n" for i in range(40)))
    model = tmp_path / "m.h5"
    assert run("train-rbm", tmp_path / "a.fasta", "--visible-type", "potts", "--alphabet", "protein", "--hidden", 2,
               "--epochs", 2, "--seed", 1, "-o", model, "-q").exit_code == 0
    values = []
    for extra in ([], ["--alphabet", "protein"]):  # the stored alphabet when none is given
        result = run("loglik", model, tmp_path / "a.fasta", "-m", "exact", "--format", "json", "-q", *extra)
        assert result.exit_code == 0, result.output
        values.append(json.loads(result.stdout)["mean_log_likelihood"])
    assert values[0] == values[1]
    result = run("loglik", model, tmp_path / "a.fasta", "--alphabet", "ACDEFGHIKLMNPQRSTVWY-")
    assert result.exit_code == 1 and "would give its states other symbols" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_resume_refuses_a_different_data_transform(tmp_path):
    np.save(tmp_path / "x.npy", shifted_scaled(60, 2) / 100.0)
    common = ["--visible-type", "gaussian", "--hidden", 2, "--seed", 4, "-q", "--monitor-every", 0]
    assert run("train-rbm", tmp_path / "x.npy", "--epochs", 1, "-o", tmp_path / "a.h5", *common).exit_code == 0
    result = run("train-rbm", tmp_path / "x.npy", "--resume", tmp_path / "a.h5", "--epochs", 2, "--standardize")
    assert result.exit_code == 1 and "--standardize cannot change when resuming" in result.stderr
    assert run("train-rbm", tmp_path / "x.npy", "--epochs", 1, "--scale", 10, "-o", tmp_path / "b.h5",
               *common).exit_code == 0
    result = run("train-rbm", tmp_path / "x.npy", "--resume", tmp_path / "b.h5", "--epochs", 2, "--scale", 5)
    assert result.exit_code == 1 and "--scale cannot change when resuming" in result.stderr


@pytest.mark.parametrize("visible_type", ["bernoulli", "gaussian"])
def test_an_overflowing_monitored_value_stops_training(visible_type):
    """Finite parameters can still give an infinite free energy: the epoch's metrics are checked too."""
    from fecli.errors import EstimationFailedError
    from fecli.training import TrainSettings
    from fecli.training.layered import make_trainer

    data = (np.random.default_rng(0).random((40, 5)) < 0.5).astype(float)
    trainer = make_trainer(data, TrainSettings(hidden=2, epochs=1, seed=1, visible_type=visible_type))
    state = trainer.initial_state()
    trainer.check_metrics(state, {"log_likelihood": -3.0, "recon_error": 1.0})
    with pytest.raises(EstimationFailedError, match="training diverged in epoch 0 .the monitored log likelihood is -inf"):
        trainer.check_metrics(state, {"log_likelihood": -np.inf, "recon_error": 1.0})
