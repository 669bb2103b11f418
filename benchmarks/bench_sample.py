"""Benchmark: `fecli sample` (Gibbs and exact) against a plain-numpy block Gibbs sampler, same run.

Workload: N samples from C chains after B burn-in sweeps, one sample every T sweeps
(B + ceil(N / C) * T sweeps of C chains in all), on the shipped digits model (64 x 16)
and a synthetic 784 x 500 RBM.
Peer: block Gibbs vectorised over chains in plain numpy (two matrix products per sweep,
numpy uniforms and sigmoids), as research code usually writes it.
Floor: the two BLAS products per sweep (V @ W and H @ W^T) alone.
Exact sampling (digits only): fecli's exact sampler, whose cost is one 2^16 table.

    python benchmarks/bench_sample.py                    # default workload
    python benchmarks/bench_sample.py --n 20000 --chains 100
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import best_time, machine  # noqa: E402


def synthetic_model(seed: int = 0):
    from fecli.model import RBM

    rng = np.random.default_rng(seed)
    return RBM(rng.normal(0.0, 0.05, (784, 500)), rng.normal(-2.0, 1.5, 784), rng.normal(-1.0, 0.5, 500),
               name="synthetic 784x500")


def numpy_gibbs(model, n, chains, burn_in, thin, seed):
    """The peer: plain numpy block Gibbs, one sample per chain every ``thin`` sweeps."""
    rng = np.random.default_rng(seed)
    W, a, b = model.weights, model.visible_bias, model.hidden_bias
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    v = (rng.random((chains, W.shape[0])) < 0.5).astype(np.float64)
    out = []
    rounds = math.ceil(n / chains)
    for sweep in range(burn_in + rounds * thin):
        h = (rng.random((chains, W.shape[1])) < sig(v @ W + b)).astype(np.float64)
        v = (rng.random(v.shape) < sig(h @ W.T + a)).astype(np.float64)
        if sweep >= burn_in and (sweep - burn_in + 1) % thin == 0:
            out.append(v.astype(np.uint8))
    return np.concatenate(out)[:n]


def floor(model, chains, sweeps):
    W = model.weights
    v = np.ones((chains, W.shape[0]))
    h = np.ones((chains, W.shape[1]))
    for _ in range(sweeps):
        v @ W
        h @ W.T


def main() -> None:
    from fecli.io import load_model
    from fecli.sampling import sample

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--chains", type=int, default=50)
    parser.add_argument("--burn-in", type=int, default=200)
    parser.add_argument("--thin", type=int, default=10)
    args = parser.parse_args()
    sweeps = args.burn_in + math.ceil(args.n / args.chains) * args.thin
    models = [load_model(ROOT / "sample_models" / "digits_64x16.h5"), synthetic_model()]
    opts = dict(chains=args.chains, burn_in=args.burn_in, thin=args.thin, seed=1)
    sample(models[0], 10, method="gibbs", **opts)  # compile outside the timings
    print(f"N = {args.n} samples, {args.chains} chains, burn-in {args.burn_in}, thin {args.thin} "
          f"({sweeps} sweeps)\n")
    print("| model | method | fecli (s) | numpy peer (s) | BLAS floor (s) | peer / fecli | fecli / floor |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for model in models:
        t_fecli = best_time(lambda: sample(model, args.n, method="gibbs", **opts), 2)
        t_peer = best_time(lambda: numpy_gibbs(model, args.n, args.chains, args.burn_in, args.thin, 1), 2)
        t_floor = best_time(lambda: floor(model, args.chains, sweeps), 2)
        print(f"| {model.name} | gibbs | {t_fecli:.3f} | {t_peer:.3f} | {t_floor:.3f} | "
              f"{t_peer / t_fecli:.1f} | {t_fecli / t_floor:.1f} |")
    t_exact = best_time(lambda: sample(models[0], args.n, method="exact", seed=1), 2)
    print(f"| {models[0].name} | exact | {t_exact:.3f} | - | - | - | - |")
    print(f"\nmachine: {machine()}")


if __name__ == "__main__":
    main()
