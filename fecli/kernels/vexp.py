"""exp over a whole 1-D array, in a form LLVM vectorises (Numba), for float64 and float32.

A call to libm's exp in a loop keeps the loop scalar (Numba has no vector math
library here); in the sampling and training kernels exponentials were a fifth to a
third of the time. This is the textbook method (Cody & Waite 1980; Cephes' exp and expf):

    k = round(x / ln 2),  r = x - k ln2_hi - k ln2_lo  (|r| <= ln 2 / 2; ln2_hi has
    trailing zero bits, so k ln2_hi is exact),
    exp(x) = 2^k * P(r),

with P the Taylor polynomial of degree 13 in float64 (remainder < 5e-18 relative) and
Cephes' degree-7 minimax polynomial in float32, and 2^k built from its bits
((k + bias) << mantissa bits, viewed as a float) in a second loop. Measured against
libm: within 1 ulp in float64 (tests/test_anneal_kernels.py).

Inputs are clamped to the range where e^x and 2^k are normal numbers ([-708, 709] in
float64, [-87.3, 88.3] in float32), so the result is never 0, inf or subnormal: where
these values are used (1 + e, 1 / (1 + e), or u (1 + e) < e for a uniform u), the
difference from the true value beyond the clamp is below what the format represents.
NaN stays NaN.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93145751953125e-1
_LN2_LO = 1.42860682030941723212e-6
#: 1/k! for k = 13 down to 2 (float64 Taylor polynomial, Horner order).
_TAYLOR = (1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
           1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5)


@njit(cache=True)
def exp64(x, out, bits):
    """out[j] = exp(x[j]) for float64 arrays (out may be x); bits: int64 scratch, len >= len(x)."""
    n = x.shape[0]
    for j in range(n):
        y = x[j]
        y = 709.0 if y > 709.0 else (-708.0 if y < -708.0 else y)  # NaN passes through
        k = np.floor(y * _LOG2E + 0.5)
        r = (y - k * _LN2_HI) - k * _LN2_LO
        p = _TAYLOR[0]
        p = p * r + _TAYLOR[1]
        p = p * r + _TAYLOR[2]
        p = p * r + _TAYLOR[3]
        p = p * r + _TAYLOR[4]
        p = p * r + _TAYLOR[5]
        p = p * r + _TAYLOR[6]
        p = p * r + _TAYLOR[7]
        p = p * r + _TAYLOR[8]
        p = p * r + _TAYLOR[9]
        p = p * r + _TAYLOR[10]
        p = p * r + _TAYLOR[11]
        out[j] = p * (r * r) + r + 1.0
        bits[j] = (np.int64(k) + np.int64(1023)) << np.int64(52)
    scale = bits[:n].view(np.float64)
    for j in range(n):
        out[j] *= scale[j]


@njit(cache=True)
def exp32(x, out, bits):
    """out[j] = exp(x[j]) for float32 arrays (out may be x); bits: int64 scratch, len >= len(x)."""
    n = x.shape[0]
    ibits = bits.view(np.int32)
    lo, hi = np.float32(-87.3), np.float32(88.3)
    for j in range(n):
        y = x[j]
        y = hi if y > hi else (lo if y < lo else y)
        k = np.floor(y * np.float32(_LOG2E) + np.float32(0.5))
        r = (y - k * np.float32(_LN2_HI)) - k * np.float32(_LN2_LO)
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        out[j] = p * (r * r) + r + np.float32(1.0)
        ibits[j] = (np.int32(k) + np.int32(127)) << np.int32(23)
    scale = ibits[:n].view(np.float32)
    for j in range(n):
        out[j] *= scale[j]


def vexp(x, out, bits):
    """out[j] = exp(x[j]) for a 1-D float32 or float64 array, inside Numba code (see exp64/exp32)."""
    raise NotImplementedError("compiled only: call it from Numba code")


@overload(vexp, inline="always")
def _vexp_overload(x, out, bits):
    if x.dtype == types.float32:
        return lambda x, out, bits: exp32(x, out, bits)
    return lambda x, out, bits: exp64(x, out, bits)


@njit(cache=True)
def exp_array(x):
    """exp of a 1-D float32 / float64 array (for tests and callers outside Numba)."""
    out = np.empty_like(x)
    vexp(x, out, np.empty(x.shape[0], np.int64))
    return out
