"""Shared test helpers: brute-force ln Z over both layers, random models, sample model paths.

Also session-wide settings:

* Worker threads that wait by sleeping, not spinning (unless set already): OpenBLAS with one
  thread and OpenMP with OMP_WAIT_POLICY=passive. Spinning threads of OpenBLAS and of Numba's
  OpenMP layer fight each other and everything else on a busy 2-core machine: there the suite
  took 278 s and 152 CPU-seconds with the defaults, 175 s with one BLAS thread, and 91 s and
  44 CPU-seconds with neither spinning. Results do not depend on thread counts (tests spawn
  subprocesses with 1 and 2 Numba threads to check that), only the speed does. Set before
  numpy and numba load, which read them once.
* Subprocesses (``fecli ...``, ``python -c ...``) import the same fecli as the tests, whichever
  folder they start in: PYTHONPATH names its parent folder. Numba caches compiled kernels next
  to the source files, so without this a test run from a clone compiles every kernel the
  subprocesses use a second time, for the installed copy.
* The suite must not leave files in the repository root (a stray output once got committed).
"""

from __future__ import annotations

import json
import os
from itertools import product
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402  (after the thread settings above)
import pytest  # noqa: E402

import fecli  # noqa: E402
from fecli.model import RBM  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FECLI_PARENT = str(Path(fecli.__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join([FECLI_PARENT, *filter(None, [os.environ.get("PYTHONPATH")])])
SAMPLES = ROOT / "sample_models"
SAMPLE_MODELS = sorted(SAMPLES.glob("*.h5"))
REFERENCE = json.loads((SAMPLES / "reference.json").read_text())


def all_states(n: int) -> np.ndarray:
    """All 2^n binary vectors of length n as rows (float64)."""
    return np.array(list(product((0.0, 1.0), repeat=n))).reshape(2**n, n)


def brute_force_log_z(model: RBM, beta: float = 1.0) -> float:
    """ln sum_{v,h} exp(-beta E(v,h)) over both layers, straight from the energy definition."""
    v = all_states(model.n_visible)
    h = all_states(model.n_hidden)
    neg_energy = (v @ model.visible_bias)[:, None] + (h @ model.hidden_bias)[None, :] + v @ model.weights @ h.T
    x = beta * neg_energy
    top = x.max()
    return float(top + np.log(np.exp(x - top).sum()))


def random_rbm(rng: np.random.Generator, nv: int, nh: int, scale: float = 1.0, name: str = "<random>") -> RBM:
    return RBM(scale * rng.normal(size=(nv, nh)), rng.normal(size=nv), rng.normal(size=nh), name=name)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def small_model_file(tmp_path, rng) -> Path:
    from fecli.io import save_model

    path = tmp_path / "small.h5"
    save_model(random_rbm(rng, 7, 5, 0.5), path)
    return path


@pytest.fixture(scope="session", autouse=True)
def repository_root_stays_clean():
    """Fail the session if a test wrote a file into the repository root (outputs belong in tmp_path)."""
    before = set(os.listdir(ROOT))
    yield
    new = sorted(name for name in set(os.listdir(ROOT)) - before if not name.startswith(".") and name != "__pycache__")
    assert not new, f"tests left files in the repository root: {', '.join(new)}"
