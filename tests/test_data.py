"""Data files for --data options: formats, binarization and one clear error per bad file."""

from __future__ import annotations

import numpy as np
import pytest

from fecli.data import base_rate_bias, check_width, load_data
from fecli.errors import DataFileError
from fecli.model import RBM

from .conftest import SAMPLES

BINARY = np.array([[0, 1, 1], [1, 0, 1]], dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".txt"])
def test_every_format_loads_the_same_binary_rows(tmp_path, suffix):
    path = tmp_path / f"d{suffix}"
    if suffix == ".npy":
        np.save(path, BINARY)
    elif suffix == ".npz":
        np.savez(path, x=BINARY)
    else:
        np.savetxt(path, BINARY, fmt="%d", delimiter="," if suffix == ".csv" else " ")
    data = load_data(path)
    assert data.dtype == np.float64
    np.testing.assert_array_equal(data, BINARY)


def test_shipped_digits_are_binary():
    data = load_data(SAMPLES / "data" / "digits8x8_binary.npy")
    assert data.shape == (1797, 64)


def test_greyscale_needs_binarize_and_scale(tmp_path):
    path = tmp_path / "grey.npy"
    np.save(path, np.array([[0, 128, 255], [255, 3, 0]]))
    with pytest.raises(DataFileError, match=r"not binary 0/1 \(try --scale 255 --binarize 0.5\)"):
        load_data(path)
    np.testing.assert_array_equal(load_data(path, scale=255, binarize=0.5), [[0, 1, 1], [1, 0, 0]])


def test_npz_with_several_arrays_needs_a_key(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, train=BINARY, test=BINARY[:1])
    with pytest.raises(DataFileError, match="choose one with --key"):
        load_data(path)
    assert load_data(path, key="test").shape == (1, 3)
    with pytest.raises(DataFileError, match="no array 'val'"):
        load_data(path, key="val")


@pytest.mark.parametrize(
    "content, message",
    [
        ("1,0\n1\n", "could not be parsed"),
        ("1,nan\n0,1\n", "NaN or inf"),
        ("", "empty"),
    ],
)
def test_bad_text_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataFileError, match=message):
        load_data(path)


def test_missing_file_wrong_extension_and_1d(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        load_data(tmp_path / "absent.npy")
    (tmp_path / "d.json").write_text("[]")
    with pytest.raises(DataFileError, match="unsupported extension '.json'"):
        load_data(tmp_path / "d.json")
    np.save(tmp_path / "flat.npy", np.array([0, 1, 1]))
    with pytest.raises(DataFileError, match="1-D"):
        load_data(tmp_path / "flat.npy")


def test_width_must_match_the_model():
    model = RBM(np.zeros((4, 2)), np.zeros(4), np.zeros(2), name="m.h5")
    with pytest.raises(DataFileError, match="3 columns, but model m.h5 has 4 visible units"):
        check_width(BINARY.astype(float), model, "d.npy")


def test_base_rate_bias_is_the_smoothed_logit():
    data = np.array([[1, 0], [1, 0], [1, 1], [0, 0]], dtype=float)
    a = base_rate_bias(data, pseudocount=2.0)
    p = (data.sum(0) + 1.0) / 6.0
    np.testing.assert_allclose(a, np.log(p / (1 - p)))
    assert np.all(np.isfinite(base_rate_bias(np.ones((3, 2)))))
