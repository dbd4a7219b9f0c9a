"""kreg.models.train: reproducible training writes weights + a manifest entry that load() trusts."""

import keras
import pytest

from kreg import datasets
from kreg import models
from kreg.models import manifest
from kreg.models.train import accuracy
from kreg.models.train import train


def test_train_writes_entry_that_load_reproduces(tmp_path):
    entry = train("mlp", "wine", epochs=1, seed=2, directory=str(tmp_path))
    # Reproducible: the same call writes a byte-identical weights file.
    again = train("mlp", "wine", epochs=1, seed=2, directory=str(tmp_path / "again"))
    assert again == entry
    assert entry["file"] == "mlp-wine.weights.h5"
    assert entry["sha256"] == manifest.sha256(tmp_path / entry["file"])
    assert (entry["epochs"], entry["seed"], entry["backend"]) == (1, 2, keras.backend.backend())
    assert entry["keras_version"] == keras.__version__
    assert entry["input_shape"] == [13] and entry["num_classes"] == 3
    assert entry["overrides"]["seed"] == 2
    assert manifest.read(str(tmp_path)) == {"mlp": {"wine": entry}}
    # The recorded metric is what the saved weights give on the same split.
    model = models.load("mlp", weights="wine", directory=str(tmp_path))
    data = datasets.load("wine", seed=2)
    assert accuracy(model, data.x_test, data.y_test) == entry["test_accuracy"]
    assert entry["test_examples"] == len(data.y_test) == 36


def test_bad_epochs():
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1, got 0"):
        train("mlp", "wine", epochs=0)


def test_unknown_dataset():
    with pytest.raises(ValueError, match=r"Unknown dataset 'wines'\. Did you mean 'wine'"):
        train("mlp", "wines", epochs=1)
