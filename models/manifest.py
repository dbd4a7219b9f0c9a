"""The weights manifest: `weights/manifest.json`, one entry per (model, dataset).

Layout: `{"MODEL": {"DATASET": entry}}`; an entry records the file name, its
sha256, how the weights were trained (dataset split seed, epochs, seed,
optimizer, backend, Keras version, the model's overrides) and the accuracy
measured on the dataset's test split right after training.
"""

import hashlib
import json
import os

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
MANIFEST = "manifest.json"


def read(directory=None):
    """The whole manifest of `directory` (default: the shipped weights), {} if none."""
    path = os.path.join(directory or WEIGHTS_DIR, MANIFEST)
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return json.load(handle)


def entries(name, directory=None):
    """`{dataset: entry}` of model `name` ({} when it has no weights)."""
    return read(directory).get(name, {})


def update(name, dataset, entry, directory=None):
    """Writes `entry` for (name, dataset) into the manifest, keeping the others."""
    directory = directory or WEIGHTS_DIR
    manifest = read(directory)
    manifest.setdefault(name, {})[dataset] = entry
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, MANIFEST)
    with open(path + ".tmp", "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(path + ".tmp", path)


def sha256(path):
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
