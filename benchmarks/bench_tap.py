"""Benchmark: converged naive MF / TAP2 / TAP3 on a 784 x 500 model against one matrix-vector product.

The floor is the cost of one W @ y product (784 x 500, float64, BLAS), measured in the same run.
A sweep of order k from one start costs 2k such products (x from y, then y from x); the table
reports sweeps, products counted by the solver, wall time, and time / (one product).

    python benchmarks/bench_tap.py [--repeats 3] [--w-scale 0.05 0.1] [--starts 1 8]

The model is "random-ish": W ~ N(0, s^2) with s from --w-scale, visible biases N(-1, 1), hidden
biases N(-0.5, 0.5^2) (sparse-ish visible activity as in MNIST), seed 0.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from fecli.estimators.meanfield import estimate_mf, estimate_tap2, estimate_tap3
from fecli.model import RBM

NV, NH = 784, 500


def make_model(w_scale: float, seed: int = 0) -> RBM:
    rng = np.random.default_rng(seed)
    return RBM(rng.normal(0, w_scale, (NV, NH)), rng.normal(-1, 1, NV), rng.normal(-0.5, 0.5, NH),
               name=f"random {NV}x{NH} (W sd {w_scale:g})")


def matvec_seconds(model: RBM, repeats: int = 2000) -> float:
    """Median time of one W @ y (the cost unit), in seconds."""
    w = model.weights
    y = np.random.default_rng(1).uniform(size=NH)
    for _ in range(50):
        w @ y
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            w @ y
        times.append((time.perf_counter() - start) / repeats)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (median reported)")
    parser.add_argument("--w-scale", type=float, nargs="+", default=[0.05, 0.1])
    parser.add_argument("--starts", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tol", type=float, default=1e-7)
    args = parser.parse_args()

    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, numpy {np.__version__}")
    print()
    print("| model | method | starts | sweeps (chosen start) | products counted | time | one W@y | time / W@y "
          "| products / start | ln Z |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for scale in args.w_scale:
        model = make_model(scale)
        unit = matvec_seconds(model)
        for method, func in (("mf", estimate_mf), ("tap2", estimate_tap2), ("tap3", estimate_tap3)):
            for starts in args.starts:
                times, result = [], None
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    result = func(model, starts=starts, tol=args.tol)
                    times.append(time.perf_counter() - start)
                t = float(np.median(times))
                d = result.diagnostics
                flag = "" if d["converged"] else " (not converged)"
                print(f"| {model.name} | {method} | {starts} | {d['iterations']}{flag} | {d['matvecs']} | "
                      f"{t * 1e3:.1f} ms | {unit * 1e6:.1f} us | {t / unit:.0f} | {d['matvecs'] / starts:.0f} | "
                      f"{result.log_z:.4f} |")


if __name__ == "__main__":
    main()
