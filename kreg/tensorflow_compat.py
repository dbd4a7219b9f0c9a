"""What kreg does on the TensorFlow backend alone: keyed draws compiled by XLA.

A keyed draw (`kreg.ops.keyed_random`) is some thirty elementwise integer
ops over the drawn shape. A TensorFlow graph runs each of them as a kernel
of its own, one pass over memory each, while XLA fuses them into one loop:
a train step with kreg's `StandardDropout` took 1.32x the step with Keras'
`Dropout` before, 0.995x compiled (`benchmarks/layers.py`, the `dropout`
comparison). JAX compiles every train step with XLA already, and on
PyTorch the draw stays as it is. TensorFlow is imported only on its own
backend.
"""

import keras


def compiled_draw(draw):
    """`draw`, compiled by XLA on the TensorFlow backend; `draw` itself elsewhere.

    The bits of a draw are integer arithmetic and its floats are exact
    products (see `kreg.ops.keyed_random`), so compiled or not a draw gives
    the same values, and a layer alone and a pack still agree bit for bit.
    XLA compiles once for each shape drawn (a few a study: the shapes of its
    noise layers at the full and at the last batch size).

    Args:
        draw: a function `draw(key, shape, branch_axis)` of an int32 key
            tensor, a tuple of sizes (ints or scalar int tensors) and None
            or an int.

    Returns:
        A function of the same arguments and values.
    """
    if keras.backend.backend() != "tensorflow":
        return draw
    import tensorflow as tf

    return tf.function(draw, jit_compile=True, reduce_retracing=True)
