"""Benchmark: fecli's sampling engine on Dask (fecli.engine) against the local backend, same run.

Measures, on one machine:
  1. per-task overhead: a LocalCluster's round trip for tasks that do nothing (submit, run,
     gather), and the one-off cost of sending a 784 x 500 annealing path to every worker;
  2. a 784 x 500 AIS run (synthetic model, as benchmarks/bench_ais.py): the local backend
     (one process, Numba threads on every core), then LocalClusters of 1 and 2 worker
     processes (one Numba thread each); the ln Z of every run must be the same bits;
  3. from these, the estimate for N machines of c cores:
         T(N) ~ T_chunk * chunks / (N c) + tasks * overhead / (N c) + startup,
     with T_chunk the measured seconds per chunk of 16 chains on one core.

    python benchmarks/bench_dask.py                       # 512 chains x 1,000 steps
    python benchmarks/bench_dask.py --chains 1024 --steps 2000
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_ais import synthetic_model  # noqa: E402
from common import machine  # noqa: E402


def nothing(shared, task, progress=None):
    return task


def timed(func):
    wall, cpu = time.perf_counter(), time.process_time()
    out = func()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def cluster(workers: int):
    import distributed

    lc = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR)
    client = distributed.Client(lc)
    client.wait_for_workers(workers)
    return lc, client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=512)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=200, help="no-op tasks for the overhead")
    args = parser.parse_args()

    from fecli import engine
    from fecli.estimators._sampling_common import CHAINS_PER_CHUNK, AnnealingPath, n_chunks
    from fecli.estimators.ais import ais

    model = synthetic_model(0)
    run = dict(chains=args.chains, steps=args.steps, schedule="linear", seed=1)
    ais(model, chains=16, steps=5, seed=1)  # load the kernels from Numba's cache
    local, local_s, local_cpu = timed(lambda: ais(model, **run))
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at start")
    print(f"model: {model.name}, {args.chains} chains ({n_chunks(args.chains)} chunks of {CHAINS_PER_CHUNK}) "
          f"x {args.steps} steps (linear)\n")
    rows = [("local backend (Numba threads)", local_s, local_cpu, local.log_z, 1)]

    overhead = {}
    for workers in (1, 2):
        start = time.perf_counter()
        lc, client = cluster(workers)
        startup = time.perf_counter() - start
        backend = engine.DaskBackend(client, lc.scheduler_address)
        with engine.using(backend):
            ais(model, chains=16 * backend.threads, steps=5, seed=1)  # workers load the kernels
            tasks = len(backend.split(n_chunks(args.chains)))
            result, wall, cpu = timed(lambda: ais(model, **run))
        if workers == 2:
            _, empty_s, _ = timed(lambda: backend.map(nothing, None, list(range(args.tasks))))
            path = AnnealingPath(model, 1.0, model.visible_bias * 0)
            _, send_s, _ = timed(lambda: backend.map(nothing, path, list(range(2))))
            overhead = {"task": empty_s / args.tasks, "path": send_s, "startup": startup}
        rows.append((f"Dask LocalCluster, {workers} worker process{'es' if workers > 1 else ''} ({tasks} tasks)",
                     wall, cpu, result.log_z, workers))
        client.close()
        lc.close()

    print("| run | wall s | client CPU s | ln Z | same bits as local | speed-up vs 1 worker |")
    print("|---|---:|---:|---:|:---:|---:|")
    one = rows[1][1]
    for name, wall, cpu, log_z, _ in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {log_z:.6f} | {'yes' if log_z == local.log_z else 'NO'} | "
              f"{one / wall:.2f} |")
    chunk_s = one / n_chunks(args.chains)
    print(f"\nper-task overhead (no-op tasks, 2 workers): {1e3 * overhead['task']:.1f} ms; sending the 784x500 path "
          f"to the workers: {1e3 * overhead['path']:.0f} ms; cluster start: {overhead['startup']:.1f} s")
    print(f"one chunk of {CHAINS_PER_CHUNK} chains x {args.steps} steps on one worker core: {chunk_s:.3f} s "
          f"({1e3 * chunk_s / args.steps:.3f} ms per step)")
    per_core_steps = chunk_s / args.steps
    for machines, cores in ((1, 2), (10, 32), (100, 32)):
        slots = machines * cores
        chains, steps = 100_000, 14_500
        chunks = n_chunks(chains)
        tasks = min(chunks, engine.TASKS_PER_THREAD * slots)
        est = per_core_steps * steps * -(-chunks // slots) + tasks * overhead["task"] / slots + overhead["path"]
        print(f"estimate: {machines} machine(s) x {cores} cores, {chains:,} chains x {steps:,} steps (sm08): "
              f"{est / 60:.1f} min ({chunks:,} chunks in {tasks:,} tasks; {per_core_steps * steps * chunks / 3600:.1f} "
              "core-hours of chunks)")


if __name__ == "__main__":
    main()
