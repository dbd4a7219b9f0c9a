"""kreg.models.train: reproducible training writes weights + a manifest entry that load() trusts."""

import os

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
    assert entry["architecture_sha256"] == manifest.architecture_sha256("mlp", entry)
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


def test_default_directory_is_a_user_folder_never_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = manifest.sha256(os.path.join(manifest.WEIGHTS_DIR, manifest.MANIFEST))
    entry = train("mlp", "wine", epochs=1)
    assert (tmp_path / "kreg-weights" / entry["file"]).exists()
    assert manifest.read(str(tmp_path / "kreg-weights")) == {"mlp": {"wine": entry}}
    assert manifest.sha256(os.path.join(manifest.WEIGHTS_DIR, manifest.MANIFEST)) == shipped
    assert not os.path.exists(os.path.join(manifest.WEIGHTS_DIR, entry["file"]))


def test_sequence_model_gets_the_sequence_form(tmp_path):
    entry = train("cnn1d", "mnist1d", epochs=1, directory=str(tmp_path))
    assert entry["as_images"] is True and entry["input_shape"] == [40, 1]
    assert entry["test_examples"] == 1000


@pytest.mark.parametrize("epochs", [0, 2.5, True])
def test_bad_epochs(epochs):
    with pytest.raises(ValueError, match=rf"epochs must be an int >= 1, got {epochs!r}"):
        train("mlp", "wine", epochs=epochs)


def test_bad_directory():
    with pytest.raises(ValueError, match=r"directory must be a path \(str or os.PathLike\), got 3"):
        train("mlp", "wine", epochs=1, directory=3)


def test_unknown_dataset():
    with pytest.raises(ValueError, match=r"Unknown dataset 'wines'\. Did you mean 'wine'"):
        train("mlp", "wines", epochs=1)
