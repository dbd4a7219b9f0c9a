"""What a study prints while it runs: epochs of packs, rows, honest ETAs."""

import io

from study_process import TINY_STUDY

from kreg import tuning
from kreg.tuning import progress as progress_module


def row(k, worker="packed", wall=0.5):
    return {"norm": "none", "order": None, "rate": 0.1 * k, "seed": 0, "final_val_loss": 0.25, "status": "completed", "worker": worker, "wall_time": wall}


def test_a_pack_prints_a_few_plain_lines_when_stdout_is_no_terminal():
    stream = io.StringIO()
    progress = progress_module.Progress(8, stream=stream)
    progress.start_pack(1, 2, 4, 20)
    for epoch in range(1, 21):
        progress.epoch(epoch)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "pack 1/2: 4 runs as one model, 20 epochs"
    assert [line.split(",")[0] for line in lines[1:]] == [f"pack 1/2: epoch {e}/20" for e in (5, 10, 15, 20)]
    assert lines[-1].endswith("ETA 0m00s")


def test_a_resumed_pack_shows_its_epochs_from_the_one_it_resumes_at(monkeypatch):
    clock = iter([0.0, 0.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0])  # made, started, then epochs 3 to 8 end
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    progress = progress_module.Progress(8, stream=stream)
    progress.start_pack(1, 1, 4, 8)
    for epoch in range(3, 9):  # saved after epoch 2: epochs 3 to 8 train in this process
        progress.epoch(epoch)
    lines = stream.getvalue().splitlines()[1:]
    # epoch 3 took 10 s (it compiles), each later one 2 s: the ETA uses those
    assert lines == [
        "pack 1/1: epoch 4/8, 0m12s elapsed, ETA 0m08s",
        "pack 1/1: epoch 6/8, 0m16s elapsed, ETA 0m04s",
        "pack 1/1: epoch 8/8, 0m20s elapsed, ETA 0m00s",
    ]


def test_rows_of_a_finished_pack_count_only_the_runs_still_to_train():
    stream = io.StringIO()
    progress = progress_module.Progress(8, stream=stream)
    progress.start_pack(1, 2, 4, 1)
    progress.pack_start -= 40.0  # the pack took 40 s: 10 s per run
    for k in range(4):
        progress.update(row(k))
    lines = stream.getvalue().splitlines()[1:]
    # All four runs are done when their rows appear; 4 runs of the next pack remain.
    assert [line.split("ETA ")[1] for line in lines] == ["0m40s"] * 4
    assert lines[0].startswith("[1/8] norm=none rate=0 seed=0: final_val_loss=0.2500 (packed)")


def test_run_by_run_the_eta_follows_the_last_runs():
    stream = io.StringIO()
    progress = progress_module.Progress(10, done=2, stream=stream)
    assert stream.getvalue().startswith("resuming: 2/10 runs already recorded")
    progress.last -= 3.0  # the run took 3 s
    progress.update(row(0, worker="tuner0", wall=3.0))
    assert stream.getvalue().splitlines()[-1].endswith("(3.0s) ETA 0m21s")  # 7 runs left x 3 s


def test_quiet_prints_nothing():
    stream = io.StringIO()
    progress = progress_module.Progress(4, done=1, quiet=True, stream=stream)
    progress.start_pack(1, 1, 3, 2)
    progress.epoch(1)
    progress.epoch(2)
    progress.update(row(0))
    assert stream.getvalue() == ""


def test_a_terminal_gets_a_keras_progress_bar():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    progress = progress_module.Progress(4, stream=Terminal())
    progress.start_pack(1, 1, 4, 3)
    from keras.utils import Progbar

    assert isinstance(progress.bar, Progbar) and progress.bar.target == 3


def test_a_packed_study_shows_its_packs_as_they_train(tmp_path, capsys):
    tuning.Study(directory=str(tmp_path / "s"), **dict(TINY_STUDY, quiet=False)).run()
    lines = capsys.readouterr().out.splitlines()
    packs = [line for line in lines if line.startswith("pack ")]
    assert packs == [
        "pack 1/2: 4 runs as one model, 1 epochs",
        packs[1],
        "pack 2/2: 4 runs as one model, 1 epochs",
        packs[3],
    ]
    assert packs[1].startswith("pack 1/2: epoch 1/1, ") and packs[3].startswith("pack 2/2: epoch 1/1, ")
    # Rows follow their pack: the first pack's four rows before the second pack starts.
    assert lines.index(packs[2]) > max(i for i, line in enumerate(lines) if line.startswith("[4/8]"))
