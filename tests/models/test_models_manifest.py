"""kreg.models.manifest: sha256 and updates that keep other entries."""

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
