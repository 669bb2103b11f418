"""Benchmark: an EMF training epoch (train-rbm --method tap2 / tap3) against a PCD-1 epoch on the same data.

EMF's cost per update is the TAP iteration: each sweep is 2 x order matrix products of the
persistent magnetisations (batch x n_visible x n_hidden), and the number of sweeps depends on
how far the fixed point moved since the last update and on how fast the iteration contracts
(slow near a transition, which training approaches). So the table reports the mean sweeps per
update and the fraction of magnetisation updates that did not converge, next to the times.

Each workload is run ``--repeats`` times (default 3) after a warm-up that compiles the kernels;
the table gives the best wall time per epoch (the run least disturbed by other load) and the
process CPU time of that run (all threads), each also as a ratio to PCD-1.

Workloads (same seed, settings, batch and dtype for all three methods; monitoring off):

* digits: the shipped 1797 x 64 binarized digits, 16 hidden, batch 20, lr 0.05, float64;
  ``--epochs`` epochs (default 10) from the customary initialisation, time per epoch averaged
  (the early epochs are cheap for TAP: weak couplings, fixed points that barely move);
* mnist-like: ``--rows`` (default 10000) x 784 random rows with MNIST-like sparsity, 500 hidden,
  batch 100, lr 0.01, float32; the first epoch from initialisation.

    python benchmarks/bench_emf.py [--epochs 10] [--rows 10000] [--repeats 3] [--skip-large]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine  # noqa: E402

METHODS = ("pcd", "tap2", "tap3")


def run(data: np.ndarray, method: str, repeats: int = 1, **settings) -> dict:
    from fecli.training import Trainer, TrainSettings

    s = TrainSettings(method=method, seed=0, monitor_every=0, **settings)
    best = None
    for _ in range(repeats):
        trainer = Trainer(data, s)
        state = trainer.initial_state()
        records: list[dict] = []  # every epoch's record reaches on_epoch, monitored or not
        wall, cpu = time.perf_counter(), time.process_time()
        trainer.run(state, on_epoch=records.append)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if best is None or wall < best[0]:
            best = (wall, cpu, records)
    wall, cpu, records = best
    tap = [r for r in records if "tap_sweeps" in r]
    return {
        "epoch_s": wall / s.epochs,
        "cpu_s": cpu / s.epochs,
        "sweeps": float(np.mean([r["tap_sweeps"] for r in tap])) if tap else None,
        "unconverged": float(np.mean([r["tap_unconverged"] for r in tap])) if tap else None,
    }


def measure(data: np.ndarray, repeats: int, **settings) -> dict[str, dict]:
    """Every method on ``data``, after a one-epoch warm-up on a slice (Numba compiles on first use)."""
    for m in METHODS:
        run(data[: 4 * settings["batch_size"]], m, **{**settings, "epochs": 1})
    return {m: run(data, m, repeats, **settings) for m in METHODS}


def mnist_like(rows: int, nv: int = 784, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.25, 1.5, size=nv)
    return (rng.random((rows, nv)) < p).astype(np.float64)


def table(title: str, results: dict[str, dict]) -> str:
    base = results["pcd"]
    lines = [f"**{title}**", "",
             "| method | s / epoch | vs PCD-1 | CPU s / epoch | CPU vs PCD-1 | TAP sweeps / update | unconverged |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for method, r in results.items():
        sweeps = "-" if r["sweeps"] is None else f"{r['sweeps']:.1f}"
        unconv = "-" if r["unconverged"] is None else f"{100 * r['unconverged']:.1f}%"
        lines.append(f"| {method} | {r['epoch_s']:.3f} | {r['epoch_s'] / base['epoch_s']:.2f}x | {r['cpu_s']:.3f} | "
                     f"{r['cpu_s'] / base['cpu_s']:.2f}x | {sweeps} | {unconv} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    digits = np.load(ROOT / "sample_models" / "data" / "digits8x8_binary.npy").astype(np.float64)
    small = measure(digits, args.repeats, hidden=16, epochs=args.epochs, batch_size=20, lr=0.05, dtype="float64")
    print(table(f"digits 1797 x 64, 16 hidden, batch 20, mean of {args.epochs} epochs", small))
    if not args.skip_large:
        large = measure(mnist_like(args.rows), args.repeats, hidden=500, epochs=1, batch_size=100, lr=0.01,
                        dtype="float32")
        print()
        print(table(f"MNIST-like {args.rows} x 784, 500 hidden, batch 100, float32, first epoch", large))


if __name__ == "__main__":
    main()
