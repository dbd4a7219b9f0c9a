"""kreg.models.pretrained.load: sha256 checks (file, architecture), unknown weights, loads from a folder."""

import shutil

import numpy as np
import pytest

from kreg import models
from kreg.models import manifest


@pytest.fixture
def copied_weights(tmp_path):
    """A private copy of the shipped mlp weights and manifest (never touch the real ones)."""
    shutil.copy(f"{manifest.WEIGHTS_DIR}/mlp-digits.weights.h5", tmp_path)
    entry = manifest.entries("mlp")["digits"]
    manifest.update("mlp", "digits", entry, str(tmp_path))
    return tmp_path


def test_loads_from_another_folder_like_the_shipped_one(copied_weights):
    shipped, copy = models.load("mlp"), models.load("mlp", directory=str(copied_weights))
    for a, b in zip(shipped.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_corrupted_weights_refused(copied_weights):
    path = copied_weights / "mlp-digits.weights.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte somewhere in the weights
    path.write_bytes(bytes(data))
    with pytest.raises(models.WeightsIntegrityError, match=r"sha256 .* but the manifest records"):
        models.load("mlp", directory=str(copied_weights))


@pytest.mark.parametrize(
    "field, value",
    [("overrides", {"depth": 1}), ("overrides", {"width": 32}), ("overrides", {"norm": None}),
     ("num_classes", 9), ("input_shape", [8, 8])],
)
def test_edited_architecture_refused(copied_weights, field, value):
    # A copied manifest whose entry describes another architecture than the
    # one its (unchanged, sha256-valid) weights were trained for.
    entry = manifest.entries("mlp", str(copied_weights))["digits"]
    entry[field] = {**entry[field], **value} if isinstance(value, dict) else value
    manifest.update("mlp", "digits", entry, str(copied_weights))
    with pytest.raises(models.WeightsIntegrityError,
                       match=r"mlp-digits\.weights\.h5: the architecture in its manifest entry "
                             r"\('mlp', 'digits'.*does not match the architecture the weights "
                             r"were recorded with"):
        models.load("mlp", directory=str(copied_weights))


def test_unedited_copy_loads_and_entry_without_architecture_digest_refused(copied_weights):
    assert models.load("mlp", directory=str(copied_weights)).output_shape == (None, 10)
    entry = manifest.entries("mlp", str(copied_weights))["digits"]
    del entry["architecture_sha256"]
    manifest.update("mlp", "digits", entry, str(copied_weights))
    with pytest.raises(models.WeightsIntegrityError, match=r"has no architecture_sha256"):
        models.load("mlp", directory=str(copied_weights))


def test_unknown_weights_lists_available():
    with pytest.raises(ValueError, match=r"model 'mlp' has no weights 'cifar10'; "
                                         r"available weights: 'digits'"):
        models.load("mlp", weights="cifar10")


def test_unknown_model():
    with pytest.raises(ValueError, match=r"Unknown model 'snnn'\. Did you mean 'snn'"):
        models.load("snnn")


def test_shipped_files_small_and_match_manifest():
    shipped = [(name, dataset) for name in models.list_models() for dataset in manifest.entries(name)]
    assert ("mlp", "digits") in shipped and ("cnn1d", "mnist1d") in shipped and ("mlp", "mnist1d") in shipped
    for name, dataset in shipped:
        entry = manifest.entries(name)[dataset]
        path = f"{manifest.WEIGHTS_DIR}/{entry['file']}"
        assert manifest.sha256(path) == entry["sha256"]
        assert manifest.architecture_sha256(name, entry) == entry["architecture_sha256"]
        with open(path, "rb") as handle:
            assert len(handle.read()) < 512 * 1024  # brief: well under 1 MB
