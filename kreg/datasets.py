"""Offline-first datasets: stratified train / validation / test splits.

`load(name)` returns a `Dataset` with float32 features and int32 class
indices `0..num_classes-1`, split reproducibly by `seed` and stratified by
class. Vector features are standardized with the training split's mean and
standard deviation only (so validation and test are not exactly zero-mean);
images are scaled to [0, 1] instead.

Names:

- `"digits"` (1797 x 64, 10 classes; `as_images=True` gives 8 x 8 x 1),
  `"breast_cancer"` (569 x 30, 2 classes), `"wine"` (178 x 13, 3 classes):
  bundled with scikit-learn, always offline.
- `"mnist"`, `"fashion_mnist"` (28 x 28 x 1), `"cifar10"` (32 x 32 x 3): the
  files `keras.datasets` downloads, read from the Keras cache
  (`$KERAS_HOME/datasets`, by default `~/.keras/datasets`) or downloaded
  there. Their official test split is kept; validation comes out of train.
- `"npz:PATH"`: a NumPy archive with either keys `x` and `y` (split here), or
  `x_train` and `y_train` plus optionally `x_val`/`y_val` and
  `x_test`/`y_test` (missing splits are carved out of train). `x` of rank 2
  is a vector dataset; rank 3 (N, H, W) or 4 (N, H, W, C) is images.
- `"csv:PATH"`: one example per row, numeric features, the label in the
  column named or numbered by `label=` (default: the last column). A first
  row that is not all numbers is a header. Labels may be any strings.

Labels that are not already `0..C-1` are mapped to class indices in sorted
order; `Dataset.class_names` keeps the original values.
"""

import contextlib
import csv
import dataclasses
import difflib
import gzip
import os
import pickle
import socket

import numpy as np

IMAGE_DATASETS = ("mnist", "fashion_mnist", "cifar10")
TABULAR_DATASETS = ("digits", "breast_cancer", "wine")
KNOWN = TABULAR_DATASETS + IMAGE_DATASETS

_NETWORK_TIMEOUT_S = 10.0
_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
# The files keras.datasets caches, with its origins and sha256 hashes, so that
# a cache filled by `keras.datasets.X.load_data()` serves kreg and vice versa.
_KERAS_FILES = {
    "mnist": (
        (
            "mnist.npz",
            _KERAS_ORIGIN + "mnist.npz",
            "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        ),
    ),
    "fashion_mnist": tuple(
        (os.path.join("fashion-mnist", f), _KERAS_ORIGIN + f, None)
        for f in (
            "train-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
        )
    ),
    "cifar10": (
        (
            "cifar-10-batches-py-target",
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        ),
    ),
}


class DatasetUnavailableError(OSError):
    """A downloadable dataset is neither in the Keras cache nor reachable."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Train / validation / test splits of one classification dataset.

    Attributes:
        name: the name given to `load`.
        x_train, y_train, x_val, y_val, x_test, y_test: float32 features and
            int32 class indices.
        num_classes: number of classes C; labels are in `0..C-1`.
        input_shape: shape of one example, e.g. `(64,)` or `(8, 8, 1)`.
        description: one line about the data and its preprocessing.
        class_names: the original label of each class index.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple
    description: str
    class_names: tuple = ()


def load(
    name,
    seed=0,
    as_images=None,
    val_fraction=0.2,
    test_fraction=0.2,
    label=None,
    download=True,
):
    """Loads a dataset as standardized, stratified train/val/test splits.

    Args:
        name: one of `KNOWN` (`"digits"`, `"breast_cancer"`, `"wine"`,
            `"mnist"`, `"fashion_mnist"`, `"cifar10"`), `"npz:PATH"` or
            `"csv:PATH"` (see the module docstring for the file formats).
        seed: int, fixes the split (same seed, same split).
        as_images: `True` for images of shape (H, W, C) scaled to [0, 1]
            (digits: 8 x 8 x 1), `False` for flat standardized vectors,
            `None` (default) for the dataset's natural form (images for
            mnist, fashion_mnist, cifar10 and image npz files; vectors for
            the others).
        val_fraction: fraction of the data (of train, for datasets that come
            with a test split) held out for validation, in [0, 1).
        test_fraction: fraction held out for testing, in [0, 1), for
            datasets without their own test split.
        label: CSV only: the label column, a header name or an int index
            (default: the last column).
        download: for mnist, fashion_mnist, cifar10: whether a file missing
            from the Keras cache may be downloaded. With `False` a missing
            file raises at once, without touching the network.

    Returns:
        A `Dataset`.

    Example:

    >>> data = load("digits", seed=1)
    >>> data.x_train.shape[1:], data.num_classes
    ((64,), 10)
    """
    for arg, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{arg} must be in [0, 1), got {value!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            "val_fraction + test_fraction must be < 1, got "
            f"{val_fraction!r} + {test_fraction!r}"
        )
    if label is not None and not str(name).startswith("csv:"):
        raise ValueError(f"label= applies to 'csv:PATH' datasets only, got name={name!r}")

    if name in TABULAR_DATASETS:
        splits, class_names, natural_images, description = _load_sklearn(name)
    elif name in IMAGE_DATASETS:
        splits, class_names, natural_images, description = _load_keras(name, download)
    elif str(name).startswith("npz:"):
        splits, class_names, natural_images, description = _load_npz(name[4:])
    elif str(name).startswith("csv:"):
        splits, class_names, natural_images, description = _load_csv(name[4:], label)
    else:
        raise ValueError(_unknown_name_message(name))

    images = natural_images if as_images is None else bool(as_images)
    if images and splits["x"].ndim == 2 and name != "digits":
        raise ValueError(
            f"as_images=True needs an image dataset (digits, {', '.join(IMAGE_DATASETS)} "
            f"or an npz of rank 3 or 4), got {name!r} with vector features"
        )
    rng = np.random.default_rng(seed)
    splits = _split(splits, val_fraction, test_fraction, rng)
    if images:
        splits = _as_images(name, splits)
        description += "; images scaled to [0, 1]"
    else:
        splits = _standardize(splits)
        description += "; features standardized on the training split"

    x_train = splits["x_train"]
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=splits["y_train"],
        x_val=splits["x_val"],
        y_val=splits["y_val"],
        x_test=splits["x_test"],
        y_test=splits["y_test"],
        num_classes=len(class_names),
        input_shape=tuple(x_train.shape[1:]),
        description=description,
        class_names=tuple(class_names),
    )


# --- sources: each returns (arrays, class_names, natural_images, description)
# arrays: {"x", "y"} and optionally {"x_test", "y_test"} / {"x_val", "y_val"},
# with y already class indices.


def _load_sklearn(name):
    from sklearn import datasets as sk

    bunch = getattr(sk, f"load_{name}")()
    title = bunch.DESCR.split("\n")[2].strip()
    description = f"{title}, scikit-learn bundled ({bunch.data.shape[0]} x {bunch.data.shape[1]})"
    arrays = {"x": bunch.data, "y": bunch.target}
    return arrays, [str(c) for c in bunch.target_names], False, description


def _load_keras(name, download):
    home = _keras_home()
    cache = os.path.join(home, "datasets")
    missing = [
        os.path.join(cache, fname)
        for fname, _, _ in _KERAS_FILES[name]
        if not os.path.exists(os.path.join(cache, fname))
    ]
    if missing and not download:
        raise DatasetUnavailableError(_offline_message(name, missing, "download=False"))
    try:
        with _network_timeout(_NETWORK_TIMEOUT_S):
            paths = [_fetch(home, fname, origin, sha) for fname, origin, sha in _KERAS_FILES[name]]
    except Exception as error:  # keras.utils.get_file raises a bare Exception
        raise DatasetUnavailableError(
            _offline_message(name, missing or [cache], f"{type(error).__name__}: {error}")
        ) from error
    arrays = _READERS[name](paths)
    shape = " x ".join(str(d) for d in arrays["x"].shape[1:])
    description = (
        f"{name} from keras.datasets ({len(arrays['y'])} train, "
        f"{len(arrays['y_test'])} test, {shape} images)"
    )
    return arrays, [str(c) for c in range(10)], True, description


def _load_npz(path):
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        if {"x", "y"} <= keys:
            names = ("",)
        elif {"x_train", "y_train"} <= keys:
            names = [s for s in ("_train", "_val", "_test") if {"x" + s, "y" + s} <= keys]
        else:
            raise ValueError(
                f"npz file {path!r} must hold arrays 'x' and 'y', or 'x_train' and "
                f"'y_train' (plus optional 'x_val'/'y_val', 'x_test'/'y_test'); "
                f"it holds {sorted(keys)}"
            )
        raw = {k + s: archive[k + s] for s in names for k in ("x", "y")}
    raw = {("x" if k == "x_train" else "y" if k == "y_train" else k): v for k, v in raw.items()}
    for key in [k for k in raw if k.startswith("x")]:
        ykey = "y" + key[1:]
        if raw[key].ndim not in (2, 3, 4) or len(raw[key]) != len(raw[ykey]):
            raise ValueError(
                f"npz file {path!r}: {key} must have shape (N, features), (N, H, W) or "
                f"(N, H, W, C) with N = len({ykey}); got {key}.shape={raw[key].shape}, "
                f"{ykey}.shape={raw[ykey].shape}"
            )
        if raw[key].ndim == 3:
            raw[key] = raw[key][..., None]
    arrays, class_names = _encode_labels(raw)
    natural_images = arrays["x"].ndim == 4
    return arrays, class_names, natural_images, f"npz file {path}"


def _load_csv(path, label):
    with open(path, newline="") as handle:
        rows = [(number, row) for number, row in enumerate(csv.reader(handle), 1) if row]
    if not rows:
        raise ValueError(f"CSV file {path!r} has no rows")
    width = len(rows[0][1])
    for number, row in rows:
        if len(row) != width:
            raise ValueError(
                f"CSV file {path!r}, line {number}: expected {width} columns "
                f"(like line {rows[0][0]}), got {len(row)}"
            )
    header = None
    if not all(_is_number(cell) for cell in rows[0][1]):
        header = [cell.strip() for cell in rows[0][1]]
        rows = rows[1:]
    column = _label_column(path, label, header, width)
    labels, features = [], []
    for number, row in rows:
        labels.append(row[column].strip())
        try:
            features.append([float(cell) for i, cell in enumerate(row) if i != column])
        except ValueError:
            bad = next(i for i, c in enumerate(row) if i != column and not _is_number(c))
            where = header[bad] if header else f"column {bad}"
            raise ValueError(
                f"CSV file {path!r}, line {number}, {where}: features must be numbers, "
                f"got {row[bad]!r}"
            ) from None
    if not features:
        raise ValueError(f"CSV file {path!r} has a header but no data rows")
    arrays, class_names = _encode_labels({"x": np.array(features), "y": np.array(labels)})
    return arrays, class_names, False, f"CSV file {path}"


# --- helpers ---------------------------------------------------------------


def _unknown_name_message(name):
    close = difflib.get_close_matches(str(name), KNOWN, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"Unknown dataset {name!r}.{hint} Known datasets: {', '.join(KNOWN)}; "
        "or your own data as 'npz:PATH' or 'csv:PATH'."
    )


def _keras_home():
    """Keras' cache root, read now (keras itself reads KERAS_HOME at import)."""
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    return os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")


def _offline_message(name, missing, reason):
    files = ", ".join(missing)
    return (
        f"Dataset {name!r} is not in the Keras cache and could not be downloaded "
        f"({reason}). Missing: {files}. Run `keras.datasets.{name}.load_data()` once on "
        f"a machine with network access and copy the cache there (or set KERAS_HOME), "
        f"or pass your own copy as 'npz:PATH' (keys x_train, y_train, x_test, y_test)."
    )


@contextlib.contextmanager
def _network_timeout(seconds):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _fetch(home, fname, origin, sha256):
    from keras.utils import get_file

    subdir, base = os.path.split(fname)
    return get_file(
        fname=base,
        origin=origin,
        file_hash=sha256,
        cache_dir=home,
        cache_subdir=os.path.join("datasets", subdir),
        extract=base.startswith("cifar"),
    )


def _read_mnist(paths):
    with np.load(paths[0], allow_pickle=False) as f:
        return {"x": f["x_train"][..., None], "y": f["y_train"],
                "x_test": f["x_test"][..., None], "y_test": f["y_test"]}


def _read_fashion_mnist(paths):
    def read(path, offset):
        with gzip.open(path, "rb") as handle:
            return np.frombuffer(handle.read(), np.uint8, offset=offset)

    y_train, y_test = read(paths[0], 8), read(paths[2], 8)
    return {
        "x": read(paths[1], 16).reshape(len(y_train), 28, 28, 1),
        "y": y_train,
        "x_test": read(paths[3], 16).reshape(len(y_test), 28, 28, 1),
        "y_test": y_test,
    }


def _read_cifar10(paths):
    folder = os.path.join(paths[0], "cifar-10-batches-py")

    def read(fname):
        with open(os.path.join(folder, fname), "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        x = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(batch[b"labels"])

    train = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = read("test_batch")
    return {"x": np.concatenate([x for x, _ in train]),
            "y": np.concatenate([y for _, y in train]),
            "x_test": x_test, "y_test": y_test}


_READERS = {"mnist": _read_mnist, "fashion_mnist": _read_fashion_mnist, "cifar10": _read_cifar10}


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _label_column(path, label, header, width):
    if label is None:
        return width - 1
    if isinstance(label, int) and not isinstance(label, bool):
        if -width <= label < width:
            return label % width
        raise ValueError(f"label must be a column index in [{-width}, {width}), got {label}")
    if header is None:
        raise ValueError(
            f"label={label!r} names a column, but CSV file {path!r} has no header row; "
            "pass the column index instead"
        )
    if label not in header:
        raise ValueError(f"label={label!r} is not a column of {path!r}; columns: {header}")
    return header.index(label)


def _encode_labels(raw):
    """Maps every y* array to class indices over the union of their values."""
    ys = [k for k in raw if k.startswith("y")]
    values = np.unique(np.concatenate([np.asarray(raw[k]).ravel() for k in ys]))
    arrays = dict(raw)
    for key in ys:
        arrays[key] = np.searchsorted(values, np.asarray(raw[key]).ravel())
    return arrays, [str(v) for v in values]


def _stratified_indices(y, fraction, rng):
    """Splits indices of y into (rest, held_out) with `fraction` of each class held out."""
    held = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        held.append(members[: int(round(len(members) * fraction))])
    held = np.sort(np.concatenate(held))
    rest = np.setdiff1d(np.arange(len(y)), held)
    return rng.permutation(rest), rng.permutation(held)


def _split(arrays, val_fraction, test_fraction, rng):
    x, y = arrays["x"], arrays["y"]
    splits = {}
    if "x_test" in arrays:
        splits["x_test"], splits["y_test"] = arrays["x_test"], arrays["y_test"]
    else:
        rest, test = _stratified_indices(y, test_fraction, rng)
        splits["x_test"], splits["y_test"] = x[test], y[test]
        x, y = x[rest], y[rest]
    if "x_val" in arrays:
        splits["x_val"], splits["y_val"] = arrays["x_val"], arrays["y_val"]
    else:
        # val_fraction is a fraction of the whole; what is left is (1 - test).
        share = val_fraction if "x_test" in arrays else val_fraction / (1 - test_fraction)
        rest, val = _stratified_indices(y, share, rng)
        splits["x_val"], splits["y_val"] = x[val], y[val]
        x, y = x[rest], y[rest]
    splits["x_train"], splits["y_train"] = x, y
    for key in list(splits):
        splits[key] = np.asarray(splits[key], "int32" if key[0] == "y" else splits[key].dtype)
    return splits


def _as_images(name, splits):
    xs = {k: v for k, v in splits.items() if k.startswith("x")}
    if name == "digits":
        xs = {k: v.reshape(-1, 8, 8, 1) / 16.0 for k, v in xs.items()}
    elif np.issubdtype(xs["x_train"].dtype, np.integer):
        top = np.iinfo(xs["x_train"].dtype).max
        xs = {k: v / top for k, v in xs.items()}
    else:
        low, high = xs["x_train"].min(), xs["x_train"].max()
        if low < 0 or high > 1:
            xs = {k: (v - low) / (high - low) for k, v in xs.items()}
    return {**splits, **{k: v.astype("float32") for k, v in xs.items()}}


def _standardize(splits):
    width = int(np.prod(splits["x_train"].shape[1:]))
    xs = {k: v.reshape(len(v), width).astype("float64") for k, v in splits.items() if k[0] == "x"}
    mean = xs["x_train"].mean(axis=0)
    std = xs["x_train"].std(axis=0)
    std[std == 0] = 1.0  # constant features (e.g. digits' border pixels) stay 0
    return {**splits, **{k: ((v - mean) / std).astype("float32") for k, v in xs.items()}}
