"""Alpha dropout (Klambauer et al. 2017, "Self-Normalizing Neural Networks").

Dropped units are set to the negative saturation value of SELU,
alpha' = -lambda * alpha, and an affine map `a * x + b` brings mean and
variance back to a fixed point (mu, nu). With keep probability q and a keep mask
m ~ Bernoulli(q), z = x * m + alpha' * (1 - m) has, for x of mean mu and
variance nu,

    E[z]   = q * mu + (1 - q) * alpha'
    Var[z] = q * (nu + (1 - q) * (mu - alpha')**2)

so a = sqrt(nu / Var[z]) and b = mu - a * E[z] give E[a z + b] = mu and
Var[a z + b] = nu, whatever the distribution of x.
"""

import math

from keras import backend
from keras import ops
from keras import random

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


def resolve_noise_shape(x, noise_shape):
    """The concrete mask shape: `noise_shape` with None entries taken from `x`."""
    shape = ops.shape(x)
    if noise_shape is None:
        return shape
    return tuple(shape[i] if dim is None else dim for i, dim in enumerate(noise_shape))


def alpha_dropout(x, rate, noise_shape=None, seed=None, mean=0.0, variance=1.0, affine=None):
    """Applies alpha dropout (training behaviour) to `x`.

    Args:
        x: input tensor.
        rate: drop probability, in [0, 1). 0 returns `x` unchanged.
        noise_shape: shape of the keep mask, broadcast against `x`; None
            entries take the size of `x` on that axis. None means `x.shape`.
        seed: a `keras.random.SeedGenerator`, an int or None.
        mean: the fixed-point mean the output keeps.
        variance: the fixed-point variance the output keeps.
        affine: the precomputed `alpha_dropout_affine(rate, mean, variance)`,
            or None to compute it here. Layers pass it: under `torch.compile`
            dynamo may trace float attributes as symbolic floats, and the
            float arithmetic of `alpha_dropout_affine` then fails to trace.

    Returns:
        `a * (x * m + alpha' * (1 - m)) + b`, in the dtype of `x`.

    Example:

    >>> x = keras.random.normal((1000, 8))
    >>> y = alpha_dropout(x, 0.1, seed=0)
    """
    if rate == 0:
        return x
    # numpy input: a numpy array on the left of `*` does not combine with
    # a torch tensor, so every operand is a backend tensor first.
    x = ops.convert_to_tensor(x)
    a, b = alpha_dropout_affine(rate, mean, variance) if affine is None else affine
    uniform = random.uniform(resolve_noise_shape(x, noise_shape), seed=seed)
    keep = ops.cast(ops.less(uniform, 1.0 - rate), backend.standardize_dtype(x.dtype))
    return a * (x * keep + ALPHA_PRIME * (1.0 - keep)) + b
