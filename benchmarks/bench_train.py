"""Benchmark: one PCD-1 epoch of fecli against scikit-learn's BernoulliRBM and the GEMM floor,
and the quality of both at equal epochs on binarized digits (exact test log-likelihood).

Speed workload (issue 3): 60,000 x 784 binary rows, random with MNIST-like sparsity (per-unit
activity p_i ~ Beta(0.25, 1.5), mean ~0.14, many near-empty units), 500 hidden units, batch 100,
one epoch, PCD-1, the same dtype for both. Monitoring is off (scikit-learn has none).

The floor is the dense matrix products one PCD-1 update needs, timed alone with preallocated outputs,
600 times (one epoch): chains' visible fields H W^T (100 x 500 x 784), the hidden fields of the
data and of the chains [V; V_neg] W (200 x 784 x 500), and the weight gradient
[V; V_neg]^T [P; -P_neg] (784 x 200 x 500) - five 100 x 784 x 500 products in all, the same count
scikit-learn performs. On data this sparse fecli takes its fused path (data and chain states are
0/1, mostly 0): each update is two parallel Numba regions, no BLAS call - one over rows (p(h|v) of
the data and the Gibbs step of each chain, by adding the weight rows of the active units), one over
visible units (the weight-gradient row fused with the momentum update) - so it can run below this
dense floor. The "dense BLAS" column forces the BLAS products for every update.

Quality: the shipped 1797 x 64 binarized digits, split 80/20 (seed 0), 16 hidden units,
20 epochs, float64; exact ln Z by enumeration. Both with scikit-learn's defaults (lr 0.1, batch
10, no momentum), and fecli with its own defaults; three seeds each. The digits have 32% ones, so
fecli picks BLAS for them; one row forces the fused sparse path with the same settings, to show
that it trains as well.

    pip install -e '.[bench]'
    python benchmarks/bench_train.py [--rows 60000] [--repeats 3] [--dtype float32 float64] [--skip-quality]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, os.path.dirname(__file__))
from common import best_time  # noqa: E402

NV, NH, BATCH = 784, 500, 100


def make_data(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.25, 1.5, size=NV)
    out = np.empty((rows, NV), dtype=np.float64)
    for start in range(0, rows, 10000):
        block = rng.random((min(10000, rows - start), NV))
        out[start:start + block.shape[0]] = block < p
    return out


def fecli_epoch(data: np.ndarray, dtype: str, products: str = "auto") -> None:
    from fecli.training import Trainer, TrainSettings

    settings = TrainSettings(hidden=NH, method="pcd", k=1, epochs=1, batch_size=BATCH, lr=0.01, lr_decay=0.0,
                             momentum=0.0, seed=0, dtype=dtype, monitor_every=0)
    trainer = Trainer(data, settings, products=products)
    trainer.run(trainer.initial_state())


def sklearn_epoch(data: np.ndarray) -> None:
    from sklearn.neural_network import BernoulliRBM

    BernoulliRBM(n_components=NH, batch_size=BATCH, n_iter=1, learning_rate=0.01, random_state=0).fit(data)


def gemm_floor(rows: int, dtype: str) -> float:
    rng = np.random.default_rng(1)
    dt = np.dtype(dtype)
    w = rng.normal(0, 0.01, (NV, NH)).astype(dt)
    h = (rng.random((BATCH, NH)) < 0.5).astype(dt)
    sv = (rng.random((2 * BATCH, NV)) < 0.15).astype(dt)
    sh = rng.random((2 * BATCH, NH)).astype(dt)
    grad = np.empty((NV, NH), dtype=dt)
    steps = -(-rows // BATCH)

    def epoch() -> None:
        for _ in range(steps):
            np.dot(h, w.T, out=sv[BATCH:])
            np.dot(sv, w, out=sh)
            np.dot(sv.T, sh, out=grad)

    return epoch


def warm_up(dtype: str) -> None:
    """Compile / load the Numba kernels outside the timings."""
    for products in ("sparse", "dense"):
        fecli_epoch(make_data(2 * BATCH, seed=5), dtype, products)


def speed(rows: int, repeats: int, dtypes: list[str]) -> None:
    data = make_data(rows)
    print(f"Speed: {rows} x {NV} binary rows (mean activity {data.mean():.3f}), {NH} hidden, batch {BATCH}, "
          f"PCD-1, one epoch, best of {repeats}")
    print()
    print("fecli picks its fused sparse path for data this sparse (mean activity <= 0.25): two parallel Numba")
    print("regions per update, no BLAS; the dense column forces BLAS for every product, as scikit-learn does.")
    print()
    print("| dtype | fecli | fecli, dense BLAS | scikit-learn | GEMM floor | sklearn / fecli | fecli / floor |")
    print("|---|---|---|---|---|---|---|")
    for dtype in dtypes:
        warm_up(dtype)
        x = np.ascontiguousarray(data, dtype=dtype)
        t_floor = best_time(gemm_floor(rows, dtype), repeats)
        t_fecli = best_time(lambda: fecli_epoch(x, dtype), repeats)
        t_dense = best_time(lambda: fecli_epoch(x, dtype, "dense"), repeats)
        t_sk = best_time(lambda: sklearn_epoch(x), repeats)
        print(f"| {dtype} | {t_fecli:.2f} s | {t_dense:.2f} s | {t_sk:.2f} s | {t_floor:.2f} s | "
              f"{t_sk / t_fecli:.2f}x | {t_fecli / t_floor:.2f}x |", flush=True)
    print()


def quality(epochs: int, seeds: list[int]) -> None:
    from sklearn.neural_network import BernoulliRBM

    from fecli.estimators.exact import log_partition
    from fecli.model import RBM
    from fecli.training import train

    digits = np.load(ROOT / "sample_models" / "data" / "digits8x8_binary.npy").astype(np.float64)
    perm = np.random.default_rng(0).permutation(len(digits))
    n_test = len(digits) // 5
    test, train_rows = digits[perm[:n_test]], digits[perm[n_test:]]

    def test_ll(model: RBM) -> float:
        return float(np.mean(-model.free_energy(test)) - log_partition(model))

    from fecli.training import Trainer, TrainSettings

    def fused(seed: int) -> RBM:
        settings = TrainSettings(hidden=16, epochs=epochs, lr=0.1, batch_size=10, momentum=0.0, lr_decay=0.0,
                                 seed=seed, dtype="float64", monitor_every=0)
        trainer = Trainer(train_rows, settings, products="sparse")
        assert trainer.fused
        state = trainer.initial_state()
        trainer.run(state)
        return trainer.model(state)

    runs = {"scikit-learn PCD-1 (lr 0.1, batch 10)": [], "fecli PCD-1, same settings": [],
            "fecli PCD-1, same settings, fused sparse path (forced)": [], "fecli PCD-1, fecli defaults": []}
    for seed in seeds:
        sk = BernoulliRBM(n_components=16, learning_rate=0.1, batch_size=10, n_iter=epochs, random_state=seed)
        sk.fit(train_rows)
        runs["scikit-learn PCD-1 (lr 0.1, batch 10)"].append(
            test_ll(RBM(sk.components_.T, sk.intercept_visible_, sk.intercept_hidden_)))
        same = train(train_rows, hidden=16, epochs=epochs, lr=0.1, batch_size=10, momentum=0.0, lr_decay=0.0,
                     seed=seed, dtype="float64", monitor_every=0)
        runs["fecli PCD-1, same settings"].append(test_ll(same.model))
        runs["fecli PCD-1, same settings, fused sparse path (forced)"].append(test_ll(fused(seed)))
        own = train(train_rows, hidden=16, epochs=epochs, seed=seed, dtype="float64", monitor_every=0)
        runs["fecli PCD-1, fecli defaults"].append(test_ll(own.model))
    print(f"Quality: digits 8x8 binarized, {len(train_rows)} train / {n_test} test rows, 16 hidden, {epochs} epochs, "
          f"float64, seeds {seeds}; exact test log-likelihood (nats per example, higher is better)")
    print()
    print("| trainer | mean test LL | min | max |")
    print("|---|---|---|---|")
    for name, values in runs.items():
        print(f"| {name} | {np.mean(values):.3f} | {np.min(values):.3f} | {np.max(values):.3f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the quality comparison")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()

    import numba
    import sklearn

    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, numba {numba.__version__}, scikit-learn {sklearn.__version__}")
    print()
    if not args.skip_speed:
        speed(args.rows, args.repeats, args.dtype)
    if not args.skip_quality:
        quality(args.epochs, args.seeds)


if __name__ == "__main__":
    main()
