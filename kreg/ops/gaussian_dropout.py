"""Gaussian dropout: multiplicative noise of mean 1 (Srivastava et al. 2014).

y = x * (1 + s * n) with n ~ N(0, 1) and s = sqrt(rate / (1 - rate)): the
multiplier has mean 1 and variance rate / (1 - rate), the variance of
standard dropout's multiplier m / q (m ~ Bernoulli(q), q = 1 - rate), as in
`keras.layers.GaussianDropout`. n is `keyed_normal` (`kreg.ops.keyed_random`).
"""

import math

from keras import backend
from keras import ops

from kreg.ops.dropout import branch_value
from kreg.ops.dropout import is_zero
from kreg.ops.dropout import python_rate
from kreg.ops.keyed_random import keyed_normal
from kreg.ops.keyed_random import seed_key


def gaussian_dropout_stddev(rate):
    """The standard deviation `sqrt(rate / (1 - rate))` of the multiplier.

    Example:

    >>> gaussian_dropout_stddev(0.5)
    1.0
    """
    return math.sqrt(rate / (1.0 - rate))


def gaussian_dropout(x, rate, seed=None, stddev=None, branch_axis=None):
    """Multiplies `x` by `1 + stddev * n`, `n` standard normal per element.

    Args:
        x: input tensor.
        rate: the equivalent drop probability, a float in [0, 1) (0 returns
            `x` unchanged), or with `branch_axis` a float32 tensor of
            per-branch rates broadcastable against `x`.
        seed: a `keras.random.SeedGenerator`, an int, None or a key, as in
            `kreg.ops.dropout.dropout`.
        stddev: the precomputed `gaussian_dropout_stddev(rate)` (a float, or
            per-branch values shaped like `rate`); None computes it from a
            float `rate`.
        branch_axis: None, or the axis of `x` holding K branches (a pack):
            slice k of the output equals `gaussian_dropout` of slice k with key k.

    Returns:
        A tensor of the shape and dtype of `x`.

    Example:

    >>> y = gaussian_dropout(keras.ops.ones((1000,)), 0.2, seed=0)   # mean ~1, variance ~0.25
    """
    if is_zero(rate):
        return x
    x = ops.convert_to_tensor(x)  # numpy input: numpy * torch tensor fails
    if stddev is None:
        stddev = gaussian_dropout_stddev(python_rate(rate, "stddev"))
    normal = keyed_normal(seed_key(seed), ops.shape(x), branch_axis)
    multiplier = normal * branch_value(stddev, "float32") + 1.0
    return x * ops.cast(multiplier, backend.standardize_dtype(x.dtype))
