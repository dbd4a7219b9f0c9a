"""The promises every zoo model keeps, as a reusable pytest base class.

A model's test module subclasses `ZooContract` and sets `name`:

    class TestMlpContract(ZooContract):
        name = "mlp"

The base class name does not start with "Test", so pytest collects only the
subclasses.
"""

import functools

import keras
import numpy as np
import pytest

from kreg import datasets
from kreg import models
from kreg.keras_compat import flatten_layers
from kreg.models.train import accuracy


@functools.lru_cache(maxsize=None)
def digits(as_images):
    return datasets.load("digits", seed=0, as_images=as_images)


@functools.lru_cache(maxsize=None)
def zoo_info(name):
    return models.info(name)  # builds the model once to count its parameters


def outputs(model, x, training=False):
    """The model called directly (no compiled predict function: faster here)."""
    return keras.ops.convert_to_numpy(model(x, training=training))


class ZooContract:
    name = None  # the registered model name
    small = {}  # overrides for the fit/seed tests where the defaults are slow to compile
    weights = "digits"  # the dataset of the shipped weights
    least_accuracy = 0.9  # their test accuracy shows training, not chance (0.1)

    def data(self):
        return digits(zoo_info(self.name).input == "image")

    def create(self, **overrides):
        data = self.data()
        return models.create(self.name, data.input_shape, data.num_classes,
                             **{**self.small, **overrides})

    def test_rate_and_seed_are_overrides(self):
        assert {"rate", "seed"} <= set(zoo_info(self.name).defaults)

    def test_defaults_build_softmax_over_classes(self):
        model = models.create(self.name)  # digits-sized defaults
        about = zoo_info(self.name)
        assert model.input_shape == (None,) + about.input_shape
        assert model.output_shape == (None, about.num_classes)
        assert model.count_params() == about.params
        assert not model.compiled
        x = self.data().x_val[:32]
        probabilities = outputs(model, x)
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
        assert np.all(probabilities >= 0)

    def test_trains_one_epoch_then_keras_round_trip(self, tmp_path):
        data = self.data()
        model = self.create(seed=0)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        # 1024 of the 1079 training examples: 16 full batches, so the JAX backend
        # compiles one train step, not a second one for a ragged last batch.
        history = model.fit(data.x_train[:1024], data.y_train[:1024], batch_size=64,
                            epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        path = tmp_path / f"{self.name}.keras"
        model.save(path)
        restored = keras.saving.load_model(path, safe_mode=True)
        assert type(restored) is type(model)
        assert [type(layer) for layer in restored.layers] == [type(layer) for layer in model.layers]
        x = data.x_val[:32]  # one batch size in all tests: JAX compiles ops per shape
        np.testing.assert_array_equal(outputs(restored, x), outputs(model, x))

    def test_seed_fixes_weights_and_dropout_masks(self):
        x = self.data().x_val[:32]
        first, second, other = self.create(seed=3), self.create(seed=3), self.create(seed=4)
        for a, b in zip(first.get_weights(), second.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert not all(
            np.array_equal(a, b) for a, b in zip(first.get_weights(), other.get_weights())
        )
        # Training mode: dropout masks drawn from the same seeds, so same outputs.
        np.testing.assert_array_equal(outputs(first, x, True), outputs(second, x, True))

    def test_every_dropout_is_a_kreg_keyed_layer(self):
        # keras.layers' dropouts draw from keras.random: a pack of runs would
        # run them per branch; kreg's draw every branch's noise in one op.
        head = {"head_rate": 0.3} if "head_rate" in zoo_info(self.name).defaults else {}
        found = flatten_layers(self.create(rate=0.2, **head))
        keras_kinds = (keras.layers.Dropout, keras.layers.GaussianDropout, keras.layers.AlphaDropout)
        assert not [layer.name for layer in found if isinstance(layer, keras_kinds)]

    def test_unknown_override_lists_valid_ones(self):
        with pytest.raises(ValueError, match=r"has no override 'dropout_rate'") as info:
            models.create(self.name, dropout_rate=0.1)
        for valid in zoo_info(self.name).defaults:
            assert valid in str(info.value)

    def test_num_classes_zero_refused(self):
        with pytest.raises(ValueError, match=r"num_classes must be an int >= 1, got 0"):
            models.create(self.name, num_classes=0)

    def test_shipped_weights_reproduce_manifest_accuracy(self):
        entry = zoo_info(self.name).weights[self.weights]
        model = models.load(self.name, weights=self.weights)
        data = datasets.load(entry["dataset"], seed=entry["seed"], as_images=entry["as_images"])
        measured = accuracy(model, data.x_test, data.y_test)
        # Inference is deterministic: on the training backend the accuracy is the
        # recorded one up to float printing (1e-6). On another backend, float
        # rounding may flip the argmax of one near-tie example: 1 / N at most.
        same = entry["backend"] == keras.backend.backend()
        tolerance = 1e-6 if same else 1.0 / entry["test_examples"] + 1e-9
        assert abs(measured - entry["test_accuracy"]) <= tolerance
        assert entry["test_accuracy"] > self.least_accuracy
