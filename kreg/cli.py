"""The `kreg` command.

Parsing is cheap: every floor (the zoo, the tuning machinery) is imported
lazily inside the handler that needs it, so `kreg --help` does not load Keras;
a command loads Keras once, quietly (`quiet_backend_import`).

    kreg study                        the default study (mlp on digits)
    kreg tune MODEL DATASET [...]     a study of your choice
    kreg report DIR                   report of a finished study
    kreg evidence [--quick]           the evidence suite, pooled
    kreg models list|info|train       the zoo
"""

import argparse
import contextlib
import importlib.util
import os
import sys

from kreg import interrupts
from kreg import keras_compat


# The options of `kreg tune`, declared once: the parser, the Study arguments and
# the command lines of a distributed study are all made from this table.
# (flag, Study argument, argparse keywords); None means "the Study's default".
TUNE_OPTIONS = (
    ("--rates", "rates", dict(type=float, nargs="+", help="dropout rates in [0, 1) (default: 0 0.1 ... 0.6)")),
    ("--norms", "norms", dict(nargs="+", help="normalizations: none batch layer group (default: none batch)")),
    ("--orders", "orders", dict(nargs="+", help="block orders (default: norm-act-drop act-norm-drop)")),
    ("--seeds", "seeds", dict(type=int, help="number of paired seeds (default: 5)")),
    ("--epochs", "epochs", dict(type=int, help="epochs per run (default: 20)")),
    ("--batch-size", "batch_size", dict(type=int, help="training batch size (default: 32)")),
    ("--tuner", "tuner", dict(help="grid, random, bayesian or hyperband (default: grid)")),
    ("--max-trials", "max_trials", dict(type=int, help="runs of a random or bayesian search (default: half the grid)")),
    ("--metric", "metric", dict(help="val_loss (final epoch; the default), val_accuracy, best_val_loss, ...")),
    ("--trial-timeout", "trial_timeout", dict(type=float, help="distributed chief: re-queue a run or pack whose worker was silent this long (s; workers report every epoch)")),
    ("--executor", "executor", dict(choices=("auto", "packed", "sequential"), help="packed: many runs train as one model (grid, local; several times faster); sequential: one Keras Tuner trial per run; auto (default): packed where it applies")),
    ("--task", "task", dict(choices=("multiclass", "binary", "regression"), help="the task (default: from the labels and the model's output)")),
    ("--loss", "loss", dict(help="a Keras loss name (default: the model's own, else the task's)")),
    ("--optimizer", "optimizer", dict(help="a Keras optimizer name (default: the model's own, else adam)")),
    ("--learning-rate", "learning_rate", dict(type=float, help="learning rate of the optimizer (default: 0.001)")),
    ("--label", "label", dict(help="csv: the label column, by name or number (default: the last)")),
    ("--quiet", "quiet", dict(action="store_true", help="no progress lines")),
)


def _add_options(parser, flags):
    for flag, _, keywords in TUNE_OPTIONS:
        if flag in flags:
            parser.add_argument(flag, **keywords)


def _study_arguments(args):
    """The Study keyword arguments of the parsed options that were given."""
    given = {name: getattr(args, name) for _, name, _ in TUNE_OPTIONS if hasattr(args, name)}
    return {name: value for name, value in given.items() if value is not None and value is not False}


def _command_line(args):
    """The options that were given, as command-line arguments again."""
    argv = []
    for flag, name, keywords in TUNE_OPTIONS:
        value = getattr(args, name, None)
        if value is None or value is False:
            continue
        if keywords.get("action") == "store_true":
            argv.append(flag)
            continue
        values = value if isinstance(value, list) else [value]
        argv += [flag] + [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return argv


def _add_study_commands(commands):
    """`kreg study`, `kreg tune`, `kreg report` (owned by kreg.tuning)."""
    study = commands.add_parser(
        "study",
        help="the default study: the zoo mlp on digits, grid, 5 seeds",
        description="The default study (the zoo mlp on digits, a grid of dropout rate x "
        "batch norm on/off x block order, 5 seeds): progress, then the recommendation, "
        "and the report written to the study directory. Resumes where it stopped.",
    )
    study.add_argument("--out", default="kreg-study", help="study directory (default: ./kreg-study)")
    _add_options(study, ("--quiet", "--executor"))
    study.set_defaults(handler=_study)

    tune = commands.add_parser(
        "tune",
        help="a study of your choice",
        description="A Keras Tuner study of a zoo model on a dataset. Distributed: run the same "
        "command with KERASTUNER_TUNER_ID / KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT set "
        "(--distributed N prints these commands for a chief and N workers).",
    )
    tune.add_argument("model", help="a zoo model name (kreg models list), a .keras file, or module:function (a builder)")
    tune.add_argument("dataset", help="a dataset name: digits, breast_cancer, wine, mnist, ..., npz:PATH, csv:PATH")
    tune.add_argument("--out", default=None, help="study directory (default: ./kreg-MODEL-DATASET)")
    _add_options(tune, [flag for flag, _, _ in TUNE_OPTIONS])
    tune.add_argument("--distributed", type=int, metavar="WORKERS", help="print the commands of a chief and WORKERS workers")
    tune.add_argument("--ip", default="127.0.0.1", help="with --distributed: the chief's address")
    tune.add_argument("--port", type=int, default=8000, help="with --distributed: the chief's port")
    tune.set_defaults(handler=_tune)

    evidence = commands.add_parser(
        "evidence",
        help="the evidence suite: studies of several models and datasets, pooled",
        description="Runs (or resumes) kreg's fixed suite of studies (kreg.tuning.evidence_suite.SUITE) and pools "
        "their shifts into one answer: evidence.md, evidence.json and forest.png in the output folder.",
    )
    evidence.add_argument("--quick", action="store_true", help="a small suite (about a minute), e.g. to try it")
    evidence.add_argument("--out", default="kreg-evidence", help="folder of the studies and the report (default: ./kreg-evidence)")
    evidence.add_argument("--quiet", action="store_true", help="no progress lines")
    evidence.set_defaults(handler=_evidence)

    report = commands.add_parser("report", help="report of a study directory")
    report.add_argument("directory", help="a study directory")
    report.add_argument("--out", default=None, help="report folder (default: the study directory)")
    report.add_argument("--metric", default="val_loss", help="val_loss (final epoch), val_accuracy, ...")
    report.add_argument("--tensorboard", action="store_true", help="also write DIR/tensorboard for TensorBoard's HParams dashboard")
    report.set_defaults(handler=_report)


def _fail(message, code):
    print(f"kreg: error: {message}", file=sys.stderr)
    return code


def _run_study(settings, out):
    """Validates, runs, reports. 0 ok, 2 bad arguments or another study there, 1 failure."""
    from kreg import tuning

    try:
        study = tuning.Study(directory=out, **settings)
    except ValueError as e:
        return _fail(e, 2)
    except OSError as e:  # e.g. a dataset that cannot be downloaded
        return _fail(e, 1)
    try:
        rows = study.run()
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (Terminated)
        return _interrupted(study, out, 143 if isinstance(e, interrupts.Terminated) else 130)
    except tuning.StudyConflictError as e:
        return _fail(e, 2)
    except OSError as e:  # a full disk, a read-only directory: the message names the path
        return _fail(e, 1)
    except Exception as e:
        return _fail(f"the study failed: {type(e).__name__}: {e}", 1)
    if rows is None:  # a distributed worker: the chief reports
        return 0
    _write_report(rows, out, study.metric.name)
    return _save_best(study, out)


def _save_best(study, out):
    """Trains the recommended configuration on train + validation and saves
    it as OUT/best.keras."""
    try:
        config = study.recommended_config()
        model = study.refit(config)
    except (ValueError, OSError) as e:  # e.g. no completed run
        print(f"kreg: no best.keras: {e}", file=sys.stderr)
        return 0
    path = os.path.join(out, "best.keras")
    with keras_compat.tensorflow_unless_imported():
        model.save(path)
    order = f", order {config['order']}" if config["order"] else ""
    print(f"Best model: {path} (norm {config['norm']}{order}, rate {config['rate']:g}, trained on train + validation)")
    return 0


def _interrupted(study, out, code):
    """One line about what an interrupted study keeps, then its exit status."""
    from kreg import tuning

    try:
        recorded = len(tuning.results(out))
    except (ValueError, OSError):
        recorded = 0
    saved = ""
    checkpoint = getattr(getattr(study, "progress", None), "checkpoint", None)
    if checkpoint:
        saved = f", pack saved at epoch {checkpoint[0]}/{checkpoint[1]}"
    print(f"interrupted: {recorded} runs recorded{saved}; run the same command to resume", file=sys.stderr)
    return code


def _write_report(rows, out, metric, tensorboard=False):
    from kreg import tuning

    recommendation = tuning.report(rows, out, metric=metric, tensorboard=tensorboard)
    print()
    print(recommendation if recommendation is not None else "No recommendation: see report.md.")
    print(f"\nReport: {out}/report.md ({len(rows)} runs)")
    if tensorboard:
        print(f"TensorBoard: tensorboard --logdir {out}/{tuning.reporting.TENSORBOARD_DIR}")
    return 0


def _study(args):
    return _run_study(_study_arguments(args), args.out)


def _tune(args):
    name = os.path.splitext(os.path.basename(args.model))[0] if args.model.endswith(".keras") else args.model
    out = args.out or f"kreg-{name}-{args.dataset}".replace(":", "_").replace("/", "_")
    if args.distributed is not None:
        if args.distributed < 1:
            return _fail(f"--distributed must be >= 1 worker, got {args.distributed}", 2)
        from kreg.tuning import distributed

        argv = [args.model, args.dataset, *_command_line(args), "--out", out]
        print("Run the chief first, then each worker (a machine each, or all on one):")
        for line in distributed.commands(argv, args.distributed, ip=args.ip, port=args.port):
            print(line)
        return 0
    try:
        model = _model_argument(args.model)
    except ValueError as e:
        return _fail(e, 2)
    return _run_study(dict(_study_arguments(args), model=model, dataset=args.dataset), out)


def _model_argument(text):
    """MODEL of `kreg tune`: a zoo name or .keras path as given, or the
    builder function named by `module:function`."""
    if ":" not in text or text.endswith(".keras"):
        return text
    import importlib

    module_name, _, function_name = text.partition(":")
    if os.getcwd() not in sys.path:  # modules of the folder the command runs in
        sys.path.insert(0, os.getcwd())
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"model {text!r} names no builder function ({type(e).__name__}: {e})") from e
    if not callable(function):
        raise ValueError(f"model {text!r} is not a function, got {type(function).__name__}")
    return function


def _evidence(args):
    from kreg import tuning

    try:
        result = tuning.evidence(directory=args.out, quick=args.quick, quiet=args.quiet)
        result.write(args.out)
    except tuning.StudyConflictError as e:
        return _fail(e, 2)
    except OSError as e:
        return _fail(e, 1)
    print()
    print(result)
    print(f"\nEvidence: {args.out}/evidence.md, evidence.json, forest.png")
    return 0


def _report(args):
    from kreg import tuning

    try:
        rows = tuning.results(args.directory)
        return _write_report(rows, args.out or args.directory, args.metric, args.tensorboard)
    except (ValueError, FileNotFoundError) as e:
        return _fail(e, 2)
    except OSError as e:
        return _fail(e, 1)


def _add_models_commands(commands):
    """`kreg models list|info|train` (owned by kreg.models)."""
    models = commands.add_parser("models", help="the model zoo: list, info, train")
    models.set_defaults(handler=lambda args: _no_models_command(models))
    actions = models.add_subparsers(dest="models_command", metavar="ACTION")

    listing = actions.add_parser("list", help="names of the zoo's models")
    listing.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. '*mlp'")
    listing.set_defaults(handler=_models_list)

    about = actions.add_parser("info", help="paper, defaults, parameters, weights' metrics")
    about.add_argument("name")
    about.set_defaults(handler=_models_info)

    train = actions.add_parser("train", help="train a model's shipped weights on a dataset")
    train.add_argument("name")
    train.add_argument("dataset", help="a kreg.datasets name, e.g. digits")
    train.add_argument("--epochs", type=int, default=None,
                       help="default: kreg.models.train.EPOCHS (30)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--out", default=None, help="folder for the weights and manifest.json "
        "(default: ./kreg-weights; never the installed package unless you name its folder)"
    )
    train.set_defaults(handler=_models_train)


def _no_models_command(parser):
    parser.print_help()
    return 2


def _models_call(function):
    """Runs `function()`; a ValueError or OSError becomes a message and exit code 1."""
    try:
        return function()
    except (ValueError, OSError) as error:
        print(f"kreg: error: {error}", file=sys.stderr)
        return 1


def _models_list(args):
    from kreg import models

    names = models.list_models(args.pattern)
    for name in names:
        print(name)
    if not names:
        print(f"kreg: error: no model matches {args.pattern!r}", file=sys.stderr)
        return 1
    return 0


def _models_info(args):
    from kreg import models

    def show():
        about = models.info(args.name)
        print(f"{about.name}: {about.description}")
        print(f"  paper:       {about.paper}")
        print(f"  input:       {about.input}, default shape {about.input_shape}, "
              f"{about.num_classes} classes")
        print(f"  parameters:  {about.params:,} (with the defaults)")
        print("  defaults:    " + ", ".join(f"{k}={v!r}" for k, v in about.defaults.items()))
        for dataset, entry in sorted(about.weights.items()):
            print(f"  weights[{dataset}]: test accuracy {entry['test_accuracy']:.4f}, "
                  f"val accuracy {entry['val_accuracy']:.4f} ({entry['epochs']} epochs, "
                  f"seed {entry['seed']}, {entry['optimizer']}, {entry['backend']}, "
                  f"keras {entry['keras_version']}, sha256 {entry['sha256'][:12]}...)")
        if not about.weights:
            print("  weights:     none shipped")
        return 0

    return _models_call(show)


def _models_train(args):
    from kreg.models import train

    def run():
        epochs = train.EPOCHS if args.epochs is None else args.epochs
        entry = train.train(args.name, args.dataset, epochs=epochs, seed=args.seed,
                            directory=args.out)
        print(f"{args.name} on {args.dataset}: test accuracy {entry['test_accuracy']:.4f}, "
              f"wrote {entry['file']} (sha256 {entry['sha256'][:12]}...)")
        return 0

    return _models_call(run)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kreg",
        description="Dropout x normalization studies, layers and model zoo for Keras 3.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_study_commands(commands)
    _add_models_commands(commands)
    return parser


@contextlib.contextmanager
def _quiet_stderr():
    """Sends what is written to file descriptor 2 to /dev/null meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_backend_import(with_tensorflow=False):
    """Imports Keras, and TensorFlow where it is the backend, without
    TensorFlow's C++ start-up lines (CUDA stubs, CPU features, oneDNN).

    With `with_tensorflow=True` TensorFlow is imported (quietly) on every
    backend: for `--tensorboard`, whose writer is TensorFlow's. A study on
    JAX or PyTorch does not load it (`keras_compat.tensorflow_unless_imported`).

    TensorFlow writes them before its logging can be configured, so they
    cannot be filtered: stderr is silenced while TensorFlow loads. Later C++
    logging is off too (`TF_CPP_MIN_LOG_LEVEL=3`: on a machine without a GPU
    it only says that CUDA is missing). A user who set `TF_CPP_MIN_LOG_LEVEL`
    sees everything TensorFlow prints.
    Python warnings and errors are not affected: an import error is raised
    after stderr is back.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "keras" in sys.modules:
        import keras  # noqa: F401
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with _quiet_stderr():
        import keras  # noqa: F401

        if with_tensorflow and importlib.util.find_spec("tensorflow") is not None:
            import tensorflow  # noqa: F401


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    interrupts.install()
    try:
        quiet_backend_import(with_tensorflow=getattr(args, "tensorboard", False))
        return args.handler(args) or 0
    except KeyboardInterrupt as e:  # before or after a study: nothing to keep
        print("interrupted", file=sys.stderr)
        return 143 if isinstance(e, interrupts.Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
