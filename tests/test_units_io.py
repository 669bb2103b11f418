"""Model files with spin, Gaussian and Potts layers: format_version 2, round trips, one clear line per bad file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from fecli import load_model, save_model
from fecli.errors import ModelFileError
from fecli.io import format_version

from .test_units_exact import COMBINATIONS, make_model


@pytest.mark.parametrize("vt, ht", COMBINATIONS)
def test_round_trip_is_bit_for_bit_and_versioned(tmp_path, vt, ht):
    model = make_model(vt, ht, 4, 3, 0)
    path = save_model(model, tmp_path / "m.h5")
    back = load_model(path)
    assert back.unit_types == (vt, ht)
    assert back.weights.tobytes() == model.weights.tobytes()
    assert back.visible_bias.tobytes() == model.visible_bias.tobytes()
    for layer in ("visible", "hidden"):
        prec = getattr(getattr(model, layer), "precision", None)
        if prec is not None:
            assert getattr(back, layer).precision.tobytes() == prec.tobytes()
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == (1 if (vt, ht) == ("bernoulli", "bernoulli") else 2)
        assert f.attrs["visible_type"] == vt and f.attrs["hidden_type"] == ht
        if vt == "potts":
            assert f.attrs["visible_states"] == 3
            assert f["weights"].shape == (4, 3, 3) and f["visible_bias"].shape == (4, 3)
        if vt == "gaussian":
            assert f["visible_precision"].shape == (4,)
    assert format_version(model) == (1 if model.is_bernoulli else 2)


def write(path, vt="gaussian", ht="bernoulli", attrs=None, datasets=None, drop=()):
    rng = np.random.default_rng(0)
    base_attrs = {"format": "fecli-rbm", "format_version": 2, "visible_type": vt, "hidden_type": ht}
    nv, nh, q = 4, 3, 3
    data = {"weights": rng.normal(size=(nv, q, nh) if vt == "potts" else (nv, nh)),
            "visible_bias": rng.normal(size=(nv, q) if vt == "potts" else nv), "hidden_bias": rng.normal(size=nh)}
    if vt == "potts":
        base_attrs["visible_states"] = q
    if vt == "gaussian":
        data["visible_precision"] = np.ones(nv)
    if ht == "gaussian":
        data["hidden_precision"] = np.ones(nh)
    base_attrs.update(attrs or {})
    data.update(datasets or {})
    with h5py.File(path, "w") as f:
        for k, v in base_attrs.items():
            f.attrs[k] = v
        for k, v in data.items():
            if k not in drop:
                f.create_dataset(k, data=v)
    return path


BAD = {
    "precision zero": (dict(datasets={"visible_precision": np.array([1.0, 0.0, 1.0, 1.0])}),
                       r"'visible_precision' has 1 value\(s\) <= 0 \(smallest 0\)"),
    "precision negative": (dict(ht="gaussian", vt="spin", datasets={"hidden_precision": -np.ones(3)}),
                           "'hidden_precision' has 3 value"),
    "precision missing": (dict(drop=("visible_precision",)), "no dataset 'visible_precision'"),
    "precision shape": (dict(datasets={"visible_precision": np.ones(5)}), r"'visible_precision' has shape \(5,\)"),
    "precision NaN": (dict(datasets={"visible_precision": np.array([1.0, np.nan, 1.0, 1.0])}), "non-finite"),
    "precision on bernoulli": (dict(vt="bernoulli", datasets={"visible_precision": np.ones(4)}),
                               "has a dataset 'visible_precision', but its visible units are bernoulli"),
    "potts without q": (dict(vt="potts", attrs={"visible_states": None}), "no 'visible_states'"),
    "potts q = 1": (dict(vt="potts", attrs={"visible_states": 1}), "needs an integer q >= 2"),
    "potts q mismatch": (dict(vt="potts", attrs={"visible_states": 4}), r"visible_states = 4 needs \(4, 4, 3\)"),
    "potts 2-D weights": (dict(vt="potts", datasets={"weights": np.zeros((4, 3))}), "must be 3-D"),
    "potts bias shape": (dict(vt="potts", datasets={"visible_bias": np.zeros(4)}), r"'visible_bias' has shape \(4,\)"),
    "states on spin": (dict(vt="spin", attrs={"visible_states": 3}), "'visible_states' attribute, but its visible"),
    "unknown type": (dict(vt="ising"), "unknown visible_type 'ising'"),
    "potts hidden": (dict(ht="potts"), "Potts layer must be the visible layer"),
    "version 1 with spins": (dict(vt="spin", attrs={"format_version": 1}), "format_version 1 holds bernoulli"),
    "not normalisable": (dict(vt="gaussian", ht="gaussian", datasets={"weights": np.full((4, 3), 0.9)}),
                         "is not normalisable.*not positive definite"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_give_one_clear_line(tmp_path, case):
    options, message = BAD[case]
    attrs = options.get("attrs") or {}
    if attrs.get("visible_states", 0) is None:  # drop the attribute
        options = {**options, "attrs": {k: v for k, v in attrs.items() if k != "visible_states"}}
        path = write(tmp_path / "m.h5", **{k: v for k, v in options.items()})
        with h5py.File(path, "a") as f:
            del f.attrs["visible_states"]
    else:
        path = write(tmp_path / "m.h5", **options)
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_cli_refuses_a_bad_file_with_one_line_and_exit_1(tmp_path, capsys):
    from fecli.cli import main

    path = write(tmp_path / "bad.h5", datasets={"visible_precision": -np.ones(4)})
    with pytest.raises(SystemExit) as info:
        main(["estimate", str(path), "-m", "exact"])
    assert info.value.code == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "<= 0" in err
