"""Alpha dropout (Klambauer et al. 2017, "Self-Normalizing Neural Networks").

Dropped units are set to the negative saturation value of SELU,
alpha' = -lambda * alpha, and an affine map `a * x + b` brings mean and
variance back to a fixed point (mu, nu). With keep probability q and a keep mask
m ~ Bernoulli(q), z = x * m + alpha' * (1 - m) has, for x of mean mu and
variance nu,

    E[z]   = q * mu + (1 - q) * alpha'
    Var[z] = q * (nu + (1 - q) * (mu - alpha')**2)

so a = sqrt(nu / Var[z]) and b = mu - a * E[z] give E[a z + b] = mu and
Var[a z + b] = nu, whatever the distribution of x. The keep mask is drawn
as standard dropout's (`kreg.ops.dropout`), from the keyed generator.
"""

import math

from keras import backend
from keras import ops

from kreg.checks import fail
from kreg.checks import is_real
from kreg.ops.dropout import branch_value
from kreg.ops.dropout import is_zero
from kreg.ops.dropout import keep_mask

SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772
ALPHA_PRIME = -SELU_LAMBDA * SELU_ALPHA


def alpha_dropout_affine(rate, mean=0.0, variance=1.0):
    """The affine correction `(a, b)` of alpha dropout.

    Args:
        rate: drop probability, in [0, 1).
        mean: the fixed-point mean mu the output keeps.
        variance: the fixed-point variance nu (> 0) the output keeps.

    Returns:
        A tuple of Python floats `(a, b)`.

    Example:

    >>> a, b = alpha_dropout_affine(0.1)
    >>> round(a, 6), round(b, 6)
    (0.921285, 0.161971)
    """
    q = 1.0 - rate
    a = math.sqrt(variance / (q * ((1.0 - q) * (ALPHA_PRIME - mean) ** 2 + variance)))
    b = mean - a * (q * mean + (1.0 - q) * ALPHA_PRIME)
    return a, b


def alpha_dropout(
    x,
    rate,
    noise_shape=None,
    seed=None,
    mean=0.0,
    variance=1.0,
    affine=None,
    branch_axis=None,
    dropped=None,
):
    """Applies alpha dropout (training behaviour) to `x`.

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
        mean: the fixed-point mean the output keeps.
        variance: the fixed-point variance the output keeps.
        affine: the precomputed `alpha_dropout_affine(rate, mean, variance)`
            (two floats, or two per-branch tensors shaped like `rate`), or
            None to compute it here from a float `rate`. Layers pass it:
            under `torch.compile` dynamo may trace float attributes as
            symbolic floats, and the float arithmetic of
            `alpha_dropout_affine` then fails to trace.
        branch_axis: None, or the axis of `x` holding K branches (a pack):
            slice k of the output equals `alpha_dropout` of slice k with key k.
        dropped: the value of the dropped units, `a * alpha' + b`, precomputed
            (a float, or per-branch values shaped like `rate`); None computes
            it from float `affine` values, in Python. A pack passes the
            floats its runs compute alone: a compiler folds `a * alpha' + b`
            of constants, or fuses it into one rounding, differently.

    Returns:
        `a * x + b` where kept, `dropped` where dropped, in the dtype of `x`.

    Example:

    >>> x = keras.random.normal((1000, 8))
    >>> y = alpha_dropout(x, 0.1, seed=0)
    """
    if is_zero(rate):
        return x
    # numpy input: a numpy array on the left of `*` does not combine with
    # a torch tensor, so every operand is a backend tensor first.
    x = ops.convert_to_tensor(x)
    if affine is None:
        if not is_real(rate):
            raise fail("affine", "given when rate is a tensor (per-branch rates)", affine)
        affine = alpha_dropout_affine(rate, mean, variance)
    a, b = affine
    if dropped is None:
        if not (is_real(a) and is_real(b)):
            raise fail("dropped", "given when affine holds tensors (per-branch values)", dropped)
        dropped = a * ALPHA_PRIME + b
    dtype = backend.standardize_dtype(x.dtype)
    keep = keep_mask(x, rate, noise_shape, seed, branch_axis)
    kept = x * branch_value(a, dtype) + branch_value(b, dtype)
    return ops.where(keep, kept, branch_value(dropped, dtype))
