import re

import keras
import numpy as np
import pytest
from branching import KEYS
from branching import per_branch

from kreg.ops.dropconnect import dropconnect_keep
from kreg.ops.dropconnect import dropconnect_matmul
from kreg.ops.keyed_random import keyed_uniform


def np_(x):
    return keras.ops.convert_to_numpy(x)


KERNEL = np.random.default_rng(0).standard_normal((6, 4)).astype("float32")


def test_batch_mode_is_a_matmul_with_one_masked_rescaled_kernel():
    # An integer seed draws the same (in, units) mask in both calls: eye(in)
    # reads the masked kernel out, and any other input must use that kernel.
    masked = np_(dropconnect_matmul(np.eye(6, dtype="float32"), KERNEL, 0.5, seed=4))
    assert np.all(np.isclose(masked, KERNEL / 0.5, rtol=1e-6) | (masked == 0))
    assert 0 < (masked == 0).sum() < masked.size
    x = np.random.default_rng(1).standard_normal((5, 3, 6)).astype("float32")
    np.testing.assert_allclose(np_(dropconnect_matmul(x, KERNEL, 0.5, seed=4)), x @ masked, rtol=1e-5, atol=1e-5)


def test_example_mode_uses_one_masked_kernel_per_example():
    # x of shape (B, in, in) holding eye(in) per example reads out the B masks
    # (the inner axis shares its example's mask); a (B, in) input with the same
    # seed draws the same (B, in, units) masks.
    batch = 5
    masks = np_(dropconnect_matmul(np.tile(np.eye(6, dtype="float32"), (batch, 1, 1)), KERNEL, 0.5, "example", seed=4))
    assert masks.shape == (batch, 6, 4)
    assert np.all(np.isclose(masks, KERNEL / 0.5, rtol=1e-6) | (masks == 0))
    assert len({m.tobytes() for m in masks}) == batch
    x = np.random.default_rng(2).standard_normal((batch, 6)).astype("float32")
    expected = np.einsum("bi,bio->bo", x, masks)
    np.testing.assert_allclose(np_(dropconnect_matmul(x, KERNEL, 0.5, "example", seed=4)), expected, rtol=1e-5, atol=1e-5)


def test_rate_0_is_the_plain_matmul():
    x = np.random.default_rng(3).standard_normal((2, 6)).astype("float32")
    np.testing.assert_array_equal(np_(dropconnect_matmul(x, KERNEL, 0.0)), np_(keras.ops.matmul(x, KERNEL)))


def test_refuses_unknown_mask_mode():
    with pytest.raises(ValueError, match=re.escape("mask must be one of 'batch', 'example', got 'rows'")):
        dropconnect_matmul(np.ones((2, 6), "float32"), KERNEL, 0.5, mask="rows")


def test_keep_mask_is_the_keyed_uniform_at_least_rate():
    keep = np_(dropconnect_keep(np.array([4, 0]), (60, 40), 0.3))
    np.testing.assert_array_equal(keep, np_(keyed_uniform([4, 0], (60, 40))) >= np.float32(0.3))
    # 2400 weights, drop fraction 0.3 +/- sqrt(0.21 / 2400) = 0.0094: 5 sd.
    assert abs(1 - keep.mean() - 0.3) < 5 * np.sqrt(0.21 / keep.size)
    assert keep.dtype == np.float32
    assert keras.backend.standardize_dtype(dropconnect_keep(np.array([4, 0]), (2, 2), 0.3, dtype="float16").dtype) == "float16"


def test_matmul_masks_are_the_keep_masks_of_the_seeds_key():
    # an int seed s is the key [s, 0]
    masked = np_(dropconnect_matmul(np.eye(6, dtype="float32"), KERNEL, 0.5, seed=4))
    keep = np_(dropconnect_keep(np.array([4, 0]), KERNEL.shape, 0.5))
    np.testing.assert_array_equal(masked, KERNEL * keep * np.float32(1 / 0.5))


def test_kernel_shaped_masks_of_k_branches_in_one_draw_equal_each_alone():
    # branch_axis=0: a stacked kernel (K, in, units), one rate per branch (a rate-0 branch keeps all)
    rates = [0.3, 0.0, 0.6]
    keep = np_(dropconnect_keep(KEYS, (3, 6, 4), per_branch(rates, 3, axis=0), branch_axis=0))
    for k, rate in enumerate(rates):
        np.testing.assert_array_equal(keep[k], np_(dropconnect_keep(KEYS[k], (6, 4), rate)))
    assert keep[1].min() == 1


def test_per_example_masks_of_k_branches_in_one_draw_equal_each_alone():
    # branch_axis=1: (batch, K, in, units), the masks of mask="example"
    rates = [0.3, 0.5, 0.6]
    keep = np_(dropconnect_keep(KEYS, (5, 3, 6, 4), per_branch(rates, 4), branch_axis=1))
    for k, rate in enumerate(rates):
        np.testing.assert_array_equal(keep[:, k], np_(dropconnect_keep(KEYS[k], (5, 6, 4), rate)))
