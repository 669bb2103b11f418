"""The fecli-rbm file format: round trips, atomic writes and one clear error per bad file."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from fecli import RBM, load_model, save_model
from fecli.errors import ModelFileError

from .conftest import random_rbm


def write_raw(path, *, attrs=None, datasets=None, drop_attrs=(), drop=()):
    """Write an HDF5 file by hand, starting from a valid model and applying changes."""
    rng = np.random.default_rng(0)
    base_attrs = {"format": "fecli-rbm", "format_version": 1, "visible_type": "bernoulli", "hidden_type": "bernoulli"}
    base_data = {"weights": rng.normal(size=(4, 3)), "visible_bias": rng.normal(size=4), "hidden_bias": rng.normal(size=3)}
    base_attrs.update(attrs or {})
    base_data.update(datasets or {})
    with h5py.File(path, "w") as f:
        for k, v in base_attrs.items():
            if k not in drop_attrs:
                f.attrs[k] = v
        for k, v in base_data.items():
            if k not in drop:
                f.create_dataset(k, data=v)
    return path


def test_round_trip_is_bit_for_bit(tmp_path, rng):
    model = random_rbm(rng, 13, 7, 3.0)
    path = save_model(model, tmp_path / "m.h5")
    loaded = load_model(path)
    for name in ("weights", "visible_bias", "hidden_bias"):
        original, back = getattr(model, name), getattr(loaded, name)
        assert back.dtype == np.float64
        assert original.tobytes() == back.tobytes()
    assert loaded.name == str(path)


def test_written_file_follows_the_public_contract(tmp_path, rng):
    path = save_model(random_rbm(rng, 5, 2), tmp_path / "m.h5")
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "fecli-rbm"
        assert f.attrs["format_version"] == 1
        assert f.attrs["visible_type"] == "bernoulli" and f.attrs["hidden_type"] == "bernoulli"
        assert f["weights"].shape == (5, 2) and f["weights"].dtype == np.float64
        assert f["visible_bias"].shape == (5,) and f["hidden_bias"].shape == (2,)


def test_training_group_round_trips(tmp_path, rng):
    meta = {"seed": 7, "method": "pcd", "metrics": {"epoch": np.arange(3), "loglik": np.array([-3.0, -2.5, -2.2])}}
    model = random_rbm(rng, 4, 3)
    model.training = meta
    loaded = load_model(save_model(model, tmp_path / "m.h5"))
    assert loaded.training["seed"] == 7 and loaded.training["method"] == "pcd"
    np.testing.assert_array_equal(loaded.training["metrics"]["loglik"], meta["metrics"]["loglik"])


def test_float32_files_written_by_other_tools_are_accepted(tmp_path):
    path = write_raw(tmp_path / "f32.h5", datasets={"weights": np.ones((4, 3), dtype=np.float32)})
    assert load_model(path).weights.dtype == np.float64


def test_extra_groups_and_byte_string_attributes_are_fine(tmp_path):
    path = write_raw(tmp_path / "x.h5", attrs={"format": np.bytes_(b"fecli-rbm"), "visible_type": np.bytes_(b"bernoulli")})
    with h5py.File(path, "a") as f:
        f.create_group("something_else").attrs["note"] = "ignored"
    assert load_model(path).n_visible == 4


def test_interrupted_write_leaves_no_partial_file(tmp_path, rng, monkeypatch):
    target = tmp_path / "m.h5"
    original = h5py.File.create_dataset

    def explode(self, name, *args, **kwargs):
        if name == "hidden_bias":
            raise KeyboardInterrupt
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", explode)
    with pytest.raises(KeyboardInterrupt):
        save_model(random_rbm(rng, 4, 3), target)
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_interrupted_overwrite_keeps_the_old_model(tmp_path, rng, monkeypatch):
    target = save_model(random_rbm(rng, 4, 3), tmp_path / "m.h5")
    before = target.read_bytes()
    monkeypatch.setattr(h5py.Group, "create_dataset", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError):
        save_model(random_rbm(rng, 4, 3), target)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.h5"]


def test_refuses_to_write_into_a_missing_folder_or_over_a_file_when_asked(tmp_path, rng):
    with pytest.raises(ModelFileError, match="folder .* does not exist"):
        save_model(random_rbm(rng, 2, 2), tmp_path / "nope" / "m.h5")
    path = save_model(random_rbm(rng, 2, 2), tmp_path / "m.h5")
    with pytest.raises(ModelFileError, match="already exists"):
        save_model(random_rbm(rng, 2, 2), path, overwrite=False)


def truncated(tmp_path):
    good = save_model(random_rbm(np.random.default_rng(1), 30, 20), tmp_path / "good.h5")
    data = good.read_bytes()
    path = tmp_path / "truncated.h5"
    path.write_bytes(data[: len(data) // 2])
    return path


BAD_FILES = {
    "missing file": (lambda p: p / "absent.h5", "does not exist"),
    "a folder": (lambda p: p, "is a folder"),
    "not HDF5": (lambda p: (p / "text.h5").write_text("hello") and p / "text.h5", "is not an HDF5 file"),
    "truncated": (truncated, "truncated or damaged"),
    # fecli.load_model reads every format: an HDF5 file of no known layout says what it holds and how to read it
    "no format attribute": (lambda p: write_raw(p / "a.h5", drop_attrs=("format",)),
                            "no known layout.*--names weights=weights,visible_bias=visible_bias,hidden_bias=hidden_bias"),
    "other format": (lambda p: write_raw(p / "a.h5", attrs={"format": "keras"}), "has format 'keras'"),
    "future version": (lambda p: write_raw(p / "a.h5", attrs={"format_version": 3}), "format_version 3"),
    "spin units in version 1": (lambda p: write_raw(p / "a.h5", attrs={"visible_type": "spin"}),
                                "format_version 1 holds bernoulli units only"),
    "gaussian without precision": (lambda p: write_raw(p / "a.h5", attrs={"format_version": 2, "hidden_type": "gaussian"}),
                                   "no dataset 'hidden_precision'"),
    "unknown units": (lambda p: write_raw(p / "a.h5", attrs={"hidden_type": "ising"}), "unknown hidden_type 'ising'"),
    "potts hidden": (lambda p: write_raw(p / "a.h5", attrs={"format_version": 2, "hidden_type": "potts"}),
                     "Potts layer must be the visible layer"),
    "missing unit type": (lambda p: write_raw(p / "a.h5", drop_attrs=("visible_type",)), "no 'visible_type'"),
    "missing weights": (lambda p: write_raw(p / "a.h5", drop=("weights",)), r"no dataset 'weights' \(found: hidden_bias, visible_bias\)"),
    "misnamed dataset": (
        lambda p: write_raw(p / "a.h5", drop=("visible_bias",), datasets={"vbias": np.zeros(4)}),
        "no dataset 'visible_bias'.*vbias",
    ),
    "bias length": (lambda p: write_raw(p / "a.h5", datasets={"visible_bias": np.zeros(5)}), r"'visible_bias' has shape \(5,\).*needs \(4,\)"),
    "hidden bias length": (lambda p: write_raw(p / "a.h5", datasets={"hidden_bias": np.zeros((3, 1))}), r"'hidden_bias' has shape \(3, 1\)"),
    "1-D weights": (lambda p: write_raw(p / "a.h5", datasets={"weights": np.zeros(12)}), "must be 2-D"),
    "empty layer": (
        lambda p: write_raw(p / "a.h5", datasets={"weights": np.zeros((4, 0)), "hidden_bias": np.zeros(0)}),
        "at least one unit",
    ),
    "NaN": (lambda p: write_raw(p / "a.h5", datasets={"weights": np.full((4, 3), np.nan)}), "12 non-finite value"),
    "inf": (lambda p: write_raw(p / "a.h5", datasets={"hidden_bias": np.array([0, np.inf, 0])}), "'hidden_bias' contains 1 non-finite"),
    "integer dtype": (lambda p: write_raw(p / "a.h5", datasets={"weights": np.ones((4, 3), dtype=np.int64)}), "dtype int64.*floating-point"),
    "complex dtype": (lambda p: write_raw(p / "a.h5", datasets={"visible_bias": np.ones(4, dtype=complex)}), "dtype complex128"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_give_one_clear_sentence_naming_the_file(tmp_path, case):
    make, message = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(path)
    text = str(info.value)
    assert str(path) in text
    assert "\n" not in text


def test_in_memory_models_validate_shapes():
    with pytest.raises(ValueError, match="visible_bias"):
        RBM(np.zeros((3, 2)), np.zeros(2), np.zeros(2))
