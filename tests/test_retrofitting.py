"""Tests of kreg.retrofit (kreg/retrofitting.py): plain models rewritten into linear layer + NormDropout units."""

import re

import keras
import numpy as np
import pytest

from kreg.layers import AlphaDropout
from kreg.layers import GaussianDropout
from kreg.layers import NormDropout
from kreg.layers import SpatialDropout
from kreg.layers import StandardDropout
from kreg.layers import UniformDropout
from kreg.retrofitting import retrofit

L = keras.layers


# ----------------------------------------------------------------- helpers


def data(shape, n=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n,) + tuple(shape)).astype("float32")


def predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def chain(model):
    """The model's layers without the InputLayer (which Functional models list)."""
    return [layer for layer in model.layers if not isinstance(layer, L.InputLayer)]


def types(model):
    return [type(layer).__name__ for layer in chain(model)]


def blocks(model):
    """(order, norm, activation, dropout, rate) of every NormDropout, in order."""
    return [
        (b.get_config()["order"], b.norm, b.get_config()["activation"], b.dropout, b.rate)
        for b in model.layers
        if isinstance(b, NormDropout)
    ]


def weights(model):
    return [np.array(w) for w in model.get_weights()]


def snapshot(model, x):
    """What must not change: the config, the weights and the predictions."""
    return model.get_config(), weights(model), predict(model, x)


def assert_same_snapshot(before, after):
    assert before[0] == after[0]
    assert len(before[1]) == len(after[1])
    for old, new in zip(before[1], after[1]):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_array_equal(before[2], after[2])


def mlp_layers():
    """Four unit shapes: inline act + dropout; BN + Activation; inline act only; the output."""
    return [
        L.Dense(16, activation="relu", name="d1"),
        L.Dropout(0.3, name="drop1"),
        L.Dense(12, name="d2"),
        L.BatchNormalization(name="bn2"),
        L.Activation("tanh", name="act2"),
        L.Dense(8, activation="elu", name="d3"),
        L.Dense(3, activation="softmax", name="out"),
    ]


def mlp(functional=False):
    if not functional:
        return keras.Sequential([keras.Input((6,), name="x")] + mlp_layers(), name="mlp")
    inputs = keras.Input((6,), name="x")
    outputs = inputs
    for layer in mlp_layers():
        outputs = layer(outputs)
    return keras.Model(inputs, outputs, name="mlp")


def cnn2d(functional=False):
    chain = [
        L.Conv2D(4, 3, activation="relu", padding="same", name="c1"),
        L.MaxPooling2D(name="pool1"),
        L.Conv2D(6, 3, name="c2"),
        L.BatchNormalization(name="bn2"),
        L.ReLU(name="relu2"),
        L.SpatialDropout2D(0.1, name="sdrop2"),
        L.Flatten(name="flat"),
        L.Dense(5, name="out"),
    ]
    if not functional:
        return keras.Sequential([keras.Input((8, 8, 2), name="img")] + chain, name="cnn2d")
    inputs = keras.Input((8, 8, 2), name="img")
    outputs = inputs
    for layer in chain:
        outputs = layer(outputs)
    return keras.Model(inputs, outputs, name="cnn2d")


def cnn1d():
    inputs = keras.Input((20, 3), name="seq")
    x = L.Conv1D(4, 5, activation="relu", name="c1")(inputs)
    x = L.GaussianDropout(0.2, name="gdrop1")(x)
    x = L.MaxPooling1D(name="pool1")(x)
    x = L.Conv1D(4, 3, name="c2")(x)
    x = L.LayerNormalization(name="ln2")(x)
    x = L.Activation("gelu", name="act2")(x)
    x = L.GlobalAveragePooling1D(name="gap")(x)
    outputs = L.Dense(2, activation="sigmoid", name="out")(x)
    return keras.Model(inputs, outputs, name="cnn1d")


# -------------------------------------------------------- structure and rules


@pytest.mark.parametrize("functional", [False, True])
def test_dense_structure_rates_kept(functional):
    model = mlp(functional)
    new = retrofit(model)
    assert type(new) is type(model)
    assert new is not model and new.name == "mlp"
    assert types(new) == ["Dense", "NormDropout"] * 3 + ["Dense"]
    names = [layer.name for layer in chain(new)]
    assert names == ["d1", "d1_block", "d2", "d2_block", "d3", "d3_block", "out"]
    assert blocks(new) == [
        ("norm-act-drop", "batch", "relu", "standard", 0.3),  # its own Dropout(0.3)
        ("norm-act-drop", "batch", "tanh", None, 0.0),  # no dropout: none added
        ("norm-act-drop", "batch", "elu", None, 0.0),
    ]
    for name in ("d1", "d2", "d3"):
        linear = new.get_layer(name)
        assert linear.get_config()["activation"] == "linear"
        assert linear.use_bias is False  # batch norm directly follows
        assert linear.units == model.get_layer(name).units
    assert new.get_layer("out").get_config() == model.get_layer("out").get_config()


def test_rate_sets_every_unit_and_zero_removes_dropout():
    new = retrofit(mlp(), rate=0.2)
    assert [b[3:] for b in blocks(new)] == [("standard", 0.2)] * 3
    new = retrofit(mlp(), rate=0)
    assert [b[3:] for b in blocks(new)] == [(None, 0.0)] * 3
    new_blocks = [block for block in new.layers if isinstance(block, NormDropout)]
    assert all(block.dropout_layer is None for block in new_blocks)


@pytest.mark.parametrize(
    "norm, order, use_bias",
    [
        ("batch", "norm-act-drop", False),
        ("batch", "act-drop-norm", True),  # the activation between: the bias matters
        ("layer", "norm-act-drop", True),  # layer norm does not absorb a bias
        ("group", "drop-norm-act", True),
        (None, "act-drop", True),
        (None, "norm-act-drop", True),  # "norm" is skipped without a norm
    ],
)
def test_norm_order_and_bias(norm, order, use_bias):
    new = retrofit(mlp(), norm=norm, order=order)
    assert [b[:2] for b in blocks(new)] == [(order, norm)] * 3
    assert [new.get_layer(name).use_bias for name in ("d1", "d2", "d3")] == [use_bias] * 3
    assert new.get_layer("out").use_bias is True
    kinds = {None: type(None), "batch": L.BatchNormalization, "layer": L.LayerNormalization,
             "group": L.GroupNormalization}
    for block in new.layers:
        if isinstance(block, NormDropout):
            assert isinstance(block.norm_layer, kinds[norm])


def test_a_linear_layer_without_bias_keeps_none():
    model = keras.Sequential(
        [keras.Input((4,)), L.Dense(5, use_bias=False, activation="relu"), L.Dense(2)]
    )
    new = retrofit(model, norm="layer")
    assert new.layers[0].use_bias is False


@pytest.mark.parametrize("functional", [False, True])
def test_conv2d_structure(functional):
    model = cnn2d(functional)
    new = retrofit(model, order="act-norm-drop")
    assert types(new) == [
        "Conv2D", "NormDropout", "MaxPooling2D", "Conv2D", "NormDropout", "Flatten", "Dense"
    ]
    assert blocks(new) == [
        ("act-norm-drop", "batch", "relu", None, 0.0),
        ("act-norm-drop", "batch", "relu", "spatial", 0.1),  # SpatialDropout2D stays spatial
    ]
    # rebuilt as kreg's keyed layer of its kind, so that a study packs the model fully
    assert type(new.get_layer("c2_block").dropout_layer) is SpatialDropout
    assert new.get_layer("pool1").get_config() == model.get_layer("pool1").get_config()
    assert new.get_layer("c2").get_config()["kernel_size"] == (3, 3)
    assert new.outputs[0].shape == model.outputs[0].shape


def test_conv1d_structure_gaussian_and_rate_set():
    model = cnn1d()
    new = retrofit(model, norm="group", rate=0.4, seed=7)
    assert types(new) == [
        "Conv1D", "NormDropout", "MaxPooling1D", "Conv1D", "NormDropout",
        "GlobalAveragePooling1D", "Dense",
    ]
    assert blocks(new) == [
        ("norm-act-drop", "group", "relu", "gaussian", 0.4),  # GaussianDropout stays gaussian
        ("norm-act-drop", "group", "gelu", "standard", 0.4),  # no dropout: a standard one
    ]
    assert [new.get_layer(n).seed for n in ("c1_block", "c2_block")] == [7, 8]
    assert type(new.get_layer("c1_block").dropout_layer) is GaussianDropout
    assert new.get_layer("out").get_config() == model.get_layer("out").get_config()


def test_kreg_dropouts_keep_their_kind():
    model = keras.Sequential(
        [
            keras.Input((5,)),
            L.Dense(6, activation="selu"),
            AlphaDropout(0.1),
            L.Dense(6, activation="relu"),
            UniformDropout(0.2),
            L.Dense(6, activation="relu"),
            StandardDropout(0.3),
            L.Dense(6, activation="relu"),
            GaussianDropout(0.4),
            L.Dense(1),
        ]
    )
    new = retrofit(model, norm=None, order="act-drop")
    assert [b[2:] for b in blocks(new)] == [
        ("selu", "alpha", 0.1), ("relu", "uniform", 0.2), ("relu", "standard", 0.3), ("relu", "gaussian", 0.4),
    ]
    dropouts = [type(block.dropout_layer) for block in new.layers if isinstance(block, NormDropout)]
    assert dropouts == [AlphaDropout, UniformDropout, StandardDropout, GaussianDropout]


def test_kreg_spatial_dropout_keeps_its_kind():
    model = keras.Sequential(
        [keras.Input((6, 6, 2)), L.Conv2D(4, 3, activation="relu"), SpatialDropout(0.2), L.Flatten(), L.Dense(1)]
    )
    new = retrofit(model, norm=None, order="act-drop")
    assert [b[2:] for b in blocks(new)] == [("relu", "spatial", 0.2)]


def test_activation_layers_become_names():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            L.Dense(4), L.ReLU(max_value=6.0),
            L.Dense(4), L.LeakyReLU(negative_slope=0.2),
            L.Dense(4), L.ELU(),
            L.Dense(4), L.Softmax(),
            L.Dense(4), L.Activation("linear"),
            L.Dense(1),
        ]
    )
    new = retrofit(model, norm=None)
    assert [b[2] for b in blocks(new)] == ["relu6", "leaky_relu", "elu", "softmax", None]


def test_layers_that_do_not_follow_a_unit_are_carried_unchanged():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            L.Dropout(0.2, name="input_drop"),  # before any unit
            L.Dense(8, activation="relu", name="d1"),
            L.Dropout(0.1, name="drop1"),
            L.Dropout(0.4, name="again"),  # a second dropout ends the unit
            L.Reshape((2, 4), name="reshape"),
            L.Flatten(name="flat"),
            L.Dense(2, name="out"),
            L.Activation("softmax", name="out_act"),  # after the output: unchanged
        ]
    )
    new = retrofit(model, rate=0.3)
    assert [layer.name for layer in new.layers] == [
        "input_drop", "d1", "d1_block", "again", "reshape", "flat", "out", "out_act"
    ]
    assert new.get_layer("input_drop").rate == 0.2 and new.get_layer("again").rate == 0.4
    assert blocks(new) == [("norm-act-drop", "batch", "relu", "standard", 0.3)]


def test_a_retrofitted_model_can_be_retrofitted_again():
    once = retrofit(mlp(), order="norm-act-drop", seed=1)
    twice = retrofit(once, norm="layer", order="act-drop-norm")
    assert types(twice) == types(once)
    assert blocks(twice) == [
        ("act-drop-norm", "layer", "relu", "standard", 0.3),
        ("act-drop-norm", "layer", "tanh", None, 0.0),
        ("act-drop-norm", "layer", "elu", None, 0.0),
    ]


def test_a_nested_sequential_is_inlined():
    inner = keras.Sequential([L.Dense(8, name="dense"), L.Activation("relu")], name="inner")
    inputs = keras.Input((5,))
    outputs = L.Dense(2, name="out")(inner(inputs))
    new = retrofit(keras.Model(inputs, outputs), norm=None)
    assert types(new) == ["Dense", "NormDropout", "Dense"]
    assert blocks(new) == [("norm-act-drop", None, "relu", None, 0.0)]


def test_only_the_output_layer_gives_a_copy():
    model = keras.Sequential([keras.Input((3,)), L.Flatten(), L.Dense(2, name="out")])
    new = retrofit(model, keep_weights=True)
    assert types(new) == ["Flatten", "Dense"]
    np.testing.assert_array_equal(predict(new, data((3,))), predict(model, data((3,))))


def test_seed_none_leaves_blocks_unseeded_and_a_seed_repeats():
    assert all(block.seed is None for block in retrofit(mlp(), rate=0.5).layers
               if isinstance(block, NormDropout))
    x, model = data((6,)), mlp()
    outputs = []
    for _ in range(2):
        new = retrofit(model, norm=None, rate=0.5, keep_weights=True, seed=11)
        outputs.append(keras.ops.convert_to_numpy(new(x, training=True)))
    np.testing.assert_array_equal(outputs[0], outputs[1])


# ------------------------------------------------------------ weights, original


def test_keep_weights_copies_kernels_and_predicts_the_same_without_norm():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            L.Dense(16, activation="relu", name="d1"),
            L.Dropout(0.3),
            L.Dense(8, activation="tanh", name="d2"),
            L.Dense(3, activation="softmax", name="out"),
        ]
    )
    new = retrofit(model, norm=None, order="act-drop", keep_weights=True)
    for name in ("d1", "d2", "out"):
        old_weights = model.get_layer(name).get_weights()
        for old, fresh in zip(old_weights, new.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(old, fresh)
    x = data((6,))
    np.testing.assert_array_equal(predict(new, x), predict(model, x))


def test_keep_weights_with_batch_norm_keeps_kernels_drops_bias_and_starts_bn_fresh():
    model = cnn2d()
    model.get_layer("bn2").moving_mean.assign(np.full((6,), 3.0, "float32"))
    new = retrofit(model, keep_weights=True)
    for name in ("c1", "c2"):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(new.get_layer(name).kernel),
            keras.ops.convert_to_numpy(model.get_layer(name).kernel),
        )
        assert new.get_layer(name).bias is None
    for old, fresh in zip(model.get_layer("out").get_weights(), new.get_layer("out").get_weights()):
        np.testing.assert_array_equal(old, fresh)
    bn = new.get_layer("c2_block").norm_layer
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_mean), np.zeros(6))


def test_without_keep_weights_the_weights_are_fresh():
    model = mlp()
    new = retrofit(model, norm=None)
    assert not np.array_equal(
        new.get_layer("d1").get_weights()[0], model.get_layer("d1").get_weights()[0]
    )


def test_normalization_state_is_copied_always():
    norm = L.Normalization(name="prep")
    norm.adapt(data((4,), n=32) * 5 + 2)
    model = keras.Sequential([keras.Input((4,)), norm, L.Dense(4, activation="relu"), L.Dense(1)])
    new = retrofit(model, keep_weights=False)
    for old, fresh in zip(norm.get_weights(), new.get_layer("prep").get_weights()):
        np.testing.assert_array_equal(old, fresh)


@pytest.mark.parametrize("make", [mlp, lambda: mlp(True), cnn2d, cnn1d])
@pytest.mark.parametrize("keep_weights", [False, True])
def test_the_original_is_untouched(make, keep_weights):
    model = make()
    x = data(model.inputs[0].shape[1:])
    before = snapshot(model, x)
    retrofit(
        model, norm="layer", order="act-drop-norm", rate=0.25, keep_weights=keep_weights, seed=0
    )
    assert_same_snapshot(before, snapshot(model, x))


# ----------------------------------------------------------- saving, training


def test_keras_round_trip_with_safe_mode(tmp_path):
    new = retrofit(cnn2d(functional=True), norm="group", rate=0.2, keep_weights=True, seed=0)
    path = tmp_path / "retrofit.keras"
    new.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert types(loaded) == types(new)
    assert blocks(loaded) == blocks(new)
    x = data((8, 8, 2))
    np.testing.assert_array_equal(predict(loaded, x), predict(new, x))


@pytest.mark.parametrize("make, loss", [(mlp, "sparse_categorical_crossentropy"), (cnn2d, "mse")])
def test_the_result_trains(make, loss):
    model = make()
    new = retrofit(model, rate=0.2, seed=0)
    x = data(model.inputs[0].shape[1:], n=16)
    y = (
        np.arange(16) % 3
        if loss.startswith("sparse")
        else np.random.default_rng(1).normal(size=(16, 5)).astype("float32")
    )
    new.compile(optimizer="adam", loss=loss)
    history = new.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


# ------------------------------------------------------------------- refusals


class Doubler(L.Layer):
    def call(self, x):
        return 2 * x


class Tiny(keras.Model):
    def __init__(self):
        super().__init__(name="tiny")
        self.dense = L.Dense(2)

    def call(self, x):
        return self.dense(x)


def test_refuses_a_subclassed_model():
    model = Tiny()
    model(data((3,)))
    message = r"model 'tiny' is a subclassed model \(Tiny\).*Sequential and Functional"
    with pytest.raises(ValueError, match=message):
        retrofit(model)


def test_refuses_an_unbuilt_sequential():
    with pytest.raises(ValueError, match="is not built"):
        retrofit(keras.Sequential([L.Dense(2)]))


def test_refuses_a_shared_layer():
    shared = L.Dense(4, activation="relu", name="shared")
    inputs = keras.Input((4,))
    outputs = L.Dense(1)(shared(shared(inputs)))
    message = r"layer 'shared' \(Dense\) is called 2 times.*shared layers"
    with pytest.raises(ValueError, match=message):
        retrofit(keras.Model(inputs, outputs))


def test_refuses_a_layer_used_twice_in_a_sequential():
    shared = L.Dense(4, activation="relu", name="shared")
    model = keras.Sequential([keras.Input((4,)), shared, shared, L.Dense(1)])
    with pytest.raises(ValueError, match=r"layer 'shared' \(Dense\) is used more than once"):
        retrofit(model)


def test_refuses_a_residual_add():
    inputs = keras.Input((4,))
    x = L.Dense(4, activation="relu")(inputs)
    y = L.Dense(4, activation="relu")(x)
    outputs = L.Dense(1)(L.Add(name="add")([x, y]))
    message = "retrofit rewrites plain chains; layer 'add' (Add) joins 2 branches"
    with pytest.raises(ValueError, match=re.escape(message)):
        retrofit(keras.Model(inputs, outputs))


def test_refuses_a_branch():
    inputs = keras.Input((4,))
    x = L.Dense(4, activation="relu", name="trunk")(inputs)
    a, b = L.Dense(1, name="a")(x), L.Dense(1, name="b")(x)
    outputs = L.Dense(1)(L.Concatenate(name="cat")([a, b]))
    with pytest.raises(ValueError, match=r"layer 'cat' \(Concatenate\) joins 2 branches"):
        retrofit(keras.Model(inputs, outputs))


def test_refuses_an_unknown_custom_layer():
    model = keras.Sequential(
        [keras.Input((4,)), L.Dense(4, activation="relu"), Doubler(name="doubler"), L.Dense(1)]
    )
    with pytest.raises(ValueError, match=r"does not know layer 'doubler' \(Doubler\)"):
        retrofit(model)


def test_refuses_two_outputs_and_two_inputs():
    inputs = keras.Input((4,))
    x = L.Dense(4, activation="relu")(inputs)
    two_out = keras.Model(inputs, [L.Dense(1)(x), L.Dense(2)(x)], name="two_out")
    message = "model 'two_out' has 2 outputs: retrofit rewrites plain chains"
    with pytest.raises(ValueError, match=message):
        retrofit(two_out)
    a, b = keras.Input((2,)), keras.Input((2,))
    two_in = keras.Model([a, b], L.Dense(1)(L.Concatenate()([a, b])), name="two_in")
    with pytest.raises(ValueError, match="model 'two_in' has 2 inputs"):
        retrofit(two_in)


def test_refuses_a_nested_functional_model():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, L.Dense(4, activation="relu")(inner_in), name="inner")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, L.Dense(1)(inner(inputs)))
    with pytest.raises(ValueError, match=r"layer 'inner' \(Functional\) is a nested model"):
        retrofit(model)


def test_refuses_call_arguments():
    inputs = keras.Input((4,))
    x = L.Dense(4, activation="relu")(inputs)
    x = L.Dropout(0.5, name="mc")(x, training=True)
    with pytest.raises(ValueError, match=r"layer 'mc' \(Dropout\) is called with training=True"):
        retrofit(keras.Model(inputs, L.Dense(1)(x)))


def test_refuses_what_norm_dropout_cannot_express():
    prelu = keras.Sequential([keras.Input((4,)), L.Dense(4), L.PReLU(name="prelu"), L.Dense(1)])
    with pytest.raises(ValueError, match=r"layer 'prelu' \(PReLU\) is the activation of unit"):
        retrofit(prelu)
    shaped = keras.Sequential(
        [
            keras.Input((3, 4)),
            L.Dense(4),
            L.Dropout(0.2, noise_shape=(None, 1, 4), name="nd"),
            L.Dense(1),
        ]
    )
    with pytest.raises(ValueError, match=r"layer 'nd' \(Dropout\) of unit .* has noise_shape"):
        retrofit(shaped)


def test_refuses_a_channels_first_convolution():
    model = keras.Sequential(
        [
            keras.Input((2, 6, 6)),
            L.Conv2D(3, 3, data_format="channels_first", activation="relu", name="cf"),
            L.Flatten(),
            L.Dense(1),
        ]
    )
    with pytest.raises(ValueError, match=r"layer 'cf' \(Conv2D\) has data_format='channels_first'"):
        retrofit(model)


def test_refuses_an_order_without_room_for_the_units_parts():
    message = r"order 'norm-drop' has no 'act', but unit 'd1' has activation 'relu'"
    with pytest.raises(ValueError, match=message):
        retrofit(mlp(), order="norm-drop")
    message = r"order 'norm-act' has no 'drop', but unit 'd1' keeps its dropout"
    with pytest.raises(ValueError, match=message):
        retrofit(mlp(), order="norm-act")
    retrofit(mlp(), order="norm-act", rate=0)  # no dropout anywhere: fine


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": "mlp"}, "model must be a keras.Model (Sequential or Functional), got 'mlp'"),
        (
            {"norm": "instance"},
            "norm must be one of 'batch', 'layer', 'group', None, got 'instance'",
        ),
        ({"order": "norm-bogus"}, "unknown token 'bogus'"),
        ({"order": "norm-norm"}, "repeats token 'norm'"),
        ({"order": ""}, "order must contain at least one of"),
        ({"order": "act-drop"}, "order must be an order with 'norm' when norm='batch'"),
        ({"order": "norm-act", "rate": 0.2}, "order must be an order with 'drop' when rate=0.2"),
        ({"rate": 1.0}, "rate must be None or a number in [0, 1), got 1.0"),
        ({"rate": -0.1}, "rate must be None or a number in [0, 1), got -0.1"),
        ({"rate": "0.5"}, "rate must be None or a number in [0, 1), got '0.5'"),
        ({"keep_weights": "yes"}, "keep_weights must be True or False, got 'yes'"),
        ({"seed": -1}, "seed must be None or an int >= 0, got -1"),
        ({"seed": 1.5}, "seed must be None or an int >= 0, got 1.5"),
    ],
)
def test_bad_arguments(kwargs, message):
    kwargs = {"model": mlp(), **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        retrofit(**kwargs)


def test_kreg_retrofit_is_the_function_whatever_was_imported_first():
    import kreg
    import kreg.retrofitting

    assert kreg.retrofit is kreg.retrofitting.retrofit
