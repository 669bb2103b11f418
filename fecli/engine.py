"""The sampling engine: estimators as tasks of chunks, run here or on a Dask cluster.

A sampling estimator is two functions: *run chunks* (a picklable job: path, schedule, seed;
a range of chunk ids -> arrays) and *combine* (the arrays of every task, in task order ->
a Result). Chunk i of stream s draws all its randomness from
``SeedSequence(entropy, spawn_key=(s, i))``, and every kernel moves each chain with its own
arithmetic (fecli.kernels.anneal: a chain's numbers do not depend on the chains beside it in
a kernel call), so the arrays do not depend on how chunks are grouped into tasks, nor on
where the tasks run: the combine step sees the same bits whatever the number of workers.

Backends:

* :class:`LocalBackend` (the default): one task holding every chunk, run in this process by
  the Numba kernels on all cores, with per-segment progress (the path fecli always took).
* :class:`DaskBackend`: ``--scheduler ADDRESS`` (a running ``dask scheduler``) or
  ``local:N`` (a LocalCluster of N worker processes). Chunks are grouped into about
  :data:`TASKS_PER_THREAD` tasks per worker thread; progress counts finished tasks; a worker
  that dies has its tasks re-run elsewhere (same seeds, same bits); Ctrl-C cancels the tasks.

Dask is imported only when a scheduler is given (``pip install 'fecli[dask]'``).

The random streams of every estimator are declared here, in :data:`STREAMS` and the reserved
spawn keys below, so that no two uses share one.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterator, Sequence

from .errors import FecliError, InvalidOptionError

#: First element of the spawn key of each random stream: SeedSequence(entropy, spawn_key=(stream, i)).
STREAMS = MappingProxyType({
    "ais": 0,  # forward AIS, reverse AIS and RAISE chains (chunks of CHAINS_PER_CHUNK)
    "exact": 1,  # fecli.sampling: exact samples, blocks of EXACT_BLOCK rows
    "importance": 2,  # importance sampling, chunks of SAMPLES_PER_CHUNK samples
    "ti_up": 3,  # thermodynamic integration: chains moving up the path
    "pt": 4,  # parallel tempering: chain slots (ladder, rung), exchanges and starts
    "ti_down": 5,  # thermodynamic integration: chains moving down the path
    "pt_layers": 44,  # tempering of Gaussian/Potts models: (44, 0, ladder) chains, (44, 1, ladder) exchanges, (44, 2) starts
    "auto": 7,  # auto: seeds of each round's routes
    "trajectory_chains": 40,  # trajectory: particles
    "trajectory_resample": 41,  # trajectory: resampling draws of each replicate
})
#: Spawn keys reserved for streams that are not chunks (never a chunk index in practice).
BOOTSTRAP_KEY = 2**31 - 1  # (BOOTSTRAP_KEY,): bootstrap of the weight summaries
PT_SWAP_KEY = 2**31 - 2  # (pt, PT_SWAP_KEY): exchange draws of the ladders
PT_START_KEY = 2**31 - 3  # (pt, PT_START_KEY): starting states of the ladders
TEMPERED_START_KEY = 2**31 - 3  # (TEMPERED_START_KEY,): seed of the tempering that starts reverse AIS and TI

#: Environment variable read when --scheduler is not given.
SCHEDULER_ENV = "FECLI_SCHEDULER"
#: Tasks per worker thread for one run: enough for balance and re-runs after a fault, few enough
#: that the per-task overhead (a few ms, benchmarks/bench_dask.py) stays small.
TASKS_PER_THREAD = 4
#: Seconds to wait for a scheduler before giving up.
CONNECT_TIMEOUT_S = 5


class SchedulerError(FecliError):
    """The Dask scheduler cannot be reached or used."""


# --------------------------------------------------------------------------- tasks
def task_ranges(n_chunks: int, tasks: int) -> list[range]:
    """Contiguous ranges of chunk ids, near-equal in size, covering 0..n_chunks-1 in order."""
    tasks = max(1, min(n_chunks, tasks))
    edges = [round(i * n_chunks / tasks) for i in range(tasks + 1)]
    return [range(a, b) for a, b in zip(edges, edges[1:]) if b > a]


class LocalBackend:
    """Every chunk in one task, in this process (the Numba kernels use every core)."""

    distributed = False
    threads = 1

    def split(self, n_chunks: int) -> list[range]:
        return [range(n_chunks)]

    def map(self, fn: Callable, shared: Any, tasks: Sequence[Any], label: str = "tasks", progress=None) -> list:
        """[fn(shared, task, progress) for task in tasks]: the task functions report their own progress."""
        return [fn(shared, task, progress) for task in tasks]


LOCAL = LocalBackend()
_CURRENT: contextvars.ContextVar = contextvars.ContextVar("fecli_backend", default=LOCAL)


def backend() -> Any:
    """The backend that sampling estimators run their tasks on (local unless inside :func:`using`)."""
    return _CURRENT.get()


@contextlib.contextmanager
def using(b: Any) -> Iterator[Any]:
    """Run the estimators called inside on backend ``b``."""
    token = _CURRENT.set(b)
    try:
        yield b
    finally:
        _CURRENT.reset(token)


def run_chunks(fn: Callable, shared: Any, n_chunks: int, label: str, progress=None) -> list:
    """Run ``fn(shared, chunk_ids, progress)`` over chunks 0..n_chunks-1, grouped into tasks by the
    current backend; returns the tasks' results in chunk order."""
    b = backend()
    return b.map(fn, shared, b.split(n_chunks), label, progress)


def run_tasks(fn: Callable, shared: Any, tasks: Sequence[Any], label: str, progress=None) -> list:
    """Run ``fn(shared, task, progress)`` for each of ``tasks`` (fixed by the caller) on the current backend."""
    return backend().map(fn, shared, tasks, label, progress)


# --------------------------------------------------------------------------- Dask
def _run_task(fn: Callable, shared: Any, task: Any) -> Any:
    """A task on a worker: one Numba thread per Dask thread (the worker's threads are the cores it
    was given), no progress, the local backend for anything the task itself calls."""
    import numba

    numba.set_num_threads(1)
    with using(LOCAL):
        return fn(shared, task, None)


@dataclass
class DaskBackend:
    """Tasks on a Dask cluster through ``client``."""

    client: Any
    address: str
    distributed = True

    @property
    def threads(self) -> int:
        """Worker threads of the cluster (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def split(self, n_chunks: int) -> list[range]:
        return task_ranges(n_chunks, TASKS_PER_THREAD * self.threads)

    def map(self, fn: Callable, shared: Any, tasks: Sequence[Any], label: str = "tasks", progress=None) -> list:
        """Submit one Dask task per element of ``tasks`` (``shared`` sent once to every worker),
        wait for all, and return their results in order. Progress counts finished tasks; on any
        error or interrupt the unfinished tasks are cancelled."""
        from distributed import as_completed

        client = self.client
        futures = []
        try:
            shared_f = client.scatter(shared, broadcast=True, hash=False) if shared is not None else None
            futures = [client.submit(_run_task, fn, shared_f, task, pure=False) for task in tasks]
            if progress is not None:
                progress(label, 0, len(futures))
            for done, _ in enumerate(as_completed(futures), start=1):
                if progress is not None:
                    progress(label, done, len(futures))
            return client.gather(futures)
        except BaseException:
            if futures:
                client.cancel(futures)
            raise


    def submit(self, fn: Callable, shared: Any, tasks: Sequence[Any]) -> list["Pending"]:
        """Submit ``fn(shared, task, None)`` for each task now, without waiting: handles in task order
        (for work that is consumed later, one piece at a time: the runs of a batch)."""
        shared_f = self.client.scatter(shared, broadcast=True, hash=False)
        futures = [self.client.submit(_run_task, fn, shared_f, task, pure=False) for task in tasks]
        return [Pending(self.client, f, futures) for f in futures]


@dataclass
class Pending:
    """A submitted task and the batch it belongs to (for progress and cancelling)."""

    client: Any
    future: Any
    batch: list

    def result(self, progress=None, label: str = "tasks") -> Any:
        """Wait for the task (progress: finished tasks of the batch) and return its value; an error
        or interrupt cancels the unfinished tasks of the batch."""
        from distributed import wait

        try:
            while True:
                if progress is not None:
                    progress(label, sum(f.done() for f in self.batch), len(self.batch))
                try:
                    wait(self.future, timeout=0.5)
                    break
                except TimeoutError:
                    continue
            return self.future.result()
        except BaseException:
            self.client.cancel(self.batch)
            raise


def parse_scheduler(spec: str) -> tuple[str, int | None]:
    """('local', N) for 'local:N', else ('address', None) for a scheduler address."""
    spec = spec.strip()
    if spec.startswith("local:") or spec == "local":
        text = spec.partition(":")[2]
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n < 1:
            raise InvalidOptionError(f"--scheduler local:N needs a number of worker processes N >= 1, got {spec!r}.")
        return "local", n
    if not spec:
        raise InvalidOptionError("--scheduler needs an address (e.g. tcp://host:8786) or local:N.")
    return spec, None


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise SchedulerError("--scheduler needs Dask: pip install 'fecli[dask]' (dask[distributed]).") from None
    return distributed


@contextlib.contextmanager
def connect(spec: str | None) -> Iterator[Any]:
    """The backend for a --scheduler value: local for None or '', else a Dask client (closed, and a
    local cluster shut down, on exit), set as the current backend inside the block.

    Raises SchedulerError (one line naming the address) when the scheduler cannot be reached,
    InvalidOptionError for a malformed local:N.
    """
    if not spec:
        yield LOCAL
        return
    target, workers = parse_scheduler(spec)
    distributed = _import_distributed()
    import logging

    with contextlib.ExitStack() as stack:
        if workers is not None:
            with _workers_ignore_ctrl_c():
                cluster = stack.enter_context(distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                    silence_logs=logging.ERROR))
            client = stack.enter_context(distributed.Client(cluster))
            client.wait_for_workers(workers)
        else:
            try:
                client = distributed.Client(target, timeout=CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError, ValueError) as exc:
                raise SchedulerError(f"cannot reach the Dask scheduler at {target}: {_reason(exc)}") from None
            stack.callback(client.close)
            _wait_for_a_worker(client, target)
        with using(DaskBackend(client, target)) as b:
            yield b


def _wait_for_a_worker(client: Any, address: str) -> None:
    """Up to CONNECT_TIMEOUT_S for the scheduler to have a worker (tasks would wait forever)."""
    if client.nthreads():
        return
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        raise SchedulerError(f"the Dask scheduler at {address} has no workers; start some with "
                             f"'dask worker {address}'.") from None


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start local worker processes with SIGINT ignored (they inherit it): Ctrl-C in a terminal
    reaches the whole process group, and the workers would each print a traceback; this process
    cancels their tasks and shuts them down instead."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.rstrip(".") + "."


def scheduler_from_env(value: str | None) -> str | None:
    """--scheduler, or the FECLI_SCHEDULER variable when the option is not given."""
    return value if value else (os.environ.get(SCHEDULER_ENV) or None)
