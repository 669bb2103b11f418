"""EMF training (train-rbm --method tap2|tap3): the TAP negative phase, learning, resume, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fecli.cli import cli
from fecli.errors import InvalidOptionError
from fecli.estimators.exact import log_partition
from fecli.estimators.meanfield import neg_gamma, tap_fixed_points
from fecli.io import load_model
from fecli.model import RBM, sigmoid
from fecli.training import TrainSettings, Trainer, resume, train
from fecli.training.trainer import Params

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "sample_models" / "data" / "digits8x8_binary.npy"


def prototypes_data(n_rows=200, seed=0):
    """Three 12-unit prototypes with 10% flip noise."""
    rng = np.random.default_rng(seed)
    protos = np.array([[1] * 6 + [0] * 6, [0] * 6 + [1] * 6, [1, 0] * 6], dtype=float)
    rows = protos[rng.integers(0, 3, n_rows)]
    return np.abs(rows - (rng.random(rows.shape) < 0.1))


def mean_ll(model, data):
    return float(np.mean(-model.free_energy(data)) - log_partition(model))


def run_cli(*args):
    return CliRunner().invoke(cli, ["train-rbm", *[str(a) for a in args]])


def one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("fecli: error: "), result.output
    return lines[0]


# -- (1) the negative phase is d(-Gamma_TAP)/d(theta) at the fixed point ------------------------------


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("products", ["dense", "sparse"])
def test_negative_statistics_are_the_finite_difference_gradient_of_tap(order, products):
    data = prototypes_data(60)
    settings = TrainSettings(hidden=5, method=f"tap{order}", dtype="float64", batch_size=6, seed=3,
                             tap_tol=1e-13, tap_max_iter=20000)
    trainer = Trainer(data, settings, products=products)
    assert trainer.products.sparse == (products == "sparse")
    state = trainer.initial_state()
    rng = np.random.default_rng(1)
    # Couplings strong enough that the Onsager terms matter, weak enough for a unique, stable fixed point.
    p = Params(rng.normal(0.0, 0.6, size=(12, 5)), rng.normal(0.0, 0.5, 12), rng.normal(0.0, 0.5, 5))
    state.params = p
    rows = np.arange(6)
    g = trainer.gradient(p, rows, trainer.keys(0))
    v = data[rows]
    pos_w = v.T @ sigmoid(p.hidden_bias + v @ p.weights) / len(rows)
    pos_b = sigmoid(p.hidden_bias + v @ p.weights).mean(axis=0)
    neg_w, neg_a, neg_b = pos_w - g.weights, v.mean(axis=0) - g.visible_bias, pos_b - g.hidden_bias
    x, y = trainer.negative.x.copy(), trainer.negative.y.copy()

    def objective(w, a, b):
        """Mean -Gamma_TAP over the magnetisations, re-solved at these parameters (total derivative)."""
        model = RBM(w, a, b)
        fp = tap_fixed_points(model, x, y, order=order, tol=1e-13, max_iter=20000)
        assert fp.converged.all()
        return float(np.mean(neg_gamma(model, fp.x, fp.y, order=order)))

    eps = 1e-5
    fd_w = np.zeros_like(p.weights)
    for i in range(12):
        for j in range(5):
            e = np.zeros_like(p.weights)
            e[i, j] = eps
            fd_w[i, j] = (objective(p.weights + e, p.visible_bias, p.hidden_bias)
                          - objective(p.weights - e, p.visible_bias, p.hidden_bias)) / (2 * eps)
    np.testing.assert_allclose(neg_w, fd_w, atol=1e-7)
    fd_a = np.array([(objective(p.weights, p.visible_bias + eps * e, p.hidden_bias)
                      - objective(p.weights, p.visible_bias - eps * e, p.hidden_bias)) / (2 * eps)
                     for e in np.eye(12)])
    fd_b = np.array([(objective(p.weights, p.visible_bias, p.hidden_bias + eps * e)
                      - objective(p.weights, p.visible_bias, p.hidden_bias - eps * e)) / (2 * eps)
                     for e in np.eye(5)])
    np.testing.assert_allclose(neg_a, fd_a, atol=1e-7)
    np.testing.assert_allclose(neg_b, fd_b, atol=1e-7)
    # the Onsager terms are really in it: the plain <x y^T> is far from the gradient
    assert np.abs(x.T @ y / len(x) - fd_w).max() > 1e-3


def test_tap3_statistic_differs_from_tap2():
    data = prototypes_data(60)
    grads = {}
    for method in ("tap2", "tap3"):
        trainer = Trainer(data, TrainSettings(hidden=4, method=method, dtype="float64", batch_size=5, seed=0))
        state = trainer.initial_state()
        state.params.weights[...] = np.random.default_rng(2).normal(0, 0.8, size=(12, 4))
        grads[method] = trainer.gradient(state.params, np.arange(5), trainer.keys(0)).weights.copy()
    assert np.abs(grads["tap2"] - grads["tap3"]).max() > 1e-4


# -- (2) learning -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["tap2", "tap3"])
def test_emf_training_on_digits_increases_exact_log_likelihood(method):
    data = np.load(DIGITS).astype(float)
    base = train(data, hidden=16, epochs=1, lr=1e-12, momentum=0.0, seed=1, method=method)
    out = train(data, hidden=16, epochs=5, seed=1, method=method, batch_size=20, lr=0.05)
    ll0, ll = mean_ll(base.model, data), mean_ll(out.model, data)
    assert ll > ll0 + 2.0, (ll0, ll)
    assert out.history["log_likelihood"][-1] == pytest.approx(ll, abs=1e-9)
    assert len(out.history["tap_sweeps"]) == 5 and min(out.history["tap_sweeps"]) >= 1
    assert out.model.training["method"] == method
    assert out.model.training["settings"]["tap_tol"] == 1e-5


# -- (3) resume ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resume_is_bit_for_bit(tmp_path, dtype):
    data = prototypes_data(250)
    opts = dict(hidden=5, epochs=3, seed=7, dtype=dtype, method="tap2", batch_size=32, momentum=0.7,
                weight_decay=1e-3, lr_decay=0.3, lr=0.2, validation=0.1, tap_max_iter=60)
    full = train(data, **opts)
    calls = iter(range(10**6))
    path = tmp_path / "ckpt.h5"
    part = train(data, output=path, should_stop=lambda: next(calls) == 12, **opts)  # mid-epoch 2
    assert part.interrupted and part.epochs_done == 1 and part.batches_done == 5
    stored = load_model(path)
    assert stored.training["state"]["negative_x"].shape == (32, 12)
    rest = resume(path, data)
    assert not rest.interrupted and rest.epochs_done == 3
    for name in ("weights", "visible_bias", "hidden_bias"):
        np.testing.assert_array_equal(getattr(rest.model, name), getattr(full.model, name))
    for key in ("epoch", "log_likelihood", "val_log_likelihood", "pll", "tap_sweeps", "tap_unconverged"):
        assert rest.history[key] == full.history[key], key
    with pytest.raises(InvalidOptionError, match="--tap-tol cannot change"):
        resume(path, data, epochs=4, tap_tol=1e-3)


# -- (4) invalid combinations -------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--method", "tap2", "--k", 3], "--k (Gibbs steps) applies to cd and pcd"),
    (["--method", "pcd", "--tap-tol", 1e-4], "--tap-tol apply to --method tap2 and tap3, not pcd"),
    (["--method", "cd", "--tap-max-iter", 5], "--tap-max-iter apply to --method tap2 and tap3, not cd"),
    (["--method", "tap3", "--tap-tol", 0], "--tap-tol must be a finite number > 0"),
    (["--method", "tap2", "--tap-max-iter", 0], "--tap-max-iter must be an integer >= 1"),
])
def test_invalid_combinations_are_one_line_exit_1(tmp_path, args, message):
    out = tmp_path / "m.h5"
    result = run_cli(DIGITS, "--hidden", 4, "--epochs", 1, "-o", out, *args)
    assert result.exit_code == 1, result.output
    assert message in one_error_line(result)
    assert not out.exists()


# -- (5) non-convergence is reported ------------------------------------------------------------------


def test_non_convergence_is_reported_in_metrics_and_warnings(tmp_path):
    data = prototypes_data(100)
    out = train(data, hidden=4, epochs=2, seed=0, method="tap3", tap_max_iter=1, tap_tol=1e-12)
    assert out.history["tap_unconverged"] == [1.0, 1.0]
    assert len(out.warnings) == 1
    assert "did not converge within --tap-max-iter 1 sweeps for 200 of 200 magnetisation updates in 2 epoch(s)" \
        in out.warnings[0]
    ok = train(data, hidden=4, epochs=2, seed=0, method="tap3")
    assert ok.history["tap_unconverged"] == [0.0, 0.0] and ok.warnings == []
    # through the CLI: a warning on stderr, the metric in the JSON rows
    path = tmp_path / "m.h5"
    result = run_cli(DIGITS, "--hidden", 4, "--epochs", 1, "--seed", 0, "--method", "tap2", "--tap-max-iter", 1,
                     "--tap-tol", 1e-12, "--format", "json", "-o", path)
    assert result.exit_code == 0, result.output
    assert "fecli: warning: the TAP2 iteration did not converge" in result.output
    assert '"tap_unconverged": 1.0' in result.output


def test_help_states_the_library_defaults():
    import re

    from fecli.training.settings import DEFAULT_TAP_MAX_ITER, DEFAULT_TAP_TOL

    text = re.sub(r"\s+", " ", CliRunner().invoke(cli, ["train-rbm", "--help"], terminal_width=200).output)
    assert re.search(r"--tap-tol .*?\[default: ([^\]]+)\]", text).group(1) == f"{DEFAULT_TAP_TOL:g}"
    assert re.search(r"--tap-max-iter .*?\[default: ([^\]]+)\]", text).group(1) == str(DEFAULT_TAP_MAX_ITER)
    assert "tap2/tap3: EMF" in text
    settings = TrainSettings(method="tap3")
    assert (settings.tap_tol, settings.tap_max_iter) == (DEFAULT_TAP_TOL, DEFAULT_TAP_MAX_ITER)
    assert TrainSettings(method="pcd").tap_tol is None
