"""kreg.ops.keyed_random: a pure function of (key, position), bit-exact on every backend."""

import math
import re

import keras
import numpy as np
import pytest
import scipy.stats
from keyed_reference import F32
from keyed_reference import exact_normal
from keyed_reference import normal
from keyed_reference import quantile
from keyed_reference import uniform

from kreg.ops.keyed_random import keyed_normal
from kreg.ops.keyed_random import keyed_uniform
from kreg.ops.keyed_random import normal_quantile_table
from kreg.ops.keyed_random import seed_key

KEY = np.array([1234, 7])
KEYS = np.array([[1234, 7], [1234, 8], [99, 0]])  # counter + 1 and another seed
N = 1_000_000


def np_(x):
    return keras.ops.convert_to_numpy(x)


def compiled(function):
    """`function` compiled by the backend: tf.function (XLA), jax.jit; torch runs it eagerly."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


# --- the known answers: a numpy uint32 / float32 reference --------------------
# The reference (keyed_reference.py) is written from the specification with
# numpy's wrapping uint32 arithmetic and Python's normal quantile function.
# Every backend runs these tests, so the backends agree with each other bit for bit.


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5, 4), (2, 1, 3, 1), (1000, 33)])
def test_uniform_equals_the_numpy_uint32_reference_bit_for_bit(shape):
    np.testing.assert_array_equal(np_(keyed_uniform(KEY, shape)), uniform(KEY, shape))


def test_compiled_uniform_equals_the_reference_bit_for_bit():
    # integer arithmetic: no compiler may change a bit of it
    draw = compiled(lambda key: keyed_uniform(key, (64, 33)))
    np.testing.assert_array_equal(np_(draw(keras.ops.convert_to_tensor(KEY))), uniform(KEY, (64, 33)))


@pytest.mark.parametrize("shape", [(7,), (3, 5, 4), (1000, 33)])
def test_normal_equals_the_reference_bit_for_bit(shape):
    np.testing.assert_array_equal(np_(keyed_normal(KEY, shape)), normal(KEY, shape))


def test_compiled_normal_equals_the_reference_bit_for_bit():
    # the interpolation's product is exact: fusing it with the add (XLA) changes nothing
    draw = compiled(lambda key: keyed_normal(key, (64, 33)))
    np.testing.assert_array_equal(np_(draw(keras.ops.convert_to_tensor(KEY))), normal(KEY, (64, 33)))


def test_normals_are_the_normal_quantiles_of_their_bits_within_6e_7():
    shape = (100_000,)
    np.testing.assert_allclose(np_(keyed_normal(KEY, shape)), exact_normal(KEY, shape), rtol=0, atol=6e-7)


def test_the_quantile_table_is_exact_where_it_is_read_without_interpolation():
    start, slope = normal_quantile_table()
    assert start.shape == slope.shape == (7680,) and start.dtype == slope.dtype == np.float32
    np.testing.assert_array_equal(start[:512], [F32(quantile((k + 0.5) / 2**24)) for k in range(512)])
    assert np.all(slope[:512] == 0) and np.all(slope[512:] > 0)
    # octave e's slopes carry 24 - (e - 9) significant bits, so slope * place (< 2**(e - 9)) is exact
    for octave in range(9, 23):
        entries = slope[512 * (octave - 8): 512 * (octave - 7)].astype(np.float64)
        mantissas = np.frexp(entries)[0] * 2.0 ** (24 - (octave - 9))
        np.testing.assert_array_equal(mantissas, np.round(mantissas))


# --- keys ------------------------------------------------------------------------


def test_any_int_dtype_of_key_and_any_32_bit_wrap_give_the_same_values():
    expected = uniform([2**31 + 5, 3], (50,))
    for key in (
        np.array([2**31 + 5, 3], np.int64),
        np.array([2**31 + 5, 3], np.uint32),
        np.array([2**31 + 5 - 2**32, 3], np.int32),
        np.array([2**32 + 2**31 + 5, 3], np.int64),  # words are taken modulo 2**32
        [2**31 + 5, 3],
    ):
        np.testing.assert_array_equal(np_(keyed_uniform(key, (50,))), expected)


def test_a_seed_generator_state_is_a_key_and_its_first_state_is_the_int_seeds_key():
    generator = keras.random.SeedGenerator(5)
    state = generator.state.value  # int64 on TensorFlow, uint32 on JAX, int32 on torch
    np.testing.assert_array_equal(np_(keyed_uniform(state, (20,))), uniform([5, 0], (20,)))
    np.testing.assert_array_equal(np_(seed_key(generator)), [5, 0])
    np.testing.assert_array_equal(generator.state.numpy(), [5, 1])  # next() advanced it
    np.testing.assert_array_equal(seed_key(5), [5, 0])


def test_seed_key_passes_a_key_through_and_draws_a_fresh_one_for_none():
    assert seed_key(KEY) is KEY
    first, second = seed_key(None), seed_key(None)
    assert first[1] == second[1] == 0 and 1 <= first[0] <= 1e9
    assert first[0] != second[0]  # two draws of randint(1, 1e9): equal with probability 1e-9


@pytest.mark.parametrize("seed", ["7", 1.5, True, object()])
def test_seed_key_refuses_what_is_not_a_seed(seed):
    with pytest.raises(ValueError, match="seed must be a keras.random.SeedGenerator, an int, None or a key"):
        seed_key(seed)


def test_refuses_keys_of_the_wrong_shape_or_dtype():
    with pytest.raises(ValueError, match=re.escape("key must be an int array of shape (2,), got ndarray of shape (3,)")):
        keyed_uniform(np.array([1, 2, 3]), (4,))
    with pytest.raises(ValueError, match=re.escape("key must be an int array of shape (K, 2), got ndarray of shape (2,)")):
        keyed_uniform(KEY, (3, 4), branch_axis=0)
    with pytest.raises(ValueError, match=re.escape("key must be an int array, got ndarray of shape (2,) and dtype float64")):
        keyed_uniform(np.array([1.0, 2.0]), (4,))


def test_refuses_a_branch_axis_that_does_not_hold_the_keys():
    with pytest.raises(ValueError, match=re.escape("shape[1] (the branch axis) must be the number of keys, 3, got 4")):
        keyed_uniform(KEYS, (2, 4), branch_axis=1)
    with pytest.raises(ValueError, match=re.escape("branch_axis must be None or an int in [-2, 2) for a shape of rank 2, got 2")):
        keyed_uniform(KEYS, (2, 3), branch_axis=2)


# --- a pure function of (key, position) --------------------------------------


@pytest.mark.parametrize("draw", [keyed_uniform, keyed_normal])
def test_same_key_same_values_and_a_new_counter_or_seed_new_values(draw):
    base = np_(draw(KEY, (4096,)))
    np.testing.assert_array_equal(np_(draw(KEY.copy(), (4096,))), base)
    for other in (KEYS[1], KEYS[2]):
        # independent draws share a value with probability ~2**-24 each
        assert np.mean(np_(draw(other, (4096,))) == base) < 0.01


@pytest.mark.parametrize("draw", [keyed_uniform, keyed_normal])
def test_a_value_depends_only_on_the_key_and_its_flat_index(draw):
    flat = np_(draw(KEY, (60,)))
    for shape in [(6, 10), (1, 3, 4, 5)]:
        np.testing.assert_array_equal(np_(draw(KEY, shape)).ravel(), flat)
    np.testing.assert_array_equal(np_(draw(KEY, (30,))), flat[:30])  # a prefix of a longer draw


@pytest.mark.parametrize("draw", [keyed_uniform, keyed_normal])
@pytest.mark.parametrize(
    "shape, axis",
    [((3,), 0), ((3, 4, 5), 0), ((4, 3, 5), 1), ((4, 5, 3), 2), ((4, 5, 3), -1), ((2, 3, 1, 7), 1)],
)
def test_branched_draw_equals_each_key_alone(draw, shape, axis):
    branched = np_(draw(KEYS, shape, branch_axis=axis))
    assert branched.shape == shape
    alone_shape = shape[: axis % len(shape)] + shape[axis % len(shape) + 1 :]
    for k, key in enumerate(KEYS):
        np.testing.assert_array_equal(np.take(branched, k, axis=axis), np_(draw(key, alone_shape)))


@pytest.mark.parametrize("draw", [keyed_uniform, keyed_normal])
def test_compiled_branched_draw_equals_each_key_alone_compiled(draw):
    branched = np_(compiled(lambda keys: draw(keys, (8, 3, 5), branch_axis=1))(keras.ops.convert_to_tensor(KEYS)))
    alone = compiled(lambda key: draw(key, (8, 5)))
    for k, key in enumerate(KEYS):
        np.testing.assert_array_equal(branched[:, k], np_(alone(keras.ops.convert_to_tensor(key))))


class DrawsForItsBatch(keras.layers.Layer):
    """Draws keyed noise for the batch size of its input, whatever it is."""

    def call(self, x):
        batch = keras.ops.shape(x)[0]
        return keyed_uniform(KEYS, (batch, 3, 5), branch_axis=1), keyed_normal(KEY, (batch, 5))


# torch.compile of a draw takes over a minute on 2 CPU cores: PyTorch runs eagerly here.
@pytest.mark.parametrize("jit_compile", [False] if keras.backend.backend() == "torch" else [False, True])
def test_a_model_of_unknown_batch_size_draws_what_a_concrete_batch_draws(jit_compile):
    # keras.Input leaves the batch size unknown. predict's batches of 8 and
    # then 5 make TensorFlow retrace with a None batch dimension (its
    # reduce_retracing), so the last batch draws for a symbolic size there.
    inputs = keras.Input((5,))
    model = keras.Model(inputs, DrawsForItsBatch()(inputs))
    model.compile(jit_compile=jit_compile)
    uniforms, normals = model.predict(np.zeros((13, 5), "float32"), batch_size=8, verbose=0)
    for rows, batch in ((slice(0, 8), 8), (slice(8, 13), 5)):
        np.testing.assert_array_equal(uniforms[rows], np_(keyed_uniform(KEYS, (batch, 3, 5), branch_axis=1)))
        np.testing.assert_array_equal(normals[rows], normal(KEY, (batch, 5)))


# --- statistics (fixed keys: deterministic, tolerances from the math) ---------


def test_uniforms_are_24_bit_values_in_0_1_with_uniform_moments():
    u = np_(keyed_uniform(KEY, (N,))).astype(np.float64)
    assert u.min() >= 0 and u.max() < 1
    np.testing.assert_array_equal(u * 2**24, np.round(u * 2**24))
    # U(0, 1): mean 1/2, variance 1/12; the sample mean's standard error is
    # sqrt(1/12 / N), the sample variance's sqrt((1/80 - 1/144) / N). 5 each.
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / N)
    assert abs(u.var() - 1 / 12) < 5 * math.sqrt((1 / 80 - 1 / 144) / N)
    # 100 equal bins: the chi-square statistic has 99 degrees of freedom,
    # mean 99, standard deviation sqrt(2 * 99) = 14; allow 5.
    counts = np.bincount((u * 100).astype(int), minlength=100)
    chi2 = ((counts - N / 100) ** 2 / (N / 100)).sum()
    assert chi2 < 99 + 5 * math.sqrt(2 * 99)


def test_neighbours_counters_and_seeds_are_uncorrelated():
    # The correlation of n independent pairs has standard error 1 / sqrt(n); 5 of them.
    u = np_(keyed_uniform(KEYS, (N // 4, 3), branch_axis=1))
    limit = 5 / math.sqrt(len(u))
    assert abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < limit  # adjacent indices (stride 1 in the run)
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < limit  # counter c and c + 1
    assert abs(np.corrcoef(u[:, 0], u[:, 2])[0, 1]) < limit  # another seed
    n = np_(keyed_normal(KEY, (len(u),)))
    assert abs(np.corrcoef(u[:, 0], n)[0, 1]) < limit  # the uniform and normal streams of one key


def test_normals_have_standard_normal_moments_and_distribution():
    n = np_(keyed_normal(KEY, (N,))).astype(np.float64)
    assert np.all(np.isfinite(n)) and np.abs(n).max() < 5.42  # |Q(1/2 / 2**24)| = 5.4188
    # Standard errors of the sample mean, variance, skewness and excess
    # kurtosis of N standard normals: sqrt(1/N), sqrt(2/N), sqrt(6/N), sqrt(24/N).
    assert abs(n.mean()) < 5 * math.sqrt(1 / N)
    assert abs(n.var() - 1) < 5 * math.sqrt(2 / N)
    assert abs(scipy.stats.skew(n)) < 5 * math.sqrt(6 / N)
    assert abs(scipy.stats.kurtosis(n)) < 5 * math.sqrt(24 / N)
    # Kolmogorov-Smirnov: D < 1.95 / sqrt(N) fails with probability 0.001 for a true normal.
    assert scipy.stats.kstest(n, "norm").statistic < 1.95 / math.sqrt(N)
