"""Helpers of the ops tests: K branches of an op, drawn at once and one by one."""

import keras
import numpy as np

KEYS = np.array([[11, 0], [11, 1], [42, 3]])  # the seed states of three runs


def per_branch(values, rank, axis=1):
    """K per-branch floats as a float32 tensor of `rank` broadcasting along `axis`."""
    shape = [1] * rank
    shape[axis] = len(values)
    return keras.ops.reshape(keras.ops.convert_to_tensor(np.asarray(values, "float32")), shape)


def assert_branches_equal_runs_alone(branched, x, alone, axis=1):
    """Slice k of `branched` (numpy) equals `alone(k, slice k of x)` exactly, for every k."""
    for k in range(branched.shape[axis]):
        expected = keras.ops.convert_to_numpy(alone(k, np.take(x, k, axis=axis)))
        np.testing.assert_array_equal(np.take(branched, k, axis=axis), expected, err_msg=f"branch {k}")
