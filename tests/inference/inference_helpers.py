"""Helpers shared by the kreg.inference tests (imported by file name)."""

import keras
import numpy as np

from kreg.keras_compat import flatten_layers


def batchnorms(model):
    return [
        layer
        for layer in flatten_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def randomize_batchnorms(model, seed=0):
    """Gives every BN non-trivial statistics: mean ~ N(0, 1), var ~ U(0.3, 3),
    gamma ~ U(0.5, 2) with random sign, beta ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    for bn in batchnorms(model):
        n = bn.moving_mean.shape[0]
        bn.moving_mean.assign(rng.normal(size=n).astype("float32"))
        bn.moving_variance.assign(rng.uniform(0.3, 3.0, size=n).astype("float32"))
        if bn.scale:
            gamma = rng.uniform(0.5, 2.0, size=n) * rng.choice([-1.0, 1.0], size=n)
            bn.gamma.assign(gamma.astype("float32"))
        if bn.center:
            bn.beta.assign(rng.normal(size=n).astype("float32"))
    return model


def weights_of(model):
    return [np.array(w) for w in model.get_weights()]


def assert_weights_equal(model, before):
    after = weights_of(model)
    assert len(after) == len(before)
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)


def normal(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")
