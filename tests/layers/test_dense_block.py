"""Tests of kreg.layers.DenseBlock: Dense (no activation) then NormDropout."""

import keras
import numpy as np
import pytest
from layer_contract import LayerContract
from layer_contract import assert_refused_by_name_and_value
from block_reference import assert_block_equals_reference
from block_reference import reference_norm

from kreg.layers import DenseBlock
from kreg.layers import NormDropout
from kreg.layers import StandardDropout


# (layer norm + alpha dropout after SELU: see TestLayerAlphaSeluContract in test_norm_dropout.py)
class TestDenseBatchStandardContract(LayerContract):
    input_shape = (6,)

    def make_layer(self):
        return DenseBlock(5, rate=0.2, seed=1)


@pytest.mark.parametrize(
    "norm, order, use_bias, expected",
    [
        ("batch", "norm-act-drop", None, False),  # BN right after Dense: its beta is the bias
        ("batch", "norm-drop", None, False),
        ("batch", "act-norm-drop", None, True),  # relu in between: the bias matters
        ("batch", "drop-norm", None, True),
        ("layer", "norm-act-drop", None, True),  # LN does not absorb a per-unit bias
        ("group", "norm-act", None, True),
        (None, "norm-act-drop", None, True),
        ("batch", "norm-act-drop", True, True),  # explicit values are honoured
        ("layer", "norm-act-drop", False, False),
    ],
)
def test_use_bias_resolution(norm, order, use_bias, expected):
    layer = DenseBlock(4, order=order, norm=norm, groups=2, use_bias=use_bias)
    layer.build((None, 3))
    assert layer.dense.use_bias is expected
    assert (layer.dense.bias is not None) is expected
    assert layer.get_config()["use_bias"] is use_bias  # as given, resolved again on load


@pytest.mark.parametrize(
    "order, norm", [("norm-act-drop", "batch"), ("act-drop-norm", "layer"), ("drop-norm-act", "group")]
)
def test_equals_dense_then_hand_stacked_layers(order, norm):
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, (16, 6)).astype("float32")
    layer = DenseBlock(8, order=order, norm=norm, activation="sigmoid", rate=0.3, seed=5, groups=4)
    layer.build(x.shape)
    assert type(layer.dense) is keras.layers.Dense and type(layer.block) is NormDropout
    assert layer.dense.activation is keras.activations.linear
    dense = keras.layers.Dense(8, use_bias=layer.dense.use_bias)
    parts = {
        "norm": reference_norm(norm),
        "act": keras.layers.Activation("sigmoid"),
        "drop": StandardDropout(0.3, seed=5),
    }
    assert_block_equals_reference(layer, dense, parts, x, order, rng, atol=1e-6)


def test_dense_kwargs_reach_the_dense_layer_and_the_config():
    layer = DenseBlock(
        3, kernel_initializer="ones", kernel_regularizer=keras.regularizers.L2(0.1),
        name="blk", dtype="float16",
    )
    layer.build((None, 4))
    assert layer.name == "blk"
    np.testing.assert_array_equal(layer.dense.kernel.numpy(), np.ones((4, 3)))
    assert layer.dense.kernel.dtype == "float16"
    # L2(0.1) of a (4, 3) kernel of ones: 0.1 * 12 (float16: 3 significant digits)
    np.testing.assert_allclose(float(sum(layer.losses)), 1.2, rtol=1e-3)
    clone = DenseBlock.from_config(layer.get_config())
    clone.build((None, 4))
    assert clone.get_config() == layer.get_config()
    assert isinstance(clone.dense.kernel_regularizer, keras.regularizers.L2)


def test_trainable_false_freezes_dense_and_norm():
    layer = DenseBlock(3, trainable=False)
    layer.build((None, 4))
    assert layer.trainable_weights == []
    assert len(layer.non_trainable_weights) == 5  # kernel, gamma, beta, moving mean and variance


def test_keras_file_restores_every_weight_including_moving_statistics(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 1.0, (32, 6)).astype("float32")
    model = keras.Sequential([keras.Input((6,)), DenseBlock(4, rate=0.2, seed=0), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x[:, :1], batch_size=8, epochs=1, verbose=0)
    block = model.layers[0]
    assert np.all(block.block.norm_layer.moving_mean.numpy() != 0)  # the fit moved them
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert len(loaded.weights) == len(model.weights) == 7  # kernel, 4 BN, head kernel + bias
    assert any(w.path.endswith("/block/norm/moving_variance") for w in loaded.weights)
    for restored, saved in zip(loaded.weights, model.weights):
        assert restored.path.endswith(saved.path.split("/", 1)[1])
        np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)


def test_seed_reaches_the_dropout_and_fixes_the_mask():
    x = np.ones((8, 6), "float32")
    outputs = []
    for _ in range(2):
        layer = DenseBlock(16, norm=None, kernel_initializer="ones", rate=0.5, seed=3)
        outputs.append(keras.ops.convert_to_numpy(layer(x, training=True)))
        assert layer.block.dropout_layer.seed == 3
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert 0 < np.mean(outputs[0] == 0) < 1


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"units": 0}, ["units", "0"]),
        ({"units": "8"}, ["units", "'8'"]),
        ({"units": 4, "use_bias": "yes"}, ["use_bias", "'yes'"]),
        ({"units": 4, "rate": 1.0}, ["rate", "1.0"]),
        ({"units": 4, "order": "norm-nrom"}, ["order", "'nrom'"]),
        ({"units": 4, "norm": "instance"}, ["norm", "'instance'"]),
        ({"units": 4, "use_bias": "no"}, ["use_bias must be True or False, got 'no'"]),
        ({"units": 4, "dropout": None, "rate": 0.9}, ["rate must be 0", "dropout is None", "got 0.9"]),
        ({"units": 4, "seed": -1}, ["seed must be None or an int >= 0, got -1"]),
    ],
)
def test_bad_arguments_are_refused_by_name_and_value(kwargs, fragments):
    assert_refused_by_name_and_value(DenseBlock, kwargs, fragments)


def test_spatial_dropout_after_dense_is_refused():
    layer = DenseBlock(4, dropout="spatial")
    with pytest.raises(ValueError, match=r"dropout='spatial'.*rank 2"):
        layer(np.ones((2, 3), "float32"))
