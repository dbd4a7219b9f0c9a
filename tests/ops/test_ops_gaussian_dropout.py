import re

import keras
import numpy as np
import pytest
from branching import KEYS
from branching import assert_branches_equal_runs_alone
from branching import per_branch

from kreg.ops.gaussian_dropout import gaussian_dropout
from kreg.ops.gaussian_dropout import gaussian_dropout_stddev
from kreg.ops.keyed_random import keyed_normal


def np_(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_the_multiplier_has_mean_1_and_the_variance_of_standard_dropout(rate):
    # multiplier 1 + s n, n ~ N(0, 1): mean 1, variance s**2 = rate / (1 - rate);
    # over N = 1e6 values the standard errors are s / sqrt(N) and s**2 sqrt(2 / N).
    x = np.ones((1000, 1000), "float32")
    m = np_(gaussian_dropout(x, rate, seed=3)).astype("float64")
    variance, n = rate / (1 - rate), m.size
    assert abs(m.mean() - 1) < 5 * np.sqrt(variance / n)
    assert abs(m.var() - variance) < 5 * variance * np.sqrt(2 / n)


def test_is_the_input_times_one_plus_stddev_keyed_normals():
    x = np.random.default_rng(0).standard_normal((50, 20)).astype("float32")
    s = np.float32(gaussian_dropout_stddev(0.3))
    expected = x * (np_(keyed_normal([7, 1], x.shape)) * s + np.float32(1))
    np.testing.assert_array_equal(np_(gaussian_dropout(x, 0.3, seed=[7, 1])), expected)


def test_stddev_matches_keras():
    assert gaussian_dropout_stddev(0.5) == 1.0
    assert gaussian_dropout_stddev(0.2) == pytest.approx(0.5)
    assert gaussian_dropout_stddev(0.0) == 0.0


def test_branched_with_per_branch_rates_equals_each_run_alone():
    x = np.random.default_rng(1).standard_normal((16, 3, 7)).astype("float32")
    rates = [0.3, 0.0, 0.6]
    stddevs = per_branch([gaussian_dropout_stddev(r) for r in rates], 3)
    y = np_(gaussian_dropout(x, per_branch(rates, 3), seed=KEYS, stddev=stddevs, branch_axis=1))
    assert_branches_equal_runs_alone(y, x, lambda k, xk: gaussian_dropout(xk, rates[k], seed=KEYS[k]) if rates[k] else xk)


def test_rate_0_is_identity_and_dtype_is_kept():
    x = np.ones((3, 4), "float32")
    assert gaussian_dropout(x, 0.0) is x
    half = keras.ops.ones((8, 4), dtype="float16")
    assert keras.backend.standardize_dtype(gaussian_dropout(half, 0.5, seed=0).dtype) == "float16"


def test_per_branch_rates_need_the_precomputed_stddev():
    with pytest.raises(ValueError, match=re.escape("stddev must be given when rate is a tensor (per-branch rates), got None")):
        gaussian_dropout(np.ones((2, 3), "float32"), per_branch([0.1, 0.2, 0.3], 2), seed=KEYS, branch_axis=1)
