"""kreg.keras_compat on real Keras objects: each test fails loudly when an
installed Keras changes the private name or behaviour a function relies on."""

import keras
import numpy as np
import pytest

from kreg import keras_compat
from kreg.layers import DenseBlock

L = keras.layers


def small_functional():
    inputs = keras.Input((4,), name="x")
    hidden = L.Dense(3, name="hidden")(inputs)
    outputs = L.BatchNormalization(name="bn")(hidden)
    return keras.Model(inputs, outputs), inputs, hidden


def test_is_functional_is_what_keras_model_of_inputs_and_outputs_builds():
    model, _, _ = small_functional()
    assert type(model).__name__ == "Functional"
    assert keras_compat.is_functional(model)
    sequential = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    assert not keras_compat.is_functional(sequential)

    class Net(keras.Model):
        def call(self, x):
            return x

    assert not keras_compat.is_functional(Net())
    assert not keras_compat.is_functional(L.Dense(2))


def test_graph_nodes_give_every_node_with_its_layer_inputs_first():
    model, inputs, hidden = small_functional()
    nodes = keras_compat.graph_nodes(model)
    assert [node.operation.name for node in nodes] == ["x", "hidden", "bn"]
    assert [node.is_input for node in nodes] == [True, False, False]
    assert nodes[1].input_tensors[0] is inputs
    assert nodes[2].input_tensors[0] is hidden


def test_graph_nodes_of_a_branching_graph_put_producers_first():
    inputs = keras.Input((4,), name="x")
    a = L.Dense(2, name="a")(inputs)
    b = L.Dense(2, name="b")(inputs)
    outputs = L.Add(name="add")([a, b])
    nodes = keras_compat.graph_nodes(keras.Model(inputs, outputs))
    names = [node.operation.name for node in nodes]
    assert sorted(names) == ["a", "add", "b", "x"]
    assert names[0] == "x" and names[-1] == "add"
    assert [t.shape for t in nodes[-1].input_tensors] == [(None, 2), (None, 2)]


def test_producing_layer_of_a_symbolic_tensor():
    model, inputs, hidden = small_functional()
    assert producing_name(hidden) == "hidden"
    assert keras_compat.producing_layer(hidden) is model.get_layer("hidden")
    assert isinstance(keras_compat.producing_layer(inputs), L.InputLayer)
    assert keras_compat.producing_layer(model.outputs[0]) is model.get_layer("bn")


def producing_name(tensor):
    return keras_compat.producing_layer(tensor).name


def test_flatten_layers_finds_nested_layers_and_models():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, L.BatchNormalization(name="inner_bn")(inner_in), name="inner")
    inputs = keras.Input((4,))
    block = DenseBlock(4, order="norm-act", name="block")
    model = keras.Model(inputs, block(inner(inputs)))
    found = keras_compat.flatten_layers(model)
    names = [layer.name for layer in found]
    assert model not in found  # itself excluded
    for name in ("inner", "inner_bn", "block", "dense", "norm", "activation"):
        assert name in names, names
    assert names.index("block") < names.index("norm")  # parents first
    assert keras_compat.flatten_layers(L.Dense(2)) == []


def test_build_at_init_builds_a_layer_without_build_and_locks_it():
    class NoBuild(L.Layer):
        def __init__(self):
            super().__init__()
            keras_compat.build_at_init(self)

        def call(self, x):
            return x

    class OwnBuild(NoBuild):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],))

    layer = NoBuild()
    assert layer.built
    with pytest.raises(ValueError, match="cannot add new elements of state"):
        layer.add_weight(shape=(2,))
    assert not OwnBuild().built  # a layer with its own build waits for it


def test_call_override_intercepts_calls_and_restores_the_original():
    layer = L.Dense(2, kernel_initializer="ones")
    x = np.ones((1, 3), "float32")
    original = keras.ops.convert_to_numpy(layer(x))
    seen = []

    def call(inputs):
        seen.append(tuple(inputs.shape))
        return keras.ops.zeros((1, 2))

    other = L.Dense(2, kernel_initializer="ones")
    with keras_compat.call_override(layer, call):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), np.zeros((1, 2)))
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(other(x)), original)  # instance only
    assert seen == [(1, 3)]
    assert "call" not in vars(layer)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), original)


def test_call_override_restores_the_original_on_error():
    layer = L.Dense(2)
    layer.build((None, 3))

    def call(inputs):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with keras_compat.call_override(layer, call):
            layer(np.ones((1, 3), "float32"))
    assert "call" not in vars(layer)
    assert layer(np.ones((1, 3), "float32")).shape == (1, 2)


def in_a_step(function, x):
    """`function(x)` as a compiled training step runs it: traced by `jax.jit`
    on JAX (eager JAX arrays take attributes, traced ones do not), eagerly
    elsewhere. `function` returns a Python value, computed while tracing."""
    if keras.backend.backend() != "jax":
        return function(x)
    import jax

    found = []
    jax.jit(lambda z: found.append(function(z)) or z)(x)
    return found[0]


def test_softmax_logits_where_the_backend_caches_them():
    logits = keras.ops.convert_to_tensor(np.array([[1.0, 2.0, 3.0]], "float32"))

    def cached(z):
        probabilities = keras.activations.softmax(z)
        found = keras_compat.softmax_logits(probabilities)
        return None if found is None else found is z

    if keras.backend.backend() == "jax":  # traced jax arrays take no attributes
        assert in_a_step(cached, logits) is None
    else:  # tensorflow (and torch) tensors carry the logits
        assert in_a_step(cached, logits) is True
    assert keras_compat.softmax_logits(logits) is None  # nothing cached on plain tensors


def test_only_the_tensorflow_loss_reads_the_cached_logits():
    # Probabilities that round to 0 for the true class: from the cached
    # logits the loss is exact (200); from the probabilities it is clipped
    # at -log(epsilon).
    logits = keras.ops.convert_to_tensor(np.array([[0.0, 200.0]], "float32"))
    probabilities = keras.activations.softmax(logits)
    loss = keras.losses.sparse_categorical_crossentropy(np.array([0]), probabilities)
    expected = 200.0 if keras.backend.backend() == "tensorflow" else -np.log(keras.config.epsilon())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss), [expected], rtol=1e-5)


def test_attach_softmax_logits_is_read_back_where_tensors_take_attributes():
    logits = keras.ops.convert_to_tensor(np.array([[1.0, 2.0]], "float32"))

    def attached(z):
        probabilities = keras.ops.softmax(z * 1.0)
        assert keras_compat.attach_softmax_logits(probabilities, z) is probabilities
        found = keras_compat.softmax_logits(probabilities)
        return None if found is None else found is z

    if keras.backend.backend() == "jax":  # left as it is, no error
        assert in_a_step(attached, logits) is None
    else:
        assert in_a_step(attached, logits) is True


UNLESS_IMPORTED = """
import sys
import keras
from keras.src.utils import module_utils
from kreg import keras_compat
with keras_compat.tensorflow_unless_imported():
    keras.layers.Dense(2).get_config()
    keras.utils.set_random_seed(1)
    print("inside:", "tensorflow" in sys.modules)
print("after:", module_utils.tensorflow.available, "tensorflow" in sys.modules)
"""


def test_tensorflow_unless_imported_skips_keras_lookups_and_restores_them(tmp_path):
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", UNLESS_IMPORTED], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, KERAS_BACKEND="jax"), timeout=300)
    # Inside, get_config and set_random_seed left TensorFlow unimported; after
    # it Keras' lazy module finds (and imports) TensorFlow as before.
    assert done.stdout.split() == ["inside:", "False", "after:", "True", "True"], done.stderr[-2000:]
    # Where TensorFlow is imported already (as here on TensorFlow) it changes nothing.
    import tensorflow  # noqa: F401
    from keras.src.utils import module_utils

    with keras_compat.tensorflow_unless_imported():
        assert module_utils.tensorflow.available
