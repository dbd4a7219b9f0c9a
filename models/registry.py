"""The zoo's registry: `register` a model function, then `create` it by name.

A model function takes `input_shape` and `num_classes` and keyword-only
overrides, each with its default, and returns an uncompiled Functional
`keras.Model` ending in a softmax over `num_classes`:

    @register("tiny", paper="Me et al. 2026", input="vector")
    def tiny(input_shape=(64,), num_classes=10, *, width=8, rate=0.1, seed=None):
        ...

The defaults in the signature are the model's documented defaults:
`info(name).defaults` reads them from there.
"""

import dataclasses
import difflib
import fnmatch
import inspect

from kreg.checks import check_positive_int
from kreg.models import manifest
from kreg.models.common import check_input_shape

INPUT_KINDS = ("vector", "image")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the zoo knows about one model.

    Attributes:
        name: the registered name.
        description: one line (the model function's first docstring line).
        paper: the reference the architecture follows.
        input: "vector" (flattens any input) or "image" (height, width, channels).
        input_shape: the default input shape (digits-sized).
        num_classes: the default number of classes.
        defaults: every override and its default.
        params: the parameter count with the defaults.
        weights: `{dataset: manifest entry}` of the shipped weights.
    """

    name: str
    description: str
    paper: str
    input: str
    input_shape: tuple
    num_classes: int
    defaults: dict
    params: int
    weights: dict


@dataclasses.dataclass(frozen=True)
class _Entry:
    function: object
    description: str
    paper: str
    input: str


_REGISTRY = {}


def register(name, *, paper="", input="vector", description=None):
    """Decorator: registers a model function under `name`.

    Args:
        name: the model's name, unique in the zoo.
        paper: the reference the architecture follows.
        input: "vector" or "image" (which dataset form the model takes).
        description: one line; default: the first line of the docstring.

    Returns:
        The decorator, which returns the function unchanged.

    Example:

    >>> @register("my_mlp", paper="", input="vector")
    ... def my_mlp(input_shape=(64,), num_classes=10, *, rate=0.1, seed=None):
    ...     ...
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if input not in INPUT_KINDS:
        raise ValueError(f"input must be one of {INPUT_KINDS}, got {input!r}")

    def decorator(function):
        if name in _REGISTRY:
            raise ValueError(f"a model named {name!r} is already registered")
        parameters = inspect.signature(function).parameters
        for required in ("input_shape", "num_classes"):
            if required not in parameters or parameters[required].default is inspect.Parameter.empty:
                raise ValueError(
                    f"model function {function.__name__} must take {required}=<default>"
                )
        doc = (description or inspect.getdoc(function) or name).strip().splitlines()[0]
        _REGISTRY[name] = _Entry(function, doc, paper, input)
        return function

    return decorator


def list_models(pattern="*"):
    """Names of the registered models matching an fnmatch `pattern`, sorted.

    Example:

    >>> list_models("*mlp")
    ['dropconnect_mlp', 'mlp']
    """
    return sorted(name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern))


def registration(name):
    """The registration of `name` (function, description, paper, input).

    Raises:
        ValueError: for an unknown name, suggesting close matches.
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} Known models: {', '.join(list_models())}"
        )
    return _REGISTRY[name]


def _signature_defaults(function):
    return {
        key: parameter.default
        for key, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def defaults(name):
    """`{override: default}` of model `name` (input_shape and num_classes aside)."""
    values = _signature_defaults(registration(name).function)
    return {k: v for k, v in values.items() if k not in ("input_shape", "num_classes")}


def create(name, input_shape=None, num_classes=None, **overrides):
    """Builds a zoo model by name.

    Args:
        name: a registered name (see `list_models()`).
        input_shape: shape of one example; default: the model's (digits-sized).
        num_classes: int >= 1; default: the model's (10).
        **overrides: any of `info(name).defaults`, e.g. `rate=0.3, seed=0`.

    Returns:
        An uncompiled `keras.Model` whose output is softmax probabilities
        over `num_classes`; train it with `sparse_categorical_crossentropy`.

    Example:

    >>> model = create("mlp", input_shape=(13,), num_classes=3, rate=0.2, seed=0)
    >>> model.output_shape
    (None, 3)
    """
    registered = registration(name)
    valid = defaults(name)
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"model {name!r} has no override {', '.join(repr(k) for k in unknown)}; "
            f"valid overrides: {', '.join(sorted(valid))}"
        )
    signature = _signature_defaults(registered.function)
    input_shape = check_input_shape(signature["input_shape"] if input_shape is None else input_shape)
    num_classes = check_positive_int(
        "num_classes", signature["num_classes"] if num_classes is None else num_classes
    )
    return registered.function(input_shape=input_shape, num_classes=num_classes, **overrides)


def info(name, directory=None):
    """A `ModelInfo` for model `name`.

    Args:
        name: a registered name.
        directory: where the weights manifest lives; default: the shipped weights.

    Example:

    >>> info("mlp").input
    'vector'
    """
    registered = registration(name)
    signature = _signature_defaults(registered.function)
    return ModelInfo(
        name=name,
        description=registered.description,
        paper=registered.paper,
        input=registered.input,
        input_shape=tuple(signature["input_shape"]),
        num_classes=signature["num_classes"],
        defaults=defaults(name),
        params=create(name).count_params(),
        weights=manifest.entries(name, directory),
    )
