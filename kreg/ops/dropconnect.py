"""DropConnect (Wan et al. 2013): drop weights, not activations.

y = x @ (W * M / q) with M ~ Bernoulli(q) elementwise and q = 1 - rate. As
E[M / q] = 1 the expectation over masks is the plain product x @ W, which is
what a DropConnect layer computes at inference. The masked kernel is a new
tensor; the kernel variable itself is never written.
"""

from keras import backend
from keras import ops
from keras import random

MASK_MODES = ("batch", "example")
_INNER_AXES = "cdefghjklmn"


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
        seed: a `keras.random.SeedGenerator`, an int or None.

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
    q = 1.0 - rate
    if mask == "batch":
        mask_shape = ops.shape(kernel)
    else:
        mask_shape = (ops.shape(x)[0],) + tuple(ops.shape(kernel))
    dtype = backend.standardize_dtype(kernel.dtype)
    keep = ops.cast(ops.less(random.uniform(mask_shape, seed=seed), q), dtype)
    masked_kernel = kernel * keep * (1.0 / q)
    if mask == "batch":
        return ops.matmul(x, masked_kernel)
    inner = _INNER_AXES[: len(x.shape) - 2]
    return ops.einsum(f"b{inner}i,bio->b{inner}o", x, masked_kernel)
