"""Standard (inverted) dropout from the keyed generator, and what kreg's dropouts share.

Each unit is kept with probability q = 1 - rate and scaled by 1 / q, dropped
(set to 0) otherwise, so the expectation over masks is the input itself,
which is what dropout computes at inference. The keep mask is
`keyed_uniform(key, noise_shape) >= rate` (`kreg.ops.keyed_random`): a pure
function of the key and of each mask entry's position, so the masks of K
runs can be drawn in one op (`branch_axis`) and equal, bit for bit, what each
run draws alone.
"""

from keras import backend
from keras import ops

from kreg.checks import fail
from kreg.checks import is_real
from kreg.ops.keyed_random import keyed_uniform
from kreg.ops.keyed_random import seed_key


def is_zero(rate):
    """True when `rate` is the Python number 0 (a tensor of rates never is)."""
    return is_real(rate) and rate == 0


def python_rate(rate, derived):
    """`rate` as a float, for computing `derived` from it; a tensor of
    per-branch rates comes with `derived` precomputed instead."""
    if not is_real(rate):
        raise fail(derived, "given when rate is a tensor (per-branch rates)", None)
    return float(rate)


def branch_value(value, dtype):
    """A per-run value as a tensor of `dtype`, always through float32.

    A Python float (a run alone) and a float32 tensor holding it (a pack's
    per-branch values) then give the same bits in any `dtype`.
    """
    return ops.cast(ops.convert_to_tensor(value, "float32"), dtype)


def resolve_noise_shape(x, noise_shape):
    """The concrete mask shape: `noise_shape` with None entries taken from `x`."""
    shape = ops.shape(x)
    if noise_shape is None:
        return shape
    return tuple(shape[i] if dim is None else dim for i, dim in enumerate(noise_shape))


def keep_mask(x, rate, noise_shape, seed, branch_axis):
    """The boolean keep mask of `x`: `keyed_uniform >= rate` on the resolved noise shape."""
    uniform = keyed_uniform(seed_key(seed), resolve_noise_shape(x, noise_shape), branch_axis)
    return ops.greater_equal(uniform, branch_value(rate, "float32"))


def dropout(x, rate, noise_shape=None, seed=None, scale=None, branch_axis=None):
    """Applies inverted dropout (training behaviour) to `x`.

    Args:
        x: input tensor.
        rate: drop probability, a float in [0, 1) (0 returns `x`
            unchanged), or with `branch_axis` a float32 tensor of per-branch
            rates broadcastable against `x` (branch k's rate at index k of
            `branch_axis`, e.g. shape `(1, K, 1)`).
        noise_shape: shape of the keep mask, broadcast against `x`; None
            entries take the size of `x` on that axis. None means `x.shape`.
            With `branch_axis`, its entry there is None (or K).
        seed: a `keras.random.SeedGenerator` (the key is its `next()`
            state), an int `s` (the key `[s, 0]`), None (a fresh random
            key) or a key itself (see `kreg.ops.keyed_random.seed_key`);
            with `branch_axis`, a `(K, 2)` key.
        scale: the precomputed `1 / (1 - rate)` (a float, or per-branch
            values shaped like `rate`); None computes it from a float `rate`.
        branch_axis: None, or the axis of `x` holding K branches (a pack):
            slice k of the output equals `dropout` of slice k with key k.

    Returns:
        `x * scale` where kept, 0 where dropped, in the dtype of `x`.

    Example:

    >>> y = dropout(keras.ops.ones((4, 3)), 0.5, seed=0)   # 0 or 2 everywhere
    """
    if is_zero(rate):
        return x
    # numpy input: a numpy array on the left of `*` does not combine with a
    # torch tensor, so every operand is a backend tensor first.
    x = ops.convert_to_tensor(x)
    if scale is None:
        scale = 1.0 / (1.0 - python_rate(rate, "scale"))
    keep = keep_mask(x, rate, noise_shape, seed, branch_axis)
    scaled = x * branch_value(scale, backend.standardize_dtype(x.dtype))
    return ops.where(keep, scaled, ops.zeros_like(scaled))
