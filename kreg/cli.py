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
