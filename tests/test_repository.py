"""The repository itself: no stray outputs tracked (data and figures live in sample_models/ and tests/)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import ROOT

DATA_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".csv", ".txt", ".jsonl", ".png", ".pdf", ".svg", ".pkl")
DATA_FOLDERS = ("sample_models/", "tests/")


def test_no_stray_data_files_are_tracked():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    stray = [path for path in listed.splitlines()
             if path.lower().endswith(DATA_SUFFIXES) and not path.startswith(DATA_FOLDERS)]
    assert stray == [], f"data or output files tracked outside {', '.join(DATA_FOLDERS)}: {stray}"
