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
    with pytest.raises(ValueError, match=r"line 3, x2: features must be numbers, got 'oops'"):
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
