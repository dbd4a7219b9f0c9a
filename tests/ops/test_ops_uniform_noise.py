import keras
import numpy as np
from branching import KEYS
from branching import assert_branches_equal_runs_alone
from branching import per_branch

from kreg.ops.keyed_random import keyed_uniform
from kreg.ops.uniform_noise import uniform_noise


def test_noise_is_multiplicative_uniform_within_rate():
    x = np.random.default_rng(0).uniform(0.5, 2.0, (100, 100)).astype("float32")
    u = keras.ops.convert_to_numpy(uniform_noise(x, 0.3, seed=1)) / x - 1
    assert np.all(np.abs(u) <= 0.3 + 1e-6)
    # u ~ U(-0.3, 0.3), 1e4 draws: mean 0 +/- 0.3/sqrt(3)/100 = 0.0017 and
    # variance 0.03 +/- 0.0003 (sd of the sample variance of a uniform:
    # sqrt((m4 - var^2) / n), m4 = beta^4 / 5); 5 sd each.
    assert abs(u.mean()) < 5 * 0.3 / np.sqrt(3) / 100
    assert abs(u.var() - 0.3**2 / 3) < 5 * np.sqrt((0.3**4 / 5 - (0.3**2 / 3) ** 2) / u.size)


def test_zero_input_stays_zero_and_rate_0_is_identity():
    zeros = np.zeros((3, 4), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(uniform_noise(zeros, 0.5, seed=0)), zeros)
    x = np.ones((3, 4), "float32")
    assert uniform_noise(x, 0.0) is x


def test_integer_seed_is_deterministic_and_dtype_kept():
    x = keras.ops.ones((8, 4), dtype="float16")
    first = uniform_noise(x, 0.2, seed=3)
    assert keras.backend.standardize_dtype(first.dtype) == "float16"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(first), keras.ops.convert_to_numpy(uniform_noise(x, 0.2, seed=3)))


def test_noise_is_the_keyed_uniform_stretched_to_minus_rate_rate():
    x = np.random.default_rng(2).standard_normal((30, 20)).astype("float32")
    v = keras.ops.convert_to_numpy(keyed_uniform([3, 8], x.shape))
    u = (v * np.float32(2) - np.float32(1)) * np.float32(0.25)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(uniform_noise(x, 0.25, seed=[3, 8])), x + x * u)


def test_branched_with_per_branch_rates_equals_each_run_alone():
    x = np.random.default_rng(3).standard_normal((16, 3, 7)).astype("float32")
    rates = [0.3, 0.0, 0.6]
    y = keras.ops.convert_to_numpy(uniform_noise(x, per_branch(rates, 3), seed=KEYS, branch_axis=1))
    assert_branches_equal_runs_alone(y, x, lambda k, xk: uniform_noise(xk, rates[k], seed=KEYS[k]))
    np.testing.assert_array_equal(y[:, 1], x[:, 1])
