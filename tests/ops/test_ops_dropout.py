import re

import keras
import numpy as np
import pytest
from branching import KEYS
from branching import assert_branches_equal_runs_alone
from branching import per_branch

from kreg.ops.dropout import dropout
from kreg.ops.dropout import resolve_noise_shape
from kreg.ops.keyed_random import keyed_uniform


def np_(x):
    return keras.ops.convert_to_numpy(x)


def test_kept_units_are_scaled_and_the_mask_is_uniform_at_least_rate():
    x = np.random.default_rng(0).uniform(0.5, 2.0, (200, 50)).astype("float32")
    y = np_(dropout(x, 0.3, seed=[5, 2]))
    kept = np_(keyed_uniform([5, 2], x.shape)) >= np.float32(0.3)
    np.testing.assert_array_equal(y[~kept], 0)
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)
    # 1e4 units, drop fraction ~ 0.3 +/- sqrt(0.21 / 1e4) = 0.0046: 5 sd.
    assert abs((~kept).mean() - 0.3) < 5 * np.sqrt(0.21 / x.size)


@pytest.mark.parametrize("noise_shape, shared", [((None, 1, 5), (1,)), ((1, None, 5), (0,)), ((None, 1, 1), (1, 2))])
def test_noise_shape_shares_the_mask_along_its_unit_axes(noise_shape, shared):
    x = np.ones((64, 10, 5), "float32")
    dropped = np_(dropout(x, 0.4, noise_shape, seed=1)) == 0
    for axis in shared:
        np.testing.assert_array_equal(dropped, np.broadcast_to(dropped.take([0], axis), x.shape))
    assert 0 < dropped.mean() < 1


def test_noise_shape_none_entries_take_the_input_size():
    x = np.zeros((4, 6, 5), "float32")
    assert tuple(resolve_noise_shape(x, (None, 1, None))) == (4, 1, 5)
    assert tuple(resolve_noise_shape(x, None)) == (4, 6, 5)


def test_branched_with_per_branch_rates_equals_each_run_alone():
    # a rate-0 branch (scale 1) next to others is the identity
    x = np.random.default_rng(1).standard_normal((16, 3, 7)).astype("float32")
    rates = [0.3, 0.0, 0.6]
    scales = [1 / (1 - r) for r in rates]
    y = np_(dropout(x, per_branch(rates, 3), seed=KEYS, scale=per_branch(scales, 3), branch_axis=1))
    assert_branches_equal_runs_alone(y, x, lambda k, xk: dropout(xk, rates[k], seed=KEYS[k]) if rates[k] else xk)
    np.testing.assert_array_equal(y[:, 1], x[:, 1])


def test_branched_noise_shape_puts_the_branches_on_their_axis():
    x = np.random.default_rng(2).standard_normal((8, 3, 4, 6)).astype("float32")
    y = np_(dropout(x, 0.5, (None, None, 1, None), seed=KEYS, branch_axis=1))
    assert_branches_equal_runs_alone(y, x, lambda k, xk: dropout(xk, 0.5, (None, 1, None), seed=KEYS[k]))


def test_rate_0_is_identity_and_dtype_is_kept():
    x = np.ones((3, 4), "float32")
    assert dropout(x, 0.0) is x
    half = keras.ops.ones((8, 4), dtype="float16")
    assert keras.backend.standardize_dtype(dropout(half, 0.5, seed=0).dtype) == "float16"


def test_per_branch_rates_need_the_precomputed_scale():
    message = re.escape("scale must be given when rate is a tensor (per-branch rates), got None")
    with pytest.raises(ValueError, match=message):
        dropout(np.ones((2, 3, 4), "float32"), per_branch([0.1, 0.2, 0.3], 3), seed=KEYS, branch_axis=1)
