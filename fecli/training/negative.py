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

A mean-field (TAP / EMF) negative phase plugs in the same way: it writes
magnetisations into ``v_neg`` / ``h_neg`` and registers itself in :data:`NEGATIVE_PHASES`.
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

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"chains": self.chains.astype(np.uint8)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        chains = np.asarray(state["chains"])
        if chains.shape != self.chains.shape:
            raise ValueError(f"stored chains have shape {chains.shape}, expected {self.chains.shape}")
        self.chains[...] = chains


#: Registry of negative phases by method name (one line per method).
NEGATIVE_PHASES: dict[str, type] = {
    "cd": ContrastiveDivergence,
    "pcd": PersistentContrastiveDivergence,
}
