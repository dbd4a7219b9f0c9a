"""The `kreg` command.

Parsing is cheap: every floor (the zoo, the tuning machinery) is imported
lazily inside the handler that needs it, so `kreg --help` does not load Keras.

    kreg study                        the default study (mlp on digits)
    kreg tune MODEL DATASET [...]     a study of your choice
    kreg report DIR                   report of a finished study
    kreg models list|info|train       the zoo
"""

import argparse
import sys


def _add_study_commands(commands):
    """`kreg study`, `kreg tune`, `kreg report` (owned by kreg.tuning)."""


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
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--out", default=None, help="folder for the weights and manifest.json "
        "(default: the package's models/weights)"
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
        entry = train.train(args.name, args.dataset, epochs=args.epochs, seed=args.seed,
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


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return args.handler(args) or 0


if __name__ == "__main__":
    sys.exit(main())
