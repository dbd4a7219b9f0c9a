"""Pack checkpoints: a pack stopped mid-way resumes from its last saved epoch.

A pack holds up to `max_pack` runs that are recorded only when it ends, so a
study stopped during a pack (Ctrl-C, SIGTERM, SIGKILL, a full disk) would
lose all of them. While a pack trains, its state is saved after every epoch
(at most once per `MIN_INTERVAL` seconds, so very short epochs are not slowed
down) to `DIR/packs/<pack key>.npz`, one file written atomically:

- every variable of the pack model (weights, batch norm statistics and the
  dropout layers' seed states) and of its optimizer (the step count, Adam's
  slots), in their tracking order;
- the history so far and the number of epochs done.

The pack model is rebuilt the same way from its configurations and seeds, so
its variables come in the same order; after `restore` the pack carries on
from the next epoch with the batches of that epoch (`training.epoch_order`
depends on the seed and the epoch only) and records the very rows an
uninterrupted pack would have. The file is removed once the pack's rows are
recorded.
"""

import hashlib
import json
import os
import time

import keras
import numpy as np

from kreg.tuning import ledger

PACKS_DIR = "packs"
# Seconds between two saves of one pack.
MIN_INTERVAL = 1.0


def pack_key(keys, epochs):
    """The name of a pack's checkpoint: its runs' keys and its epochs."""
    text = json.dumps({"runs": list(keys), "epochs": epochs})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _state(model):
    return list(model.variables) + list(model.optimizer.variables)


def save(path, model, epochs_done, history):
    """Writes the pack's state to `path` atomically (temporary file, then
    `os.replace`); an OSError names the file."""
    arrays = {f"v{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(_state(model))}
    meta = json.dumps({"epochs_done": epochs_done, "history": history, "variables": len(arrays)})
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(meta), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ledger.StudyWriteError.of(e, "write", os.path.join(PACKS_DIR, name), os.path.dirname(folder)) from e


def restore(path, model):
    """Loads a checkpoint into a freshly built, compiled pack `model`.

    Returns:
        `(epochs_done, history)`, or `(0, {})` when there is no usable
        checkpoint (none, or one that does not fit the model: then it is
        ignored, with a warning, and the pack trains from the start).
    """
    if not os.path.exists(path):
        return 0, {}
    import warnings

    model.optimizer.build(model.trainable_variables)
    state = _state(model)
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            values = [archive[f"v{i}"] for i in range(meta["variables"])]
    except (OSError, ValueError, KeyError) as e:
        warnings.warn(f"{path} is no readable pack checkpoint ({e}): the pack trains from its start", stacklevel=2)
        return 0, {}
    if len(values) != len(state) or any(tuple(v.shape) != tuple(s.shape) for v, s in zip(values, state)):
        warnings.warn(f"{path} does not fit this pack's model: the pack trains from its start", stacklevel=2)
        return 0, {}
    for variable, value in zip(state, values):
        variable.assign(value)
    return meta["epochs_done"], meta["history"]


def remove(path):
    """Removes a pack's checkpoint once its rows are recorded."""
    if os.path.exists(path):
        os.remove(path)


class Saver(keras.callbacks.Callback):
    """Saves the pack after its epochs (see the module docstring).

    Args:
        path: the checkpoint file.
        epochs_done: epochs done before this `fit` (a resumed pack).
        history: the history of those epochs.
        on_save: called with the epochs done after each save.
    """

    def __init__(self, path, epochs_done, history, on_save):
        super().__init__()
        self.path = path
        self.history = {name: list(values) for name, values in history.items()}
        self.epochs_done = epochs_done
        self.on_save = on_save
        self.last = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(np.asarray(value).tolist())
        self.epochs_done = epoch + 1
        if time.monotonic() - self.last >= MIN_INTERVAL or self.epochs_done == self.params.get("epochs"):
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            save(self.path, self.model, self.epochs_done, self.history)
            self.last = time.monotonic()
            self.on_save(self.epochs_done)
