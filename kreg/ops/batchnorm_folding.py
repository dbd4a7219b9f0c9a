"""Batch-norm folding: the algebra that merges an inference-mode BN into the
linear layer before it.

At inference a BatchNormalization on the channel axis is an affine map per
channel c:

    bn(z)_c = gamma_c * (z_c - mean_c) / sqrt(var_c + eps) + beta_c
            = s_c * z_c + (beta_c - s_c * mean_c),   s_c = gamma_c / sqrt(var_c + eps)

If z = x (*) W + b is a linear layer whose output channel c only uses the
kernel slice W[..., c] (Dense, Conv1D/2D/3D, grouped conv, depthwise conv),
then bn(z) = x (*) W' + b' with

    W'[..., c] = s_c * W[..., c]
    b'_c       = (b_c - mean_c) * s_c + beta_c        (b = 0 without bias)

A depthwise kernel (..., in, multiplier) feeds output channel
c = i * multiplier + m from the slice W[..., i, m], so s is reshaped to
(in, multiplier) before the product.
"""

from keras import ops


def fold_batchnorm_weights(
    kernel,
    bias,
    moving_mean,
    moving_variance,
    epsilon,
    gamma=None,
    beta=None,
    depthwise=False,
):
    """Returns the kernel and bias of a linear layer with a BN folded in.

    Args:
        kernel: the linear layer's kernel, output channels on the last axis
            (Dense `(in, units)`, Conv `(*kernel_size, in / groups, filters)`),
            or a depthwise kernel `(*kernel_size, in, multiplier)` when
            `depthwise=True`.
        bias: the linear layer's bias `(channels,)`, or None without bias.
        moving_mean: the BN's moving mean `(channels,)`.
        moving_variance: the BN's moving variance `(channels,)`.
        epsilon: the BN's epsilon.
        gamma: the BN's scale `(channels,)`, or None when `scale=False`.
        beta: the BN's offset `(channels,)`, or None when `center=False`.
        depthwise: True for a depthwise kernel.

    Returns:
        `(kernel, bias)`: tensors of the kernel's shape and of shape
        `(channels,)`, such that the linear layer with them equals
        linear-then-BN in inference mode.

    Example:

    >>> kernel, bias = fold_batchnorm_weights(
    ...     np.ones((3, 2), "float32"), None,
    ...     moving_mean=np.array([1.0, 2.0]), moving_variance=np.array([4.0, 4.0]),
    ...     epsilon=0.0)
    >>> # s = 1 / sqrt(4) = 0.5: kernel is all 0.5, bias = -mean * s = [-0.5, -1.0]
    """
    kernel = ops.convert_to_tensor(kernel)
    dtype = kernel.dtype
    moving_mean = ops.cast(moving_mean, dtype)
    scale = ops.rsqrt(ops.cast(moving_variance, dtype) + ops.cast(epsilon, dtype))
    if gamma is not None:
        scale = ops.cast(gamma, dtype) * scale
    if depthwise:
        in_channels, multiplier = kernel.shape[-2], kernel.shape[-1]
        new_kernel = kernel * ops.reshape(scale, (in_channels, multiplier))
    else:
        new_kernel = kernel * scale
    shifted = -moving_mean if bias is None else ops.cast(bias, dtype) - moving_mean
    new_bias = shifted * scale
    if beta is not None:
        new_bias = new_bias + ops.cast(beta, dtype)
    return new_kernel, new_bias
