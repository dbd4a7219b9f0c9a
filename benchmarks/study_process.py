"""kreg's study as a whole process, timed from its first line: for `benchmarks/study.py`.

Two modes, each one process doing what a user's process does:

- `--mode packed`: import kreg, `Study("mlp", "digits", tmp, executor="packed",
  quiet=True).run()`, exit: the kreg side of the whole-process comparison
  with the pure-JAX program (`benchmarks/jax_reference.py`), which does the
  same (imports, data, models, compile, train, validate, test; no report);
- `--mode kreg-study`: the `kreg study` command itself (`kreg.cli.main`, in a
  temporary `--out`; `kreg tune mlp digits ...` when the grid is not the
  default one: the same code path with other settings), with the time of
  every phase:
  imports (Keras and its backend, TensorFlow included as `kreg study` loads
  it, then `kreg.tuning`), build (`Study()`: the dataset and hypermodel; in
  `run()`, claiming the directory and sizing the packs; per pack: the branch
  models, the pack model and `compile()`, up to `fit`'s start), compile (per
  pack, how much longer its first epoch takes than the median later epoch:
  tracing and compiling the train and evaluation steps, for the full and
  the smaller last batch), train (the epochs
  with their validation, less that excess and the checkpoint saves; the test
  evaluation), checkpoints (pack state saved after epochs), record (rows
  written to the ledger), report (`tuning.report`: report.md, csv, json,
  plots), refit (`Study.refit`, the best model on train + validation), other
  (argument parsing, saving best.keras, printing).

The phases are measured with public hooks only: a Keras callback added to
each pack's `fit` and timing around public calls (`Study.__init__`,
`Study.run`, `Study.refit`, `PackTrainer.run`, `tuning.report`,
`ledger.record_run`, `checkpoints.save`), installed by wrapping them in this
process. Nothing in kreg is changed. The last line printed is the figures as
JSON (seconds from the process's first line; the caller adds interpreter
start-up and exit from its own clock).

    KERAS_BACKEND=jax .venv/bin/python benchmarks/study_process.py --mode kreg-study --seeds 1 --epochs 2
"""

import time

START = time.perf_counter()

import argparse  # noqa: E402
import collections  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

# The default `kreg study` grid (kreg.tuning.space / kreg.tuning.study),
# written out so that parsing imports nothing of kreg.
DEFAULTS = {
    "rates": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    "orders": ["norm-act-drop", "act-norm-drop"],
    "seeds": 5,
    "epochs": 20,
    "batch_size": 32,
}


def now():
    return time.perf_counter() - START


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("packed", "kreg-study"), required=True, help="packed: Study(...).run() alone; kreg-study: the kreg study command, phase by phase")
    parser.add_argument("--rates", type=float, nargs="+", default=DEFAULTS["rates"])
    parser.add_argument("--orders", nargs="+", default=DEFAULTS["orders"])
    parser.add_argument("--seeds", type=int, default=DEFAULTS["seeds"])
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    return parser.parse_args(argv)


def grid_settings(args):
    return {"rates": args.rates, "orders": args.orders, "seeds": args.seeds, "epochs": args.epochs, "batch_size": args.batch_size}


def packed(args):
    """The packed study alone, as a user's script runs it."""
    from kreg import tuning

    imported = now()
    with tempfile.TemporaryDirectory() as directory:
        rows = tuning.Study("mlp", "digits", directory, executor="packed", quiet=True, **grid_settings(args)).run()
        trained = now()
    assert all(r["status"] == "completed" for r in rows) and {r["worker"] for r in rows} == {"packed"}
    import keras

    return {
        "mode": "packed",
        "backend": keras.backend.backend(),
        "runs": len(rows),
        "imports": imported,
        "study": trained - imported,
        "seconds": now(),
    }


class Spans:
    """Named lists of (start, end) times, seconds from the process's first line."""

    def __init__(self):
        self.spans = collections.defaultdict(list)

    def wrap(self, owner, name, key):
        """Times every call of `owner.name` (a public function or method) as `key`."""
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = now()
            try:
                return original(*args, **kwargs)
            finally:
                self.spans[key].append((start, now()))

        setattr(owner, name, timed)
        return original

    def total(self, key):
        return sum(end - start for start, end in self.spans.get(key, ()))

    def first(self, key):
        return self.spans[key][0][0] if self.spans.get(key) else None


def pack_timer_class():
    """A Keras callback class recording one pack's fit: its start, each epoch, its end."""
    import keras

    class PackTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.begin = self.end = self.first_step = self.first_eval_begin = self.first_eval = None
            self.epochs = {}
            self.first_epoch_steps = []

        def on_train_begin(self, logs=None):
            self.begin = now()

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs[epoch] = [now(), None]

        def on_train_batch_end(self, batch, logs=None):
            if self.first_step is None:
                self.first_step = now()
            if len(self.epochs) == 1:  # the first epoch's step ends
                self.first_epoch_steps.append(now())

        def on_test_begin(self, logs=None):
            if self.first_eval_begin is None:
                self.first_eval_begin = now()

        def on_test_batch_end(self, batch, logs=None):
            if self.first_eval is None:
                self.first_eval = now()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs[epoch][1] = now()

        def on_train_end(self, logs=None):
            self.end = now()

    return PackTimer


def kreg_study(args):
    """The `kreg study` command, phase by phase (see the module docstring)."""
    from kreg import cli

    t_cli = now()
    cli.quiet_backend_import(with_tensorflow=True)  # what `kreg study` imports first (a no-op when it runs again)
    t_backend = now()
    import keras

    from kreg import tuning
    from kreg.tuning import checkpoints
    from kreg.tuning import ledger
    from kreg.tuning import packing

    t_imports = now()

    spans = Spans()
    spans.wrap(tuning.Study, "__init__", "study_init")
    spans.wrap(tuning.Study, "run", "study_run")
    spans.wrap(tuning.Study, "refit", "refit")
    spans.wrap(tuning, "report", "report")
    spans.wrap(ledger, "record_run", "record")
    spans.wrap(checkpoints, "save", "checkpoints")
    PackTimer = pack_timer_class()
    packs = []  # (entry, exit, PackTimer) per pack
    original_run = packing.PackTrainer.run

    @functools.wraps(original_run)
    def timed_pack_run(self, configs, *rest, **kwargs):
        timer = PackTimer()
        kwargs["callbacks"] = [*kwargs.get("callbacks", ()), timer]
        entry = now()
        try:
            return original_run(self, configs, *rest, **kwargs)
        finally:
            packs.append((entry, now(), timer, len(configs)))

    packing.PackTrainer.run = timed_pack_run

    default = grid_settings(args) == DEFAULTS
    with tempfile.TemporaryDirectory() as directory:
        if default:
            argv = ["study", "--out", directory, "--quiet", "--executor", "packed"]
        else:
            argv = ["tune", "mlp", "digits", "--out", directory, "--quiet", "--executor", "packed"]
            argv += ["--rates", *(f"{r:g}" for r in args.rates), "--orders", *args.orders]
            argv += ["--seeds", str(args.seeds), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
        t_main = now()
        code = cli.main(argv)
        t_done = now()
        rows = tuning.results(directory)
    if code != 0:
        raise SystemExit(f"kreg {' '.join(argv[:1])} exited with {code}")
    if not packs:
        raise SystemExit("no pack trained: the study did not run packed (see its output)")

    build = compile_ = train = 0.0
    first_steps, first_evals, last_steps = [], [], []
    for entry, exit_, timer, _ in packs:
        build += timer.begin - entry  # branches, pack model, compile(), checkpoint restore
        durations = [end - begin for begin, end in (timer.epochs[e] for e in sorted(timer.epochs))]
        if len(durations) >= 2:
            excess = max(0.0, durations[0] - statistics.median(durations[1:]))
        else:  # one epoch: the first train step stands for the compilation
            excess = timer.first_step - timer.begin
        compile_ += excess
        train += (timer.end - timer.begin) - excess + (exit_ - timer.end)  # epochs with validation, then the test evaluation
        first_steps.append(timer.first_step - timer.begin)
        first_evals.append(timer.first_eval - timer.first_eval_begin if timer.first_eval is not None else 0.0)
        ends = timer.first_epoch_steps
        last_steps.append(ends[-1] - ends[-2] if len(ends) >= 2 else 0.0)
    saves = spans.total("checkpoints")
    train -= saves  # checkpoint saves happen inside fit, between epochs
    build += spans.total("study_init") + (packs[0][0] - spans.first("study_run"))
    phases = {
        "imports": t_imports,  # from the first line: the script's own imports too
        "build": build,
        "compile": compile_,
        "train": train,
        "checkpoints": saves,
        "record": spans.total("record"),
        "report": spans.total("report"),
        "refit": spans.total("refit"),
    }
    phases["other"] = t_done - t_imports - sum(v for k, v in phases.items() if k != "imports")
    return {
        "mode": "kreg-study",
        "command": "kreg " + " ".join("TMP" if a == directory else a for a in argv),
        "backend": keras.backend.backend(),
        "runs": len(rows),
        "packs": [n for *_, n in packs],
        "phases": phases,
        "details": {
            "imports_keras_backend": t_backend - t_cli,
            "imports_kreg_tuning": t_imports - t_backend,
            "study_init": spans.total("study_init"),
            "first_train_steps": first_steps,
            "first_evaluations": first_evals,
            "first_epoch_last_steps": last_steps,
            "study_run": spans.total("study_run"),
        },
        "seconds": now(),
        "main_seconds": t_done - t_main,
    }


def main():
    args = parse_args()
    figures = packed(args) if args.mode == "packed" else kreg_study(args)
    sys.stdout.flush()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
