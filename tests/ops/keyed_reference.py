"""A numpy reference of kreg.ops.keyed_random, written from its specification.

Unsigned 32-bit arithmetic (numpy uint32 wraps) for the hash, Python's
`statistics.NormalDist` and float32 rounding for the normals: every backend
must reproduce these bits exactly.
"""

import math
import statistics

import numpy as np

U32 = np.uint32
F32 = np.float32
STREAMS = (0x9E3779B9, 0x6A09E667)


def lowbias32(x):
    """Chris Wellons' lowbias32 on uint32 arrays."""
    x = np.asarray(x, U32).copy()
    x ^= x >> U32(16)
    x *= U32(0x7FEB352D)
    x ^= x >> U32(15)
    x *= U32(0x846CA68B)
    x ^= x >> U32(16)
    return x


def bits(key, shape, stream):
    """The 32 random bits of every element of `shape` for one key `[seed, counter]`."""
    seed, counter = (U32(int(word) & 0xFFFFFFFF) for word in key)
    a = lowbias32(lowbias32(lowbias32(seed) ^ counter) ^ U32(STREAMS[stream]))
    b = lowbias32(a + U32(STREAMS[0]))
    index = np.arange(math.prod(shape), dtype=np.uint64).astype(U32).reshape(shape)
    return lowbias32(lowbias32(index + a) ^ b)


def uniform(key, shape):
    return ((bits(key, shape, 0) >> U32(8)).astype(F32) * F32(2.0**-24)).astype(F32)


def quantile(p):
    return statistics.NormalDist().inv_cdf(p)


def normal_parts(key, shape):
    """The sign bit and the 23 bits k of every element's normal stream."""
    top = (bits(key, shape, 1) >> U32(8)).astype(np.int64)
    return top >> 23, top & ((1 << 23) - 1)


def normal_of(k):
    """The specified value for one k: Q((k + 1/2) / 2**24) exactly where k < 512,
    else the secant of Q from the first k of k's cell (512 cells per octave
    [2**e, 2**(e + 1)) of k) to the next cell's, its slope rounded to 24 - (e - 9)
    bits, the product with k's place in the cell exact, one float32 rounding."""
    if k < 512:
        return F32(quantile((k + 0.5) / 2**24))
    e = int(k).bit_length() - 1
    width = 1 << (e - 9)
    first = k - k % width
    start = quantile((first + 0.5) / 2**24)
    slope = (quantile((first + width + 0.5) / 2**24) - start) / width
    mantissa, exponent = math.frexp(slope)
    slope = math.ldexp(round(mantissa * 2.0 ** (24 - (e - 9))), exponent - (24 - (e - 9)))
    return F32(F32(start) + F32(slope) * F32(k - first))


def normal(key, shape):
    sign, k = normal_parts(key, shape)
    values = np.array([normal_of(int(v)) for v in k.ravel()], F32).reshape(k.shape)
    return np.where(sign == 1, -values, values)


def exact_normal(key, shape):
    """The exact quantiles Q((k + 1/2) / 2**24) (float64), for the accuracy check."""
    sign, k = normal_parts(key, shape)
    values = np.array([quantile((int(v) + 0.5) / 2**24) for v in k.ravel()]).reshape(k.shape)
    return np.where(sign == 1, -values, values)
