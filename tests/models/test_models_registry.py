"""kreg.models.registry: list_models, create, info, register."""

import keras
import pytest

from kreg import models
from kreg.models import registry

ZOO = ["cnn1d", "convnet", "dropconnect_mlp", "mlp", "snn", "wide_resnet"]


def test_list_models_with_wildcards():
    assert models.list_models() == ZOO
    assert models.list_models("*mlp") == ["dropconnect_mlp", "mlp"]
    assert models.list_models("[cw]*") == ["cnn1d", "convnet", "wide_resnet"]
    assert models.list_models("nothing*") == []


def test_unknown_model_suggests_close_matches():
    with pytest.raises(ValueError, match=r"Unknown model 'mpl'\. Did you mean 'mlp'") as info:
        models.create("mpl")
    assert "Known models: cnn1d, convnet, dropconnect_mlp, mlp, snn, wide_resnet" in str(info.value)
    with pytest.raises(ValueError, match=r"Unknown model 'wide_resnt'\. Did you mean 'wide_resnet'"):
        models.info("wide_resnt")


def test_info_fields():
    about = models.info("mlp")
    assert isinstance(about, models.ModelInfo)
    assert about.input == "vector" and models.info("convnet").input == "image"
    assert about.input_shape == (64,) and about.num_classes == 10
    assert about.defaults["rate"] == 0.2 and about.defaults["seed"] is None
    assert "input_shape" not in about.defaults and "num_classes" not in about.defaults
    assert about.params == models.create("mlp").count_params()
    assert "Li et al. 2019" in about.paper
    assert about.weights["digits"]["file"] == "mlp-digits.weights.h5"


@pytest.mark.parametrize("shape", [(), (0, 3), (8, -1), "abc", None])
def test_bad_input_shape(shape):
    if shape is None:
        shape = 5  # not iterable
    with pytest.raises(ValueError, match=r"input_shape must be a non-empty tuple of positive ints"):
        models.create("mlp", input_shape=shape)


@pytest.mark.parametrize("value", [0, -2, 2.5, True])
def test_bad_num_classes(value):
    with pytest.raises(ValueError, match=rf"num_classes must be an int >= 1, got {value!r}"):
        models.create("mlp", num_classes=value)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match=rf"seed must be None or an int >= 0, got {seed!r}"):
        models.create("mlp", seed=seed)


@pytest.fixture
def user_model():
    @models.register("user_tiny", paper="Someone 2026", input="vector")
    def user_tiny(input_shape=(5,), num_classes=2, *, width=3, rate=0.0, seed=None):
        """A user's own model, registered next to the zoo."""
        inputs = keras.Input(input_shape)
        hidden = keras.layers.Dense(width, activation="relu")(inputs)
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(hidden))

    yield user_tiny
    del registry._REGISTRY["user_tiny"]


def test_register_a_users_model(user_model):
    assert "user_tiny" in models.list_models("user*")
    about = models.info("user_tiny")
    assert about.description == "A user's own model, registered next to the zoo."
    assert about.defaults == {"width": 3, "rate": 0.0, "seed": None}
    assert about.weights == {} and about.params == 5 * 3 + 3 + 3 * 2 + 2
    assert models.create("user_tiny", num_classes=4, width=7).output_shape == (None, 4)
    with pytest.raises(ValueError, match=r"already registered"):
        models.register("user_tiny")(user_model)


def test_register_checks_its_arguments():
    with pytest.raises(ValueError, match=r"input must be one of \('vector', 'image'\), got 'text'"):
        models.register("x", input="text")
    with pytest.raises(ValueError, match=r"name must be a non-empty string, got ''"):
        models.register("")

    def no_defaults(input_shape, num_classes):
        """Missing defaults."""

    with pytest.raises(ValueError, match=r"no_defaults must take input_shape=<default>"):
        models.register("no_defaults")(no_defaults)
