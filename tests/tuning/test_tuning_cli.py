"""`kreg study`, `kreg tune`, `kreg report`: exit codes 0 ok, 2 bad arguments, 1 failure."""

import json

import pytest

from kreg import cli
from kreg import tuning

TINY = ["--rates", "0", "0.5", "--norms", "none", "batch", "--orders", "norm-act-drop", "--seeds", "1", "--epochs", "1", "--batch-size", "256", "--quiet"]


def test_tune_then_report(tmp_path, capsys):
    out = str(tmp_path / "study")
    assert cli.main(["tune", "mlp", "digits", *TINY, "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "Recommendation for mlp on digits" in printed and "report.md" in printed
    study = json.loads((tmp_path / "study" / "study.json").read_text())
    assert (study["rates"], study["norms"], study["seeds"], study["epochs"]) == ([0.0, 0.5], ["none", "batch"], [0], 1)
    assert len(tuning.results(out)) == 4
    (tmp_path / "study" / "report.md").unlink()
    assert cli.main(["report", out, "--tensorboard"]) == 0
    assert "Recommendation" in (tmp_path / "study" / "report.md").read_text()
    assert f"tensorboard --logdir {out}/tensorboard" in capsys.readouterr().out
    sessions = [p for p in (tmp_path / "study" / "tensorboard").iterdir() if p.is_dir()]
    assert len(sessions) == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["tune", "mlpp", "digits"], "got 'mlpp'"),
        (["tune", "mlp", "digitz"], "Unknown dataset 'digitz'"),
        (["tune", "mlp", "digits", "--tuner", "sgd"], "tuner must be one of"),
        (["tune", "mlp", "digits", "--metric", "f1"], "metric must be one of"),
        (["tune", "mlp", "digits", "--rates", "0.2", "1.5"], "got 1.5"),
        (["tune", "mlp", "digits", "--seeds", "0"], "seeds must be an int >= 1, got 0"),
        (["tune", "mlp", "digits", "--norms", "none", "instance"], "got 'instance'"),
        (["tune", "mlp", "digits", "--distributed", "0"], "--distributed must be >= 1 worker, got 0"),
        (["report", "nowhere-at-all"], "holds no kreg study"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tune", "mlp"])
    assert exit_info.value.code == 2
    assert "dataset" in capsys.readouterr().err


def test_study_refuses_a_directory_of_another_study(tmp_path, capsys):
    out = str(tmp_path / "other")
    tuning.ledger.write_study(out, {"model": "snn", "dataset": "wine"})
    assert cli.main(["study", "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds a different study" in err and "model: 'snn' there, 'mlp' here" in err


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), ValueError("a bad value deep inside")])
def test_a_failing_study_exits_1_even_with_a_value_error_that_is_no_conflict(tmp_path, capsys, monkeypatch, error):
    def broken(self):
        raise error

    monkeypatch.setattr(tuning.Study, "run", broken)
    assert cli.main(["tune", "mlp", "digits", *TINY, "--out", str(tmp_path / "s")]) == 1
    assert f"the study failed: {type(error).__name__}: {error}" in capsys.readouterr().err


def test_executor_choice_reaches_the_study(tmp_path, capsys, monkeypatch):
    chosen = []
    monkeypatch.setattr(tuning.Study, "run", lambda self: chosen.append(self.executor) or tuning.ledger.Results())
    monkeypatch.setattr(tuning, "report", lambda *args, **kwargs: None)
    assert cli.main(["tune", "mlp", "digits", *TINY, "--out", str(tmp_path / "s"), "--executor", "sequential"]) == 0
    assert cli.main(["study", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    assert chosen == ["sequential", "auto"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tune", "mlp", "digits", "--executor", "fast"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_every_tune_option_reaches_the_study_and_the_distributed_commands(capsys, monkeypatch):
    given = [
        "--rates", "0", "0.25", "--norms", "none", "layer", "--orders", "act-norm-drop", "--seeds", "3",
        "--epochs", "4", "--batch-size", "16", "--tuner", "random", "--max-trials", "5", "--metric", "val_accuracy",
        "--trial-timeout", "30", "--executor", "sequential", "--task", "multiclass", "--loss",
        "categorical_hinge", "--optimizer", "sgd", "--learning-rate", "0.05", "--label", "y", "--quiet",
    ]
    assert sorted(flag for flag in given if flag.startswith("--")) == sorted(flag for flag, _, _ in cli.TUNE_OPTIONS)
    settings = []
    monkeypatch.setattr(cli, "_run_study", lambda study_settings, out: settings.append((study_settings, out)) or 0)
    assert cli.main(["tune", "mlp", "wine", *given, "--out", "o"]) == 0
    assert settings == [
        (
            dict(model="mlp", dataset="wine", rates=[0.0, 0.25], norms=["none", "layer"], orders=["act-norm-drop"], seeds=3,
                 epochs=4, batch_size=16, tuner="random", max_trials=5, metric="val_accuracy", trial_timeout=30.0,
                 executor="sequential", task="multiclass", loss="categorical_hinge", optimizer="sgd",
                 learning_rate=0.05, label="y", quiet=True),
            "o",
        )
    ]
    assert cli.main(["tune", "mlp", "wine", *given, "--out", "o", "--distributed", "1"]) == 0
    chief = [line for line in capsys.readouterr().out.splitlines() if line.startswith("KERASTUNER_TUNER_ID=chief")][0]
    # The rebuilt command parses back to the same study.
    repeated = chief.split(" kreg tune ")[1].split()
    assert cli.main(["tune", *repeated]) == 0
    assert settings[1] == settings[0]


def test_distributed_prints_the_commands(capsys):
    assert cli.main(["tune", "mlp", "digits", "--seeds", "2", "--distributed", "2", "--ip", "10.0.0.5", "--port", "9000"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("KERASTUNER_TUNER_ID=")]
    assert [line.split()[0] for line in lines] == ["KERASTUNER_TUNER_ID=chief", "KERASTUNER_TUNER_ID=worker0", "KERASTUNER_TUNER_ID=worker1"]
    assert all("KERASTUNER_ORACLE_IP=10.0.0.5 KERASTUNER_ORACLE_PORT=9000 kreg tune mlp digits --seeds 2" in line for line in lines)
    assert all(line.endswith("--out kreg-mlp-digits") for line in lines)


def test_tune_a_keras_file_on_a_csv_with_a_label_column_saves_the_best_model(tmp_path, capsys):
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 5)).astype("float32")
    label = (x[:, 0] + x[:, 1] > 0).astype(int)
    table = np.column_stack([label, x])
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text("target,a,b,c,d,e\n" + "\n".join(",".join(f"{v:g}" for v in row) for row in table))
    inputs = keras.Input((5,))
    hidden = keras.layers.Dropout(0.1)(keras.layers.Dense(8, activation="relu")(inputs))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden)).save(tmp_path / "mine.keras")
    out = str(tmp_path / "study")
    argv = ["tune", str(tmp_path / "mine.keras"), f"csv:{csv_path}", "--label", "target", "--rates", "0", "0.3",
            "--norms", "none", "batch", "--orders", "norm-act-drop", "--seeds", "2", "--epochs", "2", "--quiet", "--out", out]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "Best model:" in printed and "best.keras" in printed
    best = keras.saving.load_model(tmp_path / "study" / "best.keras", safe_mode=True)
    assert best.predict(x[:3], verbose=0).shape == (3, 2)
    assert len(tuning.results(out)) == 8  # (none + batch) x 2 rates x 2 seeds


def test_tune_a_builder_named_module_colon_function(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_builders.py").write_text(
        "import keras\n"
        "def small(rate, seed):\n"
        "    inputs = keras.Input((13,))\n"
        "    x = keras.layers.Dropout(rate, seed=seed)(keras.layers.Dense(8, activation='relu')(inputs))\n"
        "    return keras.Model(inputs, keras.layers.Dense(3, activation='softmax')(x))\n"
    )
    monkeypatch.chdir(tmp_path)
    argv = ["tune", "my_builders:small", "wine", "--rates", "0", "0.5", "--norms", "none", "--seeds", "1", "--epochs", "1", "--quiet"]
    assert cli.main(argv) == 0
    assert len(tuning.results(str(tmp_path / "kreg-my_builders_small-wine"))) == 2
    assert cli.main(["tune", "my_builders:missing", "wine"]) == 2
    assert "model 'my_builders:missing' names no builder function" in capsys.readouterr().err
