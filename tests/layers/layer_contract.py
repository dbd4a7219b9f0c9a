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


def compiled(function, xla=True):
    """`function` compiled by the backend: tf.function (a graph, XLA with `xla`),
    jax.jit; torch runs it eagerly."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=xla)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


def stacked_noise(sources, x, compile=None):
    """What a pack computes for the branches' `TrainingNoise` layers `sources`
    on `x` of shape `(B, K, ...)`: one `noise` call of a rate-0 layer of
    their kind, with the `(K, 2)` seed states (zeros for a rate-0 branch,
    which has no seed generator) and the per-branch values of
    `branch_values()` shaped `(1, K, 1, ..., 1)`, passed in as a pack's
    variables are (`compiled(..., xla=compile)` unless `compile` is None).
    """
    first = sources[0]
    template = type(first).from_config({**first.get_config(), "rate": 0.0, "name": "template"})
    keys = keras.ops.stack([
        keras.ops.cast(s.seed_generator.state.value, "int32") if s.rate > 0 else keras.ops.zeros((2,), "int32")
        for s in sources
    ])
    shape = (1, len(sources)) + (1,) * (len(x.shape) - 2)
    values = {
        name: keras.ops.reshape(keras.ops.convert_to_tensor([s.branch_values()[name] for s in sources], "float32"), shape)
        for name in first.branch_values()
    }

    def noise(inputs, keys, values):
        return template.noise(inputs, keys, branch_axis=1, **values)

    run = noise if compile is None else compiled(noise, xla=compile)
    return keras.ops.convert_to_numpy(run(keras.ops.convert_to_tensor(x), keys, values))


def run_alone(layer, x, compile=None):
    """`layer(x, training=True)` as numpy; unless `compile` is None, its
    training call compiled (`xla=compile`) as in a model's train step (the
    layer's floats are constants)."""
    if compile is None or layer.rate == 0:
        return train_pass(layer, x)
    values = layer.branch_values()
    noise = compiled(lambda inputs, key: layer.noise(inputs, key, **values), xla=compile)
    return keras.ops.convert_to_numpy(noise(keras.ops.convert_to_tensor(x), layer.seed_generator.next()))


def assert_stacked_noise_equals_each_run_alone(sources, x, compile=None):
    """`stacked_noise` slice k equals what `sources[k]` computes on `x[:, k]`, exactly."""
    stacked = stacked_noise(sources, x, compile)
    for k, layer in enumerate(sources):
        alone = run_alone(layer, x[:, k], compile)
        np.testing.assert_array_equal(stacked[:, k], alone, err_msg=f"branch {k} (rate {layer.rate})")


class TrainingNoiseContract(LayerContract):
    """The contract of a `TrainingNoise` layer (`layer_class(rate, seed=...)`) on top."""

    layer_class = None
    input_shape = (6, 5)

    def make_layer(self):
        return self.layer_class(0.2, seed=1)

    def test_inference_and_zero_rate_are_identity(self):
        x = self.inputs(1)
        layer = self.layer_class(0.4, seed=0)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
        np.testing.assert_array_equal(train_pass(self.layer_class(0.0), x), x)

    def test_seeded_noise_is_reproducible_and_fresh_each_step(self):
        x = self.inputs(2)
        first, second = self.layer_class(0.3, seed=7), self.layer_class(0.3, seed=7)
        step1 = train_pass(first, x)
        np.testing.assert_array_equal(step1, train_pass(second, x))
        step2 = train_pass(first, x)
        assert not np.array_equal(step1, step2)
        np.testing.assert_array_equal(step2, train_pass(second, x))
        assert not np.array_equal(step1, train_pass(self.layer_class(0.3, seed=8), x))

    def test_draws_with_the_seed_generator_state_as_key(self):
        x = self.inputs(3)
        layer = self.layer_class(0.3, seed=4)
        key = layer.seed_generator.state.value
        expected = keras.ops.convert_to_numpy(layer.noise(x, key, **layer.branch_values()))
        np.testing.assert_array_equal(train_pass(layer, x), expected)  # key [4, 0], then the counter moves on
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.seed_generator.state.value), [4, 1])

    def test_branch_values_are_floats_and_make_noise_the_identity_at_rate_0(self):
        x = self.inputs(4)
        layer = self.layer_class(0.0)
        values = layer.branch_values()
        assert values["rate"] == 0.0 and all(type(value) is float for value in values.values())
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.noise(x, np.array([5, 0]), **values)), x)

    def test_stacked_noise_of_k_runs_equals_each_run_alone(self):
        # rates differ per run, a rate-0 run among them; seeds differ
        sources = [self.layer_class(rate, seed=seed) for rate, seed in ((0.3, 1), (0.0, 2), (0.5, 3))]
        x = np.random.default_rng(5).standard_normal((BATCH, len(sources)) + tuple(self.input_shape)).astype("float32")
        assert_stacked_noise_equals_each_run_alone(sources, x)
        assert_stacked_noise_equals_each_run_alone(sources, x)  # and at the next step (counters moved on)

    @pytest.mark.parametrize("xla", [False, True])
    def test_compiled_stacked_noise_equals_each_run_alone_compiled(self, xla):
        # Compilers rewrite: TensorFlow's graph optimizer, XLA's fusing of
        # multiplies and adds and constant folding. A pack's values are
        # variables, a run's are constants, and yet they agree bit for bit.
        sources = [self.layer_class(rate, seed=seed) for rate, seed in ((0.3, 1), (0.0, 2), (0.5, 3))]
        x = np.random.default_rng(6).standard_normal((BATCH, len(sources)) + tuple(self.input_shape)).astype("float32")
        assert_stacked_noise_equals_each_run_alone(sources, x, compile=xla)

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
