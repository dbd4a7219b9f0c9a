import itertools
import os

import keras
import pytest

from kreg import models
from kreg import tuning

# Tiny settings: the zoo mlp with one 8-unit block, 1 epoch on digits.
TINY = dict(
    model="mlp",
    dataset="digits",
    rates=(0.0, 0.5),
    norms=(None, "batch"),
    orders=("norm-act-drop",),
    seeds=2,
    epochs=1,
    batch_size=128,
    model_kwargs={"width": 8, "depth": 1},
    quiet=True,
)


def grid_points(rates=(0.0, 0.5), seeds=(0, 1), orders=("norm-act-drop",)):
    """Every (norm, order, rate, seed) a grid must run: order only with norm."""
    points = {("none", None, r, s) for r, s in itertools.product(rates, seeds)}
    points |= {("batch", o, r, s) for o, r, s in itertools.product(orders, rates, seeds)}
    return points


def configs(rows):
    return sorted((r["norm"], r["order"], r["rate"], r["seed"]) for r in rows)


def test_grid_runs_every_point_once_and_resumes_without_training(tmp_path):
    directory = str(tmp_path / "study")
    rows = tuning.Study(directory=directory, **TINY).run()
    # 2 rates x 2 seeds without BN + 1 order x 2 rates x 2 seeds with BN.
    assert configs(rows) == sorted(grid_points())
    for row in rows:
        assert row["status"] == "completed"
        assert row["epochs"] == 1
        assert 0 <= row["final_val_accuracy"] <= 1 and row["final_val_loss"] > 0
        assert row["best_val_loss"] == row["final_val_loss"]  # one epoch
        assert row["gap"] == pytest.approx(row["final_train_accuracy"] - row["final_val_accuracy"])
        assert row["test_loss"] > 0 and row["wall_time"] > 0
    # Running again trains nothing: every row stays exactly as it was.
    again = tuning.Study(directory=directory, **TINY).run()
    assert list(again) == list(rows)


def test_same_seed_same_initial_weights_with_and_without_bn():
    # The paired comparison rests on this: the builder gets the same seed.
    hypermodel = tuning.RegularizationHyperModel("mlp", input_shape=(64,), num_classes=10, seeds=2)
    a = hypermodel.builder(input_shape=(64,), num_classes=10, **hypermodel.overrides({"norm": "none", "rate": 0.1, "seed": 1}))
    b = hypermodel.builder(
        input_shape=(64,),
        num_classes=10,
        **hypermodel.overrides({"norm": "batch", "order": "norm-act-drop", "rate": 0.1, "seed": 1}),
    )
    kernels = [keras.ops.convert_to_numpy(m.get_layer("block_1").dense.kernel) for m in (a, b)]
    assert (kernels[0] == kernels[1]).all()


def test_nan_run_is_recorded_as_failed_and_the_study_goes_on(tmp_path):
    def builder(input_shape, num_classes, rate, **overrides):
        model = models.create("mlp", input_shape=input_shape, num_classes=num_classes, rate=rate, **overrides)
        if rate == 0.5:  # NaN predictions -> NaN loss
            return keras.Sequential([model, keras.layers.Rescaling(float("nan"))])
        return model

    rows = tuning.Study(directory=str(tmp_path / "s"), **dict(TINY, model=builder, norms=(None,), seeds=1)).run()
    status = {(r["rate"], r["seed"]): r["status"] for r in rows}
    assert status == {(0.0, 0): "completed", (0.5, 0): "failed"}
    failed = [r for r in rows if r["status"] == "failed"]
    assert all("NaN" in r["message"] and r["final_val_loss"] is None for r in failed)


def test_random_tuner_runs_max_trials_distinct_points(tmp_path):
    rows = tuning.Study(directory=str(tmp_path / "r"), tuner="random", max_trials=2, **TINY).run()
    assert len(rows) == 2
    assert set(configs(rows)) <= grid_points()
    assert len(set(configs(rows))) == 2


def test_a_different_study_is_refused_and_nothing_is_lost(tmp_path):
    directory = str(tmp_path / "s")
    settings = dict(TINY, norms=(None,), rates=(0.0,))
    rows = tuning.Study(directory=directory, **settings).run()
    with pytest.raises(ValueError, match=r"holds a different study \(rates: \[0\.0\] there, \[0\.0, 0\.5\] here"):
        tuning.Study(directory=directory, **dict(settings, rates=(0.0, 0.5))).run()
    with pytest.raises(ValueError, match=r"different study \(dataset: 'digits' there, 'wine' here"):
        tuning.Study(directory=directory, **dict(settings, dataset="wine")).run()
    assert list(tuning.results(directory)) == list(rows)


def test_a_crashing_builder_stops_the_study_with_its_error(tmp_path):
    def builder(**overrides):
        raise RuntimeError("broken builder")

    with pytest.raises(Exception, match="broken builder"):
        tuning.Study(directory=str(tmp_path / "s"), **dict(TINY, model=builder)).run()
    # A bug is not a result: nothing is recorded, so a fixed builder reruns it.
    assert list(tuning.results(str(tmp_path / "s"))) == []


def test_a_foreign_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"is not empty and holds no kreg study"):
        tuning.Study(directory=str(tmp_path), **TINY).run()
    assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"model": "mlpp"}, r"model must be a zoo model name .*got 'mlpp'"),
        ({"dataset": "digitz"}, r"Unknown dataset 'digitz'"),
        ({"tuner": "sgd"}, r"tuner must be one of .*got 'sgd'"),
        ({"metric": "f1"}, r"metric must be one of .*got 'f1'"),
        ({"rates": (0.0, 1.0)}, r"rates must be numbers in \[0, 1\), got 1\.0"),
        ({"rates": (-0.1,)}, r"rates must be numbers in \[0, 1\), got -0\.1"),
        ({"seeds": 0}, r"seeds must be >= 1 .*got 0"),
        ({"norms": (None, "instance")}, r"norms must be taken from .*got 'instance'"),
        ({"orders": ("norm-act-act",)}, r"orders must be .*got 'norm-act-act'"),
        ({"epochs": 0}, r"epochs must be an int >= 1, got 0"),
    ],
)
def test_bad_input_is_refused_before_touching_disk(tmp_path, override, message):
    directory = tmp_path / "never"
    with pytest.raises(ValueError, match=message):
        tuning.Study(directory=str(directory), **dict(TINY, **override))
    assert not directory.exists()


def test_image_zoo_models_get_image_data_and_vector_models_vectors(tmp_path):
    # Building a Study loads its data and checks its grid; nothing is trained.
    conv = tuning.Study("convnet", "digits", tmp_path / "conv", rates=[0.1], seeds=1, quiet=True)
    mlp = tuning.Study("mlp", "digits", tmp_path / "mlp", rates=[0.1], seeds=1, quiet=True)
    assert conv.data.input_shape == (8, 8, 1) and conv.data.x_train.shape[1:] == (8, 8, 1)
    assert mlp.data.input_shape == (64,) and mlp.data.x_train.shape[1:] == (64,)
