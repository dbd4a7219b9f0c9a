"""kreg.models.manifest: sha256, the architecture digest and updates that keep other entries."""

import hashlib
import json

from kreg.models import manifest


def test_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"kreg" * 1000)
    assert manifest.sha256(path) == hashlib.sha256(b"kreg" * 1000).hexdigest()


def test_update_keeps_other_entries(tmp_path):
    folder = str(tmp_path)
    assert manifest.read(folder) == {} and manifest.entries("mlp", folder) == {}
    manifest.update("mlp", "digits", {"file": "a"}, folder)
    manifest.update("mlp", "wine", {"file": "b"}, folder)
    manifest.update("snn", "digits", {"file": "c"}, folder)
    manifest.update("mlp", "digits", {"file": "d"}, folder)
    expected = {"mlp": {"digits": {"file": "d"}, "wine": {"file": "b"}},
                "snn": {"digits": {"file": "c"}}}
    assert json.loads((tmp_path / "manifest.json").read_text()) == expected
    assert manifest.entries("mlp", folder) == expected["mlp"]


def test_architecture_digest_covers_model_shape_classes_overrides_and_weights():
    entry = {"sha256": "ab" * 32, "input_shape": [64], "num_classes": 10,
             "overrides": {"depth": 2, "rate": 0.2, "norm": None}, "test_accuracy": 0.9}
    digest = manifest.architecture_sha256("mlp", entry)
    assert len(digest) == 64
    # keys in another order, a tuple for the shape, fields outside the architecture: same digest
    same = {"test_accuracy": 0.5, "overrides": {"norm": None, "rate": 0.2, "depth": 2},
            "num_classes": 10, "input_shape": (64,), "sha256": "ab" * 32}
    assert manifest.architecture_sha256("mlp", same) == digest
    edits = [("model", None), ("sha256", "cd" * 32), ("input_shape", [65]), ("num_classes", 9),
             ("overrides", {"depth": 1, "rate": 0.2, "norm": None}),
             ("overrides", {"depth": 2, "rate": 0.2, "norm": "batch"}),
             ("overrides", {"depth": 2, "rate": 0.2})]
    for field, value in edits:
        if field == "model":
            assert manifest.architecture_sha256("snn", entry) != digest
        else:
            assert manifest.architecture_sha256("mlp", {**entry, field: value}) != digest, field
