import numpy as np
import pytest
from keras import ops

from kreg.ops import fold_batchnorm_weights

EPS = 1e-3


def stats(channels, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "moving_mean": rng.normal(size=channels).astype("float32"),
        "moving_variance": rng.uniform(0.2, 3.0, size=channels).astype("float32"),
        "gamma": rng.normal(size=channels).astype("float32"),
        "beta": rng.normal(size=channels).astype("float32"),
    }


def batchnorm(z, moving_mean, moving_variance, gamma, beta):
    """Inference-mode BN on the last axis, in float64 (the reference)."""
    z = z.astype("float64")
    return (z - moving_mean) / np.sqrt(moving_variance.astype("float64") + EPS) * gamma + beta


def fold(kernel, bias, bn, **kwargs):
    new_kernel, new_bias = fold_batchnorm_weights(kernel, bias, epsilon=EPS, **bn, **kwargs)
    return ops.convert_to_numpy(new_kernel), ops.convert_to_numpy(new_bias)


# float32 folding vs a float64 reference: a 6-term dot product with O(1) values
# has a rounding error ~1e-6; 1e-5 leaves a margin, a wrong channel is off by O(1).
TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.mark.parametrize("with_bias", [True, False])
def test_dense_kernel_and_bias(with_bias):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 6)).astype("float32")
    kernel = rng.normal(size=(6, 4)).astype("float32")
    bias = rng.normal(size=4).astype("float32") if with_bias else None
    bn = stats(4)
    new_kernel, new_bias = fold(kernel, bias, bn)
    expected = batchnorm(x @ kernel + (0 if bias is None else bias), **bn)
    np.testing.assert_allclose(x @ new_kernel + new_bias, expected, **TOL)
    assert new_kernel.shape == kernel.shape and new_bias.shape == (4,)


def test_depthwise_channel_order():
    # A 1x1 depthwise kernel (1, 1, in, mult) makes output channel
    # c = i * mult + m equal to x_i * kernel[0, 0, i, m] (+ bias_c).
    rng = np.random.default_rng(2)
    inputs, multiplier = 3, 2
    x = rng.normal(size=(10, inputs)).astype("float32")
    kernel = rng.normal(size=(1, 1, inputs, multiplier)).astype("float32")
    bias = rng.normal(size=inputs * multiplier).astype("float32")
    bn = stats(inputs * multiplier, seed=3)

    def depthwise(k, b):
        return (x[:, :, None] * k[0, 0][None]).reshape(10, inputs * multiplier) + b

    new_kernel, new_bias = fold(kernel, bias, bn, depthwise=True)
    expected = batchnorm(depthwise(kernel, bias), **bn)
    np.testing.assert_allclose(depthwise(new_kernel, new_bias), expected, **TOL)


def test_missing_gamma_and_beta_mean_one_and_zero():
    rng = np.random.default_rng(4)
    kernel = rng.normal(size=(3, 5)).astype("float32")
    bn = stats(5)
    without = fold(kernel, None, {**bn, "gamma": None, "beta": None})
    ones, zeros = np.ones(5, "float32"), np.zeros(5, "float32")
    explicit = fold(kernel, None, {**bn, "gamma": ones, "beta": zeros})
    for a, b in zip(without, explicit):
        np.testing.assert_array_equal(a, b)


def test_conv_kernel_scales_the_last_axis():
    # Conv kernels (kh, kw, in / groups, filters): filter c is kernel[..., c].
    rng = np.random.default_rng(5)
    kernel = rng.normal(size=(3, 3, 2, 4)).astype("float32")
    bn = stats(4)
    new_kernel, _ = fold(kernel, None, bn)
    scale = bn["gamma"] / np.sqrt(bn["moving_variance"] + EPS)
    np.testing.assert_allclose(new_kernel, kernel * scale, **TOL)
