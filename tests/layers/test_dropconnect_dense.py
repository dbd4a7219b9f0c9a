import re

import keras
import numpy as np
import pytest
from layer_contract import LayerContract

from kreg.layers import DropConnectDense
from kreg.ops.dropconnect import dropconnect_keep


class TestDropConnectDenseContract(LayerContract):
    input_shape = (5,)

    def make_layer(self):
        return DropConnectDense(3, 0.3, activation="relu", seed=1, kernel_regularizer="l2")


def np_(x):
    return keras.ops.convert_to_numpy(x)


def built(layer, input_dim):
    layer.build((None, input_dim))
    layer.bias.assign(np.linspace(-1, 1, layer.units).astype("float32"))
    return layer


def test_inference_is_exactly_dense():
    x = np.random.default_rng(0).standard_normal((10, 6)).astype("float32")
    layer = built(DropConnectDense(4, 0.5, seed=0), 6)
    expected = np_(keras.ops.matmul(x, layer.kernel) + layer.bias)
    np.testing.assert_array_equal(np_(layer(x)), expected)
    np.testing.assert_array_equal(np_(layer(x, training=False)), expected)
    np.testing.assert_allclose(np_(layer(x)), x @ np_(layer.kernel) + np_(layer.bias), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mask", ["batch", "example"])
def test_masks_are_the_keyed_keep_masks_of_the_seed_generator_state(mask):
    # what a stacked layer draws for this run with dropconnect_keep and the run's state
    layer = DropConnectDense(5, 0.4, use_bias=False, mask=mask, seed=6)
    x = np.tile(np.eye(7, dtype="float32"), (3, 1, 1)) if mask == "example" else np.eye(7, dtype="float32")
    layer.build((None, 7))
    key = layer.seed_generator.state.value
    shape = (3, 7, 5) if mask == "example" else (7, 5)
    keep = np_(dropconnect_keep(key, shape, 0.4))
    expected = np_(layer.kernel) * keep * np_(1.0 / (1.0 - keras.ops.convert_to_tensor(0.4, "float32")))
    np.testing.assert_array_equal(np_(layer(x, training=True)), expected)


@pytest.mark.parametrize("mask", ["batch", "example"])
def test_training_output_is_a_masked_kernel_rescaled_by_keep_probability(mask):
    # Feeding the identity matrix reads the masked kernel W * M / q back out:
    # row i of eye(in) @ K is K[i]. Every entry is 0 or W / q, and the dropped
    # fraction ~ Binomial(in*units, rate) / (in*units), sd = sqrt(.25 / 1200)
    # = 0.014: allow 5 sd around 0.5.
    layer = DropConnectDense(40, 0.5, use_bias=False, mask=mask, seed=3)
    masked = np_(layer(np.eye(30, dtype="float32"), training=True))
    kernel = np_(layer.kernel)
    is_kept = np.isclose(masked, kernel / 0.5, rtol=1e-6)
    assert np.all(is_kept | (masked == 0))
    assert abs((masked == 0).mean() - 0.5) < 5 * np.sqrt(0.25 / masked.size)


def test_batch_mask_is_shared_by_all_rows_and_example_masks_are_not():
    row = np.random.default_rng(1).standard_normal((1, 8)).astype("float32")
    x = np.repeat(row, 16, axis=0)
    shared = np_(DropConnectDense(6, 0.5, mask="batch", seed=2)(x, training=True))
    # equal up to rounding: a BLAS (torch on CPU) need not give identical rows
    # bit-identical results; another mask would change whole entries
    np.testing.assert_allclose(shared, np.repeat(shared[:1], 16, axis=0), rtol=1e-6, atol=1e-6)
    per_example = np_(DropConnectDense(6, 0.5, mask="example", seed=2)(x, training=True))
    # 16 rows, each from its own 8x6 mask: two equal rows would need two
    # identical 48-entry masks (probability 2**-48 per pair).
    assert len(np.unique(per_example, axis=0)) == 16


def test_example_mask_is_shared_along_inner_axes():
    # Rank 3 input (batch, steps, in) with the same vector at every step: one
    # mask per example, so every step of an example gives the same output,
    # and examples differ.
    x = np.ones((5, 7, 8), "float32")
    y = np_(DropConnectDense(6, 0.5, mask="example", seed=2)(x, training=True))
    np.testing.assert_allclose(y, np.repeat(y[:, :1], 7, axis=1), rtol=1e-6)
    assert len(np.unique(y[:, 0], axis=0)) == 5


def test_example_mask_trains_compiled_on_rank_3_input_and_under_mixed_precision():
    # The per-example mask shape (batch, in, units) takes the batch size from
    # the traced input, whose batch axis is unknown when compiled.
    model = keras.Sequential([keras.Input((4, 5)), DropConnectDense(3, 0.3, mask="example", seed=1)])
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    x = np.random.default_rng(0).standard_normal((8, 4, 5)).astype("float32")
    model.fit(x, np.zeros((8, 4, 3), "float32"), batch_size=4, epochs=1, verbose=0)
    assert np.all(np.isfinite(model.predict(x, verbose=0)))
    layer = DropConnectDense(3, 0.3, mask="example", seed=1, dtype="mixed_float16")
    assert keras.backend.standardize_dtype(layer(x, training=True).dtype) == "float16"
    assert layer.kernel.dtype == "float32"


@pytest.mark.parametrize("mask", ["batch", "example"])
def test_mean_of_training_passes_converges_to_inference(mask):
    # One pass gives y_j = sum_i x_i W_ij M_ij / q + b_j with independent
    # M_ij ~ Bernoulli(q): E[y_j] = (x @ W + b)_j and
    # Var[y_j] = (1 - q) / q * sum_i x_i^2 W_ij^2. The mean of T independent
    # passes has sd sqrt(Var / T); we allow 5 sd per entry (24 entries:
    # a false failure has probability < 24 * 6e-7). "batch" needs T separate
    # calls; "example" draws T masks in one call over T copies of the rows.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 10)).astype("float32")
    layer = built(DropConnectDense(8, 0.4, mask=mask, seed=11), 10)
    passes = 400
    if mask == "batch":
        samples = np.stack([np_(layer(x, training=True)) for _ in range(passes)])
    else:
        samples = np_(layer(np.tile(x, (passes, 1)), training=True)).reshape(passes, 3, 8)
    kernel = np_(layer.kernel).astype("float64")
    q = 0.6
    sd = np.sqrt((1 - q) / q * (x.astype("float64") ** 2 @ kernel**2) / passes)
    expected = np_(layer(x))
    assert np.all(np.abs(samples.mean(axis=0) - expected) < 5 * sd)
    # the passes really differ: the spread is the predicted one within 25%
    # (the sample sd of 400 draws is within ~3.5% of the truth per entry).
    ratio = samples.std(axis=0) / (sd * np.sqrt(passes))
    assert np.all((0.75 < ratio) & (ratio < 1.25))


@pytest.mark.parametrize("mask", ["batch", "example"])
def test_forward_passes_leave_the_kernel_variable_unchanged(mask):
    x = np.random.default_rng(3).standard_normal((8, 5)).astype("float32")
    layer = built(DropConnectDense(4, 0.5, mask=mask, seed=0), 5)
    before = np_(layer.kernel).copy()
    for _ in range(3):
        layer(x, training=True)
    np.testing.assert_array_equal(np_(layer.kernel), before)
    np.testing.assert_allclose(np_(layer(x)), x @ before + np_(layer.bias), rtol=1e-5, atol=1e-6)


def test_fit_step_changes_the_kernel_only_through_the_optimizer():
    # With learning rate 0 the SGD update w - 0 * grad is the identity: any
    # change to the kernel after fit would come from the forward pass.
    x = np.random.default_rng(4).standard_normal((16, 5)).astype("float32")
    y = np.ones((16, 3), "float32")
    layer = DropConnectDense(3, 0.5, seed=0)
    model = keras.Sequential([keras.Input((5,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    before = np_(layer.kernel).copy()
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    np.testing.assert_array_equal(np_(layer.kernel), before)
    # and a real optimizer step does move it
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert not np.array_equal(np_(layer.kernel), before)


def test_zero_rate_trains_like_dense():
    x = np.random.default_rng(6).standard_normal((4, 5)).astype("float32")
    layer = built(DropConnectDense(3, 0.0, activation="tanh"), 5)
    expected = np.tanh(x @ np_(layer.kernel) + np_(layer.bias))
    np.testing.assert_allclose(np_(layer(x, training=True)), expected, rtol=1e-5, atol=1e-6)


def test_seeded_masks_are_reproducible():
    x = np.random.default_rng(7).standard_normal((4, 5)).astype("float32")
    init = keras.initializers.GlorotUniform(seed=0)
    first = DropConnectDense(3, 0.5, seed=9, kernel_initializer=init)
    second = DropConnectDense(3, 0.5, seed=9, kernel_initializer=init)
    np.testing.assert_array_equal(np_(first(x, training=True)), np_(second(x, training=True)))


def test_config_carries_every_dense_argument():
    layer = DropConnectDense(
        7, 0.25, activation="relu", use_bias=False, mask="example", seed=3,
        kernel_initializer="he_normal", bias_initializer="ones",
        kernel_regularizer="l2", bias_regularizer="l1",
        kernel_constraint="max_norm", bias_constraint="non_neg",
    )
    clone = DropConnectDense.from_config(layer.get_config())
    assert (clone.units, clone.rate, clone.use_bias, clone.mask, clone.seed) == (7, 0.25, False, "example", 3)
    assert clone.activation is keras.activations.relu
    assert isinstance(clone.kernel_initializer, keras.initializers.HeNormal)
    assert isinstance(clone.bias_initializer, keras.initializers.Ones)
    assert isinstance(clone.kernel_regularizer, keras.regularizers.L2)
    assert isinstance(clone.bias_regularizer, keras.regularizers.L1)
    assert isinstance(clone.kernel_constraint, keras.constraints.MaxNorm)
    assert isinstance(clone.bias_constraint, keras.constraints.NonNeg)


def test_output_shape_on_rank_4_input():
    layer = DropConnectDense(3, 0.5, seed=0)
    x = np.ones((2, 4, 6, 5), "float32")
    for training in (True, False):
        assert tuple(layer(x, training=training).shape) == (2, 4, 6, 3)
    assert layer.compute_output_shape((None, 4, 6, 5)) == (None, 4, 6, 3)


@pytest.mark.parametrize("rate, shown", [(1.0, "1.0"), (-0.1, "-0.1"), (float("nan"), "nan"), ("0.5", "'0.5'")])
def test_refuses_bad_rate(rate, shown):
    with pytest.raises(ValueError, match=re.escape("rate must be") + ".*" + re.escape(f"got {shown}")):
        DropConnectDense(4, rate)


@pytest.mark.parametrize("units, shown", [(0, "0"), (-3, "-3"), (2.5, "2.5"), ("4", "'4'"), (True, "True")])
def test_refuses_bad_units(units, shown):
    with pytest.raises(ValueError, match=re.escape(f"units must be an int >= 1, got {shown}")):
        DropConnectDense(units, 0.5)


def test_refuses_unknown_mask():
    with pytest.raises(ValueError, match=re.escape("mask must be one of 'batch', 'example', got 'x'")):
        DropConnectDense(4, 0.5, mask="x")


@pytest.mark.parametrize("use_bias, shown", [("no", "'no'"), (0, "0"), (None, "None")])
def test_refuses_a_use_bias_that_is_not_a_bool(use_bias, shown):
    with pytest.raises(ValueError, match="^" + re.escape(f"use_bias must be True or False, got {shown}") + "$"):
        DropConnectDense(4, 0.5, use_bias=use_bias)
    assert DropConnectDense(4, 0.5, use_bias=np.bool_(False)).use_bias is False


def test_refuses_a_bad_seed():
    with pytest.raises(ValueError, match="^" + re.escape("seed must be None or an int >= 0, got -2") + "$"):
        DropConnectDense(4, 0.5, seed=-2)
