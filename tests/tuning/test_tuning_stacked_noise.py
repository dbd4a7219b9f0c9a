"""Stacked noise: every kreg dropout kind of K branches drawn as one op, each
branch's slice exactly what its run draws alone."""

import keras
import numpy as np
import pytest

from kreg import keras_compat
from kreg import layers as kreg_layers
from kreg.layers.training_noise import TrainingNoise
from kreg.tuning import stacked_noise
from kreg.tuning import stacking

INPUT_SHAPE = (6,)
RATES = (0.0, 0.2, 0.5)


def dense_model(dropout, rate, seed):
    """Dense -> NormDropout with `dropout` -> Dense; seeded throughout."""
    inputs = keras.Input(INPUT_SHAPE)
    x = keras.layers.Dense(8, kernel_initializer=keras.initializers.GlorotUniform(seed))(inputs)
    activation = "selu" if dropout == "alpha" else "relu"
    x = kreg_layers.NormDropout("act-drop", norm=None, activation=activation, dropout=dropout, rate=rate, seed=seed)(x)
    return keras.Model(inputs, keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(x))


def spatial_model(rate, seed):
    inputs = keras.Input((5, 4))
    x = keras.layers.Dense(4, kernel_initializer=keras.initializers.GlorotUniform(seed))(inputs)
    x = kreg_layers.NormDropout("drop", norm=None, dropout="spatial", rate=rate, seed=seed)(x)
    return keras.Model(inputs, keras.layers.Flatten()(x))


def dropconnect_model(mask, rate, seed):
    inputs = keras.Input(INPUT_SHAPE)
    x = kreg_layers.DropConnectDense(5, rate, activation="relu", mask=mask, seed=seed, kernel_initializer=keras.initializers.GlorotUniform(seed))(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(x))


def per_branch_noise(pack):
    """The layers of `pack` that run kreg noise per branch (none should)."""
    noise = (TrainingNoise, kreg_layers.DropConnectDense)
    return [layer for layer in pack.model.layers if isinstance(layer, stacking.PerBranch) and isinstance(layer.branch_layers[0], noise)]


def assert_branches_as_alone(branches, example_shape, steps=3):
    """Three training calls of the pack against each branch alone, from the
    same seed states: the masks move on with every call, in step."""
    pack = stacking.pack_model(branches, list(range(len(branches))), num_seeds=len(branches))
    assert per_branch_noise(pack) == []
    x = np.random.default_rng(0).standard_normal((4, len(branches), *example_shape)).astype("float32")
    packed = [keras.ops.convert_to_numpy(pack.model(x, training=True)) for _ in range(steps)]
    for k, branch in enumerate(branches):
        for step in range(steps):
            alone = keras.ops.convert_to_numpy(branch(x[:, k], training=True))
            np.testing.assert_allclose(packed[step][:, k], alone, rtol=1e-5, atol=1e-6)
    # Nothing in the pack stays unbuilt (Keras on PyTorch would re-trace it
    # at every evaluation, and a Ctrl-C landing there is lost).
    assert [layer.name for layer in keras_compat.flatten_layers(pack.model) if not layer.built] == []
    # The pack's seed states went back to the branches, counters moved on.
    pack.trained_branches()
    return packed


@pytest.mark.parametrize("dropout", ["standard", "gaussian", "alpha", "uniform"])
def test_every_dropout_kind_stacks_and_draws_each_branch_s_masks(dropout):
    branches = [dense_model(dropout, rate, seed) for seed, rate in enumerate(RATES)]
    packed = assert_branches_as_alone(branches, INPUT_SHAPE)
    # Training noise really is drawn: two steps differ where the rate is not 0.
    assert not np.allclose(packed[0][:, 1:], packed[1][:, 1:])
    np.testing.assert_array_equal(packed[0][:, 0], packed[1][:, 0])


def test_spatial_dropout_stacks():
    assert_branches_as_alone([spatial_model(rate, seed) for seed, rate in enumerate(RATES)], (5, 4))


@pytest.mark.parametrize("mask", ["batch", "example"])
def test_dropconnect_dense_stacks(mask):
    branches = [dropconnect_model(mask, rate, seed) for seed, rate in enumerate(RATES)]
    assert_branches_as_alone(branches, INPUT_SHAPE)


def test_the_key_keeps_apart_what_branches_must_share():
    a = kreg_layers.AlphaDropout(0.1, noise_shape=(None, 1), seed=0)
    b = kreg_layers.AlphaDropout(0.3, noise_shape=(None, 1), seed=5)
    c = kreg_layers.AlphaDropout(0.1, seed=0)
    key = stacked_noise.StackedNoise.key
    # Rate and seed are per-branch values; the noise shape is shared.
    assert key(a, (None, 4)) == key(b, (None, 4)) != key(c, (None, 4))
    # Keras' own dropout draws from keras.random: it runs per branch.
    assert key(keras.layers.Dropout(0.1), (None, 4)) is None


def test_a_pack_of_other_rates_reuses_the_layout_and_draws_its_own_masks():
    first = [dense_model("standard", rate, seed) for seed, rate in enumerate(RATES)]
    second = [dense_model("standard", rate, seed + 10) for seed, rate in enumerate(reversed(RATES))]
    columns = [0, 1, 2]
    assert stacking.layout(first, columns, 3) == stacking.layout(second, columns, 3)
    pack = stacking.pack_model(first, columns, 3)
    pack.load(second)
    x = np.random.default_rng(1).standard_normal((4, 3, *INPUT_SHAPE)).astype("float32")
    packed = keras.ops.convert_to_numpy(pack.model(x, training=True))
    for k, branch in enumerate(second):
        np.testing.assert_allclose(packed[:, k], keras.ops.convert_to_numpy(branch(x[:, k], training=True)), rtol=1e-5, atol=1e-6)
