import keras
import numpy as np
import pytest
from inference_helpers import assert_weights_equal
from inference_helpers import batchnorms
from inference_helpers import normal
from inference_helpers import randomize_batchnorms
from inference_helpers import weights_of
from sklearn.datasets import load_digits

from kreg.inference import recalibrate_batchnorm
from kreg.layers import DenseBlock

L = keras.layers
EPS = 1e-3  # Keras' BatchNormalization epsilon


def numpy_of(value):
    return keras.ops.convert_to_numpy(value)


# --- the reason it exists: variance shift (Li et al. 2019) -------------------


@pytest.fixture(scope="module")
def shifted():
    """A digits MLP trained with dropout 0.5 directly before a BN.

    BN momentum 0.9 makes the moving statistics an average over the last ~10
    training batches, so 10 epochs (220 steps) leave no trace of their
    initial values.
    """
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    x, y = digits.data[order].astype("float32"), digits.target[order]
    x = (x - x[:1400].mean(0)) / (x[:1400].std(0) + 1e-6)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    hidden = L.Dense(64, name="hidden")(inputs)
    h = L.BatchNormalization(momentum=0.9, name="bn")(L.Dropout(0.5, seed=1)(hidden))
    outputs = L.Dense(10, activation="softmax")(L.ReLU()(h))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:1400], y[:1400], batch_size=64, epochs=10, verbose=0)
    # the BN input at inference (dropout off) is the Dense output
    probe = keras.Model(inputs, hidden)
    trained = model.get_weights()  # each test starts from these
    return model, probe, trained, (x[:1400], y[:1400]), (x[1400:], y[1400:])


def test_fixes_the_variance_shift_of_dropout_before_batchnorm(shifted):
    model, probe, trained, (x_train, _), (x_test, _) = shifted
    model.set_weights(trained)
    bn = model.get_layer("bn")
    actual = numpy_of(probe(x_train)).var(axis=0)  # what the BN sees at inference

    # Training: the BN saw h * m / q, q = 0.5. Var = (Var h + E[h]^2) / q - E[h]^2,
    # i.e. 1 / q = 2 times Var h for the (nearly) zero-mean Dense outputs.
    ratio = numpy_of(bn.moving_variance) / actual
    assert 1.7 < np.median(ratio) < 2.3, np.median(ratio)
    assert ratio.min() > 1.4

    recalibrate_batchnorm(model, x_train, batch_size=64)
    # the BN now stores its input's variance at inference, exactly (float32)
    np.testing.assert_allclose(numpy_of(bn.moving_variance), actual, rtol=1e-4)
    np.testing.assert_allclose(
        numpy_of(bn.moving_mean), numpy_of(probe(x_train)).mean(axis=0), rtol=1e-4, atol=1e-5
    )
    # on held-out digits each unit's variance is a 397-example estimate
    # (relative error ~ sqrt(2 / 397) = 7% each); the median over 64 units is
    # far from the factor 2 of the shift: within 10% of the stored value
    held_out = numpy_of(bn.moving_variance) / numpy_of(probe(x_test)).var(axis=0)
    assert 0.9 < np.median(held_out) < 1.1, np.median(held_out)


def test_inference_is_not_worse_after_recalibration(shifted):
    model, _, trained, (x_train, _), (x_test, y_test) = shifted
    model.set_weights(trained)

    def evaluate(m):
        p = numpy_of(m(x_test, training=False))
        return (p.argmax(1) == y_test).mean(), -np.log(p[np.arange(len(y_test)), y_test]).mean()

    accuracy_before, loss_before = evaluate(model)
    recalibrate_batchnorm(model, x_train, batch_size=64)
    accuracy_after, loss_after = evaluate(model)
    # the BN no longer shrinks its output by sqrt(2): the softmax stops being
    # under-confident, the test cross-entropy drops (about 0.41 -> 0.28)
    assert loss_after < 0.9 * loss_before, (loss_before, loss_after)
    # argmax flips near the decision boundary go both ways: 1% = 4 of 397 digits
    assert accuracy_after >= accuracy_before - 0.01


# --- exactly which averages --------------------------------------------------


def two_batchnorm_model():
    """x -> BN1 -> Dense -> Dropout(0.5) -> BN2, with non-trivial weights."""
    inputs = keras.Input((5,))
    x = L.BatchNormalization(name="bn1")(inputs)
    x = L.Dense(4, name="dense")(x)
    x = L.BatchNormalization(name="bn2")(L.Dropout(0.5, seed=0)(x))
    return randomize_batchnorms(keras.Model(inputs, x), seed=1)


def expected_statistics(model, x, batch_size):
    """The documented averages, computed in numpy (float64).

    BN1 sees x: its statistics are x's mean and biased variance. BN2 sees
    Dense(BN1 output), where BN1 normalizes each batch by that batch's own
    mean and variance (dropout is off): pool BN2's inputs over all batches.
    """
    bn1 = model.get_layer("bn1")
    gamma, beta = numpy_of(bn1.gamma), numpy_of(bn1.beta)
    kernel, bias = (numpy_of(w) for w in model.get_layer("dense").weights)
    x = x.astype("float64")
    dense_inputs = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        z = (batch - batch.mean(0)) / np.sqrt(batch.var(0) + EPS) * gamma + beta
        dense_inputs.append(z @ kernel + bias)
    h = np.concatenate(dense_inputs)
    return {"bn1": (x.mean(0), x.var(0)), "bn2": (h.mean(0), h.var(0))}


def assert_statistics(model, expected):
    # float32 batch moments pooled in float64: ~1e-6 relative; a momentum
    # average or dropout left on would be off by far more than 1e-4
    for name, (mean, variance) in expected.items():
        bn = model.get_layer(name)
        np.testing.assert_allclose(numpy_of(bn.moving_mean), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(numpy_of(bn.moving_variance), variance, rtol=1e-4)


@pytest.mark.parametrize("batch_size", [100, 30])  # 30: uneven last batch of 10
def test_pooled_averages_with_batch_statistics_and_dropout_off(batch_size):
    model = two_batchnorm_model()
    x = normal((100, 5)) * 3 + 1
    recalibrate_batchnorm(model, x, batch_size=batch_size)
    assert_statistics(model, expected_statistics(model, x, batch_size))


def test_every_data_form_gives_the_same_statistics():
    import tensorflow as tf  # installed with kreg; only for tf.data input

    x, y = normal((60, 5)), np.arange(60) % 3
    forms = {
        "array": x,
        "x, y tuple": (x, y),
        "generator of (x, y)": ((x[i : i + 20], y[i : i + 20]) for i in range(0, 60, 20)),
        "iterator of x batches": iter([x[:20], x[20:40], x[40:]]),
        "tf.data": tf.data.Dataset.from_tensor_slices((x, y)).batch(20),
    }
    for form, data in forms.items():
        model = two_batchnorm_model()
        recalibrate_batchnorm(model, data, batch_size=20)
        assert_statistics(model, expected_statistics(model, x, 20))


def test_steps_limits_the_batches():
    model = two_batchnorm_model()
    x = normal((100, 5))
    recalibrate_batchnorm(model, iter([x[:40], x[40:], x[40:]]), steps=1)
    assert_statistics(model, expected_statistics(model, x[:40], 40))


def test_conv_statistics_are_per_channel():
    inputs = keras.Input((6, 6, 3))
    model = keras.Model(inputs, L.BatchNormalization()(inputs))
    x = normal((20, 6, 6, 3)) * np.array([1.0, 2.0, 5.0], "float32")
    recalibrate_batchnorm(model, x, batch_size=8)
    bn = batchnorms(model)[0]
    np.testing.assert_allclose(numpy_of(bn.moving_mean), x.mean((0, 1, 2)), atol=1e-5)
    np.testing.assert_allclose(numpy_of(bn.moving_variance), x.var((0, 1, 2)), rtol=1e-4)


def test_batchnorm_inside_a_kreg_block():
    # drop-norm: dropout before the BN inside the block, the classic shift
    block = DenseBlock(6, order="drop-norm", rate=0.5, seed=0, name="block")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, block(inputs))
    x = normal((50, 4))
    recalibrate_batchnorm(model, x, batch_size=50)
    h = numpy_of(block.dense(x))  # the BN input with dropout off
    bn = block.block.norm_layer
    np.testing.assert_allclose(numpy_of(bn.moving_mean), h.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(numpy_of(bn.moving_variance), h.var(0), rtol=1e-4)


def test_returns_the_model_and_leaves_no_trace():
    model = two_batchnorm_model()
    x = normal((20, 5))
    assert recalibrate_batchnorm(model, x) is model
    assert all("call" not in vars(bn) for bn in batchnorms(model))
    # the BN's own call is back: training updates the moving statistics
    before = numpy_of(model.get_layer("bn1").moving_mean)
    model(x + 3, training=True)
    assert not np.allclose(numpy_of(model.get_layer("bn1").moving_mean), before)


# --- bad input: a clear error and the weights unchanged ----------------------


def assert_refused(data, error, pattern, **kwargs):
    model = two_batchnorm_model()
    before = weights_of(model)
    with pytest.raises(error, match=pattern):
        recalibrate_batchnorm(model, data, **kwargs)
    assert_weights_equal(model, before)
    assert all("call" not in vars(bn) for bn in batchnorms(model))


def test_refuses_data_of_the_wrong_shape():
    pattern = r"data has shape \(10, 7\), the model expects \(None, 5\)"
    assert_refused(normal((10, 7)), ValueError, pattern)


def test_error_midway_changes_nothing():
    # The first batch is pooled before the second is refused: nothing may be written.
    batches = iter([normal((10, 5)), normal((10, 7))])
    assert_refused(batches, ValueError, r"data has shape \(10, 7\), the model expects \(None, 5\)")


@pytest.mark.parametrize(
    "data", [np.zeros((0, 5), "float32"), iter([])], ids=["array", "generator"]
)
def test_refuses_empty_data(data):
    assert_refused(data, ValueError, "data is empty")


@pytest.mark.parametrize("batch_size", [0, -3, 2.5])
def test_refuses_a_bad_batch_size(batch_size):
    pattern = f"batch_size must be an int >= 1, got {batch_size}"
    assert_refused(normal((10, 5)), ValueError, pattern, batch_size=batch_size)


def test_refuses_a_bad_steps():
    assert_refused(normal((10, 5)), ValueError, "steps must be an int >= 1, got 0", steps=0)


def test_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="model must be a keras.Model, got str"):
        recalibrate_batchnorm("model.keras", normal((10, 5)))


def test_refuses_masked_inputs():
    inputs = keras.Input((5,), dtype="int32")
    x = L.BatchNormalization(name="bn_after_embedding")(L.Embedding(10, 4, mask_zero=True)(inputs))
    model = keras.Model(inputs, x)
    before = weights_of(model)
    with pytest.raises(ValueError, match="does not support masked inputs; 'bn_after_embedding'"):
        recalibrate_batchnorm(model, np.arange(20).reshape(4, 5) % 10)
    assert_weights_equal(model, before)


def test_refuses_data_with_a_nan_cell_and_changes_nothing():
    x = normal((40, 5))
    x[17, 2] = np.nan
    assert_refused(x, ValueError, r"data gives batch norm 'bn1' a non-finite mean or variance: .*NaN or inf")


def test_a_later_non_finite_statistic_leaves_the_earlier_batchnorms_unchanged():
    # bn_a (first in the model) gets finite statistics, bn_b an inf: no BN is written.
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    x = L.Concatenate()([L.BatchNormalization(name="bn_a")(a), L.BatchNormalization(name="bn_b")(b)])
    model = randomize_batchnorms(keras.Model([a, b], x))
    assert [bn.name for bn in batchnorms(model)] == ["bn_a", "bn_b"]
    before = weights_of(model)
    xb = normal((20, 3), seed=1)
    xb[3, 0] = np.inf
    with pytest.raises(ValueError, match=r"batch norm 'bn_b' .*NaN or inf values; no statistic was changed"):
        recalibrate_batchnorm(model, [normal((20, 3)), xb], batch_size=8)
    assert_weights_equal(model, before)
    assert all("call" not in vars(bn) for bn in batchnorms(model))
    # with finite data the same call updates both
    recalibrate_batchnorm(model, [normal((20, 3)), normal((20, 3), seed=1)], batch_size=8)
    np.testing.assert_allclose(numpy_of(model.get_layer("bn_a").moving_mean), normal((20, 3)).mean(0), rtol=1e-5)
