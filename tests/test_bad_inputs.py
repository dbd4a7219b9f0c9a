"""Bad input across the public API: refused at once, the message names the
argument (and the value), and nothing is written."""

import keras
import numpy as np
import pytest

import kreg
from kreg import datasets
from kreg import layers
from kreg import models
from kreg import tuning


def small_model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dropout(0.1)(keras.layers.Dense(3, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))


def study(tmp_path, **kwargs):
    settings = dict(model="mlp", dataset="wine", directory=str(tmp_path / "never"), seeds=1, epochs=1, rates=(0.0,))
    return tuning.Study(**dict(settings, **kwargs))


CASES = [
    ("rate", lambda tmp: layers.AlphaDropout(1.0)),
    ("rate", lambda tmp: layers.UniformDropout(-0.1)),
    ("use_bias", lambda tmp: layers.DropConnectDense(4, rate=0.5, use_bias="no")),
    ("mask", lambda tmp: layers.DropConnectDense(4, rate=0.5, mask="weights")),
    ("rate", lambda tmp: layers.NormDropout(dropout=None, rate=0.9)),
    ("order", lambda tmp: layers.NormDropout(order="norm-norm")),
    ("norm", lambda tmp: layers.NormDropout(norm="instance")),
    ("units", lambda tmp: layers.DenseBlock(0)),
    ("seed", lambda tmp: layers.DenseBlock(4, seed=-1)),
    ("return_report", lambda tmp: kreg.fold_batchnorm(small_model(), return_report="no")),
    ("samples", lambda tmp: kreg.mc_predict(small_model(), np.zeros((2, 4)), samples=0)),
    ("batch_size", lambda tmp: kreg.recalibrate_batchnorm(small_model(), np.zeros((2, 4)), batch_size=0)),
    ("rate", lambda tmp: kreg.retrofit(small_model(), rate=2)),
    ("norm", lambda tmp: kreg.retrofit(small_model(), norm="instance")),
    ("as_images", lambda tmp: datasets.load("digits", as_images="no")),
    ("dataset", lambda tmp: datasets.from_arrays((np.full((10, 2), np.nan), np.arange(10) % 2))),
    ("num_classes", lambda tmp: models.create("mlp", num_classes=0)),
    ("learning_rate", lambda tmp: study(tmp, learning_rate="fast")),
    ("learning_rate", lambda tmp: study(tmp, learning_rate=-1)),
    ("model_kwargs", lambda tmp: study(tmp, model_kwargs={"widht": 32})),
    ("model_kwargs", lambda tmp: study(tmp, model_kwargs={"rate": 0.3})),
    ("quiet", lambda tmp: study(tmp, quiet="no")),
    ("epochs", lambda tmp: study(tmp, epochs=0)),
    ("seeds", lambda tmp: study(tmp, seeds=0)),
    ("rates", lambda tmp: study(tmp, rates=(0.2, 1.5))),
    ("orders", lambda tmp: study(tmp, orders=("act-drop",))),
    ("tuner", lambda tmp: study(tmp, tuner="sgd")),
    ("metric", lambda tmp: study(tmp, metric="f1")),
    ("data_seed", lambda tmp: study(tmp, data_seed=-3)),
    ("optimizer", lambda tmp: study(tmp, optimizer=3.5)),
    ("dataset", lambda tmp: study(tmp, dataset=42)),
    ("model", lambda tmp: study(tmp, model=42)),
    ("large_shift", lambda tmp: tuning.recommend([], large_shift=-1)),
    ("tensorboard", lambda tmp: tuning.report([], str(tmp / "never"), tensorboard="yes")),
    ("rates", lambda tmp: tuning.SearchSpace(rates=[0.5, 1.5])),
]


@pytest.mark.parametrize("argument, call", CASES, ids=[f"{i}-{name}" for i, (name, _) in enumerate(CASES)])
def test_bad_input_is_refused_naming_the_argument(tmp_path, argument, call):
    with pytest.raises(ValueError) as info:
        call(tmp_path)
    message = str(info.value)
    assert argument in message and " must " in message, message
    assert len(message) < 600 and "array([" not in message  # abbreviated, never a whole array
    assert not (tmp_path / "never").exists()
