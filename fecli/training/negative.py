"""Negative phases: the swappable piece of a training step.

A training step needs the positive statistics (data rows ``v`` and their hidden
probabilities ``p(h|v)``, computed by the trainer) and the negative statistics that
stand in for the model's expectations. A negative phase is a small object with one
contract::

    n_negative(n_pos)            -> rows of negative statistics for a batch of n_pos rows
    needs_positive_samples       -> True if run() wants h ~ p(h|v_data) (CD does)
    binary_negative              -> True if v_neg holds 0/1 samples (then the trainer may use
                                    its sparse products for the weight gradient)
    run(params, h_pos_samples, v_neg, h_neg, keys, products)
                                 -> fill v_neg (n, nv) and h_neg (n, nh) in place:
                                    h_neg holds hidden *probabilities* (or magnetisations);
                                    products.hidden_field(v, W, out) computes out = v @ W for
                                    a 0/1 block v (dense BLAS or sparse kernels)
    state_dict() / load_state_dict(d)
                                 -> whatever must survive a checkpoint (PCD's chains)

``params`` has ``weights`` (nv, nh), ``visible_bias`` and ``hidden_bias`` in the
training dtype; ``keys(stream)`` gives the random key of stream ``stream`` of the
current step (see :func:`fecli.kernels.training.call_key`). The trainer turns the
statistics into the gradient

    dW = <v h^T>_data - <v h^T>_negative,  da = <v>_data - <v>_neg,  db = <h>_data - <h>_neg.

Optional hooks (used by the TAP / EMF phase, which writes magnetisations into ``v_neg`` /
``h_neg``): ``configure(settings)`` after construction; ``init_chains(params, rows, key)``
to start persistent state at training rows; ``weight_statistics()`` -> the negative weight
statistic (nv, nh), used instead of ``v_neg^T h_neg / n`` when it has extra (Onsager)
terms; ``end_epoch()`` -> metrics added to the epoch's record; ``warnings()`` -> lines added to
the run's warnings when it ends; ``gibbs_state(n_pos)`` -> (0/1 hidden chain states, started at the
data?) for Gibbs phases (CD, PCD): with sparse data the trainer then runs the chains itself in its
fused kernel (:func:`fecli.kernels.training.sparse_gibbs_statistics`) with the same random streams.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np

KeyFunction = Callable[[int], np.uint64]


class NegativePhase(Protocol):
    name: str
    needs_positive_samples: bool
    binary_negative: bool

    def n_negative(self, n_pos: int) -> int: ...

    def run(self, params: Any, h_pos_samples: np.ndarray, v_neg: np.ndarray, h_neg: np.ndarray,
            keys: KeyFunction, products: Any) -> None: ...

    def state_dict(self) -> dict[str, np.ndarray]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ContrastiveDivergence:
    """CD-k (Hinton 2002): k Gibbs steps from h ~ p(h | v_data).

    Negative statistics: the k-th visible sample and its hidden probabilities.
    """

    needs_positive_samples = True
    binary_negative = True

    def __init__(self, k: int, n_visible: int, n_hidden: int, batch_size: int, dtype: np.dtype):
        self.name = "cd"
        self.k = k
        self._h = np.zeros((batch_size, n_hidden), dtype=dtype)

    def n_negative(self, n_pos: int) -> int:
        return n_pos

    def run(self, params, h_pos_samples, v_neg, h_neg, keys, products) -> None:
        from ..kernels.training import sigmoid_sample

        h = h_pos_samples
        n = v_neg.shape[0]
        for t in range(self.k):
            np.dot(h, params.weights.T, out=v_neg)
            sigmoid_sample(v_neg, params.visible_bias, keys(2 * t + 1), False, v_neg)
            products.hidden_field(v_neg, params.weights, h_neg)
            if t + 1 < self.k:
                h = self._h[:n]
                sigmoid_sample(h_neg, params.hidden_bias, keys(2 * t + 2), True, h)
            else:
                sigmoid_sample(h_neg, params.hidden_bias, np.uint64(0), True, self._h[:0])

    def gibbs_state(self, n_pos: int) -> tuple[np.ndarray, bool]:
        """Scratch for the chains of the fused sparse path, which start at h ~ p(h | data)."""
        return self._h[:n_pos], True

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class PersistentContrastiveDivergence:
    """PCD-k (Tieleman 2008): ``batch_size`` persistent chains, k Gibbs steps per update.

    The chain state is the hidden sample of each chain: a step draws v ~ p(v|h) and
    h ~ p(h|v) with the current parameters; the negative statistics are that v and
    p(h|v), and the new h is kept for the next update (as in Tieleman's and
    scikit-learn's implementations).
    """

    needs_positive_samples = False
    binary_negative = True

    def __init__(self, k: int, n_visible: int, n_hidden: int, batch_size: int, dtype: np.dtype):
        self.name = "pcd"
        self.k = k
        self.chains = np.zeros((batch_size, n_hidden), dtype=dtype)

    def init_chains(self, params, data_rows: np.ndarray, key: np.uint64) -> None:
        """Start each chain at h ~ p(h | v) for one training row ``v`` per chain."""
        from ..kernels.training import sigmoid_sample

        field = np.ascontiguousarray(data_rows, dtype=self.chains.dtype) @ params.weights
        sigmoid_sample(field, params.hidden_bias, key, True, self.chains)

    def n_negative(self, n_pos: int) -> int:
        return self.chains.shape[0]

    def run(self, params, h_pos_samples, v_neg, h_neg, keys, products) -> None:
        from ..kernels.training import sigmoid_sample

        for t in range(self.k):
            np.dot(self.chains, params.weights.T, out=v_neg)
            sigmoid_sample(v_neg, params.visible_bias, keys(2 * t + 1), False, v_neg)
            products.hidden_field(v_neg, params.weights, h_neg)
            sigmoid_sample(h_neg, params.hidden_bias, keys(2 * t + 2), True, self.chains)

    def gibbs_state(self, n_pos: int) -> tuple[np.ndarray, bool]:
        """The persistent chains, for the fused sparse path to advance in place."""
        return self.chains, False

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"chains": self.chains.astype(np.uint8)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        chains = np.asarray(state["chains"])
        if chains.shape != self.chains.shape:
            raise ValueError(f"stored chains have shape {chains.shape}, expected {self.chains.shape}")
        self.chains[...] = chains


#: Starting damping of the TAP iteration in training (raised per magnetisation by the solver when
#: it oscillates). Lower than the estimators' 0.3: persistent starts lie near a fixed point, where
#: the iteration contracts slowly and damping only slows it further (about 30% fewer sweeps on digits).
TAP_DAMPING = 0.1


class TapNegativePhase:
    """EMF training (Gabrie, Tramel & Krzakala 2015): the negative phase of the TAP free energy.

    ``batch_size`` persistent magnetisations (x, y), started at training rows, are iterated to
    fixed points of the order-2 (tap2) or order-3 (tap3) TAP equations with the current
    parameters at every update (:func:`fecli.estimators.meanfield.tap_fixed_points`, started
    from the previous update's fixed points, up to ``max_iter`` sweeps, residual ``< tol``).
    The negative statistics are the derivatives of -Gamma_TAP at those points
    (:func:`fecli.estimators.meanfield.tap_gradients`; by stationarity the partial derivative
    is the total one): ``<x>``, ``<y>`` for the biases, and for the weights

        <x y^T> + W * <c(x) c(y)^T> [+ 2 W^2 * <d(x) d(y)^T> for tap3]   (Onsager terms),

    which the trainer takes from :meth:`weight_statistics` instead of its stacked product.
    Deterministic (no random numbers); the magnetisations are the checkpointed state.
    Magnetisations that do not converge within ``max_iter`` sweeps are counted per epoch
    (:meth:`end_epoch`: metric ``tap_unconverged``) and summed up in one warning at the end of
    the run (:meth:`warnings`), never dropped silently.
    """

    needs_positive_samples = False
    binary_negative = False

    def __init__(self, k: int, n_visible: int, n_hidden: int, batch_size: int, dtype: np.dtype, *,
                 order: int = 2, tol: float = 1e-5, max_iter: int = 500):
        self.name = f"tap{order}"
        self.order = order
        self.tol = tol
        self.max_iter = max_iter
        self.x = np.zeros((batch_size, n_visible), dtype=np.float64)
        self.y = np.zeros((batch_size, n_hidden), dtype=np.float64)
        # per-epoch counters: [unconverged magnetisations, magnetisations solved, sweeps, largest residual]
        self.counts = np.zeros(4, dtype=np.float64)
        self._stats: dict[str, np.ndarray] | None = None
        self._run_bad: list[tuple[int, int, float]] = []  # (unconverged, updates, largest residual) per epoch

    def configure(self, settings: Any) -> None:
        self.tol = float(settings.tap_tol)
        self.max_iter = int(settings.tap_max_iter)

    @staticmethod
    def _model(params):
        from ..model import RBM

        return RBM(params.weights, params.visible_bias, params.hidden_bias, name="<training>")

    def init_chains(self, params, data_rows: np.ndarray, key: np.uint64) -> None:
        """Start the magnetisations at training rows: x = v, y = sigmoid(b + v W)."""
        from ..model import sigmoid

        model = self._model(params)
        self.x[...] = data_rows
        self.y[...] = sigmoid(model.hidden_bias + self.x @ model.weights)

    def n_negative(self, n_pos: int) -> int:
        return self.x.shape[0]

    def run(self, params, h_pos_samples, v_neg, h_neg, keys, products) -> None:
        from ..estimators.meanfield import emf_step

        converged, iterations, residual, self._stats = emf_step(self._model(params), self.x, self.y, self.order,
                                                                self.tol, self.max_iter, TAP_DAMPING)
        n = converged.shape[0]
        n_converged = int(np.count_nonzero(converged))
        self.counts[0] += n - n_converged
        self.counts[1] += n
        self.counts[2] += float(iterations.sum())
        if n_converged < n:
            r = residual[~converged]
            self.counts[3] = max(self.counts[3], float(np.max(np.where(np.isfinite(r), r, np.inf))))
        v_neg[...] = self.x
        h_neg[...] = self.y

    def weight_statistics(self) -> np.ndarray:
        """d(-Gamma_TAP)/dW at the fixed points of the last :meth:`run` (mean over magnetisations)."""
        assert self._stats is not None, "run() first"
        return self._stats["weights"]

    def end_epoch(self) -> dict[str, float]:
        """Metrics of the epoch just finished: fraction of unconverged magnetisation updates, mean sweeps."""
        bad, total, sweeps, worst = self.counts
        self.counts[:] = 0.0
        if total == 0:
            return {}
        if bad:
            self._run_bad.append((int(bad), int(total), float(worst)))
        return {"tap_unconverged": float(bad / total), "tap_sweeps": float(sweeps / total)}

    def warnings(self) -> list[str]:
        """One line summing up the epochs (of this run) in which some iterations did not converge."""
        if not self._run_bad:
            return []
        bad = sum(b for b, _, _ in self._run_bad)
        total = sum(t for _, t, _ in self._run_bad)
        worst = max(w for _, _, w in self._run_bad)
        return [f"the {self.name.upper()} iteration did not converge within --tap-max-iter {self.max_iter} sweeps "
                f"for {bad} of {total} magnetisation updates in {len(self._run_bad)} epoch(s) (largest residual "
                f"{worst:.3g} > --tap-tol {self.tol:g}; per epoch: metric tap_unconverged); those gradients "
                f"are not exact TAP gradients. Raise --tap-max-iter or --tap-tol, or lower --lr."]

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"x": self.x.copy(), "y": self.y.copy(), "counts": self.counts.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("x", "y", "counts"):
            value = np.asarray(state[name], dtype=np.float64)
            target = getattr(self, name)
            if value.shape != target.shape:
                raise ValueError(f"stored magnetisations '{name}' have shape {value.shape}, expected {target.shape}")
            target[...] = value


def _tap(order: int):
    def make(k: int, n_visible: int, n_hidden: int, batch_size: int, dtype: np.dtype) -> TapNegativePhase:
        return TapNegativePhase(k, n_visible, n_hidden, batch_size, dtype, order=order)

    make.__doc__ = f"TAP{order} (EMF) negative phase."
    return make


#: Registry of negative phases by method name (one line per method).
NEGATIVE_PHASES: dict[str, Callable[..., Any]] = {
    "cd": ContrastiveDivergence,
    "pcd": PersistentContrastiveDivergence,
    "tap2": _tap(2),
    "tap3": _tap(3),
}
