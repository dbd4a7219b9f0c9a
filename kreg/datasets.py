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
- `"mnist1d"` (MNIST-1D, Greydanus 2020: 5000 x 40, 10 classes): generated
  offline by the `mnist1d` package's own `make_dataset` with its default
  arguments, never downloaded, and cached in the Keras cache
  (`$KERAS_HOME/datasets/mnist1d-*.npz`). The generator's split (4000 train,
  1000 test) is kept; validation comes out of train. `as_images=True` gives
  sequences of shape (40, 1) (length, channels) for 1-D convolutions,
  standardized with one mean and standard deviation per channel (from the
  training split) so that the signal keeps its shape.
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
order (numeric labels in numeric order); `Dataset.class_names` keeps the
original values.

Your own arrays: `from_arrays((x, y))` (or with given validation and test
splits) returns a `Dataset` too, for classification or regression, with the
features as given. `check(dataset)` validates a `Dataset` made by hand.

Every dataset is validated at the door: features and labels must be finite,
a classification needs at least 2 classes and every class in the training
split, and a split carved out here must hold every class.
"""

import contextlib
import csv
import dataclasses
import difflib
import gzip
import hashlib
import json
import os
import pickle
import random
import socket
import tempfile
import warnings
import zipfile

import numpy as np

from kreg.checks import check_bool
from kreg.checks import check_choice
from kreg.checks import check_rate
from kreg.checks import check_seed
from kreg.checks import fail
from kreg.checks import shown

IMAGE_DATASETS = ("mnist", "fashion_mnist", "cifar10")
TABULAR_DATASETS = ("digits", "breast_cancer", "wine")
GENERATED_DATASETS = ("mnist1d",)
KNOWN = TABULAR_DATASETS + GENERATED_DATASETS + IMAGE_DATASETS
TASKS = ("multiclass", "binary", "regression")

# Label columns with more distinct values than this, not all integers, look
# like a continuous target rather than class labels.
CONTINUOUS_DISTINCT_VALUES = 10

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
_SPLITS = ("train", "val", "test")
_FIELDS = tuple(f"{xy}_{s}" for s in _SPLITS for xy in "xy") + ("num_classes", "input_shape")
_FORMS = "(x, y), ((x, y), (x_val, y_val)) or ((x, y), (x_val, y_val), (x_test, y_test))"


class DatasetUnavailableError(OSError):
    """A downloadable dataset is neither in the Keras cache nor reachable."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Train / validation / test splits of one dataset.

    Attributes:
        name: the name given to `load`, or "arrays" for `from_arrays`.
        x_train, y_train, x_val, y_val, x_test, y_test: float32 features;
            int32 class indices for classification, float32 targets of
            shape (N,) or (N, k) for regression.
        num_classes: number of classes C (labels in `0..C-1`; 2 for
            "binary"), or None for regression.
        input_shape: shape of one example, e.g. `(64,)` or `(8, 8, 1)`.
        description: one line about the data and its preprocessing.
        class_names: the original label of each class index (`()` for
            regression).
        task: "multiclass" (a softmax over `num_classes`; every named
            dataset, two-class breast_cancer included), "binary" (two
            classes 0 / 1, for one sigmoid output) or "regression".
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: object
    input_shape: tuple
    description: str
    class_names: tuple = ()
    task: str = "multiclass"


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
            `"mnist1d"`, `"mnist"`, `"fashion_mnist"`, `"cifar10"`),
            `"npz:PATH"` or `"csv:PATH"` (see the module docstring for the
            file formats).
        seed: None or int >= 0, fixes the split (same seed, same split).
        as_images: `True` for the structured form with a channel axis:
            images (H, W, C) scaled to [0, 1] (digits: 8 x 8 x 1), or for
            mnist1d sequences (40, 1) standardized per channel; `False` for
            flat standardized vectors; `None` (default) for the dataset's
            natural form (images for mnist, fashion_mnist, cifar10 and image
            npz files; vectors for the others, mnist1d included).
        val_fraction: fraction of the data (of train, for datasets that come
            with a test split) held out for validation, in [0, 1).
        test_fraction: fraction held out for testing, in [0, 1), for
            datasets without their own test split.
        label: CSV only: the label column, a header name or an int index
            (default: the last column).
        download: for mnist, fashion_mnist, cifar10: whether a file missing
            from the Keras cache may be downloaded. With `False` a missing
            file raises at once, without touching the network. mnist1d is
            generated, never downloaded.

    Returns:
        A `Dataset` with `task="multiclass"`.

    Raises:
        ValueError: a bad argument or bad data (non-finite values, one
            class, a continuous label column, a split left without some
            class, a file that is not what its prefix says); each message
            names the argument and what was found.
        DatasetUnavailableError: a keras.datasets file is neither cached
            nor downloadable.

    Example:

    >>> data = load("digits", seed=1)
    >>> data.x_train.shape[1:], data.num_classes
    ((64,), 10)
    """
    if not isinstance(name, str):
        raise fail("name", f"a dataset name ({', '.join(KNOWN)}, 'npz:PATH' or 'csv:PATH')", name)
    seed = check_seed("seed", seed)
    as_images = _check_as_images(as_images)
    val_fraction, test_fraction = _check_fractions(val_fraction, test_fraction)
    download = check_bool("download", download)
    if label is not None and not name.startswith("csv:"):
        raise ValueError(f"label= applies to 'csv:PATH' datasets only, got name={name!r}")

    if name in TABULAR_DATASETS:
        arrays, class_names, natural_images, description = _load_sklearn(name)
    elif name in GENERATED_DATASETS:
        arrays, class_names, natural_images, description = _load_mnist1d()
    elif name in IMAGE_DATASETS:
        arrays, class_names, natural_images, description = _load_keras(name, download)
    elif name.startswith("npz:"):
        arrays, class_names, natural_images, description = _load_npz(name[4:])
    elif name.startswith("csv:"):
        arrays, class_names, natural_images, description = _load_csv(name[4:], label)
    else:
        raise ValueError(_unknown_name_message(name))

    images = natural_images if as_images is None else as_images
    if images and arrays["x"].ndim == 2 and name not in ("digits", "mnist1d"):
        raise ValueError(
            f"as_images=True needs an image dataset (digits, mnist1d, "
            f"{', '.join(IMAGE_DATASETS)} or an npz of rank 3 or 4), got {name!r} "
            "with vector features"
        )
    rng = np.random.default_rng(seed)
    splits = _split(arrays, val_fraction, test_fraction, rng, class_names, f"dataset {name!r}")
    if images:
        splits = _as_images(name, splits)
        if name == "mnist1d":
            description += "; sequences (40, 1) standardized per channel on the training split"
        else:
            description += "; images scaled to [0, 1]"
    else:
        splits = _standardize(splits)
        description += "; features standardized on the training split"
    return _dataset(name, splits, len(class_names), description, class_names, "multiclass")


def from_arrays(data, task=None, seed=0, val_fraction=0.2, test_fraction=0.2):
    """Makes a `Dataset` of your own arrays, for classification or regression.

    Features are kept as given (cast to float32), not standardized: your
    model may hold its own `keras.layers.Normalization`, and a second
    rescaling here would hide which scale it sees. Regression targets are
    kept on their scale too (float32), since your loss is measured on it.
    Classification labels (integers, strings, bools or one-hot rows) become
    int32 class indices in sorted order; `class_names` keeps the originals.

    Args:
        data: `(x, y)`: validation and test splits are carved out here;
            `((x, y), (x_val, y_val))`: the test split is carved out of
            `(x, y)`; or `((x, y), (x_val, y_val), (x_test, y_test))`.
            Pairs are tuples; arrays are anything `np.asarray` takes, `x`
            of shape (N, features...), `y` of shape (N,), (N, 1), one-hot
            (N, C), or (N, k) regression targets.
        task: None (inferred: integer-valued, string or bool labels are
            "multiclass", other float labels "regression"),
            "multiclass", "binary" (exactly two classes; never inferred,
            since two integer classes fit a softmax as well) or
            "regression".
        seed: None or int >= 0, fixes the carved-out splits (stratified by
            class for classification).
        val_fraction: for `(x, y)`: fraction of all examples held out for
            validation, in [0, 1).
        test_fraction: fraction held out for testing (of all examples for
            `(x, y)`, of `(x, y)` when validation is given), in [0, 1).

    Returns:
        A `Dataset` named "arrays"; `num_classes` is None for regression.

    Raises:
        ValueError: naming `dataset` and the array at fault: non-finite
            values, mismatched lengths or example shapes, fewer than two
            classes, a continuous label with a classification task, or a
            split without some class.

    Example:

    >>> x = np.random.default_rng(0).normal(size=(100, 3))
    >>> data = from_arrays((x, (x[:, 0] > 0).astype(int)), seed=0)
    >>> data.task, data.num_classes, len(data.x_train), len(data.x_test)
    ('multiclass', 2, 60, 20)
    """
    if task is not None:
        task = check_choice("task", task, TASKS)
    seed = check_seed("seed", seed)
    val_fraction, test_fraction = _check_fractions(val_fraction, test_fraction)
    raw = _unpack(data)
    shape = None
    for key in [k for k in raw if k[0] == "x"]:
        x = np.asarray(raw[key])
        ykey = "y" + key[1:]
        if x.dtype.kind not in "biuf":
            raise fail(f"dataset {key}", "numeric", x)
        if x.ndim < 2:
            raise fail(
                f"dataset {key}", "of shape (N, features...) (one feature: x[:, None])", x
            )
        if shape is not None and x.shape[1:] != shape:
            raise ValueError(
                f"dataset {key} must have examples of shape {shape} like x, "
                f"got {shown(x)}"
            )
        shape = x.shape[1:]
        labels = np.asarray(raw[ykey])
        if labels.ndim == 0 or len(labels) != len(x):
            found = "a scalar" if labels.ndim == 0 else len(labels)
            raise ValueError(
                f"dataset {ykey} must have one label per example of {key} ({len(x)}), "
                f"got {found}"
            )
        _check_finite(f"dataset {key}", x)
        raw[key] = x.astype("float32")
    ys = {k: v for k, v in raw.items() if k[0] == "y"}
    task, targets, class_names = _targets(ys, task)
    raw.update(targets)
    rng = np.random.default_rng(seed)
    classes = None if task == "regression" else class_names
    splits = _split(raw, val_fraction, test_fraction, rng, classes, "dataset")
    sizes = [len(splits[f"y_{s}"]) for s in _SPLITS]
    description = (
        f"arrays ({sizes[0]} train, {sizes[1]} validation, {sizes[2]} test; {task}); "
        "features as given, not standardized"
    )
    num_classes = None if task == "regression" else len(class_names)
    return _dataset("arrays", splits, num_classes, description, class_names, task)


def check(dataset):
    """Validates a `Dataset`, e.g. one made by hand or by `dataclasses.replace`.

    `load` and `from_arrays` run it on what they return. It checks that every
    split's features are numeric and finite with examples of
    `input_shape`, one label per example, a non-empty training split, and
    for classification: `num_classes` >= 2 (exactly 2 for "binary"),
    integer labels in `0..num_classes-1`, every class in the training split,
    at least two classes in a non-empty validation or test split; for
    regression: `num_classes` None and finite numeric targets.

    Args:
        dataset: a `Dataset`, or an object with its attributes.

    Returns:
        `dataset`, unchanged.

    Raises:
        ValueError: naming the attribute (e.g. `dataset.y_val`) and what was
            found.

    Example:

    >>> check(load("wine")).num_classes
    3
    """
    missing = [field for field in _FIELDS if not hasattr(dataset, field)]
    if missing:
        raise fail(
            "dataset", "a kreg.datasets.Dataset", f"{type(dataset).__name__} without "
            + ", ".join(missing)
        )
    task = check_choice("dataset.task", getattr(dataset, "task", "multiclass"), TASKS)
    input_shape = tuple(dataset.input_shape)
    for split in _SPLITS:
        x = np.asarray(getattr(dataset, f"x_{split}"))
        y = np.asarray(getattr(dataset, f"y_{split}"))
        if x.dtype.kind not in "biuf" or x.shape[1:] != input_shape or x.ndim < 2:
            raise fail(
                f"dataset.x_{split}", f"numeric, of shape (N,) + input_shape {input_shape}", x
            )
        if y.ndim == 0 or len(y) != len(x):
            raise fail(f"dataset.y_{split}", f"one label per example of x_{split} ({len(x)})", y)
        _check_finite(f"dataset.x_{split}", x)
        if y.dtype.kind not in "biuf":
            raise fail(f"dataset.y_{split}", "numeric", y)
        _check_finite(f"dataset.y_{split}", y)
    if len(dataset.y_train) == 0:
        raise ValueError("dataset.x_train must hold at least one example, got 0")
    if task == "regression":
        if dataset.num_classes is not None:
            raise fail("dataset.num_classes", "None for task 'regression'", dataset.num_classes)
        for split in _SPLITS:
            y = np.asarray(getattr(dataset, f"y_{split}"))
            if y.ndim not in (1, 2):
                raise fail(f"dataset.y_{split}", "regression targets of shape (N,) or (N, k)", y)
        return dataset
    _check_classes(dataset, task)
    return dataset


# --- checks ----------------------------------------------------------------


def _check_as_images(value):
    if value is None:
        return None
    try:
        return check_bool("as_images", value)
    except ValueError:
        raise fail("as_images", "None, True or False", value) from None


def _check_fractions(val_fraction, test_fraction):
    val_fraction = check_rate("val_fraction", val_fraction)
    test_fraction = check_rate("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            "val_fraction + test_fraction must be < 1, got "
            f"{val_fraction!r} + {test_fraction!r}"
        )
    return val_fraction, test_fraction


def _check_finite(name, array):
    """Refuses NaN and inf in a numeric array, naming the first one found."""
    if array.dtype.kind not in "fc" or np.isfinite(np.sum(array, dtype=np.float64)):
        return  # integers are finite; a finite float64 sum means finite values
    bad = ~np.isfinite(array)
    if bad.any():  # else the sum overflowed over finite values
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must be finite, got {int(bad.sum())} NaN or inf values "
            f"(first at index {first}: {array[first].item()!r})"
        )


def _check_classes(dataset, task):
    num_classes = dataset.num_classes
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or (
        num_classes < 2
    ):
        raise fail("dataset.num_classes", f"an int >= 2 for task {task!r}", num_classes)
    if task == "binary" and num_classes != 2:
        raise fail("dataset.num_classes", "2 for task 'binary'", num_classes)
    names = tuple(dataset.class_names)
    if names and len(names) != num_classes:
        raise ValueError(
            f"dataset.class_names must name the {num_classes} classes, got {len(names)} names"
        )
    for split in _SPLITS:
        y = np.asarray(getattr(dataset, f"y_{split}"))
        if y.ndim != 1 or (y.size and np.any(y != np.round(y))):
            raise fail(f"dataset.y_{split}", "class indices of shape (N,)", y)
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(
                f"dataset.y_{split} must hold class indices in [0, {num_classes}), "
                f"got values in [{y.min():g}, {y.max():g}]"
            )
        present = np.unique(y)
        if split == "train" and len(present) < num_classes:
            absent = sorted(set(range(num_classes)) - set(present.astype(int).tolist()))
            raise ValueError(
                f"dataset.y_train must hold every class, got no example of "
                f"{_class_list(absent, names)}"
            )
        if y.size and len(present) < 2:
            raise ValueError(
                f"dataset.y_{split} must hold at least 2 classes, got only "
                f"{_class_list(present.astype(int).tolist(), names)}"
            )


def _class_list(indices, names, limit=5):
    shown_names = [repr(names[i]) if names else str(i) for i in indices[:limit]]
    more = f" and {len(indices) - limit} more" if len(indices) > limit else ""
    word = "class" if len(indices) == 1 else "classes"
    return f"{word} {', '.join(shown_names)}{more}"


def _dataset(name, splits, num_classes, description, class_names, task):
    x_train = splits["x_train"]
    return check(
        Dataset(
            name=name,
            x_train=x_train,
            y_train=splits["y_train"],
            x_val=splits["x_val"],
            y_val=splits["y_val"],
            x_test=splits["x_test"],
            y_test=splits["y_test"],
            num_classes=num_classes,
            input_shape=tuple(x_train.shape[1:]),
            description=description,
            class_names=tuple(class_names),
            task=task,
        )
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


def _load_mnist1d():
    """MNIST-1D from the mnist1d package's generator, cached in the Keras cache."""
    try:
        from mnist1d.data import get_dataset_args
        from mnist1d.data import make_dataset
    except ImportError as error:
        raise ImportError(
            "dataset 'mnist1d' is generated by the mnist1d package: pip install mnist1d"
        ) from error
    args = get_dataset_args(as_dict=True)
    settings = {key: value for key, value in args.items() if key != "url"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    path = os.path.join(_keras_home(), "datasets", f"mnist1d-{digest}.npz")
    arrays = _read_mnist1d_cache(path, settings["final_seq_length"])
    if arrays is None:
        arrays = _generate_mnist1d(make_dataset, get_dataset_args())
        _write_npz_atomically(path, arrays)
    description = (
        f"MNIST-1D (Greydanus 2020), generated offline by mnist1d's make_dataset with "
        f"its default arguments ({len(arrays['y'])} train, {len(arrays['y_test'])} test, "
        f"{arrays['x'].shape[1]} features)"
    )
    return arrays, [str(c) for c in range(10)], False, description


def _generate_mnist1d(make_dataset, args):
    # make_dataset seeds Python's and NumPy's global generators: put them back.
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        generated = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return {key: np.asarray(generated[key]) for key in ("x", "y", "x_test", "y_test")}


def _read_mnist1d_cache(path, length):
    """The cached arrays, or None when the file is missing or unreadable (warned)."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("x", "y", "x_test", "y_test")}
        for key in ("x", "x_test"):
            ykey = "y" + key[1:]
            if arrays[key].shape != (len(arrays[ykey]), length) or arrays[ykey].ndim != 1:
                raise ValueError(f"{key} has shape {arrays[key].shape}")
            if not np.all(np.isfinite(arrays[key])):
                raise ValueError(f"{key} holds NaN or inf")
    except Exception as error:  # a damaged file raises anything from zipfile to numpy
        warnings.warn(
            f"mnist1d cache {path} is not readable ({type(error).__name__}: {error}); "
            "generating the dataset again",
            UserWarning,
            stacklevel=4,
        )
        return None
    return arrays


def _write_npz_atomically(path, arrays):
    """Writes `arrays` to `path` through a temporary file (never half a file)."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".mnist1d-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **arrays)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as error:
        warnings.warn(
            f"cannot cache mnist1d in {folder} ({error}); it will be generated again "
            "next time",
            UserWarning,
            stacklevel=4,
        )


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
    source = f"npz file {path!r}"
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{source} does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise ValueError(
            f"{path} is not a valid .npz file (numpy.savez writes one: a zip of .npy arrays)"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{path} is not a valid .npz file: it holds a single array; save with "
            "numpy.savez(path, x=x, y=y)"
        )
    with archive:
        keys = set(archive.files)
        if {"x", "y"} <= keys:
            names = ("",)
        elif {"x_train", "y_train"} <= keys:
            names = [s for s in ("_train", "_val", "_test") if {"x" + s, "y" + s} <= keys]
        else:
            raise ValueError(
                f"{source} must hold arrays 'x' and 'y', or 'x_train' and "
                f"'y_train' (plus optional 'x_val'/'y_val', 'x_test'/'y_test'); "
                f"it holds {sorted(keys)}"
            )
        raw = {k + s: _npz_array(archive, k + s, path) for s in names for k in ("x", "y")}
    raw = {("x" if k == "x_train" else "y" if k == "y_train" else k): v for k, v in raw.items()}
    for key in [k for k in raw if k.startswith("x")]:
        ykey = "y" + key[1:]
        if raw[key].ndim not in (2, 3, 4) or len(raw[key]) != len(raw[ykey]):
            raise ValueError(
                f"{source}: {key} must have shape (N, features), (N, H, W) or "
                f"(N, H, W, C) with N = len({ykey}); got {key}.shape={raw[key].shape}, "
                f"{ykey}.shape={raw[ykey].shape}"
            )
        if raw[key].dtype.kind not in "biuf":
            raise fail(f"{source}: {key}", "numeric", raw[key])
        if raw[key].ndim == 3:
            raw[key] = raw[key][..., None]
    arrays, class_names = _encode_labels(raw, source)
    natural_images = arrays["x"].ndim == 4
    return arrays, class_names, natural_images, f"npz file {path}"


def _npz_array(archive, key, path):
    """`archive[key]`, numeric and finite or strings; damaged files are reported as such."""
    try:
        array = archive[key]
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError(
                f"npz file {path!r}: {key} holds Python objects (dtype object), which kreg "
                "does not read; save numbers or strings (e.g. y.astype(str))"
            ) from None
        raise ValueError(f"{path} is not a valid .npz file ({key} is damaged)") from None
    except (OSError, EOFError, zipfile.BadZipFile):
        raise ValueError(f"{path} is not a valid .npz file ({key} is damaged)") from None
    _check_finite(f"npz file {path!r}: {key}", array)
    return array


def _load_csv(path, label):
    source = f"CSV file {path!r}"
    with open(path, newline="") as handle:
        rows = [(number, row) for number, row in enumerate(csv.reader(handle), 1) if row]
    if not rows:
        raise ValueError(f"{source} has no rows")
    width = len(rows[0][1])
    for number, row in rows:
        if len(row) != width:
            raise ValueError(
                f"{source}, line {number}: expected {width} columns "
                f"(like line {rows[0][0]}), got {len(row)}"
            )
    header = None
    if not all(_is_number(cell) for cell in rows[0][1]):
        header = [cell.strip() for cell in rows[0][1]]
        rows = rows[1:]
    column = _label_column(path, label, header, width)
    column_name = f"label column {header[column]!r}" if header else f"label column {column}"
    labels, features = [], []
    for number, row in rows:
        cell = row[column].strip()
        if not cell or (_is_number(cell) and not np.isfinite(float(cell))):
            raise ValueError(
                f"{source}, line {number}, {column_name}: labels must be finite numbers or "
                f"names, got {cell!r}"
            )
        labels.append(cell)
        values = [float(c) if _is_number(c) else None for i, c in enumerate(row) if i != column]
        if not all(v is not None and np.isfinite(v) for v in values):
            bad = next(
                i for i, c in enumerate(row)
                if i != column and not (_is_number(c) and np.isfinite(float(c)))
            )
            where = header[bad] if header else f"column {bad}"
            raise ValueError(
                f"{source}, line {number}, {where}: features must be finite numbers, "
                f"got {row[bad]!r}"
            )
        features.append(values)
    if not features:
        raise ValueError(f"{source} has a header but no data rows")
    raw = {"x": np.array(features), "y": np.array(labels)}
    arrays, class_names = _encode_labels(raw, source, column_name)
    return arrays, class_names, False, f"CSV file {path}"


# --- helpers ---------------------------------------------------------------


def _unknown_name_message(name):
    close = difflib.get_close_matches(name.lower(), KNOWN, n=3, cutoff=0.5)
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


def _numbers(values):
    """`values` as float64 when they are all numbers (numeric strings too), else None."""
    if values.dtype.kind in "iuf":
        return values.astype("float64")
    if values.dtype.kind in "US":
        try:
            return values.astype("float64")
        except ValueError:
            return None
    return None


def _looks_continuous(numbers):
    distinct = len(np.unique(numbers))
    return distinct > CONTINUOUS_DISTINCT_VALUES and np.any(numbers != np.round(numbers))


def _class_name(value):
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _encode_labels(raw, source, what="y"):
    """Maps every y* array to class indices over the sorted union of their values.

    Numeric labels (numeric strings too) sort as numbers; "1" and "1.0" are
    one class. Refuses a continuous-looking label and a single class; the
    sources have refused non-finite labels already.
    """
    ys = [k for k in raw if k.startswith("y")]
    values = {k: np.asarray(raw[k]).ravel() for k in ys}
    if any(v.dtype.kind not in "biufUS" for v in values.values()):
        kinds = sorted({str(v.dtype) for v in values.values()})
        raise ValueError(f"{source}: {what} must be numbers or strings, got dtype {kinds}")
    numbers = {k: _numbers(v) for k, v in values.items()}
    if all(n is not None for n in numbers.values()):
        every = np.concatenate(list(numbers.values()))
        if _looks_continuous(every):
            example = float(every[every != np.round(every)][0])
            raise ValueError(
                f"{source}: {what} must be class labels, got a continuous-looking "
                f"target ({len(np.unique(every))} distinct values, not all integers, "
                f"e.g. {example!r}); for a regression use "
                "kreg.datasets.from_arrays((x, y), task='regression')"
            )
        classes = np.unique(every)
        names = [_class_name(c) for c in classes]
        encoded = {k: np.searchsorted(classes, n) for k, n in numbers.items()}
    else:
        strings = {k: v.astype(str) for k, v in values.items()}
        classes = np.unique(np.concatenate(list(strings.values())))
        names = [str(c) for c in classes]
        encoded = {k: np.searchsorted(classes, s) for k, s in strings.items()}
    if len(classes) < 2:
        raise ValueError(
            f"{source}: {what} must hold at least 2 classes for a classification, got "
            f"one class ({names[0]!r})"
        )
    return {**raw, **encoded}, names


def _unpack(data):
    """`{"x", "y"[, "x_val", "y_val"[, "x_test", "y_test"]]}` of `from_arrays`' data."""
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        if all(isinstance(part, tuple) and len(part) == 2 for part in data):
            suffixes = ("", "_val", "_test")[: len(data)]
            return {k + s: part[i] for s, part in zip(suffixes, data) for i, k in enumerate("xy")}
        if len(data) == 2:
            return {"x": data[0], "y": data[1]}
    if isinstance(data, (tuple, list)):
        parts = ", ".join(shown(part) for part in data[:3])
        found = f"a {type(data).__name__} of {len(data)}: ({parts}{', ...' if len(data) > 3 else ''})"
    else:
        found = shown(data)
    raise ValueError(f"dataset must be {_FORMS}, got {found}")


def _one_hot_indices(y):
    """Class indices of one-hot rows (N, C), or None when `y` is not one-hot."""
    if y.ndim != 2 or y.shape[1] < 2 or y.dtype.kind not in "biuf":
        return None
    if not (np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
        return None
    return np.argmax(y, axis=1)


def _targets(ys, task):
    """`(task, {y key: labels or targets}, class_names)` of `from_arrays`' labels."""
    ys = {k: np.asarray(v) for k, v in ys.items()}
    width = None
    if task != "regression":
        for key, y in ys.items():
            indices = _one_hot_indices(y)
            if indices is not None:
                ys[key], width = indices, y.shape[1]
            elif y.ndim == 2 and y.shape[1] == 1:
                ys[key] = y[:, 0]
            elif y.ndim != 1:
                raise fail(
                    f"dataset {key}", "labels of shape (N,) or one-hot rows (N, C) "
                    "(for regression targets: task='regression')", y
                )
    kinds = {y.dtype.kind for y in ys.values()}
    if not kinds <= set("biufUS"):
        raise ValueError(f"dataset y must be numbers or strings, got dtype {sorted(kinds)}")
    numeric = kinds <= set("iuf")
    if numeric:
        for key, y in ys.items():
            _check_finite(f"dataset {key}", y)
    if task is None:
        integers = not numeric or all(np.all(y == np.round(y)) for y in ys.values())
        task = "multiclass" if integers else "regression"
    if task == "regression":
        if not numeric:
            raise fail("dataset y", "numbers for task 'regression'", next(iter(ys.values())))
        for key, y in ys.items():
            if y.ndim not in (1, 2):
                raise fail(f"dataset {key}", "regression targets of shape (N,) or (N, k)", y)
        return task, {k: y.astype("float32") for k, y in ys.items()}, ()
    raw = {("y" + k[1:]): y for k, y in ys.items()}
    if width is not None:  # every one-hot column is a class, even an unused one
        raw["y_classes"] = np.arange(width)
    encoded, names = _encode_labels(raw, "dataset")
    encoded.pop("y_classes", None)
    if task == "binary" and len(names) != 2:
        raise ValueError(
            f"dataset y must hold exactly 2 classes for task 'binary', got {len(names)} "
            f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
        )
    return task, encoded, names


def _stratified_indices(y, fraction, rng):
    """Splits indices of y into (rest, held_out) with `fraction` of each class held out."""
    held = [np.zeros(0, dtype=np.int64)]  # an empty y holds no class
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        held.append(members[: int(round(len(members) * fraction))])
    held = np.sort(np.concatenate(held))
    rest = np.setdiff1d(np.arange(len(y)), held)
    return rng.permutation(rest), rng.permutation(held)


def _random_indices(n, fraction, rng):
    """Splits `range(n)` into (rest, held_out) with `fraction` held out."""
    order = rng.permutation(n)
    held = int(round(n * fraction))
    return order[held:], order[:held]


def _split(arrays, val_fraction, test_fraction, rng, class_names, where):
    """Carves the missing validation / test splits out of `x`, `y`.

    Stratified by class when `class_names` is a sequence, at random when it
    is None (regression). A split carved out here must hold every class.
    """
    stratified = class_names is not None

    def held_out(y, fraction):
        if stratified:
            return _stratified_indices(y, fraction, rng)
        return _random_indices(len(y), fraction, rng)

    x, y = arrays["x"], arrays["y"]
    splits, carved = {}, []
    if "x_test" in arrays:
        splits["x_test"], splits["y_test"] = arrays["x_test"], arrays["y_test"]
    else:
        rest, test = held_out(y, test_fraction)
        splits["x_test"], splits["y_test"] = x[test], y[test]
        x, y = x[rest], y[rest]
        carved.append("test")
    if "x_val" in arrays:
        splits["x_val"], splits["y_val"] = arrays["x_val"], arrays["y_val"]
    else:
        # val_fraction is a fraction of the whole; what is left is (1 - test).
        share = val_fraction if "x_test" in arrays else val_fraction / (1 - test_fraction)
        rest, val = held_out(y, share)
        splits["x_val"], splits["y_val"] = x[val], y[val]
        x, y = x[rest], y[rest]
        carved.append("val")
    splits["x_train"], splits["y_train"] = x, y
    if carved:
        carved.append("train")
    label_dtype = "int32" if stratified else "float32"
    for key in list(splits):
        splits[key] = np.asarray(splits[key], label_dtype if key[0] == "y" else splits[key].dtype)
    if stratified:
        labels = np.concatenate([np.asarray(arrays[k]).ravel() for k in arrays if k[0] == "y"])
        for split in carved:
            y_split = splits[f"y_{split}"]
            absent = np.setdiff1d(labels, y_split).astype(int).tolist()
            if absent and (split == "train" or y_split.size):
                counts = ", ".join(str(int(np.sum(labels == c))) for c in absent[:5])
                raise ValueError(
                    f"{where} has too few examples for val_fraction={val_fraction!r}, "
                    f"test_fraction={test_fraction!r}: the {split} split has no example of "
                    f"{_class_list(absent, class_names)} ({counts} in all); add examples "
                    "or change the fractions"
                )
    return splits


def _as_images(name, splits):
    xs = {k: v for k, v in splits.items() if k.startswith("x")}
    if name == "digits":
        xs = {k: v.reshape(-1, 8, 8, 1) / 16.0 for k, v in xs.items()}
    elif name == "mnist1d":  # (length, channels), one mean and std per channel
        xs = {k: v[..., None].astype("float64") for k, v in xs.items()}
        mean = xs["x_train"].mean(axis=(0, 1))
        std = xs["x_train"].std(axis=(0, 1))
        xs = {k: (v - mean) / std for k, v in xs.items()}
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
