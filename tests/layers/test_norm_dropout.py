"""Tests of kreg.layers.NormDropout: order, parts, train/inference behaviour, errors."""

import itertools
import math
import re
import warnings

import keras
import numpy as np
import pytest
from block_reference import GROUPS
from block_reference import apply_in_order
from block_reference import random_weights
from block_reference import reference_norm
from layer_contract import LayerContract
from layer_contract import assert_refused_by_name_and_value

from kreg.layers import AlphaDropout
from kreg.layers import GaussianDropout
from kreg.layers import NormDropout
from kreg.layers import SpatialDropout
from kreg.layers import StandardDropout
from kreg.layers import UniformDropout

TOKENS = ("norm", "act", "drop")
# every order of every non-empty subset: 3 singles, 6 pairs, 6 triples
ORDERS = [order for size in (1, 2, 3) for order in itertools.permutations(TOKENS, size)]
RATE = 0.3
SEED = 7
# --- the layer contract, on representative configurations -------------------
# (group norm + spatial dropout: see TestConvGroupSpatialContract in test_conv2d_block.py)


class TestBatchStandardContract(LayerContract):
    input_shape = (6,)

    def make_layer(self):
        return NormDropout(norm="batch", dropout="standard", rate=0.2, seed=1)


class TestLayerAlphaSeluContract(LayerContract):
    input_shape = (3, 6)

    def make_layer(self):
        return NormDropout(norm="layer", activation="selu", dropout="alpha", rate=0.1, seed=1)


# --- the order is really applied ----------------------------------------------


@pytest.mark.parametrize("norm", ["batch", "layer", "group"])
def test_every_order_equals_hand_stacked_keras_layers(norm):
    rng = np.random.default_rng(0)
    # Mean 1, std 2: norm and act do not commute (sigmoid is not affine), nor
    # do drop and act (sigmoid(0) = 0.5 != 0), nor drop and norm in training
    # (dropout changes the statistics the norm computes).
    x = rng.normal(1.0, 2.0, (16, 8)).astype("float32")
    norm_layer = reference_norm(norm)
    norm_layer.build(x.shape)
    norm_weights = random_weights(norm_layer, rng)  # the same for every order
    for training in (True, False):
        outputs = {}
        for order in ORDERS:
            block = NormDropout(order, norm=norm, activation="sigmoid", rate=RATE, seed=SEED, groups=GROUPS)
            block.build(x.shape)
            parts = {
                "norm": reference_norm(norm),
                "act": keras.layers.Activation("sigmoid"),
                "drop": StandardDropout(RATE, seed=SEED),  # same seed: same mask
            }
            parts["norm"].build(x.shape)
            if "norm" in order:
                parts["norm"].set_weights(norm_weights)
                block.norm_layer.set_weights(norm_weights)
            expected = apply_in_order(x, order, parts, training)
            actual = keras.ops.convert_to_numpy(block(x, training=training))
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=str(order))
            if "norm" in order:  # batch norm's moving statistics moved alike in training
                for got, want in zip(block.norm_layer.weights, parts["norm"].weights):
                    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, err_msg=got.path)
            outputs[order] = actual
        for first, second in itertools.combinations(ORDERS, 2):
            if set(first) != set(second):
                continue
            # At inference dropout is the identity, so only the other parts' order counts.
            effective = [o if training else tuple(t for t in o if t != "drop") for o in (first, second)]
            difference = np.max(np.abs(outputs[first] - outputs[second]))
            if effective[0] == effective[1]:
                assert difference == 0, (first, second)
            else:
                assert difference > 1e-3, (first, second, training)


def test_order_attribute_keeps_tokens_and_config_is_canonical():
    block = NormDropout(["act", "norm"], norm=None)
    assert block.order == ("act", "norm")
    assert block.get_config()["order"] == "act-norm"
    assert NormDropout.from_config(block.get_config()).order == ("act", "norm")


def test_token_whose_part_is_none_is_skipped():
    x = np.random.default_rng(1).normal(1.0, 2.0, (4, 8)).astype("float32")
    block = NormDropout("norm-act-drop", norm=None, activation=None, rate=0.5, seed=0)
    block.build(x.shape)
    assert (block.norm_layer, block.activation_layer) == (None, None)
    np.testing.assert_array_equal(block(x, training=False), x)
    dropped = keras.ops.convert_to_numpy(block(x, training=True))
    assert np.all((dropped == 0) | np.isclose(dropped, 2 * x))  # only dropout acted


def test_parts_absent_from_order_are_not_built():
    block = NormDropout("act", norm="batch", dropout="standard")
    block.build((None, 4))
    assert block.norm_layer is None and block.dropout_layer is None
    assert isinstance(block.activation_layer, keras.layers.Activation)
    assert block.weights == []


# --- which layers make up the block -----------------------------------------


@pytest.mark.parametrize(
    "norm, expected",
    [
        ("batch", keras.layers.BatchNormalization),
        ("layer", keras.layers.LayerNormalization),
        ("group", keras.layers.GroupNormalization),
    ],
)
def test_norm_kind_selects_keras_layer(norm, expected):
    block = NormDropout(norm=norm, epsilon=0.01, axis=-1)
    block.build((None, 6))
    assert type(block.norm_layer) is expected
    assert block.norm_layer.epsilon == 0.01


@pytest.mark.parametrize(
    "dropout, shape, expected",
    [
        ("standard", (None, 6), StandardDropout),
        ("gaussian", (None, 6), GaussianDropout),
        ("uniform", (None, 6), UniformDropout),
        ("alpha", (None, 6), AlphaDropout),
        ("spatial", (None, 5, 6), SpatialDropout),
        ("spatial", (None, 5, 5, 6), SpatialDropout),
        ("spatial", (None, 3, 3, 3, 6), SpatialDropout),
    ],
)
def test_dropout_kind_selects_layer_with_rate_and_seed(dropout, shape, expected):
    block = NormDropout(activation="selu", dropout=dropout, rate=0.25, seed=11)
    block.build(shape)
    assert type(block.dropout_layer) is expected
    assert block.dropout_layer.rate == 0.25
    assert block.dropout_layer.seed == 11


@pytest.mark.parametrize(
    "channels, groups", [(8, 8), (48, 24), (64, 32), (7, 7), (96, 32)]
)
def test_default_groups_is_largest_divisor_up_to_32(channels, groups):
    block = NormDropout("norm", norm="group")
    block.build((None, channels))
    assert block.norm_layer.groups == groups


# --- training=True versus training=False --------------------------------------


@pytest.mark.parametrize("dropout", ["standard", "gaussian", "uniform", "alpha", "spatial"])
def test_dropout_acts_only_in_training(dropout):
    x = np.random.default_rng(2).normal(0.0, 1.0, (8, 5, 6)).astype("float32")
    block = NormDropout("act-drop", norm=None, activation="selu", dropout=dropout, rate=0.3, seed=3)
    selu = keras.ops.convert_to_numpy(keras.activations.selu(x))
    np.testing.assert_array_equal(block(x, training=False), selu)
    assert np.max(np.abs(keras.ops.convert_to_numpy(block(x, training=True)) - selu)) > 0.1


def test_standard_dropout_drops_rate_fraction_and_rescales():
    x = np.ones((100, 100), "float32")
    block = NormDropout("drop", rate=0.4, seed=0)
    y = keras.ops.convert_to_numpy(block(x, training=True))
    assert np.all(np.isclose(y, 0) | np.isclose(y, 1 / 0.6))
    # 10,000 Bernoulli(0.4) draws: sd of the fraction = sqrt(0.4*0.6/1e4) = 0.0049;
    # 0.02 is 4 sd.
    assert abs(np.mean(y == 0) - 0.4) < 0.02


def test_spatial_dropout_drops_whole_channels():
    x = np.ones((64, 4, 4, 8), "float32")
    y = keras.ops.convert_to_numpy(
        NormDropout("drop", dropout="spatial", rate=0.5, seed=0)(x, training=True)
    )
    per_map = y.reshape(64, 16, 8)
    assert np.all(per_map.min(axis=1) == per_map.max(axis=1))  # a map is kept or dropped whole
    assert 0.4 < np.mean(per_map[:, 0, :] == 0) < 0.6  # 512 maps: sd 0.022, bounds 4.5 sd


def test_batch_norm_uses_batch_statistics_in_training_and_moving_ones_at_inference():
    x = np.random.default_rng(4).normal(3.0, 2.0, (256, 4)).astype("float32")
    block = NormDropout("norm", norm="batch", momentum=0.9, epsilon=1e-3)
    mean, var = x.mean(axis=0), x.var(axis=0)  # Keras uses the biased batch variance
    y = keras.ops.convert_to_numpy(block(x, training=True))
    # batch statistics: (x - mean) / sqrt(var + eps), so mean 0 and variance var / (var + eps)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=0), var / (var + 1e-3), rtol=1e-4)
    # one update from (0, 1) with momentum 0.9
    moving_mean, moving_var = 0.1 * mean, 0.9 + 0.1 * var
    np.testing.assert_allclose(block.norm_layer.moving_mean.numpy(), moving_mean, rtol=1e-5)
    np.testing.assert_allclose(block.norm_layer.moving_variance.numpy(), moving_var, rtol=1e-5)
    expected = (x - moving_mean) / np.sqrt(moving_var + 1e-3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(x, training=False)), expected, rtol=1e-5, atol=1e-5)


# --- bad arguments --------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"rate": 1.0}, ["rate", "1.0", "[0, 1)"]),
        ({"rate": -0.1}, ["rate", "-0.1"]),
        ({"rate": math.nan}, ["rate", "nan"]),
        ({"rate": "0.5"}, ["rate", "'0.5'"]),
        ({"order": "nrom-act"}, ["order", "'nrom'", "'norm'"]),
        ({"order": "norm-norm"}, ["order", "repeats", "'norm'"]),
        ({"order": ""}, ["order", "''"]),
        ({"order": []}, ["order", "[]"]),
        ({"order": 3}, ["order", "3"]),
        ({"norm": "instance"}, ["norm", "'instance'", "'batch'"]),
        ({"dropout": "bernoulli"}, ["dropout", "'bernoulli'", "'spatial'"]),
        ({"activation": "relux"}, ["activation", "'relux'"]),
        ({"groups": 0}, ["groups", "0"]),
        ({"axis": "last"}, ["axis", "'last'"]),
        ({"epsilon": 0}, ["epsilon", "0"]),
    ],
)
def test_bad_arguments_are_refused_by_name_and_value(kwargs, fragments):
    assert_refused_by_name_and_value(NormDropout, kwargs, fragments)


def test_spatial_dropout_on_rank_2_input_is_refused():
    block = NormDropout(dropout="spatial")
    with pytest.raises(ValueError, match=r"dropout='spatial'.*rank 2.*\(None, 6\)"):
        block.build((None, 6))


def test_spatial_dropout_needs_channels_last():
    block = NormDropout(dropout="spatial", axis=1)
    with pytest.raises(ValueError, match=r"dropout='spatial'.*axis=-1, got axis=1"):
        block.build((None, 4, 4, 3))


def test_groups_must_divide_channels():
    block = NormDropout(norm="group", groups=3)
    with pytest.raises(ValueError, match=r"groups must divide the 8 channels .*got 3"):
        block.build((None, 8))


@pytest.mark.parametrize(
    "order, activation, shown",
    [("norm-act-drop", "relu", "activation='relu'"), ("norm-drop", "selu", "activation=None")],
)
def test_alpha_dropout_without_selu_warns(order, activation, shown):
    with pytest.warns(UserWarning, match=r"dropout='alpha'.*'selu'") as record:
        NormDropout(order, activation=activation, dropout="alpha")
    assert shown in str(record[0].message)


def test_alpha_dropout_after_selu_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NormDropout(activation="selu", dropout="alpha")
        NormDropout(activation=keras.activations.selu, dropout="alpha")


# --- parts(): the built sublayers in call order ---------------------------------


@pytest.mark.parametrize(
    "order, norm, activation, dropout, expected",
    [
        ("norm-act-drop", "batch", "relu", "standard", ["BatchNormalization", "Activation", "StandardDropout"]),
        ("drop-act-norm", "layer", "relu", "gaussian", ["GaussianDropout", "Activation", "LayerNormalization"]),
        ("act-norm", "batch", "relu", "standard", ["Activation", "BatchNormalization"]),
        ("drop", "batch", "relu", "uniform", ["UniformDropout"]),
        ("norm-act-drop", None, "relu", "standard", ["Activation", "StandardDropout"]),  # None part skipped
        ("norm-act-drop", "batch", None, None, ["BatchNormalization"]),
        ("act-drop", None, None, None, []),
    ],
)
def test_parts_are_the_built_sublayers_in_call_order(order, norm, activation, dropout, expected):
    rate = None if dropout is None else 0.2
    block = NormDropout(order, norm=norm, activation=activation, dropout=dropout, rate=rate)
    block.build((None, 6))
    parts = block.parts()
    assert [type(part).__name__ for part in parts] == expected
    assert all(part.built for part in parts if not isinstance(part, keras.layers.Activation))
    named = {"norm": block.norm_layer, "act": block.activation_layer, "drop": block.dropout_layer}
    assert parts == [named[t] for t in block.order if named[t] is not None]


def test_parts_called_in_turn_give_the_block_output():
    x = np.random.default_rng(3).normal(1.0, 2.0, (8, 6)).astype("float32")
    block = NormDropout("act-norm-drop", norm="layer", activation="sigmoid", rate=0.3, seed=2)
    block.build(x.shape)
    y = x
    for part in block.parts():
        y = part(y, training=False) if part is not block.activation_layer else part(y)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(x, training=False)),
                               keras.ops.convert_to_numpy(y), rtol=1e-6)


def test_parts_before_build_is_refused():
    block = NormDropout(name="unbuilt_block")
    with pytest.raises(ValueError, match=r"NormDropout 'unbuilt_block' is not built"):
        block.parts()


# --- strict inputs ----------------------------------------------------------------


def test_rate_defaults_to_one_half_with_dropout_and_zero_without():
    assert NormDropout().rate == 0.5
    assert NormDropout(dropout=None).rate == 0.0
    assert NormDropout(dropout=None, rate=0).rate == 0.0
    config = NormDropout(dropout=None).get_config()
    assert config["rate"] == 0.0 and NormDropout.from_config(config).rate == 0.0


@pytest.mark.parametrize("rate", [0.9, 0.5])
def test_a_rate_without_dropout_is_refused(rate):
    message = f"rate must be 0 (or None) when dropout is None, as there is no dropout, got {rate}"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        NormDropout(dropout=None, rate=rate)


@pytest.mark.parametrize("axis, rank", [(5, 2), (-3, 2), (4, 4)])
def test_an_axis_outside_the_input_is_refused_at_build(axis, rank):
    block = NormDropout(norm="batch", axis=axis)
    message = f"axis must be in [{-rank}, {rank}) for an input of rank {rank}, got {axis}"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        block.build((None,) * (rank - 1) + (6,))
    assert block.norm_layer is None  # refused before any sublayer was made


def test_an_axis_inside_the_input_builds():
    block = NormDropout(norm="batch", axis=1)
    block.build((None, 3, 6))
    assert block.norm_layer.axis == 1 and block.norm_layer.moving_mean.shape == (3,)


@pytest.mark.parametrize("seed, text", [(-1, "-1"), (1.5, "1.5"), ("0", "'0'"), (True, "True")])
def test_a_bad_seed_is_refused(seed, text):
    with pytest.raises(ValueError, match="^" + re.escape(f"seed must be None or an int >= 0, got {text}") + "$"):
        NormDropout(seed=seed)
