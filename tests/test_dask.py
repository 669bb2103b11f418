"""The sampling engine on a Dask cluster: same seed, same bits as the local backend.

One LocalCluster of 2 worker processes serves the module (started once: about a second; the
workers load the kernels from Numba's cache). Small models and short runs keep each test to
seconds. Without dask installed (the optional extra fecli[dask]) the cluster tests are skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from fecli import engine
from fecli.api import estimate
from fecli.cli import cli
from fecli.io import load_model
from fecli.model import RBM

from .conftest import ROOT, SAMPLES

WEAK = SAMPLES / "weak_24x12.h5"
STRONG = SAMPLES / "strong_24x12.h5"

#: Short runs of every sampling estimator that has tasks (reverse-ais also from a tempered start).
CASES = {
    "ais": dict(chains=50, steps=60),
    "reverse-ais": dict(chains=40, steps=40),
    "importance": dict(samples=2500),
    "ti": dict(chains=36, steps=12, sweeps=2),
    "pt": dict(chains=5, samples=60, burn_in=80),
    "umbrella": dict(chains=3, samples=40, burn_in=40),
}


def same_result(a, b) -> None:
    """Bit for bit: value, error, interval, diagnostics and states (wall time aside)."""
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        d.pop("wall_time_s", None)
    assert json.dumps(da, sort_keys=True) == json.dumps(db, sort_keys=True)
    if a.states is not None or b.states is not None:
        assert np.array_equal(a.states, b.states)


def test_a_local_run_does_not_import_dask():
    code = ("import sys\nfrom fecli.cli import cli\ntry:\n"
            f"    cli.main(['estimate', {str(WEAK)!r}, '-m', 'ais,importance,ti', '--chains', '8', '--steps', '5', "
            "'--samples', '100', '--seed', '1', '--format', 'json'])\nexcept SystemExit as exc:\n"
            "    assert exc.code == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    env = {k: v for k, v in os.environ.items() if k != engine.SCHEDULER_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_task_ranges_cover_the_chunks_in_order():
    assert engine.task_ranges(10, 4) == [range(0, 2), range(2, 5), range(5, 8), range(8, 10)]
    assert engine.task_ranges(3, 8) == [range(0, 1), range(1, 2), range(2, 3)]
    assert engine.task_ranges(1, 1) == [range(0, 1)]


class SingleChunks(engine.LocalBackend):
    """Every chunk its own task, here: the grouping changes, the numbers must not."""

    def split(self, n_chunks):
        return [range(i, i + 1) for i in range(n_chunks)]


@pytest.mark.parametrize("method", ["ais", "reverse-ais", "importance", "ti", "pt"])
def test_grouping_chunks_into_tasks_changes_no_bit(method):
    model = load_model(WEAK)
    ref = estimate(model, method, seed=5, **CASES[method])
    with engine.using(SingleChunks()):
        same_result(ref, estimate(model, method, seed=5, **CASES[method]))


def test_scheduler_values_are_checked():
    assert engine.parse_scheduler("local:3") == ("local", 3)
    assert engine.parse_scheduler("tcp://10.0.0.1:8786") == ("tcp://10.0.0.1:8786", None)
    for bad in ("local:0", "local:x", "local"):
        with pytest.raises(engine.InvalidOptionError, match="local:N"):
            engine.parse_scheduler(bad)


def test_without_dask_installed_the_scheduler_option_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    result = CliRunner().invoke(cli, ["estimate", str(WEAK), "-m", "ais", "--scheduler", "local:2"])
    assert result.exit_code == 1
    assert result.output.strip() == ("fecli: error: --scheduler needs Dask: pip install 'fecli[dask]' "
                                     "(dask[distributed]).")


# --------------------------------------------------------------------------- on a cluster
@pytest.fixture(scope="module")
def cluster():
    """(client, backend) of a LocalCluster with 2 worker processes, one thread each."""
    import logging

    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as lc, distributed.Client(lc) as client:
        client.wait_for_workers(2)
        yield client, engine.DaskBackend(client, lc.scheduler_address)


@pytest.mark.parametrize("method", list(CASES))
def test_two_workers_give_the_local_bits(cluster, method):
    model = load_model(STRONG)
    ref = estimate(model, method, seed=3, **CASES[method])
    with engine.using(cluster[1]) as b:
        assert b.split(100) != [range(100)]  # really several tasks
        same_result(ref, estimate(model, method, seed=3, **CASES[method]))


def test_progress_counts_finished_tasks(cluster):
    calls = []
    with engine.using(cluster[1]) as b:
        estimate(load_model(WEAK), "ais", seed=1, chains=16 * 10, steps=20,
                 progress=lambda label, done, total: calls.append((label, done, total)))
        tasks = len(b.split(10))
    assert calls == [("ais", done, tasks) for done in range(tasks + 1)]


def test_reverse_ais_from_a_tempered_start_and_raise_give_the_local_bits(cluster):
    from fecli.estimators.ais import raise_log_likelihood

    model = load_model(STRONG)
    options = dict(chains=40, steps=30, exact_max_units=4, burn_in=200)
    rows = (np.random.default_rng(0).random((6, 24)) < 0.5).astype(float)
    ref, ref_raise = estimate(model, "reverse-ais", seed=2, **options), raise_log_likelihood(model, rows, repeats=5,
                                                                                              steps=20, seed=2)
    with engine.using(cluster[1]):
        same_result(ref, estimate(model, "reverse-ais", seed=2, **options))
        other = raise_log_likelihood(model, rows, repeats=5, steps=20, seed=2)
    assert np.array_equal(ref_raise.log_p, other.log_p) and np.array_equal(ref_raise.stderr, other.stderr)


def test_one_worker_gives_the_same_bits():
    distributed = pytest.importorskip("distributed")
    model = load_model(WEAK)
    ref = estimate(model, "ais", seed=9, **CASES["ais"])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as lc, \
            distributed.Client(lc) as client, engine.using(engine.DaskBackend(client, "inproc")):
        same_result(ref, estimate(model, "ais", seed=9, **CASES["ais"]))


def test_trajectory_replicates_give_the_local_bits(cluster):
    from fecli.estimators.trajectory import run_trajectory

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (16, 8))
    anchors = [RBM(w * (1 + 0.2 * k), rng.normal(0, .1, 16), rng.normal(0, .1, 8)) for k in range(3)]
    options = dict(chains=16, replicates=5, steps=8, seed=4, resample_ess=0.9)
    for initial in ("exact", "factorised"):
        ref = run_trajectory(anchors, initial=initial, **options)
        with engine.using(cluster[1]):
            run = run_trajectory(anchors, initial=initial, **options)
        for p, q in zip(ref.points, run.points):
            assert np.array_equal(p.log_z_replicates, q.log_z_replicates) and np.array_equal(p.ess, q.ess)
            assert (p.resamplings, p.min_ess_fraction) == (q.resamplings, q.min_ess_fraction)


def test_a_batch_of_models_runs_one_task_per_run_and_gives_the_local_bits(cluster):
    from fecli.runner import MethodPlan, run_methods, submit_batch

    models = [load_model(WEAK), load_model(STRONG)]
    plan = MethodPlan(("ais", "importance"), seed=7, options={"chains": 30, "steps": 40, "samples": 1500})
    ref = [list(run_methods(plan, m)) for m in models]
    with engine.using(cluster[1]):
        pending = submit_batch(plan, [(m, plan.runs_for(m)[0]) for m in models])
        assert pending is not None and [len(p) for p in pending] == [2, 2]
        got = [list(run_methods(plan, m, pending=p)) for m, p in zip(models, pending)]
    for a, b in zip(ref, got):
        for x, y in zip(a, b):
            same_result(x, y)


def test_a_killed_worker_has_its_tasks_rerun_and_the_result_is_the_same(cluster):
    client, backend = cluster
    model = load_model(WEAK)
    options = dict(chains=16 * 24, steps=3000)
    ref = estimate(model, "ais", seed=11, **options)
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed = threading.Event()

    def kill_once(label, done, total):
        if done >= 1 and not killed.is_set():
            killed.set()
            os.kill(victim, signal.SIGKILL)

    with engine.using(backend):
        run = estimate(model, "ais", seed=11, progress=kill_once, **options)
    assert killed.is_set()
    same_result(ref, run)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the worker for the next tests
    assert victim not in client.run(os.getpid).values()


def test_an_unreachable_scheduler_is_one_line_naming_it(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", 1)
    result = CliRunner().invoke(cli, ["estimate", str(WEAK), "-m", "ais", "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fecli: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")


def test_a_scheduler_without_workers_is_one_line_naming_it(monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", 1)
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as lc:
        result = CliRunner().invoke(cli, ["estimate", str(WEAK), "-m", "ais", "--scheduler", lc.scheduler_address])
    assert result.exit_code == 1
    assert result.output.strip() == (f"fecli: error: the Dask scheduler at {lc.scheduler_address} has no workers; "
                                     f"start some with 'dask worker {lc.scheduler_address}'.")


def test_the_command_line_on_local_2_prints_the_same_ln_z_and_ctrl_c_exits_130():
    """The acceptance command (FECLI_SCHEDULER=local:2 in the environment), then an interrupt."""
    pytest.importorskip("distributed")
    args = ["estimate", str(WEAK), "-m", "ais,ti", "--chains", "64", "--steps", "50", "--seed", "1", "--format", "json"]
    local = CliRunner().invoke(cli, args, env={engine.SCHEDULER_ENV: ""})
    assert local.exit_code == 0, local.output
    env = {**os.environ, engine.SCHEDULER_ENV: "local:2"}
    out = subprocess.run([sys.executable, "-m", "fecli.cli", *args], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr

    def values(text):
        return [(r["method"], r["log_z"], r["stderr"], r["ci_low"], r["ci_high"])
                for r in map(json.loads, text.strip().splitlines())]

    assert values(out.stdout) == values(local.stdout)

    long_run = [sys.executable, "-m", "fecli.cli", "estimate", str(WEAK), "-m", "ais", "--chains", "4000",
                "--steps", "100000", "--seed", "1", "--scheduler", "local:2"]
    proc = subprocess.Popen(long_run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)
    import psutil  # a dependency of distributed

    deadline = time.monotonic() + 60
    while len(psutil.Process(proc.pid).children(recursive=True)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # until the worker processes are up
    time.sleep(2)  # and running their tasks
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, workers included
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["fecli: interrupted."] and stdout == "", stderr


# --------------------------------------------------------------------------- Gaussian and Potts layers
#: Short runs of the generic layer path, over several blocks of chains (layered_sampling.CHAINS_PER_BLOCK).
LAYERED_CASES = {
    "ais": dict(chains=150, steps=15),
    "reverse-ais": dict(chains=130, steps=15),
    "importance": dict(samples=2500),
    "ti": dict(chains=260, steps=6, sweeps=2),
    "pt": dict(chains=5, samples=40, burn_in=60),
    "umbrella": dict(chains=3, samples=30, burn_in=40),
    # starts that are not exact samples: burn-in sweeps in each block; tempering ladders as tasks
    "reverse-ais from burn-in": dict(chains=70, steps=10, exact_max_units=0, burn_in=20),
    "ti from tempering": dict(chains=140, steps=4, sweeps=2, exact_max_units=0, burn_in=100),
}


def layered_model(kind: str) -> RBM:
    from .test_units_exact import make_model

    vt, ht = kind.split("-")
    return make_model(vt, ht, 6, 4, 7, 1.0, 0.4) if vt == "gaussian" else make_model(vt, ht, 4, 3, 7)


class CountingDask(engine.DaskBackend):
    """The cluster's backend, counting the tasks it was given."""

    tasks = 0

    def map(self, fn, shared, tasks, label="tasks", progress=None):
        self.tasks += len(tasks)
        return super().map(fn, shared, tasks, label, progress)


@pytest.mark.parametrize("kind", ["gaussian-bernoulli", "potts-bernoulli"])
@pytest.mark.parametrize("method", list(LAYERED_CASES))
def test_layered_runs_give_the_same_bits_whatever_the_grouping_and_on_two_workers(cluster, kind, method):
    model, options = layered_model(kind), LAYERED_CASES[method]
    method = method.split()[0]
    ref = estimate(model, method, seed=3, **options)
    with engine.using(SingleChunks()):
        same_result(ref, estimate(model, method, seed=3, **options))
    with engine.using(CountingDask(cluster[0], "test")) as b:
        same_result(ref, estimate(model, method, seed=3, **options))
    assert b.tasks >= 2  # the chains ran on the workers, in several tasks


@pytest.mark.parametrize("kind", ["gaussian-bernoulli", "potts-bernoulli"])
def test_layered_trajectory_replicates_give_the_same_bits_whatever_the_grouping_and_on_two_workers(cluster, kind):
    from fecli.estimators.trajectory import run_trajectory

    first = layered_model(kind)
    anchors = [first.replace(weights=first.weights * (1 + 0.3 * k)) for k in range(3)]
    options = dict(chains=20, replicates=4, steps=6, seed=4, resample_ess=0.9)
    for initial in ("exact", "factorised"):
        ref = run_trajectory(anchors, initial=initial, **options)
        runs = []
        with engine.using(SingleChunks()):
            runs.append(run_trajectory(anchors, initial=initial, **options))
        with engine.using(CountingDask(cluster[0], "test")) as b:
            runs.append(run_trajectory(anchors, initial=initial, **options))
        assert b.tasks >= 2
        for run in runs:
            for p, q in zip(ref.points, run.points):
                assert np.array_equal(p.log_z_replicates, q.log_z_replicates) and np.array_equal(p.ess, q.ess)
                assert (p.resamplings, p.min_ess_fraction, p.steps) == (q.resamplings, q.min_ess_fraction, q.steps)
            assert ref.log_z_start == run.log_z_start
