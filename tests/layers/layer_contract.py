"""The contract every kreg layer keeps, as a reusable pytest base class.

A layer's test module subclasses `LayerContract`, says how to make the layer
and what input it takes, and inherits one test per promise in DESIGN.md:

    class TestAlphaDropoutContract(LayerContract):
        input_shape = (6, 5)          # one example, no batch axis

        def make_layer(self):
            return AlphaDropout(0.2, seed=1)

The base class name does not start with "Test", so pytest collects only the
subclasses.
"""

import re

import keras
import numpy as np
import pytest
from keras import ops

BATCH = 8


class LayerContract:
    input_shape = None  # shape of one example, without the batch axis

    def make_layer(self):
        raise NotImplementedError("a LayerContract subclass defines make_layer()")

    # --- helpers -----------------------------------------------------------

    def inputs(self, seed=0):
        rng = np.random.default_rng(seed)
        return rng.standard_normal((BATCH,) + tuple(self.input_shape)).astype("float32")

    def functional(self, layer):
        inputs = keras.Input(self.input_shape)
        outputs = keras.layers.Dense(2, name="head")(layer(inputs))
        return keras.Model(inputs, outputs)

    def fit_one_epoch(self, model, **compile_kwargs):
        x = self.inputs()
        y = np.zeros(tuple(model(x).shape), "float32")
        model.compile(optimizer="sgd", loss="mse", **compile_kwargs)
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        out = model.predict(x, verbose=0)
        assert out.shape == y.shape
        assert np.all(np.isfinite(out))

    # --- the contract ------------------------------------------------------

    def test_config_round_trip(self):
        layer = self.make_layer()
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
        x = self.inputs()
        assert tuple(clone(x, training=False).shape) == tuple(layer(x, training=False).shape)

    def test_serialize_round_trip(self):
        layer = self.make_layer()
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(layer)
        )
        assert type(restored) is type(layer)
        assert restored.get_config() == layer.get_config()

    def test_keras_file_round_trip_safe_mode(self, tmp_path):
        model = self.functional(self.make_layer())
        x = self.inputs()
        model(x, training=True)  # a training pass must not disturb what is saved
        expected = model.predict(x, verbose=0)
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)

    def test_sequential(self):
        model = keras.Sequential(
            [keras.Input(self.input_shape), self.make_layer(), keras.layers.Dense(2)]
        )
        self.fit_one_epoch(model)

    def test_functional(self):
        self.fit_one_epoch(self.functional(self.make_layer()))

    def test_subclassed(self):
        contract = self

        class Wrapped(keras.Model):
            def __init__(self):
                super().__init__()
                self.inner = contract.make_layer()
                self.head = keras.layers.Dense(2)

            def call(self, x, training=None):
                return self.head(self.inner(x, training=training))

        self.fit_one_epoch(Wrapped())

    def test_compute_output_shape(self):
        layer = self.make_layer()
        x = self.inputs()
        for training in (True, False):
            actual = tuple(layer(x, training=training).shape)
            assert tuple(layer.compute_output_shape(x.shape)) == actual
        symbolic = layer(keras.Input(self.input_shape))
        expected = layer.compute_output_shape((None,) + tuple(self.input_shape))
        assert tuple(symbolic.shape) == tuple(expected)

    def test_jit_compile(self):
        self.fit_one_epoch(self.functional(self.make_layer()), jit_compile=True)

    def test_mixed_float16(self):
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("mixed_float16")
        try:
            layer = self.make_layer()
            x = ops.convert_to_tensor(self.inputs())
            for training in (True, False):
                assert keras.backend.standardize_dtype(layer(x, training=training).dtype) == "float16"
            for weight in layer.weights:
                assert weight.dtype == "float32", weight.path
        finally:
            keras.config.set_dtype_policy(previous)


def train_pass(layer, x):
    """`layer(x, training=True)` as numpy."""
    return keras.ops.convert_to_numpy(layer(x, training=True))


class TrainingNoiseContract(LayerContract):
    """The contract of a `TrainingNoise` layer (`layer_class(rate, seed=...)`) on top."""

    layer_class = None
    input_shape = (6, 5)

    def make_layer(self):
        return self.layer_class(0.2, seed=1)

    def test_inference_and_zero_rate_are_identity(self):
        x = np.random.default_rng(1).standard_normal((16, 7)).astype("float32")
        layer = self.layer_class(0.4, seed=0)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
        np.testing.assert_array_equal(train_pass(self.layer_class(0.0), x), x)

    def test_seeded_noise_is_reproducible_and_fresh_each_step(self):
        x = np.random.default_rng(2).standard_normal((32, 16)).astype("float32")
        first, second = self.layer_class(0.3, seed=7), self.layer_class(0.3, seed=7)
        step1 = train_pass(first, x)
        np.testing.assert_array_equal(step1, train_pass(second, x))
        step2 = train_pass(first, x)
        assert not np.array_equal(step1, step2)
        np.testing.assert_array_equal(step2, train_pass(second, x))
        assert not np.array_equal(step1, train_pass(self.layer_class(0.3, seed=8), x))

    def test_passes_the_keras_mask_through(self):
        layer = self.layer_class(0.2)
        mask = np.array([[True, False, True]])
        assert layer.supports_masking
        np.testing.assert_array_equal(layer.compute_mask(np.zeros((1, 3, 2)), mask), mask)

    @pytest.mark.parametrize(
        "rate, shown",
        [(1.0, "1.0"), (-0.1, "-0.1"), (float("nan"), "nan"), ("0.5", "'0.5'"), (True, "True")],
    )
    def test_refuses_bad_rate(self, rate, shown):
        with pytest.raises(ValueError, match=re.escape("rate must be") + ".*" + re.escape(f"got {shown}")):
            self.layer_class(rate)

    @pytest.mark.parametrize("seed, shown", [(-1, "-1"), ("1", "'1'"), (2.0, "2.0"), (False, "False")])
    def test_refuses_a_bad_seed(self, seed, shown):
        message = "^" + re.escape(f"seed must be None or an int >= 0, got {shown}") + "$"
        with pytest.raises(ValueError, match=message):
            self.layer_class(0.1, seed=seed)


def assert_refused_by_name_and_value(make, kwargs, fragments):
    """`make(**kwargs)` raises a ValueError whose message holds every fragment."""
    with pytest.raises(ValueError) as info:
        make(**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)
