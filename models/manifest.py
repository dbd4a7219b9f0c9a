"""The weights manifest: `weights/manifest.json`, one entry per (model, dataset).

Layout: `{"MODEL": {"DATASET": entry}}`; an entry records the file name, its
sha256, how the weights were trained (dataset split seed, epochs, seed,
optimizer, backend, Keras version, the model's overrides) and the accuracy
measured on the dataset's test split right after training.

Two digests guard an entry: `sha256` is the weights file's bytes, and
`architecture_sha256` binds those bytes to the architecture they were trained
for (the model name, `input_shape`, `num_classes` and `overrides`, see
`architecture_sha256()`). Editing any of these in the manifest, or pointing
an entry at other weights, makes `kreg.models.load` refuse the entry instead
of loading weights into a model they do not belong to.
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


ARCHITECTURE_FIELDS = ("input_shape", "num_classes", "overrides")


def architecture_sha256(name, entry):
    """Hex sha256 binding an entry's weights to the architecture they belong to.

    The digest covers the model name, the entry's `input_shape`,
    `num_classes` and `overrides` (everything `load` passes to `create`) and
    the weights file's `sha256`, as canonical JSON (sorted keys, no spaces),
    so it is the same whichever backend or Keras version computes it.

    Args:
        name: the registered model name the entry belongs to.
        entry: a manifest entry with `sha256` and the `ARCHITECTURE_FIELDS`.

    Returns:
        64 hex digits.

    Example:

    >>> entry = entries("mlp")["digits"]
    >>> architecture_sha256("mlp", entry) == entry["architecture_sha256"]
    True
    """
    record = {"model": name, "weights_sha256": entry["sha256"]}
    record.update({field: entry[field] for field in ARCHITECTURE_FIELDS})
    # a JSON round trip first: tuples and lists (input_shape) hash alike
    text = json.dumps(json.loads(json.dumps(record)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
