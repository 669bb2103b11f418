"""Hard models with exact ln Z at sizes no enumeration reaches, for checking estimators.

- :func:`ising_torus` and :func:`kaufman_log_z`: the 2D Ising model on an L x L torus written
  exactly as an RBM (sites with i + j even visible, the others hidden), with Kaufman's (1949)
  closed form for its partition function. Below the critical temperature (K > 0.4407) it has
  two symmetric modes.
- :func:`block_composite`: a block-diagonal RBM with its units shuffled; ln Z is the sum of
  its blocks' ln Z, each block small enough to enumerate.
- :func:`two_mode_model`, :func:`near_deterministic_model` and :func:`bars_and_stripes_model`:
  the small traps measured in the trust issue (a needle mode holding most of Z, a target at
  beta 50, eight equal modes).

All values are in nats. Used by the tests and benchmarks; public so users can check their own
estimators the same way.
"""

from __future__ import annotations

import math

import numpy as np

from .model import RBM

#: Critical coupling of the square-lattice Ising model, K_c = ln(1 + sqrt 2) / 2.
ISING_CRITICAL_K = 0.5 * math.log(1.0 + math.sqrt(2.0))


def ising_torus(L: int, K: float) -> tuple[RBM, float]:
    """The ferromagnetic Ising model on an L x L torus (L even, >= 4) at coupling K as an RBM.

    Spins s = 2x - 1 on the sites; sites with i + j even are visible, the others hidden, so
    every bond joins a visible and a hidden unit. Since K s s' = 4K x x' - 2K x - 2K x' + K
    and every site has four bonds, W = 4K on bonds, every bias is -8K, and

        ln Z_Ising = ln Z_RBM + 2 K L^2   (2 L^2 bonds).

    Returns (model, offset) with ``offset`` = 2 K L^2, so that
    ln Z_RBM = kaufman_log_z(L, K) - offset.

    Raises ValueError for odd L or L < 4 (no checkerboard, or doubled bonds).
    """
    if L < 4 or L % 2:
        raise ValueError(f"the torus side must be even and >= 4, got {L}")
    index = {}
    visible, hidden = [], []
    for i in range(L):
        for j in range(L):
            layer = visible if (i + j) % 2 == 0 else hidden
            index[(i, j)] = len(layer)
            layer.append((i, j))
    w = np.zeros((len(visible), len(hidden)))
    for i, j in visible:
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            w[index[(i, j)], index[((i + di) % L, (j + dj) % L)]] = 4.0 * K
    model = RBM(w, np.full(len(visible), -8.0 * K), np.full(len(hidden), -8.0 * K),
                name=f"ising_torus_L{L}_K{K:g}")
    return model, 2.0 * K * L * L


def kaufman_log_z(L: int, K: float) -> float:
    """ln Z of the Ising model on an L x L torus at coupling K > 0 (Kaufman, Phys. Rev. 76, 1232, 1949).

    Z = (1/2) (2 sinh 2K)^{L^2/2} (Z_1 + Z_2 + Z_3 + Z_4), with, over r = 0..L-1,
    Z_1 = prod 2 cosh(L g_{2r+1} / 2), Z_2 = prod 2 sinh(L g_{2r+1} / 2),
    Z_3 = prod 2 cosh(L g_{2r} / 2),   Z_4 = prod 2 sinh(L g_{2r} / 2),
    cosh g_k = cosh 2K coth 2K - cos(pi k / L), and g_0 = 2K + ln tanh K (negative below T_c,
    which makes Z_4 negative). Summed with signs in the log domain.
    """
    if K <= 0:
        raise ValueError(f"K must be positive, got {K}")
    c = math.cosh(2 * K) / math.tanh(2 * K)

    def gamma(k: int) -> float:
        if k == 0:
            return 2 * K + math.log(math.tanh(K))
        return math.acosh(c - math.cos(math.pi * k / L))

    def log_2cosh(x: float) -> float:
        x = abs(x)
        return x + math.log1p(math.exp(-2 * x))

    def log_abs_2sinh(x: float) -> float:
        x = abs(x)
        return x + math.log(-math.expm1(-2 * x))

    odd = [L * gamma(2 * r + 1) / 2 for r in range(L)]
    even = [L * gamma(2 * r) / 2 for r in range(L)]
    terms = [
        (sum(map(log_2cosh, odd)), 1.0),
        (sum(map(log_abs_2sinh, odd)), 1.0),
        (sum(map(log_2cosh, even)), 1.0),
        (sum(map(log_abs_2sinh, even)), math.copysign(1.0, math.prod(math.copysign(1.0, g) for g in even))),
    ]
    top = max(t for t, _ in terms)
    total = sum(sign * math.exp(t - top) for t, sign in terms)
    return -math.log(2) + (L * L / 2) * math.log(2 * math.sinh(2 * K)) + top + math.log(total)


def block_composite(blocks: list[RBM], seed: int = 0, name: str = "block_composite") -> RBM:
    """The block-diagonal RBM of ``blocks`` with visible and hidden units shuffled (``seed``).

    Blocks do not interact, so ln Z(beta) of the composite is the sum of the blocks' ln Z(beta)
    at any beta; shuffling hides the structure from any estimator that looks for it.
    """
    nv = sum(b.n_visible for b in blocks)
    nh = sum(b.n_hidden for b in blocks)
    w = np.zeros((nv, nh))
    a = np.empty(nv)
    b = np.empty(nh)
    i = j = 0
    for block in blocks:
        w[i:i + block.n_visible, j:j + block.n_hidden] = block.weights
        a[i:i + block.n_visible] = block.visible_bias
        b[j:j + block.n_hidden] = block.hidden_bias
        i += block.n_visible
        j += block.n_hidden
    rng = np.random.default_rng(seed)
    pv, ph = rng.permutation(nv), rng.permutation(nh)
    return RBM(w[pv][:, ph], a[pv], b[ph], name=name)


def two_mode_model(strength: float = 16.0) -> RBM:
    """12 visible units with bias -strength/2; hidden unit 0 couples to every visible unit with
    ``strength`` and has bias -93 strength / 16; hidden unit 1 is free (bias 0).

    At strength 16 (the trust issue's case: biases -8 and -93, exact ln Z 3.7457594086) the
    single all-on state holds about 95% of Z, while the broad all-off mode holds the rest.
    """
    s = float(strength)
    w = np.zeros((12, 2))
    w[:, 0] = s
    return RBM(w, np.full(12, -s / 2.0), np.array([-93.0 * s / 16.0, 0.0]), name=f"two_mode_s{s:g}")


def near_deterministic_model(seed: int = 3) -> RBM:
    """The trust issue's 14 x 6 model (W = 1.5 N(0,1), a, b ~ N(0,1) from default_rng(seed)),
    meant to be run at beta 50, where one state holds nearly all of Z (exact ln Z 1376.4807520572
    at seed 3, beta 50)."""
    rng = np.random.default_rng(seed)
    w = 1.5 * rng.normal(size=(14, 6))
    a = rng.normal(size=14)
    b = rng.normal(size=6)
    return RBM(w, a, b, name=f"near_deterministic_{seed}")


def bars_and_stripes_model() -> RBM:
    """The 4 x 4 RBM fitted to 2 x 2 bars and stripes in PyDeep's estimator tests (M. Jan Melchior,
    pydeep/testunits/test_rbm/test_estimator.py); its exact ln Z is 59.6749019726 and its
    probability mass sits on a few equally likely patterns."""
    w = np.array([[0.12179488, 2.95950177, 0.33513356, 35.05380642],
                  [0.20318085, -28.62372894, 26.52611278, 28.41793445],
                  [-0.19105386, -28.58530584, -26.52747507, 28.78447320],
                  [0.08953740, -59.82556859, -0.06665933, -27.71723459]])
    a = np.array([-19.24399659, -13.26258696, 13.25909850, 43.74408543])
    b = np.array([-0.11155958, 57.02097584, -0.13331758, -32.25991501])
    return RBM(w, a, b, name="bars_and_stripes_4x4")


def issue_cases_composite(two_mode: int = 16, bars_and_stripes: int = 8, near_deterministic: int = 4,
                          seed: int = 5) -> tuple[RBM, float]:
    """A shuffled block composite of the trust issue's cases 1-3 and its exact ln Z (nats).

    ``two_mode`` copies of :func:`two_mode_model` at strength 16, ``bars_and_stripes`` of
    :func:`bars_and_stripes_model` and ``near_deterministic`` of :func:`near_deterministic_model`
    (seed 3) at beta 50 (weights and biases times 50). The defaults give 280 x 88 units, ln Z =
    6043.2544. Each block alone is easy for AIS from a uniform base; together the two-mode blocks'
    2^16 mode combinations are not, and a factorised base fitted to samples gives the broad mode of
    each block almost no weight. Returns (model, the sum of the blocks' exact ln Z).
    """
    from .estimators.exact import log_partition

    near = near_deterministic_model(3)
    near50 = RBM(50.0 * near.weights, 50.0 * near.visible_bias, 50.0 * near.hidden_bias,
                 name="near_deterministic_3_beta50")
    kinds = [(two_mode_model(16.0), two_mode), (bars_and_stripes_model(), bars_and_stripes),
             (near50, near_deterministic)]
    blocks = [block for block, count in kinds for _ in range(count)]
    if not blocks:
        raise ValueError("the composite needs at least one block")
    nv, nh = sum(b.n_visible for b in blocks), sum(b.n_hidden for b in blocks)
    model = block_composite(blocks, seed=seed, name=f"issue_cases_composite_{nv}x{nh}")
    return model, sum(count * log_partition(block) for block, count in kinds if count)
