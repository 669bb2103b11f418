"""ln Z along training (issue 10, item 4): cost and accuracy of `trajectory` against AIS.

Workloads, in one run:

1. digits 64 x 16 (enumerable): PCD-1, 20 epochs, 30 snapshots. `trajectory` at its defaults over
   several seeds against exact ln Z at every snapshot (largest error, coverage of the 95%
   intervals), and `ais` at its defaults with --data on the final model.
2. 784 x 500 on "upscaled digits" (the 8x8 digits blown up 3x3 and padded to 28 x 28, 10,000 rows
   with 3% pixel noise: image-like structure at MNIST's size): PCD-1, a few epochs with
   20 snapshots. The training time with the tracked log-likelihood monitored every epoch against
   monitoring off; then `trajectory` (defaults) and `ais` (defaults, --data) on the final model,
   timed, next to a long AIS reference (10x the default steps, --data).

Usage: python benchmarks/bench_trajectory.py [--epochs 4] [--seeds 3] [--rows 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "sample_models", "data", "digits8x8_binary.npy")


def upscaled_digits(rows: int, seed: int = 0) -> np.ndarray:
    digits = np.load(DIGITS).reshape(-1, 8, 8)
    big = np.kron(digits, np.ones((3, 3)))  # 24 x 24
    big = np.pad(big, ((0, 0), (2, 2), (2, 2))).reshape(-1, 784)
    rng = np.random.default_rng(seed)
    out = big[rng.integers(0, big.shape[0], rows)]
    flip = rng.random(out.shape) < 0.03
    return np.abs(out - flip)


def small_model(seeds: int) -> None:
    from fecli.estimators.ais import ais
    from fecli.estimators.exact import log_partition
    from fecli.estimators.trajectory import anchors_of, run_trajectory
    from fecli.training import train

    data = np.load(DIGITS)
    out = train(data, hidden=16, epochs=20, seed=1, snapshots=30, monitor_every=0)
    anchors, updates = anchors_of(out.snapshots, out.model)
    exact = np.array([log_partition(m) for m in anchors])
    worst, inside, final, seconds = [], [], [], []
    for seed in range(seeds):
        start = time.perf_counter()
        run = run_trajectory(anchors, updates, seed=seed)
        seconds.append(time.perf_counter() - start)
        c = [p.summary() for p in run.points]
        err = np.array([x.log_z for x in c]) - exact
        worst.append(np.abs(err).max())
        inside += [x.ci_low <= e <= x.ci_high for x, e in zip(c[1:], exact[1:])]
        final.append((err[-1], c[-1].stderr))
    print(f"digits 64x16, 30 snapshots, trajectory defaults, {seeds} seeds: {np.mean(seconds):.2f} s per run; "
          f"largest |error| over snapshots {max(worst):.3f} nats; 95% intervals cover exact at "
          f"{np.mean(inside):.0%} of {len(inside)} snapshot estimates; final error/stderr "
          + ", ".join(f"{e:+.3f}/{s:.3f}" for e, s in final))
    start = time.perf_counter()
    r = ais(out.model, data=data, seed=0)
    print(f"  ais defaults --data on the final model: {time.perf_counter() - start:.2f} s, "
          f"error {r.log_z - exact[-1]:+.3f} (stderr {r.stderr:.3f})")


def large_model(epochs: int, rows: int, snapshots: int) -> None:
    from fecli.estimators.ais import ais
    from fecli.estimators.trajectory import anchors_of, combine_replicates, run_trajectory
    from fecli.training import train

    data = upscaled_digits(rows)
    opts = dict(hidden=500, epochs=epochs, seed=0, batch_size=100, lr=0.01, snapshots=snapshots)
    start = time.perf_counter()
    plain = train(data, monitor_every=0, **opts)
    t_plain = time.perf_counter() - start
    from fecli.training.trainer import Trainer

    tracker_seconds = [0.0]
    original = Trainer._tracked_log_z

    def timed(self, state, model):
        begin = time.perf_counter()
        try:
            return original(self, state, model)
        finally:
            tracker_seconds[0] += time.perf_counter() - begin

    Trainer._tracked_log_z = timed
    start = time.perf_counter()
    monitored = train(data, monitor_every=1, **opts)
    t_mon = time.perf_counter() - start
    Trainer._tracked_log_z = original
    h = monitored.history
    print(f"784x500 upscaled digits, {rows} rows, {epochs} epochs, {snapshots} snapshots, lr 0.01: training {t_plain:.1f} s "
          f"unmonitored, {t_mon:.1f} s monitored every epoch, of which the ln Z tracker {tracker_seconds[0]:.1f} s "
          f"({tracker_seconds[0] / t_plain:.0%} of unmonitored training; the rest is recon, PLL and the LL's -F)")
    print("  tracked ln Z per epoch: " + ", ".join(f"{z:.2f}±{s:.2f}" for z, s in zip(h["log_z"], h["log_z_stderr"]))
          + "".join(f"\n  warning: {w}" for w in monitored.warnings))
    assert np.array_equal(plain.model.weights, monitored.model.weights)
    model = plain.model
    anchors, updates = anchors_of(plain.snapshots, model)
    start = time.perf_counter()
    run = run_trajectory(anchors, updates, seed=0)
    t_traj = time.perf_counter() - start
    c = run.points[-1].summary()
    start = time.perf_counter()
    a = ais(model, data=data, seed=0)
    t_ais = time.perf_counter() - start
    start = time.perf_counter()
    ref = ais(model, data=data, seed=1, steps=30000)
    t_ref = time.perf_counter() - start
    print(f"  trajectory (defaults): {c.log_z:.3f} ± {c.stderr:.3f} in {t_traj:.1f} s; "
          f"ais (defaults, --data): {a.log_z:.3f} ± {a.stderr:.3f} in {t_ais:.1f} s; "
          f"reference ais 30,000 steps: {ref.log_z:.3f} ± {ref.stderr:.3f} in {t_ref:.1f} s")


def warm_up() -> None:
    """Compile (or load) the kernels before anything is timed."""
    from fecli.estimators.ais import ais
    from fecli.estimators.trajectory import run_trajectory
    from fecli.model import RBM

    rng = np.random.default_rng(0)
    m = RBM(0.1 * rng.normal(size=(6, 4)), np.zeros(6), np.zeros(4))
    run_trajectory([m, m], chains=4, replicates=2, steps=2, seed=0)
    run_trajectory([m, m], chains=4, replicates=2, steps=2, seed=0, initial="factorised")
    ais(m, chains=4, steps=10, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--only", choices=("small", "large"), default=None)
    args = parser.parse_args()
    print(machine())
    warm_up()
    if args.only != "large":
        small_model(args.seeds)
    if args.only != "small":
        large_model(args.epochs, args.rows, args.snapshots)


if __name__ == "__main__":
    main()
