import re

import keras
import numpy as np
import pytest

from kreg.ops.dropconnect import dropconnect_matmul


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
