"""fecli sample: exact and Gibbs samples match the exact marginals (chi-square), seeds, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fecli.cli import cli
from fecli.data import load_data
from fecli.errors import InvalidOptionError
from fecli.io import load_model
from fecli.model import sigmoid, softplus
from fecli.sampling import sample

MODELS = Path(__file__).resolve().parent.parent / "sample_models"
WEAK, STRONG, DIGITS = MODELS / "weak_24x12.h5", MODELS / "strong_24x12.h5", MODELS / "digits_64x16.h5"
#: Upper 0.1% points of chi-square (df 7) and of N(0, 1) two-sided: fixed table values, no scipy.
CHI2_7_999 = 24.322
Z_9995 = 3.29
TRIPLES = ((0, 1, 2), (5, 11, 23))


def hidden_posterior(model, beta: float = 1.0):
    """All 2^nh hidden states with p(h) and p(v_i = 1 | h) for every visible unit (exact)."""
    nh = model.n_hidden
    h = ((np.arange(2**nh)[:, None] >> np.arange(nh)) & 1).astype(float)
    field = beta * (model.visible_bias + h @ model.weights.T)  # (2^nh, nv)
    logp = beta * (h @ model.hidden_bias) + softplus(field).sum(axis=1)
    p = np.exp(logp - logp.max())
    return p / p.sum(), sigmoid(field)


def triple_probs(model, units, beta: float = 1.0) -> np.ndarray:
    """p(v_S = s) for the 8 cells s (cell index = sum_k s_k 2^k): sum_h p(h) prod_k p(v_k = s_k | h)."""
    ph, pv = hidden_posterior(model, beta)
    out = np.empty(8)
    for cell in range(8):
        bits = [(cell >> k) & 1 for k in range(3)]
        prod = np.ones(len(ph))
        for k, i in enumerate(units):
            prod *= pv[:, i] if bits[k] else 1.0 - pv[:, i]
        out[cell] = ph @ prod
    return out


def chi_square(v: np.ndarray, units, probs: np.ndarray) -> float:
    cells = sum(v[:, i].astype(int) << k for k, i in enumerate(units))
    observed = np.bincount(cells, minlength=8)
    expected = len(v) * probs
    return float(((observed - expected) ** 2 / expected).sum())


def unit_z(v: np.ndarray, model, beta: float = 1.0) -> np.ndarray:
    ph, pv = hidden_posterior(model, beta)
    p = ph @ pv
    return (v.mean(axis=0) - p) / np.sqrt(p * (1 - p) / len(v))


def check_matches(v, model, beta: float = 1.0):
    for units in TRIPLES:
        stat = chi_square(v, units, triple_probs(model, units, beta))
        assert stat < CHI2_7_999, (units, stat)
    assert np.abs(unit_z(v, model, beta)).max() < Z_9995 + 0.7  # 24 units: Bonferroni-ish margin


@pytest.mark.parametrize("path", [WEAK, STRONG])
def test_exact_samples_match_exact_marginals(path):
    model = load_model(path)
    result = sample(model, 20000, method="exact", seed=11)
    assert result.method == "exact" and result.v.dtype == np.uint8 and result.v.shape == (20000, 24)
    assert result.h.shape == (20000, 12)
    check_matches(result.v, model)


@pytest.mark.parametrize("path", [WEAK, STRONG])
def test_gibbs_samples_match_exact_marginals(path):
    model = load_model(path)
    result = sample(model, 20000, method="gibbs", seed=12, chains=20, burn_in=500, thin=20)
    assert result.method == "gibbs" and result.v.shape == (20000, 24)
    check_matches(result.v, model)


def test_gibbs_at_other_beta_matches():
    model = load_model(STRONG)
    result = sample(model, 10000, method="gibbs", beta=0.5, seed=13, chains=20, burn_in=200, thin=10)
    check_matches(result.v, model, beta=0.5)


def test_chi_square_detects_the_wrong_model():
    """The test above can fail: exact samples of the strong model against the weak model's cells."""
    strong, weak = load_model(STRONG), load_model(WEAK)
    v = sample(strong, 20000, method="exact", seed=11).v
    stats = [chi_square(v, units, triple_probs(weak, units)) for units in TRIPLES]
    assert max(stats) > CHI2_7_999


def test_hidden_pairs_with_visible():
    """(v, h) rows are joint samples: E[v_i h_j] matches the exact sum_h p(h) h_j p(v_i = 1 | h)."""
    model = load_model(WEAK)
    ph, pv = hidden_posterior(model)
    nh = model.n_hidden
    hs = ((np.arange(2**nh)[:, None] >> np.arange(nh)) & 1).astype(float)
    exact = (pv * ph[:, None]).T @ hs  # (nv, nh)
    for method in ("exact", "gibbs"):
        r = sample(model, 20000, method=method, seed=5, chains=20, burn_in=200, thin=10)
        emp = r.v.astype(float).T @ r.h.astype(float) / len(r.v)
        se = np.sqrt(exact * (1 - exact) / len(r.v))
        assert np.abs((emp - exact) / se).max() < 5.0, method


def test_auto_picks_exact_when_enumerable():
    model = load_model(DIGITS)  # 64 x 16: the hidden layer is enumerable
    assert sample(model, 10, seed=1).method == "exact"
    assert sample(model, 10, seed=1, exact_max_units=8).method == "gibbs"


def test_same_seed_same_samples_and_different_seed_differs():
    model = load_model(WEAK)
    for method in ("exact", "gibbs"):
        a = sample(model, 500, method=method, seed=3, burn_in=10)
        b = sample(model, 500, method=method, seed=3, burn_in=10)
        c = sample(model, 500, method=method, seed=4, burn_in=10)
        assert np.array_equal(a.v, b.v) and np.array_equal(a.h, b.h)
        assert not np.array_equal(a.v, c.v)


def test_bad_library_options():
    model = load_model(WEAK)
    for kwargs in ({"n": 0}, {"n": 5, "method": "metropolis"}, {"n": 5, "chains": 0}, {"n": 5, "thin": 0},
                   {"n": 5, "burn_in": -1}, {"n": 5, "beta": -1.0}, {"n": 5, "seed": -2}):
        with pytest.raises(InvalidOptionError):
            sample(model, **kwargs)


# --------------------------------------------------------------------------- CLI
def test_cli_writes_samples_and_hidden(tmp_path):
    out, hid = tmp_path / "s.npy", tmp_path / "h.npy"
    res = CliRunner().invoke(cli, ["sample", str(WEAK), "-n", "300", "-o", str(out), "--seed", "7",
                                   "--method", "gibbs", "--burn-in", "50", "--hidden", str(hid)])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out)
    v, h = np.load(out), np.load(hid)
    assert v.dtype == np.uint8 and v.shape == (300, 24) and set(np.unique(v)) <= {0, 1}
    assert h.shape == (300, 12)
    lib = sample(load_model(WEAK), 300, method="gibbs", seed=7, burn_in=50)
    assert np.array_equal(v, lib.v) and np.array_equal(h, lib.h)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".txt", ".CSV"])
def test_cli_writes_the_format_the_extension_names(tmp_path, suffix):
    """-o and --hidden write .npy/.npz/.csv/.txt by extension; each reads back with load_data (--data)."""
    out, hid = tmp_path / f"s{suffix}", tmp_path / f"h{suffix}"
    res = CliRunner().invoke(cli, ["sample", str(WEAK), "-n", "30", "-o", str(out), "--hidden", str(hid),
                                   "--seed", "3"])
    assert res.exit_code == 0, res.output
    lib = sample(load_model(WEAK), 30, seed=3)
    head = out.read_bytes()[:8]
    if suffix == ".npy":
        assert head.startswith(b"\x93NUMPY")
    elif suffix == ".npz":
        assert head.startswith(b"PK")
        assert list(np.load(out).files) == ["samples"] and list(np.load(hid).files) == ["hidden"]
    else:
        sep = "," if suffix.lower() == ".csv" else " "
        first = out.read_text().splitlines()[0]
        assert first == sep.join(str(int(x)) for x in lib.v[0])
    np.testing.assert_array_equal(load_data(out), lib.v)
    np.testing.assert_array_equal(load_data(hid), lib.h)


@pytest.mark.parametrize("name", ["s.dat", "s", "s.npy.gz"])
def test_cli_refuses_an_extension_that_names_no_format(tmp_path, name):
    res = CliRunner().invoke(cli, ["sample", str(WEAK), "-n", "5", "-o", str(tmp_path / name)])
    assert res.exit_code == 1
    assert f"cannot write output file '{tmp_path / name}': the format follows the extension, one of " \
           ".npy, .npz, .csv, .txt." in res.stderr
    assert list(tmp_path.iterdir()) == []
    res = CliRunner().invoke(cli, ["sample", str(WEAK), "-n", "5", "-o", str(tmp_path / "s.npy"),
                                   "--hidden", str(tmp_path / name)])
    assert res.exit_code == 1 and "the format follows the extension" in res.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["-n", "0"], "-n must be an integer >= 1, got 0."),
    (["-n", "5", "--thin", "0", "--method", "gibbs"], "--thin must be an integer >= 1"),
    (["-n", "5", "--burn-in", "-1", "--method", "gibbs"], "--burn-in must be an integer >= 0"),
    (["-n", "5", "--chains", "3", "--method", "exact"], "--chains applies to --method gibbs only"),
    (["-n", "5", "--beta", "0"], "beta"),
])
def test_cli_bad_options(tmp_path, args, message):
    out = tmp_path / "s.npy"
    res = CliRunner().invoke(cli, ["sample", str(WEAK), "-o", str(out), *args])
    assert res.exit_code == 1
    assert message in res.output
    assert not out.exists()


def test_cli_refuses_existing_output_and_missing_folder(tmp_path):
    out = tmp_path / "s.npy"
    out.write_bytes(b"keep")
    res = CliRunner().invoke(cli, ["sample", str(WEAK), "-n", "5", "-o", str(out)])
    assert res.exit_code == 1 and "--overwrite" in res.output
    assert out.read_bytes() == b"keep"
    res = CliRunner().invoke(cli, ["sample", str(WEAK), "-n", "5", "-o", str(out), "--overwrite"])
    assert res.exit_code == 0 and np.load(out).shape == (5, 24)
    res = CliRunner().invoke(cli, ["sample", str(WEAK), "-n", "5", "-o", str(tmp_path / "no" / "s.npy")])
    assert res.exit_code == 1 and "does not exist" in res.output


def _run(args, tmp_path, threads=None):
    env = dict(os.environ)
    if threads is not None:
        env["NUMBA_NUM_THREADS"] = str(threads)
    return subprocess.run([sys.executable, "-m", "fecli.cli", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path)


def test_subprocess_threads_do_not_change_samples(tmp_path):
    """One real process with a single Numba thread gives the same samples as the in-process library."""
    out = tmp_path / "s.npy"
    proc = _run(["sample", str(STRONG), "-n", "200", "-o", str(out), "--method", "gibbs", "--seed", "9",
                 "--chains", "40", "--burn-in", "20"], tmp_path, threads=1)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert "gibbs sampling: 200 x 24" in proc.stderr
    lib = sample(load_model(STRONG), 200, method="gibbs", seed=9, chains=40, burn_in=20)
    assert np.array_equal(np.load(out), lib.v)


def test_subprocess_bad_input_one_line(tmp_path):
    proc = _run(["sample", str(WEAK), "-n", "-3", "-o", "s.npy"], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["fecli: error: -n must be an integer >= 1, got -3."]
    assert proc.stdout == "" and not (tmp_path / "s.npy").exists()


def test_cli_auto_warns_when_gibbs_options_are_ignored(tmp_path):
    res = CliRunner().invoke(cli, ["sample", str(WEAK), "-n", "5", "-o", str(tmp_path / "s.npy"), "--thin", "3"])
    assert res.exit_code == 0
    assert "--thin ignored: --method auto chose exact sampling" in res.output
