"""Every estimator with its defaults on every shipped model: error against exact ln Z and time.

    python benchmarks/bench_methods.py [--seeds 1 2 3]

The table behind the README's "Which estimator should I use?" guide. For each method and model:
the mean |error| over seeds (nats), the worst one, the mean reported stderr (when the method
reports one), whether the 95% interval held the exact value every time, and the mean wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402

from fecli import estimate, load_model  # noqa: E402
from fecli.estimators import method_names  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "sample_models"
MODELS = ("weak_24x12.h5", "strong_24x12.h5", "digits_64x16.h5")


def covered(result, truth: float) -> bool | None:
    if result.ci_low is None and result.ci_high is None:
        return None
    low = -np.inf if result.ci_low is None else result.ci_low
    high = np.inf if result.ci_high is None else result.ci_high
    return bool(low <= truth <= high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--large", action="store_true",
                        help="instead: time every method with its defaults on a synthetic 784 x 500 model")
    args = parser.parse_args()
    if args.large:
        return large_model_timings()
    reference = json.loads((ROOT / "reference.json").read_text())
    methods = [m for m in method_names() if m != "exact"]
    for name in methods:  # load compiled kernels once, outside the timings
        estimate(load_model(ROOT / MODELS[0]), name, seed=0)
    print(f"Machine: {machine()}\n")
    print("| model | method | kind | mean abs error (nats) | worst | mean stderr | 95% interval held | mean time |")
    print("|---|---|---|---|---|---|---|---|")
    for model_name in MODELS:
        model = load_model(ROOT / model_name)
        truth = reference[model_name]["1.0"]
        for name in methods:
            errors, stderrs, held, times, kind = [], [], [], [], ""
            for seed in args.seeds:
                r = estimate(model, name, seed=seed)
                kind = r.kind
                errors.append(r.log_z - truth)
                times.append(r.wall_time_s)
                if r.stderr is not None:
                    stderrs.append(r.stderr)
                held.append(covered(r, truth))
            abs_err = np.abs(errors)
            interval = "-" if held[0] is None else f"{sum(held)}/{len(held)}"
            se = f"{np.mean(stderrs):.3f}" if stderrs else "none"
            print(f"| {model_name} | {name} | {kind} | {abs_err.mean():.3f} | {abs_err.max():.3f} | {se} | "
                  f"{interval} | {np.mean(times):.3f} s |")


def large_model_timings() -> None:
    """Defaults on a 784 x 500 model (too large to enumerate): ln Z, error bar, time per method."""
    from fecli import RBM

    rng = np.random.default_rng(0)
    model = RBM(0.05 * rng.normal(size=(784, 500)), rng.normal(-1.0, 1.0, size=784), rng.normal(-0.5, 0.5, size=500))
    print(f"Machine: {machine()}\n")
    print("| method (784 x 500, W ~ N(0, 0.05^2), defaults) | ln Z | stderr | kind | time |")
    print("|---|---|---|---|---|")
    for name in [m for m in method_names() if m != "exact"]:
        r = estimate(model, name, seed=1)
        se = "none" if r.stderr is None else f"{r.stderr:.3f}"
        print(f"| {name} | {r.log_z:.3f} | {se} | {r.kind} | {r.wall_time_s:.2f} s |")


if __name__ == "__main__":
    main()
