"""Counter-based, keyed random numbers: noise as a pure function of (key, position).

`keras.random` draws from a `SeedGenerator` one stream per call, so K runs'
dropout masks take K ops. Here every value is a hash of a key and of the
element's position, so K keys give K runs' values in one op:

- the key is a `keras.random.SeedGenerator` state `[seed, counter]` (what
  `SeedGenerator.next()` returns), an int array of shape `(2,)`; any int
  dtype (int64 on TensorFlow, uint32 on JAX, int32 on torch): its two words
  are taken modulo 2**32;
- an element's 32 random bits are `mix(mix(i + a) ^ b)`, where `i` is its
  flat (row-major) index in the drawn shape, `mix` is Chris Wellons'
  "lowbias32" integer hash and the words `a`, `b` are hashes of the seed,
  the counter and a stream number (one for uniforms, one for normals);
- with `branch_axis=a` the key has shape `(K, 2)` and the drawn shape holds
  K on axis `a`: slice k along `a` equals, exactly, what key `k` draws alone
  in the shape without axis `a` (the index `i` is the position in that
  unbranched shape).

The hash is int32 arithmetic with wrap-around multiplication (the bits of
uint32 arithmetic, two's complement) and logical right shifts written as an
arithmetic shift and a mask: unsigned 32-bit kernels are missing on some
backends (torch has no uint32 right shift), int32 ones exist everywhere.
The uniforms are `k * 2**-24` (exact) and the normals the normal quantile
of such a uniform, read from a table and interpolated with an exact product
(`keyed_normal`). So the bits, the uniforms, the normals and every mask drawn
from them are the same on every backend, compiled or not. On TensorFlow each
draw is compiled by XLA into one loop (`kreg.tensorflow_compat`), which runs
its ~30 integer ops as one kernel instead of ~30.
"""

import math
import random
import statistics

import numpy as np
from keras import ops
from keras.random import SeedGenerator

from kreg.checks import fail
from kreg.checks import is_int
from kreg.tensorflow_compat import compiled_draw

# "lowbias32" (https://nullprogram.com/blog/2018/07/31/): x ^= x >> 16;
# x *= M1; x ^= x >> 15; x *= M2; x ^= x >> 16 (unsigned 32-bit).
_M1 = 0x7FEB352D
_M2 = 0x846CA68B
# Per-stream constants (fractional parts of the golden ratio and of sqrt 2).
_STREAMS = (0x9E3779B9, 0x6A09E667)
_UNIFORM, _NORMAL = 0, 1
# The normal quantile table: 2**_CELL_BITS entries for the smallest
# probabilities, then 2**_CELL_BITS cells per octave of probability.
_CELL_BITS = 9
_OCTAVES = 23 - _CELL_BITS  # the octaves [2**e, 2**(e + 1)) of k, e = _CELL_BITS .. 22


def _int32(value):
    """A Python int taken modulo 2**32, as the int32 with the same bits."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _shift_right(x, bits):
    """Logical (unsigned) right shift of int32 `x`."""
    return ops.bitwise_and(ops.right_shift(x, bits), (1 << (32 - bits)) - 1)


def _mix(x):
    """lowbias32 on int32 lanes: a bijective 32-bit hash with strong avalanche."""
    x = ops.bitwise_xor(x, _shift_right(x, 16))
    x = ops.multiply(x, _int32(_M1))
    x = ops.bitwise_xor(x, _shift_right(x, 15))
    x = ops.multiply(x, _int32(_M2))
    return ops.bitwise_xor(x, _shift_right(x, 16))


def seed_key(seed):
    """The key a kreg op draws from, for its `seed` argument.

    Args:
        seed: a `keras.random.SeedGenerator` (its `next()` state: the counter
            advances, as for `keras.random` ops), an int `s` (the key
            `[s, 0]`, what `SeedGenerator(s)` starts from), None (a fresh key
            `[s, 0]`, `s` drawn by Python's `random` as `SeedGenerator(None)`
            draws its seed; inside a compiled function it is fixed when the
            function is traced, so layers pass a `SeedGenerator`), or a key
            itself (an int tensor, array or list of shape `(2,)`, or `(K, 2)`
            for a branched draw).

    Returns:
        A key for `keyed_uniform` / `keyed_normal`.

    Example:

    >>> seed_key(5)
    array([5, 0])
    """
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if seed is None:
        seed = random.randint(1, int(1e9))
    if is_int(seed):
        return np.array([int(seed), 0])
    if isinstance(seed, (list, tuple)):
        return np.asarray(seed)
    if isinstance(seed, (str, bytes, float, bool)) or getattr(seed, "shape", None) is None:
        allowed = "a keras.random.SeedGenerator, an int, None or a key of shape (2,)"
        raise fail("seed", allowed, seed)
    return seed


def _int32_key(key, branch_axis):
    """`key` as int32 words `(..., 2)` (modulo 2**32), checked against `branch_axis`."""
    if isinstance(key, (list, tuple, np.ndarray)):
        key = np.asarray(key)
        if not np.issubdtype(key.dtype, np.integer):
            raise fail("key", "an int array", key)
        key = (key.astype(np.int64) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    expected = "(2,)" if branch_axis is None else "(K, 2)"
    shape = tuple(getattr(key, "shape", ()))
    if len(shape) != (1 if branch_axis is None else 2) or shape[-1] != 2:
        raise fail("key", f"an int array of shape {expected}", key)
    return ops.cast(key, "int32")  # modulo 2**32: int64 and uint32 keys keep their low bits


def _check_branch_axis(branch_axis, rank):
    if not is_int(branch_axis) or not -rank <= branch_axis < rank:
        allowed = f"None or an int in [{-rank}, {rank}) for a shape of rank {rank}"
        raise fail("branch_axis", allowed, branch_axis)
    return branch_axis % rank


def _flat_index(dims, axes, rank):
    """The row-major index over `dims`, sitting on `axes` of a rank-`rank` grid.

    Each axis contributes `arange(size) * stride`, shaped to broadcast; the
    other axes of the grid have size 1. Sizes may be symbolic (a traced batch
    size), so the strides are built from the sizes as given.
    """
    index = ops.zeros((1,) * rank, "int32")
    stride = 1
    for size, axis in reversed(list(zip(dims, axes))):
        shape = [1] * rank
        shape[axis] = -1
        step = _int32(stride) if isinstance(stride, int) else stride
        index = index + ops.reshape(ops.arange(size, dtype="int32") * step, shape)
        stride = stride * size
    return index


def _checked(key, shape, branch_axis):
    """`(key, shape, branch_axis)` of a draw, checked: an int32 key, a tuple
    shape, and None or the branch axis as a non-negative int."""
    key = _int32_key(key, branch_axis)
    shape = tuple(int(size) if is_int(size) else size for size in shape)
    if branch_axis is not None:
        branch_axis = _check_branch_axis(branch_axis, len(shape))
        branches, size = key.shape[0], shape[branch_axis]
        if isinstance(size, int) and branches is not None and size != branches:
            raise fail(
                f"shape[{branch_axis}] (the branch axis)", f"the number of keys, {branches}", size
            )
    return key, shape, branch_axis


def _bits(key, shape, branch_axis, stream):
    """32 random bits per element of `shape`, as int32 (see the module
    docstring), for a draw `_checked` has checked."""
    seed, counter = key[..., 0], key[..., 1]
    rank = len(shape)
    axes = [axis for axis in range(rank) if axis != branch_axis]
    a = _mix(ops.bitwise_xor(_mix(ops.bitwise_xor(_mix(seed), counter)), _int32(_STREAMS[stream])))
    b = _mix(ops.add(a, _int32(_STREAMS[0])))
    if branch_axis is not None:
        words = [1] * rank
        words[branch_axis] = -1
        a, b = ops.reshape(a, words), ops.reshape(b, words)
    index = _flat_index([shape[axis] for axis in axes], axes, rank)
    return _mix(ops.bitwise_xor(_mix(ops.add(index, a)), b))


def _top24(bits):
    """The top 24 bits of int32 `bits`, as an int32 in [0, 2**24)."""
    return _shift_right(bits, 8)


def keyed_uniform(key, shape, branch_axis=None):
    """Uniform float32 values in [0, 1), a pure function of `key` and position.

    Each value is `k * 2**-24` for 24 random bits `k` of its element's hash.

    Args:
        key: an int tensor or array of shape `(2,)`, a `SeedGenerator`
            state `[seed, counter]` (any int dtype); `(K, 2)` with
            `branch_axis`.
        shape: the shape to draw, a tuple of ints (or scalar int tensors,
            e.g. a traced batch size from `keras.ops.shape(x)`).
        branch_axis: None, or the axis of `shape` that holds the K
            branches: slice k along it equals exactly
            `keyed_uniform(key[k], shape without that axis)`.

    Returns:
        A float32 tensor of shape `shape`.

    Example:

    >>> u = keyed_uniform(np.array([3, 0]), (2, 4))
    >>> keys = np.array([[3, 0], [3, 1]])
    >>> both = keyed_uniform(keys, (2, 2, 4), branch_axis=1)  # both[:, 0] == u
    """
    return _compiled_uniform(*_checked(key, shape, branch_axis))


def _uniform(key, shape, branch_axis):
    return ops.cast(_top24(_bits(key, shape, branch_axis, _UNIFORM)), "float32") * (2.0**-24)


_compiled_uniform = compiled_draw(_uniform)


def normal_quantile_table():
    """The table of `keyed_normal`: `(start, slope)`, float32 arrays of 7680 entries.

    For k in [0, 2**23), the probability `p = (k + 1/2) / 2**24` in (0, 1/2)
    has the normal quantile `Q(p)`:

    - k < 512: entry k holds `Q(p)` (rounded to float32), slope 0;
    - k in the octave [2**e, 2**(e + 1)), e = 9 .. 22: the octave is cut in
      512 cells of `2**(e - 9)` values of k; entry `512 * (e - 8) + cell`
      holds `Q` at the cell's first k and the secant slope per unit of k to
      the next cell's first k, rounded to `24 - (e - 9)` significant bits.

    So `start + slope * r` (r < 2**(e - 9), the place of k in its cell) has an
    exact product, and one rounding whether or not a compiler fuses the
    multiply and the add: every backend gets the same bits. Every value is
    within 6e-7 of `Q` (all 2**23 checked against `scipy.special.ndtri`).
    """
    quantile = statistics.NormalDist().inv_cdf
    cells = 1 << _CELL_BITS
    start = [quantile((k + 0.5) * 2.0**-24) for k in range(cells)]
    slope = [0.0] * cells
    for octave in range(_CELL_BITS, _CELL_BITS + _OCTAVES):
        width = 1 << (octave - _CELL_BITS)
        for cell in range(cells):
            first = (cells + cell) * width
            value = quantile((first + 0.5) * 2.0**-24)
            step = (quantile((first + width + 0.5) * 2.0**-24) - value) / width
            mantissa, exponent = math.frexp(step)
            bits = 24 - (octave - _CELL_BITS)
            start.append(value)
            slope.append(math.ldexp(round(mantissa * 2.0**bits), exponent - bits))
    return np.array(start, np.float32), np.array(slope, np.float32)


# Built once, at import (about 10 ms), as one (7680, 2) constant: a cache
# would be traced through by torch.compile, which breaks its graph at
# `statistics`' C code (and at each numpy constant).
_QUANTILE_TABLE = np.stack(normal_quantile_table(), axis=-1)


def keyed_normal(key, shape, branch_axis=None):
    """Standard normal float32 values, a pure function of `key` and position.

    The inverse of the normal distribution function at a keyed uniform of a
    stream of its own (so `keyed_normal` and `keyed_uniform` of one key are
    independent): of an element's 24 random bits, the top one is the sign
    and the other 23, k, give `Q((k + 1/2) / 2**24)`, Q the normal quantile
    function on (0, 1/2), read from a table (`normal_quantile_table`) and
    interpolated linearly with an exact product. The values are within 6e-7
    of the exact quantiles, finite (|n| < 5.42) and symmetric.

    Not Box-Muller: backends' `log`, `cos` and `sqrt` differ in their last
    bits (TensorFlow's and torch's CPU kernels even by an element's position
    in its tensor), and polynomials in their place are changed by XLA, which
    fuses a multiply and an add into one rounding where the compiled program
    lets it: a pack and a run alone would not agree bit for bit.

    Args:
        key, shape, branch_axis: as in `keyed_uniform`.

    Returns:
        A float32 tensor of shape `shape`.

    Example:

    >>> n = keyed_normal(np.array([3, 0]), (1000,))  # mean ~0, variance ~1
    """
    return _compiled_normal(*_checked(key, shape, branch_axis))


def _normal(key, shape, branch_axis):
    bits = _top24(_bits(key, shape, branch_axis, _NORMAL))
    negative = ops.greater_equal(bits, 1 << 23)
    k = ops.bitwise_and(bits, (1 << 23) - 1)
    # the octave e of k: the exponent of float32(k), exact as k < 2**23
    octave = ops.right_shift(ops.view(ops.cast(k, "float32"), "int32"), 23) - 127
    shift = ops.maximum(octave - _CELL_BITS, 0)
    cell = ops.right_shift(k, shift) - (1 << _CELL_BITS)
    small = ops.less(k, 1 << _CELL_BITS)
    index = ops.where(small, k, (octave - (_CELL_BITS - 1)) * (1 << _CELL_BITS) + cell)
    place = ops.where(small, 0, ops.bitwise_and(k, ops.left_shift(1, shift) - 1))
    entries = ops.take(ops.convert_to_tensor(_QUANTILE_TABLE), index, axis=0)  # shape + (2,)
    value = entries[..., 0] + entries[..., 1] * ops.cast(place, "float32")
    return ops.where(negative, -value, value)


_compiled_normal = compiled_draw(_normal)
