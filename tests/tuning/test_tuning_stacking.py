"""The pack model: branches taken apart, stacked, and each still computing
exactly what it computes alone."""

import keras
import numpy as np
import pytest

from kreg import models
from kreg.tuning import stacked_layers
from kreg.tuning import stacking

INPUT_SHAPE = (6,)


def mlp(norm, order="norm-act-drop", rate=0.3, seed=0):
    return models.create("mlp", input_shape=INPUT_SHAPE, num_classes=3, width=5, depth=2, norm=norm, order=order, rate=rate, seed=seed)


def residual(seed=0, rate=0.3):
    inputs = keras.Input(INPUT_SHAPE)
    x = keras.layers.Dense(6, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed))(inputs)
    x = keras.layers.Dropout(rate, seed=seed)(x)
    x = keras.layers.Add()([inputs, x])
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def kinds(found):
    return [type(layer).__name__ for layer, _ in found]


def test_chain_takes_blocks_apart_in_their_call_order():
    found = stacking.chain(mlp("batch", order="act-drop-norm"))
    block = ["Dense", "Activation", "StandardDropout", "BatchNormalization"]
    assert kinds(found) == block + block + ["Dense"]
    # The input shape of every layer, inside the blocks too.
    assert [shape for _, shape in found] == [(None, 6)] + [(None, 5)] * 8


def test_chain_of_a_sequential_model_and_no_chain_for_a_residual_one():
    sequential = keras.Sequential([keras.Input(INPUT_SHAPE), keras.layers.Dense(4), keras.layers.Dense(3)])
    assert kinds(stacking.chain(sequential)) == ["Dense", "Dense"]
    assert stacking.chain(residual()) is None


def test_stack_keys_decide_what_is_stacked_and_what_runs_per_branch():
    found = dict((type(layer).__name__, (layer, shape)) for layer, shape in stacking.chain(mlp("batch")))
    assert stacking.stack_key(*found["Dense"]) == ("StackedDense", 3, True, "softmax")  # the last Dense: the output layer
    assert stacking.stack_key(*found["BatchNormalization"]) == ("StackedBatchNormalization", 0.99, 1e-3, True, True)
    assert stacking.stack_key(*found["Activation"]) == ("StackedActivation", "relu")
    assert stacking.stack_key(*found["StandardDropout"])[0] == "StackedNoise"
    # Keras' own dropout draws from keras.random, branch by branch.
    assert stacking.stack_key(keras.layers.Dropout(0.3), (None, 5)) is None
    # A Dense on a sequence (rank 3) and a constrained Dense run per branch.
    assert stacking.stack_key(keras.layers.Dense(2), (None, 4, 6)) is None
    assert stacking.stack_key(keras.layers.Dense(2, kernel_constraint="non_neg"), (None, 6)) is None


def branches_and_inputs():
    """Three architectures x two seeds, interleaved, and one input per seed."""
    branches, columns = [], []
    for column, seed in enumerate((4, 7)):
        for norm, order in ((None, "act-drop"), ("batch", "norm-act-drop"), ("batch", "act-drop-norm")):
            branches.append(mlp(norm, order, rate=0.2 + 0.1 * column, seed=seed))
            columns.append(column)
    x = np.random.default_rng(0).standard_normal((8, 2, *INPUT_SHAPE)).astype("float32")
    return branches, columns, x


def test_a_pack_groups_branches_by_architecture_and_stacks_their_weights():
    branches, columns, _ = branches_and_inputs()
    pack = stacking.pack_model(branches, columns, num_seeds=2)
    stacked = [layer for layer in pack.model.layers if isinstance(layer, stacked_layers.StackedDense)]
    # 3 groups of 2 branches, 3 Dense layers each.
    assert len(stacked) == 9 and {layer.kernel.shape[0] for layer in stacked} == {2}
    assert len([layer for layer in pack.model.layers if isinstance(layer, stacked_layers.StackedBatchNormalization)]) == 4
    # Each stacked kernel holds its branches' kernels.
    # Group 0 (no norm) holds branches 0 and 3: its first kernel is theirs.
    first = pack.model.get_layer("stacked_dense_0_0")
    for k, branch in enumerate((0, 3)):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(first.kernel[k]), keras.ops.convert_to_numpy(branches[branch].layers[1].dense.kernel)
        )
    assert pack.model.output.shape == (None, 6, 3)


@pytest.mark.parametrize("training", [False, True])
def test_every_branch_of_a_pack_computes_what_it_computes_alone(training):
    branches, columns, x = branches_and_inputs()
    pack = stacking.pack_model(branches, columns, num_seeds=2)
    states = [keras.ops.convert_to_numpy(v) for v in pack.model.non_trainable_variables]
    packed = keras.ops.convert_to_numpy(pack.model(x, training=training))
    # The run alone starts from the same dropout seed states.
    for variable, value in zip(pack.model.non_trainable_variables, states):
        variable.assign(value)
    for k, (branch, column) in enumerate(zip(branches, columns)):
        alone = keras.ops.convert_to_numpy(branch(x[:, column], training=training))
        np.testing.assert_allclose(packed[:, k], alone, rtol=1e-5, atol=1e-6)
    # Training mode really drops (and BN uses batch statistics): the modes differ.
    other = keras.ops.convert_to_numpy(pack.model(x, training=not training))
    assert not np.allclose(packed, other, atol=1e-3)


def test_a_model_that_is_no_chain_runs_whole_per_branch():
    branches = [residual(seed=s) for s in (0, 1)]
    pack = stacking.pack_model(branches, [0, 1], num_seeds=2)
    assert [type(layer).__name__ for layer in pack.model.layers] == ["InputLayer", "TakeBranches", "PerBranch"]
    x = np.random.default_rng(1).standard_normal((4, 2, *INPUT_SHAPE)).astype("float32")
    packed = keras.ops.convert_to_numpy(pack.model(x, training=False))
    for k, branch in enumerate(branches):
        np.testing.assert_allclose(packed[:, k], keras.ops.convert_to_numpy(branch(x[:, k])), rtol=1e-6)


def test_trained_branches_hold_the_stacked_weights():
    branches, columns, _ = branches_and_inputs()
    pack = stacking.pack_model(branches, columns, num_seeds=2)
    for variable in pack.model.trainable_variables:
        variable.assign(variable + 1.0)
    trained = pack.trained_branches()
    assert all(a is b for a, b in zip(trained, branches))
    dense = pack.model.get_layer("stacked_dense_0_0")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(trained[3].layers[1].dense.kernel), keras.ops.convert_to_numpy(dense.kernel[1])
    )
