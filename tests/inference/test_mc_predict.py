import keras
import numpy as np
import pytest
from inference_helpers import assert_weights_equal
from inference_helpers import batchnorms
from inference_helpers import normal
from inference_helpers import randomize_batchnorms
from inference_helpers import weights_of

from kreg.inference import mc_predict
from kreg.layers import AlphaDropout
from kreg.layers import DenseBlock
from kreg.layers import DropConnectDense
from kreg.layers import GaussianDropout
from kreg.layers import SpatialDropout
from kreg.layers import StandardDropout
from kreg.layers import UniformDropout

L = keras.layers


def numpy_of(value):
    return keras.ops.convert_to_numpy(value)


def bn_model(rate, block=False):
    """Dense -> BN (random moving statistics) -> ReLU -> Dropout(rate) -> Dense."""
    inputs = keras.Input((6,))
    if block:
        x = DenseBlock(16, order="norm-act-drop", rate=rate, seed=0)(inputs)
    else:
        x = L.Dense(16)(inputs)
        x = L.Dropout(rate, seed=0)(L.ReLU()(L.BatchNormalization()(x)))
    return randomize_batchnorms(keras.Model(inputs, L.Dense(3)(x)))


@pytest.mark.parametrize("block", [False, True], ids=["keras", "kreg_block"])
def test_batchnorm_stays_in_inference_mode(block):
    # With rate 1e-7 a unit is dropped with probability 1e-7: over the
    # 32 x 16 x 30 = 15360 draws that is 0.0015 drops expected, so every pass
    # is the inference output with hidden units scaled by 1 / (1 - 1e-7), a
    # relative change of 1e-7, far below float32's 1e-5 tolerance here. Only
    # the BN mode can then make the mean differ from model(x, training=False).
    model = bn_model(1e-7, block=block)
    x = normal((32, 6))
    expected = numpy_of(model(x, training=False))
    mean, std = mc_predict(model, x, samples=30, seed=0)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(mean, expected, rtol=1e-5, atol=1e-5 * scale)
    assert std.max() < 1e-5 * scale
    # keras#9412: plain training=True normalizes by batch statistics instead;
    # the random moving statistics (mean ~ N(0, 1), var in [0.3, 3]) are far
    # from this batch's, so the outputs move by O(scale)
    batch_mode = numpy_of(model(x, training=True))
    assert np.abs(batch_mode - expected).max() > 0.1 * scale


def test_dropout_statistics_with_batchnorm_before_it():
    # x -> BN -> Dropout(0.5): each pass gives z * b / 0.5, b ~ Bernoulli(0.5),
    # z = BN(x) with the moving statistics. Over S = 400 passes, with
    # p = (number kept) / S: mean = 2 p z and std = 2 sqrt(p (1 - p)) |z|.
    # p = 0.5 +- 0.025 (1 sigma), so within 6 sigma |mean / z - 1| < 0.15 and
    # std / |z| = 2 sqrt(p (1 - p)) in [0.988, 1].
    inputs = keras.Input((4,))
    model = keras.Model(inputs, L.Dropout(0.5, seed=1)(L.BatchNormalization()(inputs)))
    randomize_batchnorms(model)
    x = normal((8, 4))
    z = numpy_of(model(x, training=False))
    mean, std = mc_predict(model, x, samples=400, seed=3)
    assert np.abs(mean / z - 1).max() < 0.15
    np.testing.assert_array_less(0.985, std / np.abs(z))
    np.testing.assert_array_less(std / np.abs(z), 1 + 1e-6)
    # the average over the 32 elements has sigma 0.05 / sqrt(32) = 0.009
    assert abs(np.mean(mean / z) - 1) < 0.045


def test_no_dropout_gives_exactly_zero_std():
    inputs = keras.Input((5,))
    x = L.BatchNormalization()(L.Dense(8)(inputs))
    model = randomize_batchnorms(keras.Model(inputs, L.Dense(2)(x)))
    x = normal((10, 5))
    mean, std = mc_predict(model, x, samples=5)
    assert np.all(std == 0)
    np.testing.assert_allclose(mean, numpy_of(model(x, training=False)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.Dropout(0.3, seed=0),
        lambda: L.GaussianDropout(0.3, seed=0),
        lambda: L.AlphaDropout(0.3, seed=0),
        lambda: AlphaDropout(0.3, seed=0),
        lambda: UniformDropout(0.3, seed=0),
        lambda: StandardDropout(0.3, seed=0),
        lambda: GaussianDropout(0.3, seed=0),
        lambda: DropConnectDense(8, 0.3, seed=0),
        # wide, so that no row is all zeros after the block's ReLU (a row of 32
        # negative units, chance 2^-32 per row, would make its std exactly 0)
        lambda: DenseBlock(32, order="norm-act-drop", dropout="gaussian", rate=0.3, seed=0),
    ],
    ids=["Dropout", "GaussianDropout", "keras.AlphaDropout", "kreg.AlphaDropout",
         "UniformDropout", "StandardDropout", "kreg.GaussianDropout", "DropConnectDense", "NormDropout"],
)
def test_every_dropout_kind_is_active(make):
    model = keras.Sequential([keras.Input((8,)), L.Dense(8), make(), L.Dense(2)])
    mean, std = mc_predict(model, normal((6, 8)), samples=8, seed=0)
    assert mean.shape == std.shape == (6, 2)
    assert np.all(std > 0)


@pytest.mark.parametrize("make", [lambda: L.SpatialDropout2D(0.5, seed=0), lambda: SpatialDropout(0.5, seed=0)],
                         ids=["keras", "kreg"])
def test_spatial_dropout_is_active(make):
    model = keras.Sequential([keras.Input((5, 5, 4)), L.BatchNormalization(), make()])
    randomize_batchnorms(model)
    x = normal((2, 5, 5, 4))
    z = numpy_of(model(x, training=False))
    _, std = mc_predict(model, x, samples=20, seed=0)
    # a channel is dropped or kept as a whole, so every position of a channel
    # has the same kept fraction p and std = 2 sqrt(p (1 - p)) |z|
    ratio = (std / np.abs(z)).reshape(2, 25, 4)
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1, :], ratio.shape), rtol=1e-4)
    assert np.all(std > 0)


@pytest.mark.parametrize("block", [False, True], ids=["keras", "kreg_block"])
def test_seed_makes_it_deterministic(block):
    model = bn_model(0.5, block=block)
    x = normal((7, 6))
    first = mc_predict(model, x, samples=4, seed=11)
    second = mc_predict(model, x, samples=4, seed=11)
    other = mc_predict(model, x, samples=4, seed=12)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], other[0])
    unseeded = [mc_predict(model, x, samples=4)[0] for _ in range(2)]
    assert not np.allclose(*unseeded)


def test_random_state_is_restored_after_a_seeded_call():
    x = normal((7, 6))
    reference, probe = bn_model(0.5), bn_model(0.5)
    probe.set_weights(reference.get_weights())
    mc_predict(probe, x, samples=3, seed=5)
    # both models share seeds and weights; the seeded call left probe's RNG alone
    np.testing.assert_array_equal(
        numpy_of(probe(x, training=True)), numpy_of(reference(x, training=True))
    )


def test_batch_size_chunks_the_input():
    inputs = keras.Input((5,))
    model = randomize_batchnorms(keras.Model(inputs, L.BatchNormalization()(L.Dense(4)(inputs))))
    x = normal((10, 5))
    whole, _ = mc_predict(model, x, samples=2)
    chunked, std = mc_predict(model, x, samples=2, batch_size=3)  # 3 + 3 + 3 + 1
    assert chunked.shape == std.shape == (10, 4)
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6)


def test_multi_output_model():
    inputs = keras.Input((5,))
    h = L.Dropout(0.5, seed=0)(L.Dense(6)(inputs))
    model = keras.Model(inputs, [L.Dense(2)(h), L.Dense(3)(h)])
    mean, std = mc_predict(model, normal((4, 5)), samples=5, seed=0)
    assert [m.shape for m in mean] == [(4, 2), (4, 3)]
    assert [s.shape for s in std] == [(4, 2), (4, 3)]


def test_batchnorm_flags_are_restored_even_on_error():
    class FailsInTraining(L.Layer):
        def call(self, x, training=None):
            if training:
                raise RuntimeError("boom")
            return x

    inputs = keras.Input((4,))
    frozen = L.BatchNormalization(name="frozen", trainable=False)
    x = FailsInTraining()(frozen(L.BatchNormalization(name="live")(inputs)))
    model = keras.Model(inputs, x)
    with pytest.raises(RuntimeError, match="boom"):
        mc_predict(model, normal((3, 4)), samples=2)
    assert model.get_layer("live").trainable and not model.get_layer("frozen").trainable
    assert len(model.get_layer("live").trainable_weights) == 2


# --- bad input: a clear error and the weights unchanged ----------------------


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"x": normal((4, 7))}, r"x has shape \(4, 7\), the model expects \(None, 6\)"),
        ({"x": np.zeros((0, 6), "float32")}, r"x is empty: it has shape \(0, 6\)"),
        ({"samples": 0}, "samples must be an int >= 1, got 0"),
        ({"samples": 2.0}, "samples must be an int >= 1, got 2.0"),
        ({"batch_size": 0}, "batch_size must be an int >= 1, got 0"),
        ({"seed": -1}, "seed must be None or an int >= 0, got -1"),
    ],
    ids=["shape", "empty", "samples", "samples_float", "batch_size", "seed"],
)
def test_refuses_bad_arguments(kwargs, pattern):
    model = bn_model(0.5)
    before = weights_of(model)
    with pytest.raises(ValueError, match=pattern):
        mc_predict(model, **{"x": normal((4, 6)), **kwargs})
    assert_weights_equal(model, before)
    assert all(bn.trainable for bn in batchnorms(model))


def test_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="model must be a keras.Model, got function"):
        mc_predict(lambda x: x, normal((4, 6)))
