"""Multiplicative uniform noise, "Uout" (Li et al. 2019).

y = x + x * u with u ~ U(-beta, beta) drawn independently per element. As u
has mean 0 and variance beta**2 / 3 and is independent of x,

    E[y]   = E[x]
    Var[y] = Var[x] + E[x**2] * beta**2 / 3

(a gain of 1 + beta**2 / 3 for zero-mean x), much smaller than the 1 / q gain
of standard dropout, which is why Uout disturbs a following batch norm less.
u is `(2 v - 1) * beta` for `v = keyed_uniform(...)` (`kreg.ops.keyed_random`).
"""

from keras import backend
from keras import ops

from kreg.ops.dropout import branch_value
from kreg.ops.dropout import is_zero
from kreg.ops.keyed_random import keyed_uniform
from kreg.ops.keyed_random import seed_key


def uniform_noise(x, rate, seed=None, branch_axis=None):
    """Returns `x + x * u` with `u ~ U(-rate, rate)` of the same shape as `x`.

    Args:
        x: input tensor.
        rate: the noise half-width beta, a float in [0, 1) (0 returns `x`
            unchanged), or with `branch_axis` a float32 tensor of per-branch
            half-widths broadcastable against `x` (branch k's at index k of
            `branch_axis`, e.g. shape `(1, K, 1)`).
        seed: a `keras.random.SeedGenerator` (the key is its `next()`
            state), an int `s` (the key `[s, 0]`), None (a fresh random
            key) or a key itself (see `kreg.ops.keyed_random.seed_key`);
            with `branch_axis`, a `(K, 2)` key.
        branch_axis: None, or the axis of `x` holding K branches (a pack):
            slice k of the output equals `uniform_noise` of slice k with key k.

    Returns:
        A tensor of the shape and dtype of `x`.

    Example:

    >>> y = uniform_noise(keras.ops.ones((2, 3)), 0.2, seed=0)  # values in [0.8, 1.2)
    """
    if is_zero(rate):
        return x
    x = ops.convert_to_tensor(x)  # numpy input: numpy * torch tensor fails
    v = keyed_uniform(seed_key(seed), ops.shape(x), branch_axis)
    u = (v * 2.0 - 1.0) * branch_value(rate, "float32")
    return x + x * ops.cast(u, backend.standardize_dtype(x.dtype))
