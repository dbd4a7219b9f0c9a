"""Every access kreg makes to Keras' private API, one small function each.

Keras 3 has no public way to walk a Functional model's graph, to list the
layers nested in a layer, or to read the logits its softmax caches. kreg
needs all of that, so each private name it touches is used here and nowhere
else, in one function that says which name it touches and since which Keras
version it was checked. `tests/test_keras_compat.py` exercises each function
on real Keras objects and fails when an installed Keras changes one of them.

Checked against keras 3.15.1.
"""

import contextlib
import sys


def is_functional(model):
    """True if `model` is a Functional model (what `keras.Model(inputs, outputs)` builds).

    Private name: the class `keras.src.models.functional.Functional` (Keras
    exports no public alias). Checked since keras 3.15.1.

    Args:
        model: any object.

    Returns:
        True for a `Functional` instance (Sequential models are not).

    Example:

    >>> inputs = keras.Input((2,))
    >>> is_functional(keras.Model(inputs, keras.layers.Dense(1)(inputs)))
    True
    """
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def graph_nodes(model):
    """The nodes of a Functional model's graph, from the inputs to the outputs.

    Private name: `Functional._nodes_by_depth` (a dict depth -> nodes, depth
    0 at the outputs). Checked since keras 3.15.1. Each node has the public
    attributes `operation` (the layer called), `input_tensors` and
    `is_input` (True for the node of an `Input`).

    Args:
        model: a Functional `keras.Model`.

    Returns:
        A list of nodes, deepest first: every node comes after the nodes
        that produce its inputs.
    """
    by_depth = model._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]


def producing_layer(tensor):
    """The layer (operation) whose call produced the symbolic `tensor`.

    Private name: `KerasTensor._keras_history` (a named tuple whose
    `operation` is the producer; an `InputLayer` for a model input). Checked
    since keras 3.15.1.

    Args:
        tensor: a `keras.KerasTensor` of a Functional graph.

    Returns:
        The producing layer.
    """
    return tensor._keras_history.operation


def flatten_layers(layer):
    """Every layer nested in `layer`, at any depth, `layer` itself excluded.

    Private name: `Layer._flatten_layers(include_self, recursive)`. Checked
    since keras 3.15.1. It finds the sublayers kept as attributes (e.g. a
    kreg block's parts) as well as the layers of nested models.

    Args:
        layer: a `keras.Layer` or `keras.Model`.

    Returns:
        A list of layers, parents before their children.
    """
    return list(layer._flatten_layers(include_self=False, recursive=True))


def build_at_init(layer):
    """Marks a layer without a `build` of its own as built, from its `__init__`.

    Private name: `Layer._build_at_init()`, what Keras' own `Dropout` calls:
    if the class does not override `build`, it sets `built`, runs the
    post-build bookkeeping and locks the layer's state. Checked since keras
    3.15.1.

    Args:
        layer: the `keras.Layer` being constructed.
    """
    layer._build_at_init()


@contextlib.contextmanager
def tensorflow_unless_imported():
    """While TensorFlow is not imported, Keras sees it as not installed.

    On every backend Keras looks for TensorFlow wherever TensorFlow types
    might turn up: serialization (`get_config`, `save`) asks whether an
    object is a `tf.TensorShape`, and `keras.utils.set_random_seed` seeds
    TensorFlow too. Each time the lazy module imports TensorFlow (seconds)
    when it is installed. Before TensorFlow is imported no object can be of
    its types and it has no random state to seed, so on JAX and PyTorch this
    skips the import and changes nothing else. A no-op once TensorFlow is
    imported (its backend, or a user's own import).

    Private name: `keras.src.utils.module_utils.tensorflow`, a `LazyModule`
    with `module` (None until imported) and the cached answer `_available`.
    Checked since keras 3.15.1.
    """
    from keras.src.utils import module_utils

    lazy = module_utils.tensorflow
    if lazy.module is not None or "tensorflow" in sys.modules:
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None


@contextlib.contextmanager
def call_override(layer, call):
    """Makes `layer(...)` run `call` instead of `layer.call`, for a `with` block.

    Private behaviour: `Layer.__call__` dispatches to `self.call` looked up
    on the instance, so an instance attribute `call` shadows the class's
    method (the class and other instances are untouched). Checked since
    keras 3.15.1. The override is removed on exit, also on error.

    Args:
        layer: a `keras.Layer`.
        call: the function to run, with the signature of `layer.call`
            (without `self`).

    Example:

    >>> layer = keras.layers.Dense(2)
    >>> with call_override(layer, lambda inputs: inputs):
    ...     y = layer(np.ones((1, 3)))
    """
    layer.call = call
    try:
        yield layer
    finally:
        del layer.call


def softmax_logits(tensor):
    """The logits Keras' softmax cached on its output, or None.

    Private name: the attribute `_keras_logits` that
    `keras.activations.softmax` sets on its output where the tensor type
    takes attributes (TensorFlow and torch tensors: yes; JAX arrays traced
    in a compiled step: no). Only TensorFlow's losses read it, to compute
    the cross-entropy from the logits. Checked since keras 3.15.1.

    Args:
        tensor: a backend tensor.

    Returns:
        The cached logits tensor, or None.
    """
    return getattr(tensor, "_keras_logits", None)


def attach_softmax_logits(tensor, logits):
    """Caches `logits` on `tensor` as Keras' softmax does (see `softmax_logits`).

    Private name: the attribute `_keras_logits`. Checked since keras 3.15.1.
    Tensor types that take no attributes (traced JAX arrays) are left as they are.

    Args:
        tensor: a backend tensor, the softmax probabilities.
        logits: the tensor of logits they come from.

    Returns:
        `tensor`.
    """
    try:
        tensor._keras_logits = logits
    except AttributeError:  # a C type that takes no attributes
        pass
    return tensor
