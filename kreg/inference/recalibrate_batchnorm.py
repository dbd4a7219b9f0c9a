"""recalibrate_batchnorm: re-estimate BN moving statistics with dropout off.

Why (Li et al. 2019, "Understanding the disharmony between dropout and batch
normalization"): dropout with keep probability q before a BN scales the
BN's input variance by about 1/q in training, so the moving variance a BN
learns is about 1/q times what its input has at inference, when dropout is
off. Re-estimating the statistics with dropout off removes that shift.
"""

import contextlib

import keras
import numpy as np
from keras import ops

from kreg.checks import check_positive_int
from kreg.inference.common import as_arrays
from kreg.inference.common import batchnorm_layers
from kreg.inference.common import check_batch_size
from kreg.inference.common import check_input_shape
from kreg.inference.common import check_model
from kreg.inference.common import num_examples
from kreg.inference.common import slices
from kreg.keras_compat import call_override


def recalibrate_batchnorm(model, data, batch_size=32, steps=None):
    """Sets every BN's moving mean and variance to exact averages over `data`.

    The model runs over `data` in inference mode (every dropout layer off)
    while every BatchNormalization normalizes by the statistics of the batch
    it sees, as in training. For each BN the call records the mean and the
    variance of its input; afterwards its moving statistics are set to the
    pooled mean and the pooled (biased, divide-by-N) variance of its input
    over all examples and all positions but the channel axis:

        mean = sum(x) / N,    variance = sum((x - mean) ** 2) / N

    exactly, as if all of `data` were one batch (batches are combined with
    Chan et al.'s parallel update, in float64). No momentum is involved. The
    input of a BN that follows another BN depends on how that one was
    normalized, i.e. on the batches: use batches like those of training.
    Every statistic is computed and checked before any is written, so an
    error midway, or data with NaN/inf values, leaves the model unchanged.
    A BN that the data never reaches keeps its statistics.

    Args:
        model: a `keras.Model`.
        data: the inputs, one of: a numpy array `x` (or a list / dict of
            arrays for a multi-input model); a tuple `(x, y)` or
            `(x, y, sample_weight)` of those, as for `fit` (only `x` is
            used); a `tf.data.Dataset` or any other iterable / generator of
            batches `x` or `(x, y[, sample_weight])`, read like Keras' `fit`
            reads them. (A list of arrays given as `data` itself is the `x`
            of a multi-input model, not a list of batches.)
        batch_size: int >= 1, the batch size used to split arrays
            (iterables come batched already).
        steps: int >= 1 or None: use at most this many batches (needed for
            an endless generator).

    Returns:
        `model`, updated in place.

    Raises:
        ValueError: for bad arguments, empty data, data that does not fit
            the model, or data that gives a BN a NaN/inf statistic (the
            message names the BN).

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
    ...                           keras.layers.Dropout(0.5),
    ...                           keras.layers.BatchNormalization()])
    >>> model = recalibrate_batchnorm(model, np.random.rand(100, 4), batch_size=20)
    """
    check_model(model)
    batch_size = check_batch_size(batch_size, allow_none=False)
    if steps is not None:
        steps = check_positive_int("steps", steps)
    batchnorms = batchnorm_layers(model)
    moments = [_PooledMoments() for _ in batchnorms]
    seen = 0
    with _batch_statistics(batchnorms, moments):
        for step, x in enumerate(_input_batches(data, batch_size)):
            if step == steps:
                break
            check_input_shape(model, x, "data")
            model(x, training=False)
            seen += num_examples(x)
    if seen == 0:
        raise ValueError(f"data is empty: it gave no examples (data={data!r:.80})")
    updates = [
        (bn, pooled.mean, pooled.variance())
        for bn, pooled in zip(batchnorms, moments)
        if pooled.count
    ]
    for bn, mean, variance in updates:
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(variance))):
            raise ValueError(
                f"data gives batch norm {bn.path!r} a non-finite mean or variance: "
                "the data (or what the layers before it make of it) has NaN or inf values; "
                "no statistic was changed"
            )
    for bn, mean, variance in updates:
        bn.moving_mean.assign(mean.astype(bn.moving_mean.dtype))
        bn.moving_variance.assign(variance.astype(bn.moving_variance.dtype))
    return model


def _is_array(value):
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _is_arrays(value):
    if isinstance(value, dict):
        return all(_is_array(leaf) for leaf in value.values())
    if isinstance(value, (list, tuple)):
        return all(_is_array(leaf) for leaf in value)
    return _is_array(value)


def _input_batches(data, batch_size):
    """Yields the `x` part of each batch of `data` as numpy arrays."""
    if isinstance(data, tuple) and data and _is_arrays(data[0]):
        data = data[0]  # (x, y) or (x, y, sample_weight)
    if _is_arrays(data):
        yield from slices(as_arrays(data), batch_size)
    else:
        batches = data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else data
        for batch in batches:
            x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
            yield as_arrays(x)


class _PooledMoments:
    """Exact mean and variance of a stream of batches, per channel (float64)."""

    def __init__(self):
        self.count = 0
        self.mean = None
        self.sum_squares = None  # sum of squared deviations from the mean

    def add(self, mean, variance, count):
        """Adds a batch of `count` values per channel with that mean/variance."""
        mean = np.asarray(mean, "float64")
        squares = np.asarray(variance, "float64") * count
        if self.count == 0:
            self.count, self.mean, self.sum_squares = count, mean, squares
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.sum_squares = self.sum_squares + squares + delta**2 * (self.count * count / total)
        self.count = total

    def variance(self):
        return self.sum_squares / self.count


@contextlib.contextmanager
def _batch_statistics(batchnorms, moments):
    """Makes each BN normalize by batch statistics and record them, for a while.

    Each BN's call is overridden on the instance (`call_override`) and
    restored on exit, also on error. The override computes what a Keras BN
    computes in training, without touching the moving statistics.
    """

    def recording_call(bn, pooled):
        def call(inputs, training=None, mask=None):
            if mask is not None:
                raise ValueError(
                    f"recalibrate_batchnorm does not support masked inputs; "
                    f"{bn.name!r} got a mask"
                )
            x = ops.cast(inputs, "float32")
            axis = bn.axis % len(x.shape)
            axes = [i for i in range(len(x.shape)) if i != axis]
            mean, variance = ops.moments(x, axes=axes)
            count = int(np.prod([x.shape[i] for i in axes]))
            pooled.add(ops.convert_to_numpy(mean), ops.convert_to_numpy(variance), count)
            outputs = ops.batch_normalization(
                x,
                mean,
                variance,
                axis=axis,
                offset=bn.beta if bn.center else None,
                scale=bn.gamma if bn.scale else None,
                epsilon=bn.epsilon,
            )
            return ops.cast(outputs, bn.compute_dtype)

        return call

    with contextlib.ExitStack() as stack:
        for bn, pooled in zip(batchnorms, moments):
            stack.enter_context(call_override(bn, recording_call(bn, pooled)))
        yield
