"""Benchmark: fecli's AIS against a plain-numpy AIS and the hardware floor, same run.

Workloads (Salakhutdinov & Murray 2008 protocol on a 784 x 500 RBM):
  short : 100 chains x 1,000 steps (sm08 spacing)
  sm08  : 100 chains x 14,500 steps (the paper's 500 + 4,000 + 10,000)
Peer: AIS vectorised over chains in plain numpy, as PyDeep and most research code
write it (two matrix products per step, np.logaddexp softplus, numpy uniforms).
Floor: per step, the two dense float64 BLAS products the protocol needs as the peer
writes it (V @ W and H @ W^T), timed alone, plus the fused elementwise work (2 softplus
+ 1 sigmoid per hidden unit, 1 sigmoid per visible unit, per chain) in one Numba loop
without random numbers. fecli does less work than that: its states are 0/1, so it sums
the active rows of W (fecli.kernels.anneal) instead of multiplying dense matrices, and
it can run below this floor; the table also breaks fecli's own step into its parts.
Also (--accuracy): every sampling method's error against exact ln Z on the shipped
digits model, with its time, so users can pick a method.

    python benchmarks/bench_ais.py                 # short workload
    python benchmarks/bench_ais.py --workload sm08  # the full protocol (minutes)
    python benchmarks/bench_ais.py --model my_784x500.h5 --accuracy
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {"short": 1000, "sm08": 14500}


def synthetic_model(seed: int = 0):
    """A 784 x 500 RBM with MNIST-like biases and weights (used when no --model is given)."""
    from fecli.model import RBM

    rng = np.random.default_rng(seed)
    return RBM(rng.normal(0.0, 0.05, (784, 500)), rng.normal(-2.0, 1.5, 784), rng.normal(-1.0, 0.5, 500),
               name="synthetic 784x500")


def numpy_ais(model, base_bias, ts, chains, seed):
    """The peer: plain numpy AIS vectorised over chains."""
    rng = np.random.default_rng(seed)
    W, a, b = model.weights, model.visible_bias, model.hidden_bias
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    v = (rng.random((chains, W.shape[0])) < sig(base_bias)).astype(np.float64)
    logw = np.zeros(chains)
    for k in range(1, len(ts)):
        t0, t1 = ts[k - 1], ts[k]
        x = v @ W + b
        logw += (t1 - t0) * (v @ (a - base_bias)) + (np.logaddexp(0, t1 * x) - np.logaddexp(0, t0 * x)).sum(1)
        if k < len(ts) - 1:
            h = (rng.random(x.shape) < sig(t1 * x)).astype(np.float64)
            v = (rng.random(v.shape) < sig((1 - t1) * base_bias + t1 * (a + h @ W.T))).astype(np.float64)
    log_z0 = np.logaddexp(0, base_bias).sum() + W.shape[1] * np.log(2)
    m = logw.max()
    return log_z0 + m + np.log(np.mean(np.exp(logw - m)))


def _elementwise_floor_kernel():
    from numba import njit

    from fecli.kernels.gibbs import sigmoid, softplus

    @njit(cache=True)
    def work(hfield, vfield, t0, t1, out):
        acc = 0.0
        for c in range(hfield.shape[0]):
            for j in range(hfield.shape[1]):
                x = hfield[c, j]
                acc += softplus(t1 * x) - softplus(t0 * x) + sigmoid(t1 * x)
            for i in range(vfield.shape[1]):
                acc += sigmoid(vfield[c, i])
        out[0] = acc

    return work


def floor_seconds(model, chains, steps, repeats=200):
    """Estimated floor for ``steps`` steps: BLAS products + fused elementwise work, measured apart."""
    rng = np.random.default_rng(0)
    nv, nh = model.weights.shape
    v = (rng.random((chains, nv)) < 0.2).astype(np.float64)
    h = (rng.random((chains, nh)) < 0.5).astype(np.float64)
    hf, vf = np.empty((chains, nh)), np.empty((chains, nv))
    W = model.weights
    np.dot(v, W, out=hf)
    start = time.perf_counter()
    for _ in range(repeats):
        np.dot(v, W, out=hf)
        np.dot(h, W.T, out=vf)
    blas = (time.perf_counter() - start) / repeats
    work = _elementwise_floor_kernel()
    out = np.zeros(1)
    work(hf, vf, 0.1, 0.2, out)
    start = time.perf_counter()
    for _ in range(repeats):
        work(hf, vf, 0.1, 0.2, out)
    elementwise = (time.perf_counter() - start) / repeats
    return blas * steps, elementwise * steps


def _parts_kernels():
    from numba import njit, prange

    from fecli.kernels.anneal import _binary_products
    from fecli.kernels.vexp import exp64

    @njit(cache=True, parallel=True)
    def row_sums(bounds, v, h, w, wsum, wt, wtsum, reps):
        for b in prange(bounds.shape[0] - 1):
            lo, hi = bounds[b], bounds[b + 1]
            x = np.empty((hi - lo, w.shape[1]))
            y = np.empty((hi - lo, w.shape[0]))
            idx = np.empty(max(w.shape), np.int64)
            for _ in range(reps):
                _binary_products(v, lo, hi, w, wsum, x, idx)
                _binary_products(h, lo, hi, wt, wtsum, y, idx)

    @njit(cache=True, parallel=True)
    def exps(bounds, args, reps):
        for b in prange(bounds.shape[0] - 1):
            bits = np.empty(args.shape[1], np.int64)
            out = np.empty(args.shape[1])
            for _ in range(reps):
                for r in range(bounds[b], bounds[b + 1]):
                    exp64(args[r], out, bits)

    return row_sums, exps


def fecli_parts(path, v, steps, repeats=200):
    """Seconds for ``steps`` steps of fecli's own two main parts, at the activity of the states v:
    the 0/1 row sums (v W in float64, h W^T in float32) and the vectorised exponentials."""
    from numba import get_num_threads

    from fecli.kernels.anneal import block_bounds
    from fecli.model import sigmoid

    rng = np.random.default_rng(0)
    h = (rng.random((v.shape[0], path.model.n_hidden)) < sigmoid(path.hbias_scaled + v @ path.w_scaled)) * 1.0
    bounds = block_bounds(v.shape[0], get_num_threads())
    row_sums, exps = _parts_kernels()
    args = -rng.random((v.shape[0], 2 * path.model.n_hidden + path.model.n_visible)) * 5
    timings = []
    for f, a in ((row_sums, (bounds, v, h, path.w_scaled, path.w_colsum, path.wt32, path.wt32_colsum)),
                 (exps, (bounds, args))):
        f(*a, 1)
        start = time.perf_counter()
        f(*a, repeats)
        timings.append((time.perf_counter() - start) / repeats * steps)
    return timings[0], timings[1], float(v.mean()), float(h.mean())


def accuracy_table(seed: int) -> list[str]:
    from fecli.api import estimate
    from fecli.io import load_model

    path = ROOT / "sample_models" / "digits_64x16.h5"
    exact = json.loads((ROOT / "sample_models" / "reference.json").read_text())["digits_64x16.h5"]["1.0"]
    model = load_model(path)
    data = ROOT / "sample_models" / "data" / "digits8x8_binary.npy"
    rows = ["| method (digits 64x16, defaults) | error vs exact | stderr | time s | error x time |",
            "|---|---:|---:|---:|---:|"]
    for method, extra in [("ais", {}), ("ais", {"data": data}), ("reverse-ais", {}), ("importance", {}),
                          ("importance", {"data": data}), ("pt", {}), ("ti", {})]:
        estimate(model, method, seed=seed, steps=5) if method in ("ais", "ti") else None  # warm the JIT
        r = estimate(model, method, seed=seed, **extra)
        err = r.log_z - exact
        label = method + (" --data" if extra else "")
        rows.append(f"| {label} | {err:+.4f} | {r.stderr:.4f} | {r.wall_time_s:.2f} | {abs(err) * r.wall_time_s:.4f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=list(WORKLOADS), default="short")
    parser.add_argument("--steps", type=int, default=None, help="override the workload's step count")
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--model", type=Path, default=None, help="a 784x500 fecli-rbm file (default: synthetic)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-peer", action="store_true", help="do not run the numpy peer (long workloads)")
    parser.add_argument("--accuracy", action="store_true", help="also the error-vs-time table on digits")
    args = parser.parse_args()

    from fecli.estimators._sampling_common import base_model, make_schedule
    from fecli.estimators.ais import ais
    from fecli.io import load_model

    model = load_model(args.model) if args.model else synthetic_model(args.seed)
    steps = args.steps or WORKLOADS[args.workload]
    ts = make_schedule("sm08", steps)
    ais(model, chains=args.chains, steps=5, seed=args.seed)  # compile / load the kernel cache

    start = time.perf_counter()
    r = ais(model, chains=args.chains, steps=steps, schedule="sm08", seed=args.seed)
    fecli_s = time.perf_counter() - start
    from fecli.estimators._sampling_common import AnnealingPath, Chains, base_samples, chain_states, kernel_states

    path = AnnealingPath(model, 1.0, base_model(model, 1.0, None)[0])
    states = kernel_states(chain_states(args.seed, args.chains))
    walkers = Chains(path, base_samples(path, states), states)
    walkers.sweep(1.0, 200)  # states near the target: the activity of the late steps, which dominate
    sums_s, exps_s, v_act, h_act = fecli_parts(path, walkers.v, steps)

    peer_s = peer_z = None
    if not args.skip_peer:
        base, _ = base_model(model, 1.0, None)
        start = time.perf_counter()
        peer_z = numpy_ais(model, base, ts, args.chains, args.seed)
        peer_s = time.perf_counter() - start
    blas_s, elem_s = floor_seconds(model, args.chains, steps)
    floor_s = blas_s + elem_s

    cores = os.cpu_count()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, {cores} cores, "
          f"Python {platform.python_version()}, NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}")
    print(f"model: {model.name} ({model.n_visible}x{model.n_hidden}), {args.chains} chains x {steps} steps (sm08)\n")
    print("| run | seconds | ln Z | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| fecli ais | {fecli_s:.2f} | {r.log_z:.3f} +- {r.stderr:.3f} | 1.00 |")
    if peer_s is not None:
        print(f"| numpy AIS (peer) | {peer_s:.2f} | {peer_z:.3f} | peer / fecli = {peer_s / fecli_s:.2f} |")
    print(f"| floor: BLAS products | {blas_s:.2f} | | |")
    print(f"| floor: fused elementwise | {elem_s:.2f} | | |")
    print(f"| floor total | {floor_s:.2f} | | fecli / floor = {fecli_s / floor_s:.2f} |")
    print(f"| fecli's parts: 0/1 row sums (v {v_act:.2f}, h {h_act:.2f} active) | {sums_s:.2f} | | |")
    print(f"| fecli's parts: vectorised exponentials | {exps_s:.2f} | | |")
    print(f"| fecli's parts total | {sums_s + exps_s:.2f} | | fecli / parts = {fecli_s / (sums_s + exps_s):.2f} |")
    if args.accuracy:
        print()
        print("\n".join(accuracy_table(args.seed)))


if __name__ == "__main__":
    main()
