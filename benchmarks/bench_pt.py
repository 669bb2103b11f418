"""Benchmark: pt (parallel tempering + BAR) against fecli's AIS and exact ln Z, same run.

Both methods run at their defaults on the shipped digits model (64 x 16, exact ln Z by
enumeration), over several seeds, after one warm-up run each so that Numba's compilation
is not counted. Reported per method: best and mean wall time (the best is the least disturbed
by other load on the machine; the load average is printed), root-mean-square error against exact,
mean reported standard error, how many 95% intervals cover exact and how many runs warned;
then the time ratio pt / ais. With --hard, the same for two multimodal models of issue 10
(fecli.references: the two-mode 12 x 2 model at strength 16 and the 6 x 6 Ising torus at
K = 0.6 as an 18 x 18 RBM),
where "covered or warned" is what counts.

    python benchmarks/bench_pt.py              # digits 64x16, 5 seeds
    python benchmarks/bench_pt.py --seeds 10 --hard
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def hard_models():
    from fecli.references import ising_torus, two_mode_model

    yield two_mode_model(16.0)
    yield ising_torus(6, 0.6)[0]


def measure(model, method: str, exact: float, seeds: int) -> dict:
    from fecli import estimate

    estimate(model, method, seed=10_000)  # warm-up: compile once, outside the timing
    times, errors, stderrs, covered, warned = [], [], [], 0, 0
    for seed in range(seeds):
        start = time.perf_counter()
        r = estimate(model, method, seed=seed)
        times.append(time.perf_counter() - start)
        errors.append(r.log_z - exact)
        stderrs.append(r.stderr)
        covered += r.ci_low <= exact <= r.ci_high
        warned += bool(r.warnings)
    return {"time": float(np.mean(times)), "best": float(np.min(times)),
            "rmse": float(np.sqrt(np.mean(np.square(errors)))), "bias": float(np.mean(errors)), "stderr": float(np.mean(stderrs)), "covered": covered,
            "warned": warned, "n": seeds}


def main() -> None:
    from common import machine

    from fecli import estimate
    from fecli.io import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--hard", action="store_true", help="also the two-mode and Ising models of issue 10")
    args = parser.parse_args()

    models = [load_model(ROOT / "sample_models" / "digits_64x16.h5")]
    if args.hard:
        models += list(hard_models())
    print(f"machine: {machine()}")
    print(f"load average {os.getloadavg()[0]:.1f}; defaults, {args.seeds} seeds per row, compilation excluded\n")
    print("| model | method | exact ln Z | best time | mean time | RMS error | mean stderr | 95% covers | warned |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in models:
        exact = estimate(model, "exact").log_z
        rows = {m: measure(model, m, exact, args.seeds) for m in ("pt", "ais")}
        for method, s in rows.items():
            print(f"| {Path(model.name).name} | {method} | {exact:.4f} | {s['best']:.2f} s | {s['time']:.2f} s | "
                  f"{s['rmse']:.4f} | "
                  f"{s['stderr']:.4f} | {s['covered']}/{s['n']} | {s['warned']}/{s['n']} |")
        ratio = rows["pt"]["best"] / rows["ais"]["best"]
        print(f"|  | pt / ais | | x{ratio:.2f} | | x{rows['pt']['rmse'] / rows['ais']['rmse']:.2f} | | | |")


if __name__ == "__main__":
    main()
