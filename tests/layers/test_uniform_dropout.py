import re

import keras
import numpy as np
import pytest
from layer_contract import LayerContract

from kreg.layers import UniformDropout


class TestUniformDropoutContract(LayerContract):
    input_shape = (6, 5)

    def make_layer(self):
        return UniformDropout(0.3, seed=1)


def train_pass(layer, x):
    return keras.ops.convert_to_numpy(layer(x, training=True))


# y = x + x*u with u ~ U(-beta, beta) independent of x, so E[y] = E[x] and
# Var[y] = Var[x] + E[x^2] * beta^2 / 3. For x ~ N(m, 1): E[x^2] = 1 + m^2,
# hence Var[y] = 1 + (1 + m^2) * beta^2 / 3 (gain 1 + beta^2/3 for m = 0).
# With N = 1e6 samples the standard errors of the sample mean and variance,
# sqrt(Var[y] / N) and sqrt(Var[(y - mean)^2] / N), are about 1e-3 and 2e-3;
# they are estimated from the sample and the tolerance is 6 of them. The
# variance gains tested (0.013 .. 0.17) are 6..80 standard errors away from 1,
# and standard dropout at the same rate would give 1 / (1 - beta) >= 1.25.
@pytest.mark.parametrize("beta, input_mean", [(0.2, 0.0), (0.5, 0.0), (0.5, 1.0)])
def test_keeps_mean_and_scales_variance_by_the_uout_gain(beta, input_mean):
    x = (input_mean + np.random.default_rng(0).standard_normal((1000, 1000))).astype("float64")
    y = train_pass(UniformDropout(beta, seed=4), x.astype("float32")).astype("float64")
    n = y.size
    expected_var = 1 + (1 + input_mean**2) * beta**2 / 3
    se_mean = np.sqrt(y.var() / n)
    se_var = np.sqrt(((y - y.mean()) ** 2).var() / n)
    assert abs(y.mean() - input_mean) < 6 * se_mean
    assert abs(y.var() - expected_var) < 6 * se_var


def test_noise_is_bounded_by_rate_and_fills_its_range():
    x = np.random.default_rng(1).uniform(0.5, 2.0, (200, 50)).astype("float32")
    u = train_pass(UniformDropout(0.25, seed=2), x) / x - 1
    assert np.all(np.abs(u) <= 0.25 + 1e-6)
    # 1e4 uniform draws: the extremes are within 1e-3 of the bounds
    # with probability 1 - 2 * (1 - 0.002)**1e4 ~ 1 - 4e-9.
    assert u.min() < -0.249 and u.max() > 0.249


def test_inference_and_zero_rate_are_identity():
    x = np.random.default_rng(1).standard_normal((16, 7)).astype("float32")
    layer = UniformDropout(0.4, seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    np.testing.assert_array_equal(train_pass(UniformDropout(0.0), x), x)


def test_seeded_noise_is_reproducible_and_fresh_each_step():
    x = np.random.default_rng(2).standard_normal((32, 16)).astype("float32")
    first, second = UniformDropout(0.3, seed=7), UniformDropout(0.3, seed=7)
    step1 = train_pass(first, x)
    np.testing.assert_array_equal(step1, train_pass(second, x))
    assert not np.array_equal(step1, train_pass(first, x))


def test_passes_the_keras_mask_through():
    layer = UniformDropout(0.2)
    mask = np.array([[True, False, True]])
    assert layer.supports_masking
    np.testing.assert_array_equal(layer.compute_mask(np.zeros((1, 3, 2)), mask), mask)


@pytest.mark.parametrize("rate, shown", [(1.0, "1.0"), (-0.1, "-0.1"), (float("nan"), "nan"), ("0.5", "'0.5'"), (True, "True")])
def test_refuses_bad_rate(rate, shown):
    with pytest.raises(ValueError, match=re.escape("rate must be") + ".*" + re.escape(f"got {shown}")):
        UniformDropout(rate)


@pytest.mark.parametrize("seed, shown", [(-1, "-1"), ("1", "'1'"), (False, "False")])
def test_refuses_a_bad_seed(seed, shown):
    with pytest.raises(ValueError, match="^" + re.escape(f"seed must be None or an int >= 0, got {shown}") + "$"):
        UniformDropout(0.1, seed=seed)


def test_is_built_at_construction():
    layer = UniformDropout(0.2)
    assert layer.built
