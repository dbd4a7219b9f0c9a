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

import keras
import numpy as np
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
