"""kreg.datasets: splits, stratification, preprocessing, user files, offline errors."""

import gzip
import os
import socket

import numpy as np
import pytest

from kreg import datasets
from kreg.datasets import DatasetUnavailableError, load

SIZES = {"digits": (1797, 64, 10), "breast_cancer": (569, 30, 2), "wine": (178, 13, 3)}


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to resolve or connect fails the test: proves nothing goes online."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", sorted(SIZES))
def test_bundled_shapes_dtypes_and_labels(name):
    n, features, classes = SIZES[name]
    data = load(name)
    assert data.name == name
    assert data.input_shape == (features,)
    assert data.num_classes == classes == len(data.class_names)
    sizes = [len(data.x_train), len(data.x_val), len(data.x_test)]
    assert sum(sizes) == n
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)):
        assert x.dtype == np.float32 and x.shape[1:] == (features,)
        assert y.dtype == np.int32 and y.shape == (len(x),)
        assert y.min() >= 0 and y.max() < classes
    # Default fractions 0.6 / 0.2 / 0.2, rounded per class (at most 1 off per class).
    assert abs(sizes[2] - 0.2 * n) <= classes and abs(sizes[1] - 0.2 * n) <= classes


@pytest.mark.parametrize("name", sorted(SIZES))
def test_splits_are_stratified(name):
    data = load(name, seed=3)
    y_all = np.concatenate([data.y_train, data.y_val, data.y_test])
    totals = np.bincount(y_all, minlength=data.num_classes)
    # Per class the test split takes round(0.2 * n_c), validation round(0.25 * rest):
    # each within 1 example of 0.2 * n_c (0.25 * 0.8 = 0.2, two roundings of <= 0.5).
    for y in (data.y_val, data.y_test):
        counts = np.bincount(y, minlength=data.num_classes)
        np.testing.assert_array_less(np.abs(counts - 0.2 * totals), 1.0 + 1e-9)


def test_seed_reproducible_and_changes_split():
    a, b, c = load("wine", seed=7), load("wine", seed=7), load("wine", seed=8)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_test, c.x_test)


def test_standardized_on_train_split_only():
    data = load("digits")
    x = data.x_train.astype(np.float64)  # float32 sums would add ~1e-5 error
    mean, std = x.mean(axis=0), x.std(axis=0)
    varying = std > 0
    np.testing.assert_allclose(mean, 0.0, atol=1e-5)
    np.testing.assert_allclose(std[varying], 1.0, atol=1e-5)
    # digits has pixels that are always 0 in train: they stay 0, not NaN.
    assert (~varying).any() and np.all(data.x_train[:, ~varying] == 0)
    # Val/test use the train statistics, so their means are not zero: each mean of
    # ~359 roughly unit-variance values has sd ~ 1/sqrt(359) = 0.05, so the largest
    # of 64 is far above 1e-3.
    for x in (data.x_val, data.x_test):
        assert np.abs(x[:, varying].mean(axis=0)).max() > 1e-3
        assert np.all(np.isfinite(x))


def test_digits_as_images():
    images, vectors = load("digits", as_images=True), load("digits")
    assert images.input_shape == (8, 8, 1) and images.x_train.shape[1:] == (8, 8, 1)
    assert images.x_train.min() == 0.0 and images.x_train.max() == 1.0
    # Pixels are 0..16 scaled by 1/16: every value is a multiple of 1/16.
    np.testing.assert_allclose(images.x_train * 16, np.round(images.x_train * 16), atol=1e-5)
    np.testing.assert_array_equal(images.y_train, vectors.y_train)  # same split


def test_as_images_on_vector_dataset_is_refused():
    with pytest.raises(ValueError, match=r"as_images=True.*'wine'"):
        load("wine", as_images=True)


def test_npz_xy_round_trip_with_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    names = np.array(["ant", "bee", "cat"])
    y = names[np.arange(90) % 3]
    x = np.column_stack([np.searchsorted(names, y), rng.normal(size=(90, 4))])
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=y)
    data = load(f"npz:{path}", seed=1)
    assert data.num_classes == 3 and data.class_names == ("ant", "bee", "cat")
    assert data.input_shape == (5,)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 90
    # Feature 0 was the class index: after standardization it is still a function of y.
    pairs = np.unique(np.column_stack([data.y_train, data.x_train[:, 0]]), axis=0)
    assert len(pairs) == 3
    assert np.all(np.diff(pairs[:, 1]) > 0)  # increasing with the class index


def test_npz_given_splits_images_kept_and_scaled(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(40, 6, 6), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(10, 6, 6), dtype=np.uint8)
    y_train, y_test = np.arange(40) % 2, np.arange(10) % 2
    path = tmp_path / "imgs.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    data = load(f"npz:{path}")
    assert data.input_shape == (6, 6, 1)
    # The given test split is kept as is (order too), uint8 scaled by 1/255.
    np.testing.assert_allclose(data.x_test[..., 0], x_test / 255.0, atol=1e-7)
    np.testing.assert_array_equal(data.y_test, y_test)
    assert len(data.x_train) + len(data.x_val) == 40 and len(data.x_val) == 8


def test_npz_missing_keys(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, features=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"'x' and 'y'.*\['features'\]"):
        load(f"npz:{path}")


def _write(path, text):
    path.write_text(text)
    return f"csv:{path}"


def test_csv_header_named_label_column(tmp_path):
    # Columns: odd (0/1), kind (the label, "no"/"yes" = odd), i. Label in the middle.
    rows = ["odd,kind,i"] + [f"{i % 2},{'yes' if i % 2 else 'no'},{i}" for i in range(20)]
    data = load(_write(tmp_path / "t.csv", "\n".join(rows)), label="kind",
                val_fraction=0.0, test_fraction=0.5)
    assert data.input_shape == (2,) and data.class_names == ("no", "yes")
    assert len(data.x_val) == 0 and len(data.x_train) == len(data.x_test) == 10
    # Each row keeps its label: standardized "odd" takes one value per class,
    # the larger one for "yes".
    pairs = np.unique(np.column_stack([data.y_train, data.x_train[:, 0]]), axis=0)
    assert pairs.shape == (2, 2) and pairs[1, 1] > pairs[0, 1]


def test_csv_no_header_last_column_or_index_label(tmp_path):
    name = _write(tmp_path / "n.csv", "\n".join(f"{i}.5,{i % 2},{i % 3}" for i in range(30)))
    last = load(name)
    assert last.input_shape == (2,) and last.class_names == ("0", "1", "2")
    by_index = load(name, label=1)
    assert by_index.input_shape == (2,) and by_index.class_names == ("0", "1")
    with pytest.raises(ValueError, match=r"label=\'kind\' names a column.*no header row"):
        load(name, label="kind")
    with pytest.raises(ValueError, match=r"label must be a column index in \[-3, 3\), got 5"):
        load(name, label=5)


def test_csv_ragged_rows(tmp_path):
    name = _write(tmp_path / "r.csv", "1,2,0\n3,4,1\n5,1\n")
    with pytest.raises(ValueError, match=r"line 3: expected 3 columns.*got 2"):
        load(name)


def test_csv_non_numeric_feature(tmp_path):
    name = _write(tmp_path / "s.csv", "x1,x2,y\n1,2,0\n3,oops,1\n")
    with pytest.raises(ValueError, match=r"line 3, x2: features must be finite numbers, got 'oops'"):
        load(name)


def test_csv_unknown_label_column(tmp_path):
    name = _write(tmp_path / "u.csv", "x1,x2,y\n1,2,0\n3,4,1\n")
    with pytest.raises(ValueError, match=r"label='target' is not a column.*\['x1', 'x2', 'y'\]"):
        load(name, label="target")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match=r"Unknown dataset 'mnits'\. Did you mean 'mnist'") as info:
        load("mnits")
    assert "npz:PATH" in str(info.value) and "breast_cancer" in str(info.value)


@pytest.mark.parametrize("arg", ["val_fraction", "test_fraction"])
def test_fraction_out_of_range(arg):
    with pytest.raises(ValueError, match=rf"{arg} must be in \[0, 1\), got 1.5"):
        load("wine", **{arg: 1.5})


def test_offline_error_names_cache_and_npz_without_network(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(DatasetUnavailableError) as info:
        load("mnist", download=False)
    message = str(info.value)
    assert os.path.join(str(tmp_path), "datasets", "mnist.npz") in message
    assert "npz:PATH" in message and "download=False" in message


def test_download_failure_is_reported_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    with pytest.raises(DatasetUnavailableError, match=r"'cifar10'.*Name or service not known"):
        load("cifar10")


def _idx(path, array, header_len):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(b"\0" * header_len + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_a_fake_cache(tmp_path, monkeypatch, no_network):
    # A tiny cache in keras.datasets' own layout (IDX files, 8/16-byte headers):
    # 50 train images (5 per class) and 10 test images, pixel value = label * 20.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    folder = tmp_path / "datasets" / "fashion-mnist"
    y_train, y_test = np.arange(50) % 10, np.arange(10)
    _idx(folder / "train-labels-idx1-ubyte.gz", y_train, 8)
    _idx(folder / "train-images-idx3-ubyte.gz", np.repeat(y_train * 20, 784), 16)
    _idx(folder / "t10k-labels-idx1-ubyte.gz", y_test, 8)
    with pytest.raises(DatasetUnavailableError, match="t10k-images-idx3-ubyte.gz") as info:
        load("fashion_mnist", download=False)
    assert "train-images" not in str(info.value)  # only the missing file is named
    _idx(folder / "t10k-images-idx3-ubyte.gz", np.repeat(y_test * 20, 784), 16)

    data = load("fashion_mnist", download=False)
    assert data.input_shape == (28, 28, 1) and data.num_classes == 10
    assert len(data.x_test) == 10 and len(data.x_val) == 10 and len(data.x_train) == 40
    np.testing.assert_allclose(data.x_test[:, 0, 0, 0], y_test * 20 / 255.0, atol=1e-7)
    np.testing.assert_allclose(data.x_train[:, 5, 5, 0], data.y_train * 20 / 255.0, atol=1e-7)
    flat = load("fashion_mnist", download=False, as_images=False)
    assert flat.input_shape == (784,)


# --- MNIST-1D: generated offline, cached -----------------------------------


@pytest.fixture
def nothing_downloads(monkeypatch, no_network):
    """Also refuses requests / urllib and mnist1d's own download path."""
    import urllib.request

    import mnist1d.data
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError(f"download attempted: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)
    monkeypatch.setattr(mnist1d.data, "get_dataset", refuse)


@pytest.fixture
def mnist1d_cache(tmp_path, monkeypatch, nothing_downloads):
    """An empty Keras cache: the first load generates MNIST-1D there."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    return tmp_path / "datasets"


def test_mnist1d_generated_offline_shapes_split_and_standardization(mnist1d_cache):
    from mnist1d.data import get_dataset_args, make_dataset

    python_state, numpy_state = __import__("random").getstate(), np.random.get_state()
    data = load("mnist1d", seed=0)
    # make_dataset seeds the global generators; load puts them back.
    assert __import__("random").getstate() == python_state
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    assert data.input_shape == (40,) and data.num_classes == 10 and data.task == "multiclass"
    assert data.class_names == tuple(str(c) for c in range(10))
    # The generator's split is kept: 4000 train (800 of them validation), 1000 test.
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (3200, 800, 1000)
    for y in (data.y_train, data.y_val, data.y_test):
        assert set(np.unique(y)) == set(range(10))
    reference = make_dataset(get_dataset_args())
    np.testing.assert_array_equal(data.y_test, reference["y_test"])  # test order kept
    np.testing.assert_array_equal(np.sort(np.concatenate([data.y_train, data.y_val])),
                                  np.sort(reference["y"]))
    train = data.x_train.astype(np.float64)
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1.0, atol=1e-5)
    # The test split is the generator's, standardized with the training statistics.
    pool = np.concatenate([reference["x"], reference["x_test"]])[:, 0]
    assert not np.allclose(data.x_test[:, 0], pool[4000:])
    # Validation is stratified: 20% of each class of the generator's training part.
    counts, totals = np.bincount(data.y_val), np.bincount(reference["y"])
    np.testing.assert_array_less(np.abs(counts - 0.2 * totals), 1.0 + 1e-9)


def test_mnist1d_sequence_form_for_conv1d(mnist1d_cache):
    vectors, sequences = load("mnist1d"), load("mnist1d", as_images=True)
    assert sequences.input_shape == (40, 1) and sequences.x_test.shape == (1000, 40, 1)
    np.testing.assert_array_equal(sequences.y_train, vectors.y_train)  # same split
    train = sequences.x_train.astype(np.float64)
    assert abs(train.mean()) < 1e-6 and abs(train.std() - 1.0) < 1e-6
    # One mean and std for the channel: each test signal (the generator's order)
    # is one affine map of the generator's signal, so its shape is kept; the
    # vectors, standardized per position, are not.
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())["x_test"].ravel()
    for data, affine in ((sequences, True), (vectors, False)):
        slope, offset = np.polyfit(raw, data.x_test.ravel().astype(np.float64), 1)
        residual = np.abs(data.x_test.ravel() - (slope * raw + offset)).max()
        assert (residual < 1e-5) == affine
    assert "sequences (40, 1)" in sequences.description


def test_mnist1d_deterministic_and_seeded(mnist1d_cache):
    a, b, c = load("mnist1d", seed=0), load("mnist1d", seed=0), load("mnist1d", seed=1)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.y_train, c.y_train)  # another validation draw
    np.testing.assert_array_equal(a.y_test, c.y_test)  # the same test split


def test_mnist1d_cache_reused_and_corrupt_cache_regenerated(mnist1d_cache, monkeypatch):
    import mnist1d.data

    first = load("mnist1d")
    files = list(mnist1d_cache.glob("mnist1d-*.npz"))
    assert len(files) == 1
    assert not list(mnist1d_cache.glob(".mnist1d-*"))  # no temporary file left

    def no_generation(*args, **kwargs):
        raise AssertionError("regenerated although the cache is valid")

    monkeypatch.setattr(mnist1d.data, "make_dataset", no_generation)
    cached = load("mnist1d")
    np.testing.assert_array_equal(cached.x_train, first.x_train)
    monkeypatch.undo()  # the generator back, the network still refused
    monkeypatch.setenv("KERAS_HOME", str(mnist1d_cache.parent))
    _refuse_downloads(monkeypatch)

    files[0].write_bytes(b"not an npz file")
    with pytest.warns(UserWarning, match=r"mnist1d cache .*mnist1d-.*\.npz is not readable"):
        again = load("mnist1d")
    np.testing.assert_array_equal(again.x_test, first.x_test)
    with np.load(files[0]) as archive:  # rewritten whole
        assert archive["x"].shape == (4000, 40)


def _refuse_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# --- validation at the door ------------------------------------------------


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


def _xy(n=60, classes=3, features=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)), np.arange(n) % classes


def _with_nan(array, index=(5, 1)):
    array = np.array(array, dtype=np.float64)
    array[index] = np.nan
    return array


BAD_NPZ = {
    "nan feature": (lambda x, y: {"x": _with_nan(x), "y": y},
                    r"x must be finite, got 1 NaN or inf values \(first at index \(5, 1\): nan\)"),
    "inf test feature": (lambda x, y: {"x_train": x, "y_train": y,
                                       "x_test": np.full((6, 4), np.inf), "y_test": y[:6]},
                         r"x_test must be finite, got 24 NaN or inf values"),
    "nan label": (lambda x, y: {"x": x, "y": _with_nan(y, 7)},
                  r"y must be finite, got 1 NaN or inf values \(first at index \(7,\)"),
    "one class": (lambda x, y: {"x": x, "y": np.full(len(y), 4)},
                  r"y must hold at least 2 classes for a classification, got one class \('4'\)"),
    "continuous label": (lambda x, y: {"x": x, "y": x[:, 0] * 3.7},
                         r"y must be class labels, got a continuous-looking target "
                         r"\(60 distinct values, not all integers.*task='regression'"),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_npz_bad_values_refused(tmp_path, case):
    make, message = BAD_NPZ[case]
    x, y = _xy()
    with pytest.raises(ValueError, match=message) as info:
        load(_npz(tmp_path, **make(x, y)))
    assert "npz file" in str(info.value) and "array(" not in str(info.value)


BAD_CSV = {
    "nan feature": ("a,b,y\n1,2,0\n3,nan,1\n", {},
                    r"line 3, b: features must be finite numbers, got 'nan'"),
    "inf feature": ("1,2,0\ninf,4,1\n", {}, r"line 2, column 0: .*got 'inf'"),
    "nan label": ("a,b,y\n1,2,0\n3,4,NaN\n", {},
                  r"line 3, label column 'y': labels must be finite numbers or names, got 'NaN'"),
    "empty label": ("a,b,y\n1,2,0\n3,4, \n", {}, r"line 3, label column 'y'.*got ''"),
    "continuous label": (
        "price,kind\n" + "\n".join(f"{i * 1.37:.2f},{i % 2}" for i in range(30)),
        {"label": "price"},
        r"label column 'price' must be class labels, got a continuous-looking target "
        r"\(30 distinct values, not all integers, e.g. 1.37\)",
    ),
    "one class": ("a,y\n1,cat\n2,cat\n3,cat\n", {},
                  r"label column 'y' must hold at least 2 classes.*got one class \('cat'\)"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_csv_bad_values_refused(tmp_path, case):
    text, kwargs, message = BAD_CSV[case]
    with pytest.raises(ValueError, match=message):
        load(_write(tmp_path / "bad.csv", text), **kwargs)


def test_csv_numeric_labels_sort_as_numbers_and_merge_spellings(tmp_path):
    rows = [f"{i},{[2, 10, 1][i % 3]}" for i in range(29)] + ["29,1.0"]
    data = load(_write(tmp_path / "n.csv", "\n".join(rows)), val_fraction=0.0)
    assert data.class_names == ("1", "2", "10")  # numeric order; "1.0" is class "1"


def test_few_examples_leave_a_split_without_a_class(tmp_path):
    # One example per class: a 60% test split takes each class's only example.
    name = _write(tmp_path / "one.csv", "f,kind\n1,a\n2,b\n3,c\n")
    with pytest.raises(ValueError, match=r"too few examples for val_fraction=0.0, "
                       r"test_fraction=0.6: the train split has no example of classes "
                       r"'a', 'b', 'c' \(1, 1, 1 in all\)"):
        load(name, val_fraction=0.0, test_fraction=0.6)
    # Ten of two classes, two of a third: the 20% splits miss the rare class.
    x, y = _xy(22)
    y = np.array([0, 1] * 10 + [2, 2])
    with pytest.raises(ValueError, match=r"the test split has no example of class '2' "
                       r"\(2 in all\)"):
        load(_npz(tmp_path, x=x, y=y))


@pytest.mark.parametrize("value", ["no", 1, 0.0, "True"])
def test_as_images_must_be_a_bool(value):
    with pytest.raises(ValueError, match=rf"as_images must be None, True or False, got {value!r}"):
        load("wine", as_images=value)


def test_garbage_npz_is_named_not_a_pickle_hint(tmp_path):
    for content in (b"garbage bytes, not a zip", b"PK\x03\x04 truncated zip"):
        path = tmp_path / "junk.npz"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=rf"{path} is not a valid \.npz file") as info:
            load(f"npz:{path}")
        assert "pickle" not in str(info.value)
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match=r"one\.npy is not a valid \.npz file: it holds a single"):
        load(f"npz:{single}")
    objects = tmp_path / "objects.npz"
    np.savez(objects, x=np.zeros((4, 2)), y=np.array([0, "a", None, 1], dtype=object))
    with pytest.raises(ValueError, match=r"y holds Python objects \(dtype object\)") as info:
        load(f"npz:{objects}")
    assert "allow_pickle" not in str(info.value)


@pytest.mark.parametrize("name,close", [("mnist1", "mnist1d"), ("MNIST1D", "mnist1d"),
                                        ("breast-cancer", "breast_cancer")])
def test_bad_name_answered_with_close_matches(name, close):
    with pytest.raises(ValueError, match=rf"Unknown dataset '{name}'\. Did you mean '{close}'"):
        load(name)


def test_name_must_be_a_string():
    with pytest.raises(ValueError, match=r"name must be a dataset name \(digits, .*mnist1d.*\), got 7"):
        load(7)


# --- from_arrays and check ---------------------------------------------------


def test_from_arrays_xy_split_stratified_features_kept():
    x, y = _xy(100, classes=4)
    data = datasets.from_arrays((x, y), seed=3)
    assert (data.name, data.task, data.num_classes) == ("arrays", "multiclass", 4)
    assert data.class_names == ("0", "1", "2", "3") and data.input_shape == (4,)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (60, 20, 20)
    for split in (data.y_val, data.y_test):
        np.testing.assert_array_equal(np.bincount(split), [5, 5, 5, 5])
    # Not standardized: every row is one of the given rows, as float32.
    given = {tuple(row) for row in x.astype(np.float32)}
    assert data.x_train.dtype == np.float32 and all(tuple(r) in given for r in data.x_train)
    again = datasets.from_arrays((x.tolist(), y.tolist()), seed=3)  # lists work too
    np.testing.assert_array_equal(again.x_test, data.x_test)
    assert not np.array_equal(datasets.from_arrays((x, y), seed=4).y_train, data.y_train)


def test_from_arrays_given_validation_and_test():
    (x, y), (x_val, y_val), (x_test, y_test) = _xy(50), _xy(12, seed=1), _xy(9, seed=2)
    two = datasets.from_arrays(((x, y), (x_val, y_val)), test_fraction=0.2)
    np.testing.assert_array_equal(two.x_val, x_val.astype(np.float32))  # kept, in order
    # The test split comes out of (x, y), 20% per class: classes of 17, 17, 16 give 3 each.
    assert (len(two.x_train), len(two.x_test)) == (41, 9)
    three = datasets.from_arrays(((x, y), (x_val, y_val), (x_test, y_test)))
    np.testing.assert_array_equal(three.y_test, y_test)
    assert len(three.x_train) == 50  # nothing carved out


def test_from_arrays_label_kinds():
    x, y = _xy(60)
    names = np.array(["cat", "dog", "eel"])[y]
    strings = datasets.from_arrays((x, names))
    assert strings.class_names == ("cat", "dog", "eel") and strings.y_train.dtype == np.int32
    one_hot = datasets.from_arrays((x, np.eye(3)[y]), seed=0)
    np.testing.assert_array_equal(one_hot.y_test, datasets.from_arrays((x, y), seed=0).y_test)
    column = datasets.from_arrays((x, y[:, None].astype(float)))
    assert (column.task, column.num_classes) == ("multiclass", 3)
    shifted = datasets.from_arrays((x, y + 5))
    assert shifted.class_names == ("5", "6", "7") and shifted.y_train.max() == 2
    binary = datasets.from_arrays((x, y % 2), task="binary")
    assert (binary.task, binary.num_classes) == ("binary", 2)
    assert datasets.from_arrays((x, y % 2)).task == "multiclass"  # never inferred binary


def test_from_arrays_regression_targets_kept_on_their_scale():
    x, _ = _xy(80)
    target = 1000.0 + 250.0 * x[:, 0]
    data = datasets.from_arrays((x, target), seed=1)
    assert (data.task, data.num_classes, data.class_names) == ("regression", None, ())
    assert data.y_train.dtype == np.float32 and (len(data.y_val), len(data.y_test)) == (16, 16)
    pool = np.concatenate([data.y_train, data.y_val, data.y_test])
    np.testing.assert_allclose(np.sort(pool), np.sort(target.astype(np.float32)))
    integer = datasets.from_arrays((x, np.arange(80) % 3), task="regression")
    assert integer.task == "regression" and integer.y_train.dtype == np.float32
    multi = datasets.from_arrays((x, x[:, :2] * 2.5), task="regression")
    assert multi.y_train.shape[1:] == (2,)


BAD_ARRAYS = {
    "not a pair": (lambda x, y: x, r"dataset must be \(x, y\), \(\(x, y\), \(x_val, y_val\)\) or "
                   r".*got ndarray of shape \(60, 4\) and dtype float64"),
    "three loose arrays": (lambda x, y: (x, y, y), r"dataset must be .*got a tuple of 3: "
                           r"\(ndarray of shape \(60, 4\)"),
    "nan feature": (lambda x, y: (_with_nan(x), y), r"dataset x must be finite, got 1 NaN"),
    "inf label": (lambda x, y: (x, np.where(y == 1, np.inf, y)), r"dataset y must be finite"),
    "lengths": (lambda x, y: (x, y[:-1]), r"dataset y must have one label per example of x "
                r"\(60\), got 59"),
    "val shape": (lambda x, y: ((x, y), (x[:, :3], y)), r"dataset x_val must have examples "
                  r"of shape \(4,\) like x, got ndarray of shape \(60, 3\)"),
    "val lengths": (lambda x, y: ((x, y), (x, y[:5])), r"dataset y_val must have one label"),
    "one feature as 1-D": (lambda x, y: (x[:, 0], y), r"dataset x must be of shape "
                           r"\(N, features...\) \(one feature: x\[:, None\]\)"),
    "strings as features": (lambda x, y: (x.astype(str), y), r"dataset x must be numeric"),
    "one class": (lambda x, y: (x, np.zeros(60)), r"dataset: y must hold at least 2 classes"),
    "val one class": (lambda x, y: ((x, y), (x[:6], np.zeros(6))),
                      r"dataset.y_val must hold at least 2 classes, got only class '0'"),
    "test class unseen": (lambda x, y: ((x, y % 2), (x, y % 2), (x, y)),
                          r"dataset.y_train must hold every class, got no example of class '2'"),
    "multi-label": (lambda x, y: (x, np.ones((60, 3))), r"dataset y must be labels of shape "
                    r"\(N,\) or one-hot rows \(N, C\)"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
def test_from_arrays_refuses(case):
    make, message = BAD_ARRAYS[case]
    with pytest.raises(ValueError, match=message) as info:
        datasets.from_arrays(make(*_xy()))
    assert "[[" not in str(info.value)  # arrays are described, never printed


def test_from_arrays_task_specific_refusals():
    x, y = _xy()
    with pytest.raises(ValueError, match=r"exactly 2 classes for task 'binary', got 3"):
        datasets.from_arrays((x, y), task="binary")
    with pytest.raises(ValueError, match=r"continuous-looking target"):
        datasets.from_arrays((x, x[:, 0]), task="multiclass")
    with pytest.raises(ValueError, match=r"dataset y must be numbers for task 'regression'"):
        datasets.from_arrays((x, np.array(["a", "b"] * 30)), task="regression")
    with pytest.raises(ValueError, match=r"task must be one of 'multiclass', 'binary', "
                       r"'regression', got 'classification'"):
        datasets.from_arrays((x, y), task="classification")
    with pytest.raises(ValueError, match=r"test_fraction must be in \[0, 1\), got 1.0"):
        datasets.from_arrays((x, y), test_fraction=1.0)


def test_named_datasets_are_multiclass_and_pass_check():
    data = load("breast_cancer")
    assert (data.task, data.num_classes) == ("multiclass", 2)
    assert datasets.check(data) is data


BAD_DATASETS = {
    "nan feature": (lambda d: {"x_val": _with_nan(d.x_val, (0, 0))},
                    r"dataset.x_val must be finite, got 1 NaN"),
    "label out of range": (lambda d: {"y_test": d.y_test + 1},
                           r"dataset.y_test must hold class indices in \[0, 3\), got values "
                           r"in \[1, 3\]"),
    "lengths": (lambda d: {"y_train": d.y_train[:-2]},
                r"dataset.y_train must be one label per example of x_train"),
    "input shape": (lambda d: {"input_shape": (12,)},
                    r"dataset.x_train must be numeric, of shape \(N,\) \+ input_shape \(12,\)"),
    "num_classes": (lambda d: {"num_classes": 1}, r"dataset.num_classes must be an int >= 2"),
    "class missing in train": (lambda d: {"y_train": d.y_train % 2},
                               r"dataset.y_train must hold every class, got no example of "
                               r"class 'class_2'"),
    "regression with classes": (lambda d: {"task": "regression"},
                                r"dataset.num_classes must be None for task 'regression'"),
    "task": (lambda d: {"task": "ranking"}, r"dataset.task must be one of"),
    "empty train": (lambda d: {"x_train": d.x_train[:0], "y_train": d.y_train[:0]},
                    r"dataset.x_train must hold at least one example, got 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATASETS))
def test_check_refuses_a_bad_hand_made_dataset(case):
    import dataclasses

    make, message = BAD_DATASETS[case]
    data = load("wine")
    with pytest.raises(ValueError, match=message):
        datasets.check(dataclasses.replace(data, **make(data)))


def test_check_refuses_what_is_not_a_dataset():
    with pytest.raises(ValueError, match=r"dataset must be a kreg.datasets.Dataset, got "
                       r"'dict without x_train, y_train"):
        datasets.check({"x_train": 1})
