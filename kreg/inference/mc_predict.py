"""mc_predict: Monte-Carlo dropout prediction with batch norm kept in inference mode."""

import numpy as np
from keras import ops
from keras import tree

from kreg.checks import check_positive_int
from kreg.checks import check_seed
from kreg.inference.common import as_arrays
from kreg.inference.common import batchnorm_layers
from kreg.inference.common import check_batch_size
from kreg.inference.common import check_input_shape
from kreg.inference.common import check_model
from kreg.inference.common import num_examples
from kreg.inference.common import slices


def mc_predict(model, x, samples=30, batch_size=None, seed=None):
    """Mean and standard deviation of `samples` stochastic forward passes.

    Each pass runs `model(x, training=True)` with every BatchNormalization
    temporarily frozen (`trainable=False`): in Keras 3 a frozen BN uses its
    moving statistics even in training mode, so every dropout layer (Keras'
    Dropout, SpatialDropout1D/2D/3D, GaussianDropout, AlphaDropout, kreg's
    StandardDropout, GaussianDropout, SpatialDropout, AlphaDropout,
    UniformDropout, DropConnectDense, the dropout inside
    NormDropout blocks) is active while batch norm normalizes exactly as at
    inference. Plain `model(x, training=True)` would switch BN to batch
    statistics (keras#9412). Layer/Group normalization behave the same in
    both modes. Other layers that act only in training (GaussianNoise,
    random augmentation layers, RNN dropout) are active too. The BN flags
    are restored afterwards, also on error.

    Args:
        model: a `keras.Model`.
        x: the inputs, a numpy array (or a list / dict of arrays for a
            multi-input model).
        samples: int >= 1, the number of stochastic passes.
        batch_size: int >= 1 or None. `x` is processed in chunks of this many
            examples (all `samples` passes of a chunk, then the next), which
            bounds the memory; None means one chunk.
        seed: int >= 0 or None. An int makes the result deterministic for that
            seed and `batch_size`: the model's random-seed states are set
            from it for the call and restored after it. None uses the
            model's random state as it is (and advances it).

    Returns:
        `(mean, std)`, numpy float32 arrays shaped like the model output (or
        structures of them for a multi-output model): the mean over the passes
        and their standard deviation (divided by `samples`, so exactly 0 for a
        model without dropout).

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
    ...                           keras.layers.Dropout(0.5), keras.layers.Dense(1)])
    >>> mean, std = mc_predict(model, np.ones((3, 4)), samples=20, seed=0)
    >>> mean.shape, std.shape
    ((3, 1), (3, 1))
    """
    check_model(model)
    samples = check_positive_int("samples", samples)
    batch_size = check_batch_size(batch_size, allow_none=True)
    seed = check_seed("seed", seed)
    x = as_arrays(x)
    check_input_shape(model, x, "x")
    total = num_examples(x)
    if total == 0:
        raise ValueError(f"x is empty: it has shape {tree.flatten(x)[0].shape}")

    frozen = [bn for bn in batchnorm_layers(model) if bn.trainable]
    seed_states = [] if seed is None else _seed_states(model)
    saved_states = [ops.convert_to_numpy(state) for state in seed_states]
    try:
        for bn in frozen:
            bn.trainable = False
        _reseed(seed_states, seed)
        chunks = [_moments(model, chunk, samples) for chunk in slices(x, batch_size or total)]
    finally:
        for bn in frozen:
            bn.trainable = True
        for state, value in zip(seed_states, saved_states):
            state.assign(value)
    means = tree.map_structure(lambda *parts: np.concatenate(parts), *[m for m, _ in chunks])
    stds = tree.map_structure(lambda *parts: np.concatenate(parts), *[s for _, s in chunks])
    return means, stds


def _moments(model, x, samples):
    """Mean and std over `samples` passes on one chunk (Welford's update).

    Welford keeps the memory at two arrays per output and gives an exactly
    zero std when every pass returns the same values.
    """
    mean = m2 = None
    for count in range(1, samples + 1):
        outputs = tree.map_structure(
            lambda y: ops.convert_to_numpy(y).astype("float64"), model(x, training=True)
        )
        if mean is None:
            mean = outputs
            m2 = tree.map_structure(np.zeros_like, outputs)
            continue
        delta = tree.map_structure(lambda y, m: y - m, outputs, mean)
        mean = tree.map_structure(lambda m, d: m + d / count, mean, delta)
        m2 = tree.map_structure(lambda s, y, m, d: s + d * (y - m), m2, outputs, mean, delta)
    std = tree.map_structure(lambda s: np.sqrt(s / samples).astype("float32"), m2)
    return tree.map_structure(lambda m: m.astype("float32"), mean), std


def _seed_states(model):
    """The random-seed state variables of every `SeedGenerator` in the model.

    `model.variables` lists the weights plus the seed states; the weights
    are what `model.weights` lists.
    """
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def _reseed(states, seed):
    """Gives each seed state its own state `[s_i, 0]` derived from `seed`."""
    draws = np.random.default_rng(seed).integers(0, 2**31 - 1, size=len(states))
    for state, draw in zip(states, draws):
        state.assign(np.array([draw, 0], dtype=state.dtype))
