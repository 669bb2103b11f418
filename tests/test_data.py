"""Data files for --data options: formats, binarization and one clear error per bad file."""

from __future__ import annotations

import numpy as np
import pytest

from fecli.data import base_rate_bias, check_width, load_data, prepare
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


def test_a_threshold_for_unit_data_on_0_255_values_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "grey.npy"
    np.save(path, np.array([[0, 128, 255], [255, 3, 0]], dtype=np.uint8))
    with pytest.raises(DataFileError) as info:
        load_data(path, binarize=0.5)
    assert str(info.value) == (
        f"--binarize 0.5 is a threshold for values in [0, 1], but data file '{path}' has values in [0, 255]: "
        "add --scale 255 to divide them first, or give the threshold in the data's units "
        "(e.g. --binarize 127.5; --binarize 0 makes every nonzero value 1).")
    np.testing.assert_array_equal(load_data(path, binarize=127.5), [[0, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(load_data(path, binarize=0), [[0, 1, 1], [1, 1, 0]])


@pytest.mark.parametrize("threshold, scale, every, shown", [
    (255, None, "0", "[0, 255]"), (300, None, "0", "[0, 255]"), (-1, None, "1", "[0, 255]"),
    (1.0, 255, "0", "[0, 1] of data file '{path}' after --scale 255"), (-0.5, 255, "1", "after --scale 255"),
])
def test_a_threshold_outside_the_data_range_is_refused(tmp_path, threshold, scale, every, shown):
    path = tmp_path / "grey.npy"
    np.save(path, np.array([[0, 128, 255], [255, 3, 0]]))
    with pytest.raises(DataFileError) as info:
        load_data(path, binarize=threshold, scale=scale)
    message = str(info.value)
    assert f"--binarize {threshold:g} is outside the range" in message
    assert shown.format(path=path) in message and f"every value would become {every}" in message
    with pytest.raises(DataFileError, match="--binarize must be a finite number"):
        load_data(path, binarize=float("nan"), scale=255)


def test_the_hints_divide_by_the_data_s_own_maximum(tmp_path):
    """0..16 greyscale digits are not 0..255 pixels: the fix names 16."""
    path = tmp_path / "digits.npy"
    np.save(path, np.array([[0, 7, 16], [16, 3, 0]]))
    with pytest.raises(DataFileError, match=r"not binary 0/1 \(try --scale 16 --binarize 0.5\)"):
        load_data(path)
    with pytest.raises(DataFileError, match=r"add --scale 16 to divide them first.*\(e.g. --binarize 8;"):
        load_data(path, binarize=0.5)
    with pytest.raises(DataFileError, match=r"use --scale 16 to divide them first.*\(e.g. --binarize 4;"):
        load_data(path, binarize=0.5, scale=2)
    np.testing.assert_array_equal(load_data(path, scale=16, binarize=0.5), [[0, 0, 1], [1, 0, 0]])


def test_binary_data_keeps_any_threshold_in_0_1():
    np.testing.assert_array_equal(prepare(BINARY, "x", binarize=0.5), BINARY)
    np.testing.assert_array_equal(prepare(BINARY, "x", binarize=0.0), BINARY)
    with pytest.raises(DataFileError, match="every value would become 0"):
        prepare(BINARY, "x", binarize=1.0)


def test_cli_refuses_a_0_1_threshold_on_0_255_data(tmp_path):
    from click.testing import CliRunner

    from fecli.cli import cli

    grey = tmp_path / "grey.npy"
    digits = np.load(SAMPLES / "data" / "digits8x8_binary.npy")[:50]
    np.save(grey, (digits * 200 + 20).astype(np.uint8))
    result = CliRunner().invoke(cli, ["loglik", str(SAMPLES / "digits_64x16.h5"), str(grey), "--binarize", "0.5"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"fecli: error: --binarize 0.5 is a threshold for values in [0, 1], but data file '{grey}' has values in "
        "[20, 220]: add --scale 220 to divide them first, or give the threshold in the data's units "
        "(e.g. --binarize 110; --binarize 0 makes every nonzero value 1)."]
    ok = CliRunner().invoke(cli, ["loglik", str(SAMPLES / "digits_64x16.h5"), str(grey), "--scale", "220",
                                  "--binarize", "0.5", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert '"n_examples": 50' in ok.stdout


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
