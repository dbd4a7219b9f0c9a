"""A study of the user's own model and data: keras.Model, builders, arrays,
tasks, compile settings, reproducible packs, the winner back."""

import os

import keras
import numpy as np
import pytest
from sklearn import datasets as sk_datasets

from kreg import tuning
from kreg.tuning import schema

GRID = dict(rates=(0.0, 0.5), norms=(None, "batch"), orders=("norm-act-drop",), seeds=2, epochs=2, batch_size=64, quiet=True)


def digits_arrays(n=600):
    x, y = sk_datasets.load_digits(return_X_y=True)
    return (x[:n] / 16.0).astype("float32"), y[:n]


def functional_model(outputs=10, activation="softmax", inputs=64):
    """A user's model: unseeded initializers, an inline activation and a Dropout layer."""
    x_in = keras.Input((inputs,))
    x = keras.layers.Dense(16, activation="relu")(x_in)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(x_in, keras.layers.Dense(outputs, activation=activation)(x))


def assert_same_rows(a, b, tolerance=1e-5):
    assert [r["key"] for r in a] == [r["key"] for r in b]
    for p, s in zip(a, b):
        assert p["status"] == s["status"] == "completed"
        for name in schema.MEASURED_COLUMNS:
            if name == "wall_time":
                continue
            if s[name] is None:
                assert p[name] is None, name
            else:
                assert p[name] == pytest.approx(s[name], abs=tolerance), (name, p, s)


def test_a_functional_model_with_unseeded_initializers_packs_like_it_runs_alone(tmp_path):
    model = functional_model()
    before = [w.copy() for w in model.get_weights()]
    data = digits_arrays()
    packed = tuning.Study(model, data, tmp_path / "packed", executor="packed", **GRID).run()
    sequential = tuning.Study(model, data, tmp_path / "seq", executor="sequential", **GRID).run()
    assert {r["worker"] for r in packed} == {"packed"}
    assert_same_rows(packed, sequential)
    # Reproducible: the same seed gives the same initial weights every time.
    again = tuning.Study(model, data, tmp_path / "again", executor="packed", **GRID).run()
    assert_same_rows(again, packed, tolerance=1e-7)
    # The user's model is never changed.
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    # Paired seeds start from the same kernels with and without batch norm.
    study = tuning.Study(model, data, tmp_path / "probe", **GRID)
    a = study.hypermodel.build_model({"norm": "none", "order": None, "rate": 0.5, "seed": 1})
    b = study.hypermodel.build_model({"norm": "batch", "order": "norm-act-drop", "rate": 0.0, "seed": 1})
    np.testing.assert_array_equal(a.layers[1].get_weights()[0], b.layers[1].get_weights()[0])


def test_a_binary_sigmoid_model_is_a_binary_task(tmp_path):
    x, y = sk_datasets.load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    model = functional_model(outputs=1, activation="sigmoid", inputs=30)
    grid = dict(GRID, epochs=8, batch_size=32)
    study = tuning.Study(model, (x, y), tmp_path / "b", **grid)
    assert study.task == "binary" and study.data.y_train.shape[1:] == (1,)
    rows = study.run()
    assert len(rows) == 8 and {r["worker"] for r in rows} == {"packed"}
    for row in rows:
        assert row["status"] == "completed" and 0.85 < row["final_val_accuracy"] <= 1
    sequential = tuning.Study(model, (x, y), tmp_path / "s", executor="sequential", **grid).run()
    assert_same_rows(rows, sequential)


def test_regression_on_diabetes_with_mse(tmp_path):
    x, y = sk_datasets.load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    y = ((y - y.mean()) / y.std()).astype("float32")

    def build(rate, norm=None, order="norm-act-drop", seed=0):
        inputs = keras.Input((10,))
        hidden = keras.layers.Dense(16, activation="relu")(inputs)
        hidden = keras.layers.Dropout(rate)(hidden)
        model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
        return tuning_retrofit(model, norm, order, rate, seed)

    grid = dict(GRID, rates=(0.0, 0.25, 0.5), epochs=3)
    study = tuning.Study(build, (x, y), tmp_path / "r", loss="mse", **grid)
    assert study.task == "regression" and study.data.num_classes is None
    rows = study.run()
    assert len(rows) == 12 and {r["worker"] for r in rows} == {"packed"}
    for row in rows:
        assert row["final_val_accuracy"] is None and row["gap"] is None and row["test_accuracy"] is None
        assert 0 < row["final_val_loss"] < 3  # standardized targets: MSE near 1 or below
    rec = tuning.recommend(rows)
    assert rec.seeds == 2 and rec.verdict == "too few paired seeds for a verdict"
    sequential = tuning.Study(build, (x, y), tmp_path / "s", loss="mse", executor="sequential", **grid).run()
    assert_same_rows(rows, sequential)


def tuning_retrofit(model, norm, order, rate, seed):
    import kreg

    return kreg.retrofit(model, norm=norm, order=order, rate=rate, seed=seed)


def test_a_builder_gets_only_the_arguments_it_declares(tmp_path):
    seen = []

    def build(rate):
        seen.append(rate)
        inputs = keras.Input((64,))
        x = keras.layers.Dropout(rate)(keras.layers.Dense(8, activation="relu")(inputs))
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

    rows = tuning.Study(build, digits_arrays(), tmp_path / "b", **dict(GRID, norms=(None,))).run()
    assert sorted({r["rate"] for r in rows}) == [0.0, 0.5] and set(seen) == {0.0, 0.5}


def test_the_users_optimizer_and_the_builders_own_compile_are_honoured(tmp_path):
    data = digits_arrays()
    frozen = tuning.Study(functional_model(), data, tmp_path / "sgd0", optimizer=keras.optimizers.SGD(0.0), **GRID).run()
    learned = tuning.Study(functional_model(), data, tmp_path / "adam", learning_rate=0.03, **GRID).run()
    for row in [r for r in frozen if r["norm"] == "none"]:  # learning rate 0: nothing moves
        # (with batch norm the moving statistics still move: they are no weights)
        assert row["best_epoch"] == 1 and row["final_val_loss"] == pytest.approx(row["best_val_loss"], abs=1e-6)
    assert np.mean([r["final_val_loss"] for r in learned]) < np.mean([r["final_val_loss"] for r in frozen]) - 0.3

    def compiled(rate, seed):
        model = tuning_retrofit(functional_model(), None, "act-drop", rate, seed)
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    rows = tuning.Study(compiled, data, tmp_path / "own", **dict(GRID, norms=(None,))).run()
    assert all(r["best_epoch"] == 1 and r["final_val_loss"] == pytest.approx(r["best_val_loss"], abs=1e-6) for r in rows)


def test_a_keras_file_is_studied_and_named_by_its_hash(tmp_path):
    path = str(tmp_path / "mine.keras")
    model = functional_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(path)
    study = tuning.Study(path, digits_arrays(), tmp_path / "k", **GRID)
    assert study.description["model"].startswith(os.path.abspath(path)) and "sha256" in study.description["model"]
    assert study.description["dataset"].startswith("arrays (sha256")
    assert len(study.run()) == 8


def test_normalization_only_is_studied_and_the_winner_comes_back(tmp_path):
    x, y = digits_arrays(900)
    grid = dict(GRID, rates=(0.0, 0.25, 0.5), norms=("batch",), orders=("norm-act-drop", "act-norm-drop"), seeds=3, epochs=3)
    study = tuning.Study("mlp", (x, y), tmp_path / "n", model_kwargs={"width": 16, "depth": 1}, **grid)
    rows = study.run()
    rec = tuning.recommend(rows)
    assert rec.shift is None and "No runs without normalization" in str(rec)
    best = study.best()
    assert best["norm"] == "batch" and best["rate"] in (0.0, 0.25, 0.5) and best["seeds"] == 3
    config = study.recommended_config()
    assert config["norm"] == "batch" and config["order"] == rec.best_order_with
    untrained = study.hypermodel.build_model(config)
    model = study.refit(epochs=20)
    for layer in ("block_1",):  # same configuration, now trained
        assert type(model.get_layer(layer).block.norm_layer).__name__ == "BatchNormalization"
        assert model.get_layer(layer).block.rate == pytest.approx(config["rate"])

    def accuracy(m):
        return np.mean(np.argmax(m.predict(study.data.x_test, verbose=0), axis=1) == study.data.y_test)

    assert accuracy(model) > 0.75 and accuracy(untrained) < 0.3  # trained (10 classes: chance is 0.1)


@pytest.mark.parametrize(
    "dataset, settings, message",
    [
        ((np.full((20, 64), np.nan), np.arange(20) % 2), {}, r"dataset"),
        ((np.zeros((20, 64)), np.arange(19) % 2), {}, r"dataset"),
        (None, {"model_kwargs": {"widht": 32}}, r"model_kwargs must be overrides of 'mlp' .*got \['widht'\]"),
        (None, {"model_kwargs": {"rate": 0.1}}, r"model_kwargs must be free of 'rate'"),
        ("wrong-width", {}, r"model must have an output of width 10 for task 'multiclass', got output width 3"),
        (None, {"task": "regression"}, r"task must be 'multiclass' for a zoo model"),
        (None, {"task": "binary"}, r"task must be 'multiclass' for labels of 10 classes"),
        (None, {"optimizer": 42}, r"optimizer must be an optimizer name"),
        (None, {"loss": "no_such_loss"}, r"loss must be a Keras loss name"),
        (None, {"learning_rate": "fast"}, r"learning_rate must be a number > 0, got 'fast'"),
    ],
)
def test_bad_models_and_data_are_refused_before_anything_is_written(tmp_path, dataset, settings, message):
    model = "mlp"
    if dataset == "wrong-width":
        model, dataset = functional_model(outputs=3), digits_arrays()
    elif dataset is None:
        dataset = digits_arrays()
    with pytest.raises(ValueError, match=message) as info:
        tuning.Study(model, dataset, tmp_path / "never", **dict(GRID, **settings))
    assert "array([" not in str(info.value)  # arrays are never printed whole
    assert not (tmp_path / "never").exists()
