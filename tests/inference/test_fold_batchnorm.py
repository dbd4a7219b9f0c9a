import pathlib
import re
import sys

import keras
import numpy as np
import pytest
from inference_helpers import assert_weights_equal
from inference_helpers import batchnorms
from inference_helpers import normal
from inference_helpers import randomize_batchnorms
from inference_helpers import weights_of

from kreg.inference import fold_batchnorm
from kreg.layers import Conv2DBlock
from kreg.layers import DenseBlock

# tests/layers' hand-written LinearBlock subclass, which fold_batchnorm knows nothing about
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "layers"))
from block_reference import Conv1DBlock  # noqa: E402

L = keras.layers


def assert_same_function(folded, model, x):
    """The folded model must equal `model(x, training=False)` in float32.

    Folding only regroups products: W*s instead of (x.W)*s, etc. Each output is
    a sum of k <= 100 float32 terms, each with a rounding error of 2**-24
    relative, so the difference is ~sqrt(k) * 6e-8 ~ 1e-6 of the output scale;
    1e-5 of it leaves a 10x margin, while a wrong scale or bias on one channel
    (s off by O(1), as the random statistics make it) is off by O(scale).
    """
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    actual = keras.ops.convert_to_numpy(folded(x, training=False))
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def fold_and_check(model, x, folds):
    """Folds, checks the function, the BN count and the report; returns both."""
    randomize_batchnorms(model)
    before = weights_of(model)
    layer_names = [layer.name for layer in model.layers]
    folded, report = fold_batchnorm(model, return_report=True)
    assert_same_function(folded, model, x)
    assert [d.folded for d in report].count(True) == folds
    assert len(batchnorms(folded)) == len(batchnorms(model)) - folds
    if folds:
        assert folded.count_params() < model.count_params()
    # the original is untouched: same layers, same weights
    assert [layer.name for layer in model.layers] == layer_names
    assert_weights_equal(model, before)
    return folded, report


def linear_then_bn(linear, input_shape, **bn_kwargs):
    inputs = keras.Input(input_shape)
    x = L.BatchNormalization(**bn_kwargs)(linear(inputs))
    outputs = L.Dense(3)(L.Flatten()(L.Activation("relu")(x)))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense(use_bias):
    model = linear_then_bn(L.Dense(8, use_bias=use_bias), (12,))
    folded, report = fold_and_check(model, normal((16, 12)), folds=1)
    dense = folded.get_layer(report[0].linear)
    assert dense.use_bias and report[0].reason == f"folded into {dense.name!r}"
    assert not any(isinstance(layer, L.BatchNormalization) for layer in folded.layers)


@pytest.mark.parametrize("use_bias, groups", [(True, 1), (False, 2)])
def test_conv2d_plain_and_grouped(use_bias, groups):
    model = linear_then_bn(L.Conv2D(6, 3, groups=groups, use_bias=use_bias), (7, 7, 4))
    fold_and_check(model, normal((4, 7, 7, 4)), folds=1)


def test_depthwise_conv2d_with_multiplier():
    # output channel i * multiplier + m comes from kernel[..., i, m]
    layer = L.DepthwiseConv2D(3, depth_multiplier=3, use_bias=False)
    fold_and_check(linear_then_bn(layer, (6, 6, 2)), normal((4, 6, 6, 2)), folds=1)


def test_conv1d_and_depthwise_conv1d():
    inputs = keras.Input((9, 2))
    x = L.BatchNormalization()(L.Conv1D(3, 3)(inputs))
    x = L.BatchNormalization()(L.DepthwiseConv1D(3, depth_multiplier=2)(x))
    fold_and_check(keras.Model(inputs, x), normal((4, 9, 2)), folds=2)


def test_batchnorm_without_center_and_scale():
    model = linear_then_bn(L.Dense(6), (5,), center=False, scale=False)
    fold_and_check(model, normal((8, 5)), folds=1)


def test_sequential():
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            L.Conv2D(4, 3, use_bias=False),
            L.BatchNormalization(),
            L.ReLU(),
            L.Flatten(),
            L.Dense(5),
            L.BatchNormalization(),
            L.Dropout(0.5),
            L.Dense(2),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    folded, _ = fold_and_check(model, normal((8, 6, 6, 1)), folds=2)
    assert isinstance(folded, keras.Sequential)
    assert folded.compiled and folded.loss == "mse"
    assert [type(layer).__name__ for layer in folded.layers] == [
        "Conv2D", "ReLU", "Flatten", "Dense", "Dropout", "Dense",
    ]


def test_kreg_blocks():
    inputs = keras.Input((8, 8, 1))
    x = Conv2DBlock(4, 3, order="norm-act-drop", rate=0.3, seed=1, name="c1")(inputs)
    x = Conv2DBlock(4, 3, order="act-norm", seed=1, name="c2")(x)  # BN not right after conv
    x = L.Flatten()(x)
    x = DenseBlock(6, order="norm-drop", rate=0.2, seed=2, name="d1")(x)
    x = DenseBlock(3, order="norm", name="d2")(x)  # nothing left after folding
    model = keras.Model(inputs, x)
    folded, report = fold_and_check(model, normal((4, 8, 8, 1)), folds=3)
    decisions = {d.batchnorm: d for d in report}
    assert decisions["c1/block/norm"].folded
    assert not decisions["c2/block/norm"].folded
    reason = "the block calls 'activation' (Activation) between the linear layer and the batch norm"
    assert decisions["c2/block/norm"].reason == reason
    c1, d1, d2 = folded.get_layer("c1"), folded.get_layer("d1"), folded.get_layer("d2")
    assert c1.block.order == ("act", "drop") and c1.block.norm_layer is None
    assert c1.conv.use_bias and d1.dense.use_bias
    assert d1.block.order == ("drop",)
    assert type(d2) is L.Dense and d2.use_bias  # the block became its plain Dense
    # dropout keeps its settings: same masks in training for the same seed
    assert d1.block.dropout_layer.rate == 0.2


def test_nested_functional_model_is_folded_inside():
    inner_in = keras.Input((5,))
    inner = keras.Model(inner_in, L.BatchNormalization()(L.Dense(4)(inner_in)), name="inner")
    inputs = keras.Input((5,))
    model = keras.Model(inputs, L.Dense(2)(inner(inputs)))
    folded, report = fold_and_check(model, normal((6, 5)), folds=1)
    assert report[0].batchnorm.startswith("inner/") and report[0].linear.startswith("inner/")


def test_saves_and_loads_in_safe_mode(tmp_path):
    inputs = keras.Input((6, 6, 2))
    x = Conv2DBlock(3, 3, rate=0.1, seed=0)(inputs)
    x = L.DepthwiseConv2D(3, depth_multiplier=2)(x)
    x = L.BatchNormalization()(x)
    model = keras.Model(inputs, DenseBlock(2, order="norm-act")(L.Flatten()(x)))
    folded, _ = fold_and_check(model, normal((3, 6, 6, 2)), folds=3)
    path = tmp_path / "folded.keras"
    folded.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = normal((3, 6, 6, 2), seed=1)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(folded(x))
    )


# --- refusals: the BN stays, the function is unchanged, the reason is given -----


def refused(model, x, phrase):
    folded, report = fold_and_check(model, x, folds=0)
    assert len(report) == 1 and not report[0].folded
    assert phrase in report[0].reason, report[0].reason
    return report[0]


def test_refuses_activation_of_the_linear_layer():
    model = linear_then_bn(L.Dense(4, activation="relu", name="dense_relu"), (5,))
    refused(model, normal((8, 5)), "'dense_relu' has activation 'relu'")


def test_refuses_activation_layer_in_between():
    inputs = keras.Input((5,))
    x = L.Activation("tanh", name="act")(L.Dense(4)(inputs))
    model = keras.Model(inputs, L.BatchNormalization()(x))
    refused(model, normal((8, 5)), "'act' (Activation) is not a Dense")


def test_refuses_batchnorm_before_the_linear_layer():
    inputs = keras.Input((5,))
    model = keras.Model(inputs, L.Dense(3)(L.BatchNormalization()(inputs)))
    decision = refused(model, normal((8, 5)), "reads a model input, not a linear layer")
    assert decision.linear is None


def test_refuses_linear_output_read_by_another_branch():
    inputs = keras.Input((5,))
    shared = L.Dense(4, name="shared")(inputs)
    x = L.Concatenate()([L.BatchNormalization()(shared), L.Dense(2, name="side")(shared)])
    model = keras.Model(inputs, x)
    refused(model, normal((8, 5)), "the output of 'shared' is also read by 'side'")


def test_refuses_linear_output_that_is_a_model_output():
    inputs = keras.Input((5,))
    shared = L.Dense(4, name="shared")(inputs)
    model = keras.Model(inputs, [shared, L.BatchNormalization()(shared)])
    randomize_batchnorms(model)
    folded, report = fold_batchnorm(model, return_report=True)
    assert "also read by the model output" in report[0].reason
    x = normal((4, 5))
    for a, b in zip(folded(x), model(x, training=False)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_refuses_batchnorm_on_another_axis():
    inputs = keras.Input((4, 6))
    model = keras.Model(inputs, L.BatchNormalization(axis=1)(L.Dense(6)(inputs)))
    refused(model, normal((8, 4, 6)), "normalizes axis 1, not the last (channel) axis")


def test_without_report_returns_only_the_model():
    model = randomize_batchnorms(linear_then_bn(L.Dense(4), (5,)))
    assert isinstance(fold_batchnorm(model), keras.Model)


# --- bad input ---------------------------------------------------------------


def test_refuses_a_subclassed_model():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(3)
            self.bn = L.BatchNormalization()

        def call(self, x, training=None):
            return self.bn(self.dense(x), training=training)

    model = Net()
    model(normal((2, 4)))
    before = weights_of(model)
    with pytest.raises(TypeError, match=r"subclassed model .*\(Net\).*no layer graph"):
        fold_batchnorm(model)
    assert_weights_equal(model, before)


def test_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="model must be a keras.Model, got Dense"):
        fold_batchnorm(L.Dense(3))


def test_refuses_an_unbuilt_model():
    model = keras.Sequential([L.Dense(3), L.BatchNormalization()], name="unbuilt")
    with pytest.raises(ValueError, match="model 'unbuilt' is not built"):
        fold_batchnorm(model)


@pytest.mark.parametrize("value, shown", [("no", "'no'"), (1, "1"), (None, "None")])
def test_refuses_a_return_report_that_is_not_a_bool(value, shown):
    model = linear_then_bn(L.Dense(4), (5,))
    with pytest.raises(ValueError, match="^" + re.escape(f"return_report must be True or False, got {shown}") + "$"):
        fold_batchnorm(model, return_report=value)


# --- any LinearBlock folds, through its parts() ----------------------------------


def test_a_new_linear_block_subclass_folds():
    inputs = keras.Input((9, 2))
    x = Conv1DBlock(4, 3, order="norm-act-drop", rate=0.2, seed=0, name="b1")(inputs)
    x = Conv1DBlock(3, 2, order="norm", name="b2")(x)
    x = Conv1DBlock(3, 2, order="act-norm", name="b3")(x)  # refused: act in between
    folded, report = fold_and_check(keras.Model(inputs, x), normal((4, 9, 2)), folds=2)
    decisions = {d.batchnorm: d for d in report}
    assert decisions["b1/block/norm"].reason == "folded into 'b1/conv'"
    assert decisions["b2/block/norm"].folded and not decisions["b3/block/norm"].folded
    b1, b2 = folded.get_layer("b1"), folded.get_layer("b2")
    assert type(b1) is Conv1DBlock and b1.block.order == ("act", "drop") and b1.conv.use_bias
    assert [type(p).__name__ for p in b1.parts()] == ["Conv1D", "Activation", "StandardDropout"]
    assert type(b2) is L.Conv1D and b2.use_bias


def test_a_skipped_part_between_linear_and_batchnorm_does_not_block_folding():
    # order "act-norm" without an activation: the BN directly follows the Dense
    inputs = keras.Input((6,))
    x = DenseBlock(4, order="act-norm", activation=None, name="d")(inputs)
    folded, report = fold_and_check(keras.Model(inputs, x), normal((5, 6)), folds=1)
    assert report[0].batchnorm == "d/block/norm" and report[0].linear == "d/dense"
    assert folded.get_layer("d").block.order == ("act",)
