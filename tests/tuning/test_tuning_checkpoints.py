"""Pack checkpoints: a pack stopped mid-way resumes from its last saved epoch
and records the rows an uninterrupted pack records."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import keras
import pytest

from kreg import datasets
from kreg import tuning
from kreg.tuning import checkpoints
from kreg.tuning import hypermodel as hypermodel_module
from kreg.tuning import packing
from kreg.tuning import schema

EPOCHS = 4


@pytest.fixture(scope="module")
def data():
    full = datasets.load("wine")
    return dataclasses.replace(full, x_train=full.x_train[:96], y_train=full.y_train[:96])


def trainer(data, directory=None):
    hypermodel = hypermodel_module.RegularizationHyperModel(
        "mlp", input_shape=data.input_shape, num_classes=data.num_classes, rates=(0.0, 0.5), seeds=2, model_kwargs={"width": 8, "depth": 1}
    )
    return packing.PackTrainer(hypermodel, data, EPOCHS, 16, checkpoint_dir=directory)


class StopAfter(keras.callbacks.Callback):
    """Stops training after `epochs` epochs, as Ctrl-C would."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def test_a_pack_stopped_mid_way_resumes_with_the_rows_of_an_uninterrupted_pack(data, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "MIN_INTERVAL", 0.0)
    reference = trainer(data)
    configs = reference.hypermodel.space.configs()
    expected = reference.run(configs)
    stopped = trainer(data, str(tmp_path / "packs"))
    with pytest.raises(KeyboardInterrupt):
        stopped.run(configs, callbacks=[StopAfter(2)])
    path = stopped.checkpoint(configs)
    assert os.path.exists(path)
    assert [p for p in os.listdir(tmp_path / "packs") if p.endswith(".tmp")] == []
    # A fresh process: the pack is rebuilt, loads epoch 2 and trains epochs 3 and 4.
    keras.backend.clear_session()
    resumed = trainer(data, str(tmp_path / "packs")).run(configs)
    for (config, a), (_, b) in zip(resumed, expected):
        assert a.status == b.status == "completed"
        for name in schema.MEASURED_COLUMNS:
            if name != "wall_time":
                assert a.metrics[name] == pytest.approx(b.metrics[name], abs=1e-6), (name, config)


def test_a_checkpoint_that_does_not_fit_is_ignored_with_a_warning(data, tmp_path):
    resumable = trainer(data, str(tmp_path))
    configs = resumable.hypermodel.space.configs()[:2]
    path = resumable.checkpoint(configs)
    with open(path, "wb") as f:
        f.write(b"not an npz")
    with pytest.warns(UserWarning, match="no readable pack checkpoint"):
        outcomes = resumable.run(configs)
    assert all(outcome.status == "completed" for _, outcome in outcomes)


def test_the_executor_removes_a_checkpoint_once_its_rows_are_recorded(tmp_path):
    directory = tmp_path / "s"
    study = tuning.Study("mlp", "wine", str(directory), rates=(0.0, 0.5), seeds=1, epochs=2, model_kwargs={"width": 8, "depth": 1}, quiet=True)
    study.run()
    assert os.listdir(directory / "packs") == []


COMMAND = ["tune", "mlp", "wine", "--rates", "0", "0.5", "--seeds", "2", "--epochs", "3000", "--batch-size", "128", "--quiet"]


def start(out):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # kreg's own quiet start-up
    return subprocess.Popen(
        [sys.executable, "-W", "ignore::UserWarning", "-m", "kreg.cli", *COMMAND, "--out", str(out)],
        cwd=os.path.dirname(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def wait_for_checkpoint(process, out, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isdir(out / "packs") and any(p.endswith(".npz") for p in os.listdir(out / "packs")):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_pack_with_one_line_and_the_pack_saved(tmp_path, signum, status):
    out = tmp_path / "study"
    process = start(out)
    wait_for_checkpoint(process, out)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("interrupted: 0 runs recorded, pack saved at epoch ")
    assert lines[0].endswith("/3000; run the same command to resume")
    assert "Traceback" not in err


def test_a_full_disk_during_a_pack_is_one_line_naming_the_file_and_the_rerun_finishes(tmp_path, monkeypatch, capsys):
    import errno

    from kreg import cli

    out = tmp_path / "study"
    argv = ["tune", "mlp", "wine", "--rates", "0", "0.5", "--seeds", "1", "--epochs", "3", "--quiet", "--out", str(out)]
    real_save = checkpoints.save

    def full_disk(path, model, epochs_done, history):
        if epochs_done == 2:
            raise checkpoints.ledger.StudyWriteError.of(OSError(errno.ENOSPC, "No space left on device"), "write", "packs/x.npz", str(out))
        real_save(path, model, epochs_done, history)

    monkeypatch.setattr(checkpoints, "MIN_INTERVAL", 0.0)
    monkeypatch.setattr(checkpoints, "save", full_disk)
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"kreg: error: cannot write packs/x.npz in {str(out)!r}: No space left on device"]
    assert tuning.results(str(out)) == []  # nothing recorded, epoch 1 saved
    monkeypatch.setattr(checkpoints, "save", real_save)
    assert cli.main(argv) == 0
    assert len(tuning.results(str(out))) == 6


def assert_same_rows(resumed, uninterrupted):
    """The resumed study's rows are the uninterrupted one's, wall times aside."""
    assert [r["key"] for r in resumed] == [r["key"] for r in uninterrupted]
    for a, b in zip(resumed, uninterrupted):
        for name in schema.MEASURED_COLUMNS:
            if name != "wall_time":
                assert a[name] == pytest.approx(b[name], abs=1e-6), (name, a, b)


def test_a_study_killed_mid_pack_resumes_from_its_checkpoint_with_the_uninterrupted_rows(tmp_path):
    from study_process import start_study

    settings = dict(model="mlp", dataset="wine", rates=(0.0, 0.5), norms=(None, "batch"), orders=("norm-act-drop",),
                    seeds=2, epochs=200, batch_size=128, model_kwargs={"width": 8, "depth": 1}, quiet=True)
    killed = tmp_path / "killed"
    process = start_study(str(killed), settings)
    try:
        wait_for_checkpoint(process, killed)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert tuning.results(str(killed)) == []  # the pack was cut: no row yet, a checkpoint on disk
    resumed = tuning.Study(directory=str(killed), **settings).run()
    uninterrupted = tuning.Study(directory=str(tmp_path / "whole"), **settings).run()
    assert_same_rows(resumed, uninterrupted)
    assert os.listdir(killed / "packs") == []


def test_a_pack_saved_after_its_last_epoch_but_not_recorded_resumes_without_training(tmp_path, monkeypatch):
    from kreg.tuning import ledger

    settings = dict(model="mlp", dataset="wine", rates=(0.0, 0.5), seeds=1, epochs=2, model_kwargs={"width": 8, "depth": 1}, quiet=True)
    stopped = tmp_path / "stopped"
    real_record = ledger.record_run

    def stop(*args, **kwargs):  # the process dies after the pack's last save, before its first row
        raise KeyboardInterrupt

    monkeypatch.setattr(ledger, "record_run", stop)
    with pytest.raises(KeyboardInterrupt):
        tuning.Study(directory=str(stopped), **settings).run()
    assert tuning.results(str(stopped)) == [] and len(os.listdir(stopped / "packs")) == 1
    monkeypatch.setattr(ledger, "record_run", real_record)
    fits = []
    monkeypatch.setattr(keras.Model, "fit", lambda *args, **kwargs: fits.append(1))
    resumed = tuning.Study(directory=str(stopped), **settings).run()
    assert fits == []  # nothing trained again
    monkeypatch.undo()
    uninterrupted = tuning.Study(directory=str(tmp_path / "whole"), **settings).run()
    assert_same_rows(resumed, uninterrupted)
    assert os.listdir(stopped / "packs") == []
