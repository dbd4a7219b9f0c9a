"""A tiny study: its settings, for every study test, and a way to run it in a
real Python process, for the SIGKILL-resume and distributed tests."""

import os
import subprocess
import sys

# The zoo mlp with one 8-unit block, 1 epoch on digits: 8 runs, trained in
# two packs of 4 (seed 0's runs, then seed 1's) when packed.
TINY_STUDY = dict(
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
    max_pack=4,
)
SCRIPT = "import sys; from kreg import tuning; tuning.Study(directory=sys.argv[1], **{settings!r}).run()"


def start_study(directory, settings, **popen_kwargs):
    """Starts `tuning.Study(directory, **settings).run()` in a new process.

    The process runs in the folder that holds `directory`, never in the
    repository root, whose source `kreg/` would shadow the installed kreg
    (which alone has `kreg.tuning`).

    Returns:
        The `subprocess.Popen`.
    """
    directory = os.path.abspath(directory)
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(settings=settings), directory],
        cwd=os.path.dirname(directory),
        **popen_kwargs,
    )
