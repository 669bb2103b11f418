"""Other tools' model files (issue 12): ln Z of each imported model equals the brute-force ln Z of
the tool's own parameters under the tool's own energy convention (written here from each tool's
source, independently of fecli's readers); export then import is exact; every bad input is one
line on stderr and exit status 1.

The fixtures and the script that wrote them are in tests/fixtures/formats/ (see its docstring
for which files the tools wrote themselves and which follow their documented layout).
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import fecli
from fecli.cli import cli
from fecli.errors import ModelFileError
from fecli.formats import FORMATS, open_model, save_as
from fecli.layers import Bernoulli, Gaussian, Potts, Spin
from fecli.model import RBM

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "formats"
LOG_2PI = np.log(2 * np.pi)


def run(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fecli: error: ") and "Traceback" not in result.output
    return lines[0]


def exact(path, **read) -> float:
    return fecli.estimate(open_model(path, **read), "exact").log_z


# --------------------------------------------------------------------------- brute force, the tools' conventions
def lse(x: np.ndarray) -> float:
    top = np.max(x)
    return float(top + np.log(np.sum(np.exp(x - top))))


def discrete(n: int, values) -> np.ndarray:
    return np.array(list(product(values, repeat=n)), dtype=np.float64).reshape(-1, n)


def brute_ln_z(vis: np.ndarray, neg_ev: np.ndarray, hid: np.ndarray | None, neg_eh: np.ndarray | None,
               coupling: np.ndarray, gauss: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """ln sum_v [sum_h | integral dh] exp(-E). vis (S, Dv): visible feature rows; neg_ev (S,): -E_v; hid, neg_eh
    likewise for discrete hidden states; coupling (Dv, Dh): -E_int = vis @ coupling @ h. For Gaussian hidden
    units gauss = (theta, gamma): -E_h = theta h - gamma h^2 / 2, integrated analytically."""
    field = vis @ coupling
    if gauss is None:
        return lse((neg_ev[:, None] + neg_eh[None, :] + field @ hid.T).ravel())
    theta, gamma = gauss
    u = theta + field
    return lse(neg_ev + (u * u / (2 * gamma)).sum(axis=1) + 0.5 * np.sum(LOG_2PI - np.log(gamma)))


def rbms_params(path: Path, k: int | None = None):
    """(model_type, weight_matrix, vbias, hbias) of checkpoint k as rbms' load_params reads them."""
    with h5py.File(path, "r") as f:
        model_type = f["model_type"][()].decode() if "model_type" in f else "BBRBM"
        updates = sorted(int(name.split("_")[1]) for name in f if name.startswith("update_"))
        group = f[f"update_{updates[-1] if k is None else k}"]
        group = group["params"] if "params" in group else group
        return (model_type, *(np.asarray(group[n][()], dtype=np.float64) for n in ("weight_matrix", "vbias", "hbias")))


def rbms_ln_z(path: Path, k: int | None = None) -> float:
    """rbms' _compute_energy of each model type, summed by brute force."""
    model_type, w, vb, hb = rbms_params(path, k)
    nv, nh = vb.shape[0], hb.shape[0]
    if model_type == "PBRBM":  # E = -sum_i vbias[i, v_i] - hbias.h - sum_i W[i, v_i, :] h
        q = vb.shape[1]
        states = discrete(nv, range(q)).astype(int)
        onehot = np.zeros((len(states), nv * q))
        onehot[np.arange(len(states))[:, None], np.arange(nv) * q + states] = 1.0
        return brute_ln_z(onehot, onehot @ vb.ravel(), discrete(nh, (0, 1)), discrete(nh, (0, 1)) @ hb,
                          w.reshape(nv * q, nh))
    values = (-1.0, 1.0) if model_type.startswith("I") else (0.0, 1.0)
    v = discrete(nv, values)
    if model_type in ("BGRBM", "IGRBM"):  # E = ... + (n_visible / 2) h^2
        return brute_ln_z(v, v @ vb, None, None, w, gauss=(hb, np.full(nh, float(nv))))
    h = discrete(nh, values)
    return brute_ln_z(v, v @ vb, h, h @ hb, w)


def julia_arrays(path: Path) -> dict:
    """Every dataset of an RBM.jl file in Julia's axis order (HDF5.jl wrote them column-major)."""
    with h5py.File(path, "r") as f:
        return {k: (f[k][()].decode() if isinstance(f[k][()], bytes) else
                    f[k][()] if isinstance(f[k][()], str) else np.asarray(f[k][()], dtype=np.float64).T) for k in f}


def julia_layer_states(kind: str, par: np.ndarray):
    """(feature rows flattened column-major, -E per row, Gaussian (theta, |gamma|) or None) of a layer."""
    size = par.shape[1:]
    n = int(np.prod(size))
    if kind == "Gaussian":
        return None, None, (par[0].ravel(order="F"), np.abs(par[1].ravel(order="F")))
    if kind == "Potts":  # configurations are one-hot arrays of size (q, sites...)
        q, sites = size[0], n // size[0]
        rows = []
        for states in product(range(q), repeat=sites):
            x = np.zeros((q, sites))
            x[list(states), range(sites)] = 1.0
            rows.append(x.ravel(order="F"))
        x = np.array(rows)
        return x, x @ par[0].ravel(order="F"), None
    x = discrete(n, (0.0, 1.0) if kind == "Binary" else (-1.0, 1.0))
    return x, x @ par[0].ravel(order="F"), None


def rbmjl_ln_z(path: Path) -> float:
    """The package's energy: E_v + E_h - ((v - o_v) / s_v)^T w ((h - o_h) / s_h), o = 0 and s = 1 for
    a plain RBM, summed by brute force over the file's own (Julia-ordered) parameters."""
    a = julia_arrays(path)
    v, neg_ev, _ = julia_layer_states(a["visible_type"], a["visible_par"])
    h, neg_eh, gauss = julia_layer_states(a["hidden_type"], a["hidden_par"])
    nv, nh = v.shape[1], (h.shape[1] if h is not None else gauss[0].size)
    w = a["weights"].reshape(nv, nh, order="F")
    ov = a.get("offset_v", np.zeros(nv)).ravel(order="F")
    sv = a.get("scale_v", np.ones(nv)).ravel(order="F")
    oh = a.get("offset_h", np.zeros(nh)).ravel(order="F")
    sh = a.get("scale_h", np.ones(nh)).ravel(order="F")
    if gauss is not None:
        assert not ov.any() and not oh.any()
        return brute_ln_z(v, neg_ev, None, None, w, gauss=gauss)
    vs, hs = (v - ov) / sv, (h - oh) / sh
    neg = neg_ev[:, None] + neg_eh[None, :] + vs @ w @ hs.T
    return lse(neg.ravel())


# --------------------------------------------------------------------------- ln Z of imported models
RBMS_FILES = ["rbms_bbrbm.h5", "rbms_old_bbrbm.h5", "rbms_iirbm.h5", "rbms_bgrbm.h5", "rbms_pbrbm.h5"]
RBMJL_FILES = ["rbmjl_binary.h5", "rbmjl_standardized.h5", "rbmjl_centered.h5", "rbmjl_potts.h5",
               "rbmjl_gaussian.h5", "rbmjl_grid.h5"]


@pytest.mark.parametrize("name", RBMS_FILES)
def test_rbms_files_give_the_ln_z_of_rbms_own_energy(name):
    path = FIXTURES / name
    model = open_model(path)
    assert model.source.format == "rbms"
    assert exact(path) == pytest.approx(rbms_ln_z(path), abs=1e-9)


def test_rbms_checkpoints_by_number_at_suffix_or_option_default_last():
    path = FIXTURES / "rbms_bbrbm.h5"
    assert open_model(path).source.checkpoint == 100
    for k in (0, 10, 100):
        assert exact(f"{path}@{k}") == pytest.approx(rbms_ln_z(path, k), abs=1e-9)
        assert exact(path, checkpoint=k) == pytest.approx(rbms_ln_z(path, k), abs=1e-9)
    assert open_model(f"{path}@10").name == f"{path}@10"


def test_rbms_gaussian_hidden_precision_is_n_visible_and_said():
    model = open_model(FIXTURES / "rbms_bgrbm.h5")
    assert model.unit_types == ("bernoulli", "gaussian")
    assert np.all(model.hidden.precision == 6.0)
    assert any("precision fixed at n_visible = 6" in c for c in model.source.conventions)


@pytest.mark.parametrize("name", RBMJL_FILES)
def test_rbmjl_files_give_the_ln_z_of_the_packages_own_energy(name):
    path = FIXTURES / name
    assert exact(path) == pytest.approx(rbmjl_ln_z(path), abs=1e-9)


def test_standardized_rbmjl_reports_the_constant_it_adds_and_keeps_probabilities():
    path = FIXTURES / "rbmjl_standardized.h5"
    model = open_model(path)
    a = julia_arrays(path)
    w = a["weights"] / a["scale_v"][:, None] / a["scale_h"][None, :]
    constant = float(a["offset_v"] @ w @ a["offset_h"])  # minus the package's delta_energy
    assert model.source.log_z_offset == pytest.approx(constant, abs=1e-12)
    assert any("un-standardised" in c for c in model.source.conventions)
    # the plain model's ln Z differs by the constant; fecli reports the file's
    plain = fecli.estimate(fecli.formats.without_constant(model), "exact").log_z
    result = fecli.estimate(model, "exact")
    assert result.log_z == pytest.approx(plain + constant, abs=1e-12)
    assert result.diagnostics["file_constant"]["log_z_offset"] == pytest.approx(constant)
    # at beta = 2 the constant scales with beta
    assert fecli.estimate(model, "exact", beta=2.0).log_z == pytest.approx(
        fecli.estimate(fecli.formats.without_constant(model), "exact", beta=2.0).log_z + 2 * constant, abs=1e-12)
    # ln p(v) from the package's energy: -E marginal minus ln Z, the same for both forms
    from fecli.loglik import log_likelihood

    v = np.array([[1, 0, 1, 1, 0], [0, 0, 0, 1, 1]], dtype=float)
    hid = discrete(3, (0.0, 1.0))
    neg = v @ a["visible_par"][0] + np.array([lse(hid @ a["hidden_par"][0] + ((x - a["offset_v"]) / a["scale_v"])
                                                  @ a["weights"] @ ((hid - a["offset_h"]) / a["scale_h"]).T)
                                              for x in v])
    want = float(np.mean(neg - rbmjl_ln_z(path)))
    assert log_likelihood(model, v, method="exact").mean_log_likelihood == pytest.approx(want, abs=1e-10)


def test_sklearn_skops_file_gives_the_ln_z_of_the_estimators_own_parameters():
    import skops.io as sio

    path = FIXTURES / "sklearn_rbm.skops"
    rbm = sio.load(path, trusted=[])
    c, iv, ih = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_  # E = -iv.v - ih.h - h c v
    v, h = discrete(c.shape[1], (0, 1)), discrete(c.shape[0], (0, 1))
    assert exact(path) == pytest.approx(brute_ln_z(v, v @ iv, h, h @ ih, c.T), abs=1e-9)
    assert "transposed" in open_model(path).source.conventions[0]


def test_pickled_sklearn_needs_allow_pickle_and_then_warns():
    path = FIXTURES / "sklearn_rbm.joblib"
    with pytest.raises(ModelFileError, match="pickle.*--allow-pickle"):
        open_model(path)
    result = run("estimate", path, "-m", "exact", "--allow-pickle", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "loading a pickle runs whatever code it holds" in result.stderr
    assert json.loads(result.stdout)["log_z"] == pytest.approx(exact(FIXTURES / "sklearn_rbm.skops"), abs=1e-12)


def test_safetensors_in_torch_orientation_is_transposed_and_said():
    from safetensors.numpy import load_file

    path = FIXTURES / "torch_style.safetensors"
    t = {k: v.astype(np.float64) for k, v in load_file(str(path)).items()}
    w, vb, hb = t["rbm.W"], t["rbm.v_bias"], t["rbm.h_bias"]  # nn.Linear: W (n_hidden, n_visible)
    v, h = discrete(vb.size, (0, 1)), discrete(hb.size, (0, 1))
    assert exact(path) == pytest.approx(brute_ln_z(v, v @ vb, h, h @ hb, w.T), abs=1e-9)
    conventions = open_model(path).source.conventions
    assert "weights=rbm.W,visible_bias=rbm.v_bias,hidden_bias=rbm.h_bias" in conventions[0]
    assert "transposed" in conventions[1]


def test_npz_with_hinton_names_a_b():
    path = FIXTURES / "hinton.npz"
    z = np.load(path)
    v, h = discrete(z["a"].size, (0, 1)), discrete(z["b"].size, (0, 1))
    assert exact(path) == pytest.approx(brute_ln_z(v, v @ z["a"], h, h @ z["b"], z["W"]), abs=1e-9)


def test_plain_hdf5_reads_with_names_and_square_npz_with_transpose():
    with h5py.File(FIXTURES / "plain.h5", "r") as f:
        w, bv, bh = f["W"][()], f["bv"][()], f["bh"][()]
    v, h = discrete(bv.size, (0, 1)), discrete(bh.size, (0, 1))
    got = exact(FIXTURES / "plain.h5", names="weights=W,visible_bias=bv,hidden_bias=bh")
    assert got == pytest.approx(brute_ln_z(v, v @ bv, h, h @ bh, w), abs=1e-9)
    z = np.load(FIXTURES / "square.npz")
    v = discrete(4, (0, 1))
    for transpose, w in ((False, z["weights"]), (True, z["weights"].T)):
        got = exact(FIXTURES / "square.npz", transpose=transpose)
        assert got == pytest.approx(brute_ln_z(v, v @ z["vbias"], v, v @ z["hbias"], w), abs=1e-9)


def test_pt_state_dict_through_torch_weights_only(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is the optional extra fecli[torch]")
    path = tmp_path / "rbm.pt"
    rng = np.random.default_rng(3)
    state = {"W": torch.tensor(rng.normal(size=(3, 5))), "v_bias": torch.tensor(rng.normal(size=5)),
             "h_bias": torch.tensor(rng.normal(size=3))}
    torch.save({"model": state}, path)
    w, vb, hb = (state[k].numpy() for k in ("W", "v_bias", "h_bias"))
    v, h = discrete(5, (0, 1)), discrete(3, (0, 1))
    assert exact(path) == pytest.approx(brute_ln_z(v, v @ vb, h, h @ hb, w.T), abs=1e-9)


def test_pt_without_torch_says_which_extra(tmp_path, monkeypatch):
    import sys
    import zipfile

    path = tmp_path / "rbm.pt"
    with zipfile.ZipFile(path, "w") as z:  # the shape of torch.save's archive: enough for detection
        z.writestr("rbm/data.pkl", b"\x80\x02}q\x00.")
    monkeypatch.setitem(sys.modules, "torch", None)
    line = one_error_line(run("estimate", path, "-m", "exact"))
    assert "PyTorch file" in line and "pip install 'fecli[torch]'" in line


# --------------------------------------------------------------------------- export, import, round trips
def models() -> dict[str, RBM]:
    rng = np.random.default_rng(7)
    return {
        "bernoulli": RBM(rng.normal(size=(5, 3)), rng.normal(size=5), rng.normal(size=3)),
        "spin-spin": RBM(Spin(rng.normal(size=5)), Spin(rng.normal(size=3)), rng.normal(size=(5, 3))),
        "potts": RBM(Potts(rng.normal(size=(3, 4))), Bernoulli(rng.normal(size=2)), rng.normal(size=(3, 4, 2))),
        "gaussian": RBM(Bernoulli(rng.normal(size=4)), Gaussian(rng.normal(size=3), np.full(3, 4.0)),
                        0.3 * rng.normal(size=(4, 3))),
    }


WRITERS = {"fecli": ".h5", "rbms": ".h5", "rbmjl": ".h5", "npz": ".npz", "safetensors": ".safetensors"}


@pytest.mark.parametrize("to", sorted(WRITERS))
@pytest.mark.parametrize("kind", sorted(models()))
def test_export_then_import_is_bit_exact(tmp_path, to, kind):
    model = models()[kind]  # the Gaussian model's hidden precision is n_visible, as rbms' BGRBM fixes it
    path = save_as(model, tmp_path / f"m{WRITERS[to]}", to)
    back = open_model(path)
    assert back.source.format == to
    assert back.unit_types == model.unit_types
    for name in ("weights", "visible_bias", "hidden_bias"):
        assert np.array_equal(getattr(back, name), getattr(model, name)), name
        assert getattr(back, name).dtype == np.float64
    if model.hidden.name == "gaussian":
        assert np.array_equal(back.hidden.precision, model.hidden.precision)


def test_files_fecli_writes_give_the_tools_own_ln_z(tmp_path):
    """What fecli writes is what each tool reads: the brute force of the tool's convention on the
    written file equals fecli's exact ln Z of the model."""
    for kind, model in models().items():
        want = fecli.estimate(model, "exact").log_z
        path = save_as(model, tmp_path / f"{kind}.jl.h5", "rbmjl")
        assert rbmjl_ln_z(path) == pytest.approx(want, abs=1e-9), kind
        path = save_as(model, tmp_path / f"{kind}.rbms.h5", "rbms")
        assert rbms_ln_z(path) == pytest.approx(want, abs=1e-9), kind


def test_rbms_refuses_precisions_it_cannot_hold_and_convert_keeps_the_constant_in_fecli(tmp_path):
    model = models()["gaussian"]
    model = RBM(model.visible, Gaussian(model.hidden.bias, np.full(3, 2.0)), model.weights)
    with pytest.raises(ModelFileError, match="fixes every hidden precision at n_visible = 4"):
        save_as(model, tmp_path / "m.h5", "rbms")
    src = FIXTURES / "rbmjl_standardized.h5"
    result = run("convert", src, "-o", tmp_path / "std.h5")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "std.h5")
    assert "un-standardised" in result.stderr
    assert exact(tmp_path / "std.h5") == pytest.approx(exact(src), abs=1e-12)
    result = run("convert", src, "-o", tmp_path / "std.npz")
    assert result.exit_code == 0 and "has no place in a numpy .npz file" in result.stderr
    assert exact(tmp_path / "std.npz") == pytest.approx(exact(src) - open_model(src).source.log_z_offset, abs=1e-12)


def test_convert_chooses_the_format_from_the_extension_and_refuses_to_overwrite(tmp_path):
    src = FIXTURES / "rbms_bbrbm.h5"
    for name, fmt in (("a.npz", "npz"), ("a.safetensors", "safetensors"), ("a.h5", "fecli")):
        result = run("convert", f"{src}@10", "-o", tmp_path / name)
        assert result.exit_code == 0, result.output
        assert open_model(tmp_path / name).source.format == fmt
        assert exact(tmp_path / name) == pytest.approx(rbms_ln_z(src, 10), abs=1e-9)
    line = one_error_line(run("convert", src, "-o", tmp_path / "a.h5"))
    assert "already exists (use --overwrite" in line


# --------------------------------------------------------------------------- the CLI: acceptance and bad input
@pytest.mark.parametrize("name", ["rbms_bbrbm.h5", "rbmjl_standardized.h5", "sklearn_rbm.skops",
                                  "torch_style.safetensors", "hinton.npz"])
def test_fecli_estimate_reads_each_tools_file(name):
    result = run("estimate", FIXTURES / name, "-m", "exact", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["log_z"] == pytest.approx(exact(FIXTURES / name), abs=1e-12)


def test_info_names_the_format_and_the_conventions():
    result = run("info", FIXTURES / "rbmjl_standardized.h5", "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["format"] == "RestrictedBoltzmannMachines.jl StandardizedRBM"
    assert summary["source"]["log_z_offset"] == pytest.approx(open_model(FIXTURES / "rbmjl_standardized.h5")
                                                              .source.log_z_offset)
    assert any("column-major" in c for c in summary["source"]["conventions"])
    table = run("info", FIXTURES / "torch_style.safetensors").stdout
    assert "safetensors" in table and "transposed" in table
    assert "checkpoint update_10" in run("info", f"{FIXTURES / 'rbms_bbrbm.h5'}@10").stdout


def test_rbms_checkpoints_are_a_trajectory(tmp_path):
    from fecli.io import has_snapshots, read_snapshots

    path = FIXTURES / "rbms_bbrbm.h5"
    assert has_snapshots(path) and not has_snapshots(FIXTURES / "rbms_pbrbm.h5")
    snaps = read_snapshots(path)
    assert snaps.updates.tolist() == [0, 10, 100]
    assert np.array_equal(snaps.weights[1], rbms_params(path, 10)[1])
    result = run("trajectory", path, "--chains", 50, "--replicates", 2, "--steps", 20, "--seed", 1, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["update"] for r in rows] == [0, 10, 100]
    assert rows[0]["kind"] == "exact" and rows[0]["log_z"] == pytest.approx(rbms_ln_z(path, 0), abs=1e-9)
    for row, k in zip(rows[1:], (10, 100)):  # SMC from checkpoint to checkpoint: within its interval
        assert row["ci_low"] <= rbms_ln_z(path, k) <= row["ci_high"]


BAD = {
    "ambiguous orientation": (["square.npz"], "orientation is ambiguous; say it with --transpose no"),
    "keys not guessable": (["misnamed.npz"], r"cannot tell which array is weights.*'foo' \(4, 3\).*--names weights=KEY"),
    "misnamed key": (["hinton.npz", "--names", "weights=V"], r"no array 'V' \(--names weights=V\).*'W' \(7, 5\)"),
    "bad --transpose shape": (["hinton.npz", "--transpose", "yes"], r"with --transpose yes 'W' must have shape \(5, 7\)"),
    "unknown format version": (["rbmjl_version.h5"], "format version 0.9.0; fecli reads version 1.0.0"),
    "pickle without --allow-pickle": (["sklearn_rbm.joblib"], "is a Python pickle.*only with --allow-pickle"),
    "checkpoint missing (@K)": (["rbms_bbrbm.h5@7"], "has no checkpoint 7; its checkpoints are updates 0, 10, 100"),
    "checkpoint missing (--checkpoint)": (["rbms_bbrbm.h5", "--checkpoint", "5"], "has no checkpoint 5"),
    "checkpoint on a file without": (["hinton.npz", "--checkpoint", "5"], "has no checkpoints"),
    "unit type without a layer": (["rbmjl_drelu.h5"], "hidden units of type dReLU, which fecli has no layer for"),
    "rbms model fecli lacks": (["rbms_bbcrbm.h5"], "DsysDML/rbms BBCRBM model, which fecli does not support"),
    "unknown HDF5 layout": (["plain.h5"], r"no known layout.*'W' \(4, 3\).*--names weights=W,visible_bias=bv,hidden_bias=bh"),
    "transposed fecli file": (["transposed_fecli.h5"], r"'weights' has shape \(3, 5\).*transposed\?"),
    "wrong --model-format": (["hinton.npz", "--model-format", "rbms"], "not a DsysDML/rbms HDF5 file; it is a numpy .npz"),
    "--names on a known layout": (["rbms_bbrbm.h5", "--names", "weights=W"], "--names applies to npz"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_exit_1(case):
    args, message = BAD[case]
    first = args[0]
    base, _, at = first.partition("@")
    path = str(FIXTURES / base) + (f"@{at}" if at else "")
    line = one_error_line(run("estimate", path, *args[1:], "-m", "exact"))
    import re

    assert re.search(message, line), line
    assert str(FIXTURES / base) in line


def test_malformed_names_is_a_usage_error():
    result = run("estimate", FIXTURES / "hinton.npz", "--names", "weights")
    assert result.exit_code == 2 and "is not ROLE=KEY" in result.stderr


def test_library_load_model_is_open_model():
    assert fecli.load_model is open_model
    assert set(FORMATS) >= {"fecli", "rbms", "rbmjl", "skops", "safetensors", "npz", "pt", "pickle", "hdf5"}


def test_fecli_only_readers_name_the_foreign_format_and_the_commands_that_read_it():
    from fecli.io import load_model as load_fecli

    with pytest.raises(ModelFileError, match="it is a DsysDML/rbms HDF5 file, which 'fecli estimate'.*fecli convert"):
        load_fecli(FIXTURES / "rbms_bbrbm.h5")
    line = one_error_line(run("estimate", FIXTURES / "rbms_bbrbm.h5", "--model-format", "fecli"))
    assert "is not a fecli-rbm HDF5 file; it is a DsysDML/rbms HDF5 file (drop --model-format" in line


def test_trajectories_survive_conversion_both_ways(tmp_path):
    from fecli.io import read_snapshots

    src = FIXTURES / "rbms_bbrbm.h5"
    assert run("convert", f"{src}@10", "-o", tmp_path / "ten.h5").exit_code == 0
    snaps = read_snapshots(tmp_path / "ten.h5")
    assert snaps.updates.tolist() == [0, 10]
    assert np.array_equal(snaps.weights[0], rbms_params(src, 0)[1])
    assert run("convert", tmp_path / "ten.h5", "-o", tmp_path / "back.h5", "--to", "rbms").exit_code == 0
    for k in (0, 10):
        assert np.array_equal(rbms_params(tmp_path / "back.h5", k)[1], rbms_params(src, k)[1])


def test_skops_pipeline_gives_its_rbm_step(tmp_path):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import BernoulliRBM
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(5)
    x, y = (rng.random((40, 6)) < 0.5).astype(float), rng.integers(0, 2, 40)
    pipe = Pipeline([("rbm", BernoulliRBM(n_components=3, n_iter=2, random_state=0)),
                     ("clf", LogisticRegression())]).fit(x, y)
    sio.dump(pipe, tmp_path / "pipe.skops")
    rbm = pipe.named_steps["rbm"]
    model = open_model(tmp_path / "pipe.skops")
    assert np.array_equal(model.weights, rbm.components_.T)
    assert np.array_equal(model.hidden_bias, rbm.intercept_hidden_)


@pytest.mark.parametrize("name, package, extra", [("torch_style.safetensors", "safetensors", "formats"),
                                                   ("sklearn_rbm.skops", "skops", "formats")])
def test_a_missing_optional_package_names_its_extra(monkeypatch, name, package, extra):
    import sys

    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.setitem(sys.modules, f"{package}.io", None)
    line = one_error_line(run("estimate", FIXTURES / name, "-m", "exact"))
    assert f"pip install 'fecli[{extra}]'" in line


def test_compressed_joblib_is_a_pickle_too(tmp_path):
    import joblib
    import skops.io as sio

    estimator = sio.load(FIXTURES / "sklearn_rbm.skops", trusted=[])
    joblib.dump(estimator, tmp_path / "rbm.joblib", compress=3)
    with pytest.raises(ModelFileError, match="is a Python pickle"):
        open_model(tmp_path / "rbm.joblib")
    assert np.array_equal(open_model(tmp_path / "rbm.joblib", allow_pickle=True).weights, estimator.components_.T)
