"""Stacked convolutions, normalizations and weightless per-example layers:
each branch of a pack computes, trains and is copied back exactly as alone."""

import dataclasses

import keras
import keras_tuner
import numpy as np
import pytest
from keras import layers

from kreg import datasets
from kreg import keras_compat
from kreg import models
from kreg.tuning import hypermodel as hypermodel_module
from kreg.tuning import packing
from kreg.tuning import schema
from kreg.tuning import stacked_layers
from kreg.tuning import stacking
from kreg.tuning import training

COLUMNS = [0, 1, 0]  # three branches, two seeds: branches 0 and 2 read one column
SEEDS = (3, 5, 8)


def randomized(model, seed):
    """`model` with random values in every variable, so that branches differ everywhere."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype("float32") for w in model.weights])
    return model


def conv_model(seed):
    """Every option of the stacked convolutions and normalizations, in one chain."""
    model = keras.Sequential(
        [
            keras.Input((9, 9, 2)),
            layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
            layers.LayerNormalization(),
            layers.ZeroPadding2D(((1, 0), (0, 2))),
            layers.Conv2D(4, (2, 3), dilation_rate=(1, 2), use_bias=False),
            layers.GroupNormalization(2),
            layers.Reshape((15, 4)),
            layers.Conv1D(6, 3, padding="causal", dilation_rate=2, groups=2, activation="tanh"),
            layers.Conv1D(6, 5, strides=3, padding="same"),
            layers.LayerNormalization(center=False),
            layers.GroupNormalization(3, scale=False),
            layers.GlobalAveragePooling1D(),
            layers.Dense(3),
        ]
    )
    return randomized(model, seed)


def convnet(seed):
    return models.create("convnet", input_shape=(8, 8, 1), num_classes=10, width=4, depth=1, rate=0.2, seed=seed)


def cnn1d(seed):
    return models.create("cnn1d", input_shape=(40, 1), num_classes=10, channels=4, rate=0.2, seed=seed)


def inputs(model, batch=5):
    return np.random.default_rng(0).standard_normal((batch, 2, *model.inputs[0].shape[1:])).astype("float32")


def kinds(pack):
    return [type(layer).__name__ for layer in pack.model.layers]


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def assert_branches_compute_alone(branches):
    """Every branch of the pack of `branches` computes what it computes alone,
    in training and at inference; returns the pack."""
    pack = stacking.pack_model(branches, COLUMNS, num_seeds=2)
    x = inputs(branches[0])
    for training in (False, True):
        states = [numpy(v) for v in pack.model.non_trainable_variables]
        packed = numpy(pack.model(x, training=training))
        # The runs alone start from the same dropout seed states.
        for variable, value in zip(pack.model.non_trainable_variables, states):
            variable.assign(value)
        for k, (branch, column) in enumerate(zip(branches, COLUMNS)):
            alone = numpy(branch(x[:, column], training=training))
            np.testing.assert_allclose(packed[:, k], alone, rtol=1e-5, atol=1e-5)
    # Nothing stays unbuilt: Keras on PyTorch would re-trace the model at every evaluation.
    assert [layer.name for layer in keras_compat.flatten_layers(pack.model) if not layer.built] == []
    return pack


# -- keys: what is stacked, what runs per branch --------------------------------------------------


def test_conv_keys_accept_channels_last_convolutions_and_refuse_the_rest():
    key = stacked_layers.StackedConv.key
    conv = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")
    assert key(conv, (None, 9, 9, 2)) == (4, (3, 3), (2, 2), "same", (1, 1), 1, True, "relu")
    assert key(layers.Conv1D(4, 3, padding="causal", dilation_rate=2), (None, None, 2)) is not None
    assert key(layers.Conv2D(4, 3, data_format="channels_first"), (None, 2, 9, 9)) is None
    assert key(layers.Conv2D(4, 3, kernel_constraint="non_neg"), (None, 9, 9, 2)) is None
    assert key(layers.Conv2D(4, 3, kernel_regularizer="l2"), (None, 9, 9, 2)) is None
    assert key(layers.Conv3D(4, 3), (None, 9, 9, 9, 2)) is None
    assert key(layers.Conv2DTranspose(4, 3), (None, 9, 9, 2)) is None
    assert key(layers.DepthwiseConv2D(3), (None, 9, 9, 2)) is None


def test_normalization_keys_accept_the_last_axis_only():
    layer_norm, group_norm = stacked_layers.StackedLayerNormalization.key, stacked_layers.StackedGroupNormalization.key
    assert layer_norm(layers.LayerNormalization(epsilon=1e-5, center=False), (None, 5, 4)) == (1e-5, False, True)
    assert layer_norm(layers.LayerNormalization(axis=2), (None, 5, 4)) is not None
    assert layer_norm(layers.LayerNormalization(axis=1), (None, 5, 4)) is None
    assert layer_norm(layers.LayerNormalization(axis=[1, 2]), (None, 5, 4)) is None
    assert layer_norm(layers.LayerNormalization(gamma_regularizer="l2"), (None, 4)) is None
    assert group_norm(layers.GroupNormalization(2, scale=False), (None, 5, 4)) == (2, 1e-3, True, False)
    assert group_norm(layers.GroupNormalization(2, axis=1), (None, 4, 5)) is None
    assert group_norm(layers.GroupNormalization(2, beta_constraint="non_neg"), (None, 5, 4)) is None
    assert group_norm(layers.GroupNormalization(2), (None, None, 4)) is None  # unknown length


def test_per_example_keys_need_identical_configurations_and_known_shapes():
    key = stacked_layers.StackedPerExample.key
    pool = key(layers.MaxPooling2D(2, name="a"), (None, 8, 8, 3))
    assert pool == key(layers.MaxPooling2D(2, name="b"), (None, 8, 8, 3)) and pool[0] == "MaxPooling2D"
    assert pool != key(layers.MaxPooling2D(2, padding="same"), (None, 8, 8, 3))
    assert key(layers.Flatten(), (None, None, 3)) is None
    assert key(layers.UpSampling2D(), (None, 8, 8, 3)) is None
    assert key(layers.Activation("relu"), (None, 8, 8, 3)) is None  # StackedActivation's
    assert key(layers.MaxPooling2D(2, activity_regularizer="l2"), (None, 8, 8, 3)) is None


def test_layers_with_regularizers_or_constraints_run_per_branch():
    # A stacked layer would lose their losses and projections.
    assert stacking.stack_key(layers.Dense(2, kernel_regularizer="l2"), (None, 6)) is None
    assert stacking.stack_key(layers.Dense(2, activity_regularizer="l2"), (None, 6)) is None
    assert stacking.stack_key(layers.Activation("relu", activity_regularizer="l2"), (None, 6)) is None
    assert stacking.stack_key(layers.BatchNormalization(beta_regularizer="l2"), (None, 6)) is None


# -- a pack computes each branch as alone ---------------------------------------------------------


def branch_loss(y_true, y_pred):
    """Squared error summed over the outputs (and so over the branches of a pack)."""
    return keras.ops.sum(keras.ops.square(y_true - y_pred), axis=tuple(range(1, len(y_pred.shape))))


def side_by_side(branches):
    """The branches, each on its column, as one plain model (nothing stacked)."""
    x = keras.Input((2, *branches[0].inputs[0].shape[1:]))
    return keras.Model(x, keras.ops.stack([branch(x[:, column]) for branch, column in zip(branches, COLUMNS)], axis=1))


def test_stacked_convolutions_and_normalizations_compute_and_train_each_branch_as_alone():
    branches = [conv_model(seed) for seed in SEEDS]
    pack = assert_branches_compute_alone(branches)
    assert "PerBranch" not in kinds(pack)
    # A stacked variable holds the branches' variables on axis 0.
    stacked = next(layer for layer in pack.model.layers if isinstance(layer, stacked_layers.StackedConv))
    for k, branch in enumerate(branches):
        np.testing.assert_array_equal(numpy(stacked.kernel[k]), numpy(branch.layers[0].kernel))
    # One SGD step on the summed loss: each branch's gradient is its own.
    x = inputs(branches[0], batch=6)
    y = np.random.default_rng(1).standard_normal((6, len(SEEDS), 3)).astype("float32")
    before = [numpy(branch.weights[0]) for branch in branches]
    for model in (pack.model, side_by_side(branches)):  # the second trains the branches themselves
        model.compile(keras.optimizers.SGD(0.1), branch_loss)
        model.train_on_batch(x, y)
    alone = [[numpy(w) for w in branch.weights] for branch in branches]
    for k, branch in enumerate(pack.trained_branches()):
        for packed, own in zip(branch.weights, alone[k]):
            np.testing.assert_allclose(numpy(packed), own, rtol=1e-5, atol=1e-5)
        assert not np.allclose(alone[k][0], before[k])  # the step moved them


FOLDED = [
    ((6, 6, 3), layers.MaxPooling2D((2, 3), strides=(1, 2))),
    ((6, 6, 3), layers.AveragePooling2D(2, padding="same")),
    ((6, 6, 3), layers.GlobalAveragePooling2D()),
    ((6, 6, 3), layers.GlobalMaxPooling2D(keepdims=True)),
    ((6, 6, 3), layers.Flatten()),
    ((6, 6, 3), layers.Reshape((-1, 6))),
    ((6, 6, 3), layers.ZeroPadding2D((1, 2))),
    ((7, 3), layers.MaxPooling1D(2)),
    ((7, 3), layers.AveragePooling1D(3, strides=2, padding="same")),
    ((7, 3), layers.GlobalAveragePooling1D()),
    ((7, 3), layers.GlobalMaxPooling1D()),
    ((7, 3), layers.ZeroPadding1D((2, 1))),
]


@pytest.mark.parametrize("shape, layer", FOLDED, ids=[type(layer).__name__ for _, layer in FOLDED])
def test_weightless_per_example_layers_apply_once_to_the_folded_branches(shape, layer):
    config = layer.get_config()

    def make(seed):
        conv = (layers.Conv2D if len(shape) == 3 else layers.Conv1D)(3, 1)
        return randomized(keras.Sequential([keras.Input(shape), conv, type(layer).from_config(config)]), seed)

    pack = assert_branches_compute_alone([make(seed) for seed in SEEDS])
    assert kinds(pack)[-1] == "StackedPerExample"


@pytest.mark.parametrize("make", [convnet, cnn1d])
def test_zoo_conv_packs_stack_every_layer_but_dropout(make):
    pack = assert_branches_compute_alone([make(seed) for seed in SEEDS])
    per_branch = [layer.branch_layers[0] for layer in pack.model.layers if isinstance(layer, stacking.PerBranch)]
    # Nothing runs per branch but dropout (where it is not stacked).
    assert all("Dropout" in type(layer).__name__ for layer in per_branch), per_branch


# -- a convnet study's pack trains each run as it trains alone ------------------------------------

EPOCHS, BATCH_SIZE = 2, 16


@pytest.fixture(scope="module")
def images():
    # Whole batches only: one batch shape, one compiled train step.
    full = datasets.load("digits", as_images=True)
    return dataclasses.replace(
        full,
        x_train=full.x_train[:32],
        y_train=full.y_train[:32],
        x_val=full.x_val[:20],
        y_val=full.y_val[:20],
        x_test=full.x_test[:20],
        y_test=full.y_test[:20],
    )


def train_alone(hypermodel, data, config):
    """One run exactly as `StudyTuner.run_trial` trains it."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(config["seed"])
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    hp.values.update(config)
    model = hypermodel.build(hp)
    outcome = training.fit_and_measure(model, data, EPOCHS, BATCH_SIZE, config["seed"])
    return outcome.metrics, model


def test_a_convnet_pack_trains_each_run_as_it_trains_alone(images):
    hypermodel = hypermodel_module.RegularizationHyperModel(
        "convnet",
        input_shape=images.input_shape,
        num_classes=images.num_classes,
        rates=(0.0, 0.3),
        norms=("batch",),
        orders=("norm-act-drop",),
        seeds=(0, 1),
        model_kwargs={"width": 4, "depth": 1},
    )
    configs = [dict(norm="batch", order="norm-act-drop", rate=0.3, seed=seed) for seed in (1, 0)]
    outcomes, trained = packing.PackTrainer(hypermodel, images, EPOCHS, BATCH_SIZE).run(configs, return_models=True)
    for (config, outcome), model in zip(outcomes, trained):
        metrics, alone = train_alone(hypermodel, images, config)
        for name in schema.MEASURED_COLUMNS:
            if name != "wall_time":
                assert outcome.metrics[name] == pytest.approx(metrics[name], abs=1e-5), name
        assert len(model.weights) == len(alone.weights)
        for packed, own in zip(model.weights, alone.weights):
            np.testing.assert_allclose(numpy(packed), numpy(own), atol=1e-5, rtol=0)
    # The two seeds really make two different runs.
    losses = [outcome.metrics["final_train_loss"] for _, outcome in outcomes]
    assert losses[0] != pytest.approx(losses[1], abs=1e-4)
