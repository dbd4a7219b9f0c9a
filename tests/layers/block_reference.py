"""Hand-stacked Keras references for NormDropout and the blocks built on it."""

import keras

GROUPS = 4  # groups of the group-norm reference; the tests use 8 features


def apply_in_order(x, order, parts, training):
    """The hand-stacked reference: `parts[token]` applied in `order`."""
    for token in order:
        layer = parts[token]
        x = layer(x) if token == "act" else layer(x, training=training)
    return x


def reference_norm(norm):
    return {
        "batch": keras.layers.BatchNormalization,
        "layer": keras.layers.LayerNormalization,
        "group": lambda: keras.layers.GroupNormalization(groups=GROUPS),
    }[norm]()


def random_weights(layer, rng):
    """Values in [0.5, 2) for every weight: gamma, beta, moving mean and variance."""
    return [rng.uniform(0.5, 2.0, tuple(w.shape)).astype("float32") for w in layer.weights]
