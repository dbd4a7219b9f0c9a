"""DropConnect (Wan et al. 2013): drop weights, not activations.

y = x @ (W * M / q) with M ~ Bernoulli(q) elementwise and q = 1 - rate. As
E[M / q] = 1 the expectation over masks is the plain product x @ W, which is
what a DropConnect layer computes at inference. The masked kernel is a new
tensor; the kernel variable itself is never written. The masks come from the
keyed generator (`kreg.ops.keyed_random`), so K runs' masks can be drawn in
one op (`dropconnect_keep(..., branch_axis=...)`).
"""

from keras import backend
from keras import ops

from kreg.ops.dropout import branch_value
from kreg.ops.keyed_random import keyed_uniform
from kreg.ops.keyed_random import seed_key

MASK_MODES = ("batch", "example")
_INNER_AXES = "cdefghjklmn"


def dropconnect_keep(key, shape, rate, branch_axis=None, dtype="float32"):
    """The 0/1 keep mask of DropConnect: 1 where `keyed_uniform(key, shape) >= rate`.

    A run's masked kernel is `kernel * keep * (1 / (1 - rate))`, the scale
    computed in float32 from the float32 rate (what `dropconnect_matmul`
    does), so a stacked layer that draws K runs' masks in one call and
    scales them the same way gets each run's masked kernel exactly.

    Args:
        key: a key (`SeedGenerator.next()` state, shape `(2,)`; `(K, 2)`
            with `branch_axis`), as in `kreg.ops.keyed_random.keyed_uniform`.
        shape: the mask shape: `(in, units)` for one kernel (`mask="batch"`),
            `(batch, in, units)` for one kernel per example (`mask="example"`);
            with `branch_axis`, K inserted there, e.g. `(K, in, units)`
            (`branch_axis=0`) or `(batch, K, in, units)` (`branch_axis=1`).
        rate: drop probability of each weight, a float in [0, 1), or a
            float32 tensor of per-branch rates broadcastable against `shape`
            (e.g. `(K, 1, 1)` for `branch_axis=0`).
        branch_axis: None, or the axis of `shape` holding the K branches:
            slice k equals `dropconnect_keep(key[k], shape without it, rate k)`.
        dtype: the mask's dtype.

    Returns:
        A tensor of `shape` and `dtype` holding 0 (dropped) and 1 (kept).

    Example:

    >>> keep = dropconnect_keep(np.array([7, 0]), (3, 2), 0.5)
    >>> keeps = dropconnect_keep(np.array([[7, 0], [8, 0]]), (2, 3, 2), 0.5, branch_axis=0)
    """
    keep = ops.greater_equal(keyed_uniform(key, shape, branch_axis), branch_value(rate, "float32"))
    return ops.cast(keep, dtype)


def dropconnect_matmul(x, kernel, rate, mask="batch", seed=None):
    """Computes `x @ (kernel * M / q)` over the last axis of `x`.

    Args:
        x: input of shape `(batch, ..., in)`, rank >= 2.
        kernel: weights of shape `(in, units)`.
        rate: drop probability of each weight, in [0, 1). 0 gives `x @ kernel`.
        mask: `"batch"`: one `(in, units)` mask per call, shared by all rows;
            `"example"`: one mask per example, i.e. per index of the first
            axis of `x`, shared by that example's inner axes (e.g. all the
            timesteps of a sequence); memory `batch * in * units`.
        seed: a `keras.random.SeedGenerator` (the key is its `next()`
            state), an int `s` (the key `[s, 0]`), None (a fresh random
            key) or a key itself (see `kreg.ops.keyed_random.seed_key`).

    Returns:
        A tensor of shape `(batch, ..., units)` in the dtype of `x`.

    Example:

    >>> x, w = keras.ops.ones((4, 3)), keras.ops.ones((3, 2))
    >>> y = dropconnect_matmul(x, w, 0.5, mask="example", seed=0)
    """
    if mask not in MASK_MODES:
        raise ValueError(f"mask must be one of 'batch', 'example', got {mask!r}")
    # numpy inputs: numpy * torch tensor fails, so both are tensors first.
    x, kernel = ops.convert_to_tensor(x), ops.convert_to_tensor(kernel)
    if rate == 0:
        return ops.matmul(x, kernel)
    if mask == "batch":
        mask_shape = ops.shape(kernel)
    else:
        mask_shape = (ops.shape(x)[0],) + tuple(ops.shape(kernel))
    dtype = backend.standardize_dtype(kernel.dtype)
    rate = ops.convert_to_tensor(rate, "float32")
    keep = dropconnect_keep(seed_key(seed), mask_shape, rate, dtype=dtype)
    masked_kernel = kernel * keep * ops.cast(1.0 / (1.0 - rate), dtype)
    if mask == "batch":
        return ops.matmul(x, masked_kernel)
    inner = _INNER_AXES[: len(x.shape) - 2]
    return ops.einsum(f"b{inner}i,bio->b{inner}o", x, masked_kernel)
