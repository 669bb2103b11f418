"""Simple importance sampling of ln Z with a defensive factorised proposal.

    q(v) = (1 - lambda) prod_i x_i^v_i (1 - x_i)^(1 - v_i) + lambda 2^-nv,
    U(v) = F_beta(v) + ln q(v),    Z = E_q[exp(-U)]  ~  mean over exact i.i.d. samples of q,

with x the data's smoothed base rate when data is given, otherwise the naive mean-field
visible magnetisation of the target at beta (clipped to [1e-3, 1 - 1e-3]), and a uniform
share lambda = 1/2 (Hesterberg's defensive mixture, 1995): a mean-field proposal alone sits in
one mode and its weights then agree perfectly while missing the others; the uniform share keeps
every state's weight below 2 p(v) Z 2^nv. ln of an unbiased estimate of Z is a stochastic lower
bound (Jensen). Cheap, and the right tool for weakly coupled models; on strongly coupled ones
the weights are skewed and the effective sample size tells you so.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..model import RBM
from ..result import Result
from ._sampling_common import (
    AnnealingPath,
    base_model,
    check_positive_int,
    resolve_data,
    resolve_seed,
    STREAMS,
    summarize_log_weights,
)
from . import METHODS
from .exact import check_beta

#: Library default, declared with the options in the registry (fecli/estimators/__init__.py).
DEFAULT_SAMPLES = METHODS["importance"].defaults()["samples"]
#: Samples per chunk: the unit of seeding (chunk i uses SeedSequence(seed, spawn_key=(2, i))).
SAMPLES_PER_CHUNK = 1000
_STREAM = STREAMS["importance"]
#: Share of the uniform distribution in the defensive mixture proposal.
UNIFORM_SHARE = 0.5
#: Samples per chunk drawn in proportion to their weights (importance resampling): the states
#: the run saw of the target, for the rigorous bracket and the mode check.
RESAMPLED_STATES = 20


def proposal_bias(model: RBM, beta: float, data: np.ndarray | None) -> tuple[np.ndarray, str]:
    """Logits of the factorised part of the proposal: the data's base rate, or mean field."""
    if data is not None:
        return base_model(model, beta, data)
    from .meanfield import naive_mean_field

    with np.errstate(over="ignore", invalid="ignore"):
        x = np.clip(naive_mean_field(model, beta).x, 1e-3, 1.0 - 1e-3)
    return np.log(x) - np.log1p(-x), "naive mean-field visible magnetisation"


def log_weights(path: AnnealingPath, entropy: int, start_chunk: int, stop_chunk: int, n_samples: int,
                states: list | None = None) -> np.ndarray:
    """-U(v) = ln f_1(v) - ln q(v) for the samples of chunks [start_chunk, stop_chunk).

    q mixes the base model of ``path`` (ln q_A(v) = a_A.v - sum_i softplus(a_A,i)) with the
    uniform distribution in shares 1 - UNIFORM_SHARE : UNIFORM_SHARE, and ln f_1(v) = -F_beta(v);
    ln Z ~ logmeanexp(-U). Chunks merge exactly by concatenation. With a list ``states``, the
    RESAMPLED_STATES samples of each chunk, drawn in proportion to their weights, are appended to it.
    """
    x = 1.0 / (1.0 + np.exp(-path.base_bias))
    nv = x.size
    log_q_norm = path.log_z_base - path.model.n_hidden * np.log(2.0)
    out = []
    for i in range(start_chunk, stop_chunk):
        n = min(SAMPLES_PER_CHUNK, n_samples - i * SAMPLES_PER_CHUNK)
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(_STREAM, i)))
        u = rng.random((n, nv))
        uniform = rng.random(n) < UNIFORM_SHARE
        v = np.where(uniform[:, None], u < 0.5, u < x).astype(np.float64)
        log_q = np.logaddexp(np.log1p(-UNIFORM_SHARE) + v @ path.base_bias - log_q_norm,
                             np.log(UNIFORM_SHARE) - nv * np.log(2.0))
        out.append(path.log_f(v, 1.0) - log_q)
        if states is not None:
            p = np.exp(out[-1] - np.max(out[-1]))
            states.append(v[rng.choice(n, size=RESAMPLED_STATES, p=p / p.sum())])
    return np.concatenate(out)


def importance(
    model: RBM,
    *,
    beta: float = 1.0,
    samples: int = DEFAULT_SAMPLES,
    data: Any = None,
    seed: int | None = None,
    progress=None,
) -> Result:
    """Importance-sampling estimate of ln Z(beta) with a factorised proposal (stochastic lower bound).

    Parameters
    ----------
    samples : exact i.i.d. samples of the proposal.
    data : path or array of examples; the proposal becomes their base rate (default: mean field).
    seed : same seed, same numbers.
    """
    start = time.perf_counter()
    beta = check_beta(beta)
    samples = check_positive_int("samples", samples)
    data_arr, data_label = resolve_data(data, model)
    entropy = resolve_seed(seed)
    a_base, base_note = proposal_bias(model, beta, data_arr)
    path = AnnealingPath(model, beta, a_base)
    from ..engine import run_chunks

    parts = run_chunks(importance_chunks, (path, entropy, samples), -(-samples // SAMPLES_PER_CHUNK), "importance",
                       progress)
    logw = np.concatenate([p[0] for p in parts])
    summary = summarize_log_weights(
        logw, entropy, "importance log weights", unit="samples",
        advice="a factorised proposal does not fit this model; the estimate is likely far too low: use ais")
    return Result(
        model=model.name,
        method="importance",
        beta=beta,
        log_z=summary.log_mean,
        kind="stochastic_lower_bound",
        n_visible=model.n_visible,
        n_hidden=model.n_hidden,
        stderr=summary.stderr,
        ci_low=summary.ci_low,
        ci_high=summary.ci_high,
        wall_time_s=time.perf_counter() - start,
        params={"samples": samples, "data": data_label, "seed": entropy},
        diagnostics={**summary.diagnostics(),
                     "proposal": f"{base_note}, mixed with the uniform distribution ({UNIFORM_SHARE:g})"},
        warnings=list(summary.warnings),
        states=np.concatenate([p[1] for p in parts]),
    )


def importance_chunks(job: tuple[AnnealingPath, int, int], chunk_ids: range, progress=None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The engine's task (fecli.engine): log weights of the samples of chunks ``chunk_ids`` and the
    states resampled from each chunk; ``job`` is (path, entropy, total samples)."""
    path, entropy, samples = job
    parts, visited = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for done, i in enumerate(chunk_ids, start=1):
            parts.append(log_weights(path, entropy, i, i + 1, samples, visited))
            if progress is not None:
                progress("importance", done, len(chunk_ids))
    return np.concatenate(parts), np.concatenate(visited)
