import itertools
import os

import keras
import pytest
from study_process import TINY_STUDY

from kreg import models
from kreg import tuning
from kreg.tuning import packing
from kreg.tuning import schema


def grid_points(rates=(0.0, 0.5), seeds=(0, 1), orders=("norm-act-drop",)):
    """Every (norm, order, rate, seed) a grid must run: order only with norm."""
    points = {("none", None, r, s) for r, s in itertools.product(rates, seeds)}
    points |= {("batch", o, r, s) for o, r, s in itertools.product(orders, rates, seeds)}
    return points


def configs(rows):
    return sorted((r["norm"], r["order"], r["rate"], r["seed"]) for r in rows)


def test_grid_runs_every_point_once_and_resumes_without_training(tmp_path):
    directory = str(tmp_path / "study")
    rows = tuning.Study(directory=directory, **TINY_STUDY).run()
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
    again = tuning.Study(directory=directory, **TINY_STUDY).run()
    assert list(again) == list(rows)


def test_same_seed_same_initial_weights_with_and_without_bn():
    # The paired comparison rests on this: the builder gets the same seed.
    hypermodel = tuning.RegularizationHyperModel("mlp", input_shape=(64,), num_classes=10, seeds=2)
    a = hypermodel.build_model({"norm": "none", "order": None, "rate": 0.1, "seed": 1})
    b = hypermodel.build_model({"norm": "batch", "order": "norm-act-drop", "rate": 0.1, "seed": 1})
    kernels = [keras.ops.convert_to_numpy(m.get_layer("block_1").dense.kernel) for m in (a, b)]
    assert (kernels[0] == kernels[1]).all()


def test_nan_run_is_recorded_as_failed_and_the_study_goes_on(tmp_path):
    def builder(input_shape, num_classes, rate, **overrides):
        model = models.create("mlp", input_shape=input_shape, num_classes=num_classes, rate=rate, **overrides)
        if rate == 0.5:  # NaN predictions -> NaN loss
            return keras.Sequential([model, keras.layers.Rescaling(float("nan"))])
        return model

    rows = tuning.Study(directory=str(tmp_path / "s"), **dict(TINY_STUDY, model=builder, norms=(None,), seeds=1)).run()
    status = {(r["rate"], r["seed"]): r["status"] for r in rows}
    assert status == {(0.0, 0): "completed", (0.5, 0): "failed"}
    failed = [r for r in rows if r["status"] == "failed"]
    assert all("NaN" in r["message"] and r["final_val_loss"] is None for r in failed)


def test_random_tuner_runs_max_trials_distinct_points(tmp_path, capsys):
    rows = tuning.Study(directory=str(tmp_path / "r"), tuner="random", max_trials=2, **dict(TINY_STUDY, quiet=False)).run()
    assert capsys.readouterr().out.count("training run by run: packing needs the grid tuner, this study uses 'random'") == 1
    assert len(rows) == 2
    assert set(configs(rows)) <= grid_points()
    assert len(set(configs(rows))) == 2


def test_a_different_study_is_refused_and_nothing_is_lost(tmp_path):
    directory = str(tmp_path / "s")
    settings = dict(TINY_STUDY, norms=(None,), rates=(0.0,))
    rows = tuning.Study(directory=directory, **settings).run()
    with pytest.raises(tuning.StudyConflictError, match=r"holds a different study \(rates: \[0\.0\] there, \[0\.0, 0\.5\] here"):
        tuning.Study(directory=directory, **dict(settings, rates=(0.0, 0.5))).run()
    with pytest.raises(ValueError, match=r"different study \(dataset: 'digits' there, 'wine' here"):
        tuning.Study(directory=directory, **dict(settings, dataset="wine")).run()
    assert list(tuning.results(directory)) == list(rows)


def test_a_crashing_builder_is_reported_before_anything_is_written(tmp_path):
    def builder(**overrides):
        raise RuntimeError("broken builder")

    with pytest.raises(RuntimeError, match="broken builder"):
        tuning.Study(directory=str(tmp_path / "s"), **dict(TINY_STUDY, model=builder))
    assert not (tmp_path / "s").exists()


def test_a_foreign_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"is not empty and holds no kreg study"):
        tuning.Study(directory=str(tmp_path), **TINY_STUDY).run()
    assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"model": "mlpp"}, r"model must be a zoo model name .*got 'mlpp'"),
        ({"dataset": "digitz"}, r"Unknown dataset 'digitz'"),
        ({"tuner": "sgd"}, r"tuner must be one of .*got 'sgd'"),
        ({"metric": "f1"}, r"metric must be one of .*got 'f1'"),
        ({"rates": (0.0, 1.0)}, r"rates must be in \[0, 1\), got 1\.0"),
        ({"rates": (-0.1,)}, r"rates must be in \[0, 1\), got -0\.1"),
        ({"seeds": 0}, r"seeds must be an int >= 1, got 0"),
        ({"norms": (None, "instance")}, r"norms must be one of .*got 'instance'"),
        ({"orders": ("norm-act-act",)}, r"orders must be .*got 'norm-act-act'"),
        ({"epochs": 0}, r"epochs must be an int >= 1, got 0"),
        ({"executor": "fast"}, r"executor must be one of 'auto', 'packed', 'sequential', got 'fast'"),
        ({"max_pack": 0}, r"max_pack must be an int >= 1, got 0"),
        ({"memory_budget": -1}, r"memory_budget must be a finite number > 0, got -1"),
        ({"learning_rate": -1}, r"learning_rate must be a finite number > 0, got -1"),
        ({"quiet": "no"}, r"quiet must be True or False, got 'no'"),
    ],
)
def test_bad_input_is_refused_before_touching_disk(tmp_path, override, message):
    directory = tmp_path / "never"
    with pytest.raises(ValueError, match=message):
        tuning.Study(directory=str(directory), **dict(TINY_STUDY, **override))
    assert not directory.exists()


def test_image_zoo_models_get_image_data_and_vector_models_vectors(tmp_path):
    # Building a Study loads its data and checks its grid; nothing is trained.
    conv = tuning.Study("convnet", "digits", tmp_path / "conv", rates=[0.1], seeds=1, quiet=True)
    mlp = tuning.Study("mlp", "digits", tmp_path / "mlp", rates=[0.1], seeds=1, quiet=True)
    assert conv.data.input_shape == (8, 8, 1) and conv.data.x_train.shape[1:] == (8, 8, 1)
    assert mlp.data.input_shape == (64,) and mlp.data.x_train.shape[1:] == (64,)


def test_packed_and_sequential_studies_record_the_same_rows_and_recommend_alike(tmp_path):
    settings = dict(TINY_STUDY, epochs=2, rates=(0.0, 0.6), model_kwargs={"width": 16, "depth": 1})
    sequential = tuning.Study(directory=str(tmp_path / "seq"), executor="sequential", **settings).run()
    packed = tuning.Study(directory=str(tmp_path / "packed"), executor="packed", **settings).run()
    assert [r["key"] for r in packed] == [r["key"] for r in sequential]
    assert {r["worker"] for r in packed} == {"packed"}
    for p, s in zip(packed, sequential):
        assert p["status"] == s["status"] == "completed"
        # Same initial weights, batches and dropout masks: the same numbers up
        # to float rounding (2 epochs of 9 steps, float32).
        for name in schema.MEASURED_COLUMNS:
            if name != "wall_time":
                assert p[name] == pytest.approx(s[name], abs=1e-5), (name, p, s)
    a, b = tuning.recommend(packed), tuning.recommend(sequential)
    assert (a.best_rate_without, a.best_rate_with, a.best_order_with, a.verdict) == (
        b.best_rate_without,
        b.best_rate_with,
        b.best_order_with,
        b.verdict,
    )
    assert str(a) == str(b)


def test_a_study_stopped_during_a_pack_keeps_the_finished_packs(tmp_path, monkeypatch):
    directory = str(tmp_path / "s")
    run = packing.PackTrainer.run
    packs = []

    def stopped_at_the_second_pack(self, configs, **kwargs):
        packs.append(configs)
        if len(packs) == 2:
            raise KeyboardInterrupt  # the process dies while the second pack trains
        return run(self, configs, **kwargs)

    monkeypatch.setattr(packing.PackTrainer, "run", stopped_at_the_second_pack)
    with pytest.raises(KeyboardInterrupt):
        tuning.Study(directory=directory, **TINY_STUDY).run()
    # Packs of 4: the first pack (seed 0's 4 runs) is recorded, the second is not.
    before = {row["key"]: row for row in tuning.results(directory)}
    assert sorted((r["seed"], r["status"]) for r in before.values()) == [(0, "completed")] * 4

    rows = tuning.Study(directory=directory, **TINY_STUDY).run()
    assert configs(rows) == sorted(grid_points())
    # Only the unfinished pack trained again; finished rows are untouched.
    assert [sorted({c["seed"] for c in pack}) for pack in packs[2:]] == [[1]]
    for row in rows:
        if row["key"] in before:
            assert row == before[row["key"]]


def test_a_study_that_cannot_pack_says_so_once_and_runs_one_by_one(tmp_path, capsys):
    def regularized(input_shape, num_classes, rate, seed, **overrides):
        inputs = keras.Input(input_shape)
        x = keras.layers.Dropout(rate, seed=seed)(inputs)
        dense = keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer="l2")
        return keras.Model(inputs, dense(x))

    settings = dict(TINY_STUDY, model=regularized, norms=(None,), seeds=1, quiet=False)
    rows = tuning.Study(directory=str(tmp_path / "s"), **settings).run()
    printed = capsys.readouterr().out
    assert printed.count("training run by run") == 1
    assert "packing does not apply: the model of" in printed and "adds losses of its own" in printed
    assert configs(rows) == [("none", None, 0.0, 0), ("none", None, 0.5, 0)]
    assert "packed" not in {r["worker"] for r in rows}
