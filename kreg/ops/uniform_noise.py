"""Multiplicative uniform noise, "Uout" (Li et al. 2019).

y = x + x * u with u ~ U(-beta, beta) drawn independently per element. As u
has mean 0 and variance beta**2 / 3 and is independent of x,

    E[y]   = E[x]
    Var[y] = Var[x] + E[x**2] * beta**2 / 3

(a gain of 1 + beta**2 / 3 for zero-mean x), much smaller than the 1 / q gain
of standard dropout, which is why Uout disturbs a following batch norm less.
"""

from keras import backend
from keras import ops
from keras import random


def uniform_noise(x, rate, seed=None):
    """Returns `x + x * u` with `u ~ U(-rate, rate)` of the same shape as `x`.

    Args:
        x: input tensor.
        rate: the noise half-width beta, in [0, 1). 0 returns `x` unchanged.
        seed: a `keras.random.SeedGenerator`, an int or None.

    Returns:
        A tensor of the shape and dtype of `x`.

    Example:

    >>> y = uniform_noise(keras.ops.ones((2, 3)), 0.2, seed=0)  # values in [0.8, 1.2)
    """
    if rate == 0:
        return x
    x = ops.convert_to_tensor(x)  # numpy input: numpy * torch tensor fails
    u = random.uniform(ops.shape(x), minval=-rate, maxval=rate, seed=seed)
    return x + x * ops.cast(u, backend.standardize_dtype(x.dtype))
