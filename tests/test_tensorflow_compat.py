"""kreg.tensorflow_compat: keyed draws compiled by XLA on TensorFlow, the
same values as uncompiled, and untouched on the other backends."""

import keras
import numpy as np

from kreg.ops.keyed_random import keyed_uniform
from kreg.tensorflow_compat import compiled_draw


def shifted_index(key, shape, branch_axis):
    """A small draw-like function: the flat index plus the key's first word."""
    size = int(np.prod(shape))
    return keras.ops.reshape(keras.ops.arange(size, dtype="int32"), shape) + key[0]


def test_a_compiled_draw_gives_the_values_of_the_draw_itself():
    key = keras.ops.convert_to_tensor(np.array([7, 0], np.int32))
    compiled = compiled_draw(shifted_index)
    for shape in [(3, 4), (5,), (2, 3, 2)]:
        expected = np.arange(int(np.prod(shape))).reshape(shape) + 7
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(compiled(key, shape, None)), expected)


def test_on_tensorflow_a_draw_is_one_compiled_call_and_elsewhere_the_function_itself():
    if keras.backend.backend() != "tensorflow":
        assert compiled_draw(shifted_index) is shifted_index
        return
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, 8), tf.float32)])
    def draw(x):
        return keyed_uniform(np.array([[3, 0], [4, 0]]), (keras.ops.shape(x)[0], 2, 8), branch_axis=1)

    graph = draw.get_concrete_function().graph
    types = {op.type for op in graph.get_operations()}
    # the hash's ~30 integer ops are not in the caller's graph: one call of
    # a function that XLA must compile holds them
    assert not types & {"BitwiseXor", "RightShift", "BitwiseAnd"}, types
    calls = [op for op in graph.get_operations() if op.type in ("StatefulPartitionedCall", "PartitionedCall")]
    assert len(calls) == 1 and calls[0].get_attr("_XlaMustCompile")
    np.testing.assert_array_equal(draw(tf.zeros((5, 8))).numpy()[:, 1], keras.ops.convert_to_numpy(keyed_uniform(np.array([4, 0]), (5, 8))))
