"""Per-epoch training metrics, all computed in float64 from the current parameters.

* ``recon_error``: mean-field reconstruction error, the mean over rows of
  sum_i (v_i - r_i)^2 with r = sigmoid(a + W sigmoid(b + v W)) (deterministic, so
  monitoring never touches the training random stream);
* ``pll``: exact pseudo-log-likelihood per row, sum_i ln p(v_i | v_-i) over *all*
  visible units (not the one-random-bit estimate);
* ``log_likelihood``: exact average ln p(v) = mean(-F(v)) - ln Z, when the smaller
  layer has at most :data:`EXACT_MONITOR_MAX_UNITS` units (ln Z by enumeration);
  for larger models the same with ln Z tracked along the run by sequential Monte Carlo
  (:mod:`fecli.training.tracking`), and ``log_z_stderr`` its standard error;
* the same with a ``val_`` prefix for the validation rows.

Reconstruction error and PLL use a fixed subset of at most ``monitor_rows`` rows
(chosen once from the seed); log-likelihoods use every row.
"""

from __future__ import annotations

import numpy as np

from ..model import RBM, sigmoid
from .settings import EXACT_MONITOR_MAX_UNITS

#: Rows per block when free energies of a whole data set are summed.
_BLOCK = 8192


def reconstruction_error(model: RBM, v: np.ndarray) -> float:
    """Mean over rows of sum_i (v_i - r_i)^2, r the mean-field reconstruction."""
    h = sigmoid(v @ model.weights + model.hidden_bias)
    r = sigmoid(h @ model.weights.T + model.visible_bias)
    return float(np.mean(np.sum((v - r) ** 2, axis=1)))


def pseudo_log_likelihood(model: RBM, v: np.ndarray) -> float:
    """Mean over rows of the exact pseudo-log-likelihood summed over all visible units."""
    from ..kernels.training import pseudo_log_likelihood_rows

    v = np.ascontiguousarray(v, dtype=np.float64)
    field = np.ascontiguousarray(v @ model.weights + model.hidden_bias)
    out = np.empty(v.shape[0])
    pseudo_log_likelihood_rows(v, field, model.weights, model.visible_bias, out)
    return float(np.mean(out))


def exact_log_likelihood(model: RBM, v: np.ndarray, log_z: float) -> float:
    """Average exact ln p(v) = mean(-F(v)) - ln Z (free energies in float64, in blocks of rows)."""
    total = 0.0
    for start in range(0, v.shape[0], _BLOCK):
        total += float(np.sum(-model.free_energy(v[start:start + _BLOCK])))
    return total / v.shape[0] - log_z


def exact_enumerable(n_visible: int, n_hidden: int) -> bool:
    return min(n_visible, n_hidden) <= EXACT_MONITOR_MAX_UNITS


class Monitor:
    """Computes the metrics of one epoch on fixed training / validation rows."""

    def __init__(self, train: np.ndarray, validation: np.ndarray | None, rows: int, rng: np.random.Generator):
        self.train = train
        self.validation = validation
        self.train_subset = self._subset(train, rows, rng)
        self.val_subset = None if validation is None else self._subset(validation, rows, rng)

    @staticmethod
    def _subset(data: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
        if data.shape[0] <= rows:
            return np.ascontiguousarray(data, dtype=np.float64)
        idx = np.sort(rng.choice(data.shape[0], size=rows, replace=False))
        return np.ascontiguousarray(data[idx], dtype=np.float64)

    def __call__(self, model: RBM, tracked=None) -> dict[str, float]:
        """The metrics of ``model``; ``tracked`` (a combined SMC estimate with ``log_z`` and
        ``stderr``) supplies ln Z for models too large to enumerate."""
        from ..estimators.exact import log_partition

        out: dict[str, float] = {
            "recon_error": reconstruction_error(model, self.train_subset),
            "pll": pseudo_log_likelihood(model, self.train_subset),
        }
        if self.val_subset is not None:
            out["val_recon_error"] = reconstruction_error(model, self.val_subset)
            out["val_pll"] = pseudo_log_likelihood(model, self.val_subset)
        if exact_enumerable(model.n_visible, model.n_hidden):
            log_z = log_partition(model)
            out["log_z"] = log_z
            out["log_likelihood"] = exact_log_likelihood(model, self.train, log_z)
            if self.validation is not None:
                out["val_log_likelihood"] = exact_log_likelihood(model, self.validation, log_z)
        elif tracked is not None:
            out["log_z"] = tracked.log_z
            out["log_z_stderr"] = tracked.stderr
            out["log_likelihood"] = exact_log_likelihood(model, self.train, tracked.log_z)
            if self.validation is not None:
                out["val_log_likelihood"] = exact_log_likelihood(model, self.validation, tracked.log_z)
        return out
