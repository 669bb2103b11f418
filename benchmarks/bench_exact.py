"""Exact ln Z: fecli's Gray-code kernel vs a plain numpy enumeration and the softplus floor.

    python benchmarks/bench_exact.py

Workloads: a 64 x 20 and a 784 x 20 model (2^20 hidden states each).
* numpy baseline: the usual batched enumeration (states as a 0/1 matrix, one GEMM per
  batch, np.logaddexp(0, x) for softplus, then log-sum-exp), as research code does it.
* floor: the 2^k x n softplus evaluations alone, parallel over all cores (Numba).
Also: ``fecli --help`` start-up time and the first-run Numba compile time vs a cached run.
Prints a markdown table (kept in BENCHMARKS.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import best_time, machine  # noqa: E402

from fecli.estimators.exact import log_partition  # noqa: E402
from fecli.kernels.enumeration import softplus_floor  # noqa: E402
from fecli.model import RBM  # noqa: E402


def numpy_enumeration(model: RBM, batch_bits: int = 14) -> float:
    """ln Z by batched enumeration of the hidden layer in plain numpy."""
    w, a, b = model.weights, model.visible_bias, model.hidden_bias
    k = model.n_hidden
    low = ((np.arange(1 << batch_bits)[:, None] >> np.arange(batch_bits)) & 1).astype(np.float64)
    partial = []
    for high in range(1 << (k - batch_bits)):
        h = np.empty((1 << batch_bits, k))
        h[:, :batch_bits] = low
        h[:, batch_bits:] = (high >> np.arange(k - batch_bits)) & 1
        x = h @ b + np.logaddexp(0.0, h @ w.T + a).sum(axis=1)
        top = x.max()
        partial.append(top + np.log(np.exp(x - top).sum()))
    partial = np.array(partial)
    top = partial.max()
    return float(top + np.log(np.exp(partial - top).sum()))


def floor_seconds(n_states: int, n: int) -> float:
    x = np.random.default_rng(0).normal(size=n)
    chunk = 4096
    out = np.empty((n_states + chunk - 1) // chunk)
    softplus_floor(x, 64, chunk, out)  # compile / load from cache
    return best_time(lambda: softplus_floor(x, n_states, chunk, out))


def startup_seconds() -> float:
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fecli.cli", "--help"], capture_output=True, check=True)
        runs.append(time.perf_counter() - start)
    return min(runs)


def compile_seconds() -> tuple[float, float]:
    """(first run with an empty Numba cache, second run with the cache), whole-process seconds."""
    code = (
        "import numpy as np, time; from fecli.model import RBM; from fecli.estimators.exact import log_partition;"
        "m = RBM(np.ones((8, 4)), np.zeros(8), np.zeros(4)); log_partition(m)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        times = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            times.append(time.perf_counter() - start)
    return times[0], times[1]


def main() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for nv in (64, 784):
        model = RBM(0.1 * rng.normal(size=(nv, 20)), 0.1 * rng.normal(size=nv), 0.1 * rng.normal(size=20))
        log_partition(model)  # warm up (load compiled kernel)
        t_fecli = best_time(lambda: log_partition(model))
        t_numpy = best_time(lambda: numpy_enumeration(model), repeats=2)
        t_floor = floor_seconds(1 << 20, nv)
        assert abs(numpy_enumeration(model) - log_partition(model)) < 1e-8 * abs(log_partition(model))
        rows.append((f"{nv} x 20", t_fecli, t_numpy, t_floor))
    start_help = startup_seconds()
    first, cached = compile_seconds()

    print(f"Machine: {machine()}\n")
    print("| workload | fecli exact | numpy baseline | softplus floor | numpy / fecli | fecli / floor |")
    print("|---|---|---|---|---|---|")
    for name, tf, tn, tfl in rows:
        print(f"| {name} (2^20 states) | {tf:.3f} s | {tn:.3f} s | {tfl:.3f} s | {tn / tf:.2f}x | {tf / tfl:.2f}x |")
    print()
    print("| start-up | seconds |")
    print("|---|---|")
    print(f"| `fecli --help` (best of 5) | {start_help:.3f} |")
    print(f"| first exact run, empty Numba cache (whole process) | {first:.2f} |")
    print(f"| second run, cached kernels (whole process) | {cached:.2f} |")


if __name__ == "__main__":
    main()
