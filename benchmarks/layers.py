"""Train-step time of kreg layers against plain Keras doing the same work.

Three comparisons, each timed in the same process on the same data:

1. `blocks`: an MLP of `DenseBlock(width, order="norm-act-drop")` versus the
   same hand-stacked `Dense(use_bias=False)`, `BatchNormalization`,
   `Activation("relu")`, `Dropout` layers. Goal: ratio <= 1.05.
2. `dropconnect`: an MLP of `DropConnectDense(width, rate, mask="batch")`
   versus `Dense` + `Dropout` (both drop with the same rate; DropConnect
   masks the kernel, Dropout the activations). Goal: ratio <= 1.3.
3. `dropout`: an MLP of `Dense(width, activation="relu")` + kreg's
   `StandardDropout` (keyed masks) versus the same with Keras' `Dropout`.
   Goal: ratio <= 1.1.

Method: each model is compiled and warmed up with one full epoch (tracing /
XLA compilation excluded), then `--repeats` epochs of `--steps` train steps are
timed per model, alternating kreg and Keras so that load drifts hit both
alike; the table shows the median ms per step and the ratio of medians
(kreg / Keras).

The backend is the current one (`KERAS_BACKEND`, TensorFlow by default);
`--backends tensorflow jax` re-runs this script once per backend in a
subprocess and prints each table. `--check` exits with status 1 when a ratio
misses its goal.

Usage:

    KERAS_BACKEND=jax .venv/bin/python benchmarks/layers.py
    .venv/bin/python benchmarks/layers.py --backends tensorflow jax --check
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

GOALS = {"blocks": 1.05, "dropconnect": 1.3, "dropout": 1.1}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", help="re-run once per backend in a subprocess")
    parser.add_argument("--width", type=int, default=256, help="units per hidden layer")
    parser.add_argument("--depth", type=int, default=3, help="hidden layers")
    parser.add_argument("--features", type=int, default=64, help="input features")
    parser.add_argument("--batch", type=int, default=128, help="batch size")
    parser.add_argument("--steps", type=int, default=40, help="train steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=7, help="timed epochs per model")
    parser.add_argument("--rate", type=float, default=0.2, help="dropout / DropConnect rate")
    parser.add_argument("--check", action="store_true", help="exit 1 when a ratio misses its goal")
    return parser.parse_args(argv)


def build_models(args):
    """Returns {comparison: (kreg_model, keras_model)}, uncompiled."""
    import keras

    from kreg import layers

    def mlp(hidden):
        model = keras.Sequential([keras.Input((args.features,))])
        for _ in range(args.depth):
            for layer in hidden():
                model.add(layer)
        model.add(keras.layers.Dense(10, activation="softmax"))
        return model

    return {
        "blocks": (
            mlp(lambda: [layers.DenseBlock(args.width, rate=args.rate, seed=0)]),
            mlp(lambda: [
                keras.layers.Dense(args.width, use_bias=False),
                keras.layers.BatchNormalization(),
                keras.layers.Activation("relu"),
                keras.layers.Dropout(args.rate, seed=0),
            ]),
        ),
        "dropconnect": (
            mlp(lambda: [
                layers.DropConnectDense(args.width, args.rate, activation="relu", mask="batch", seed=0),
            ]),
            mlp(lambda: [
                keras.layers.Dense(args.width, activation="relu"),
                keras.layers.Dropout(args.rate, seed=0),
            ]),
        ),
        "dropout": (
            mlp(lambda: [
                keras.layers.Dense(args.width, activation="relu"),
                layers.StandardDropout(args.rate, seed=0),
            ]),
            mlp(lambda: [
                keras.layers.Dense(args.width, activation="relu"),
                keras.layers.Dropout(args.rate, seed=0),
            ]),
        ),
    }


def time_per_step(models, x, y, args):
    """Median seconds per train step of each model, timed alternately."""
    for model in models:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)  # warm-up: tracing, compiling
    times = [[] for _ in models]
    for _ in range(args.repeats):
        for model, samples in zip(models, times):
            start = time.perf_counter()
            model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)
            samples.append((time.perf_counter() - start) / args.steps)
    return [statistics.median(samples) for samples in times]


def run_current_backend(args):
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch * args.steps, args.features)).astype("float32")
    y = rng.integers(0, 10, len(x))
    print(
        f"backend={keras.backend.backend()} keras={keras.__version__} width={args.width} "
        f"depth={args.depth} batch={args.batch} steps={args.steps} repeats={args.repeats}"
    )
    print(f"{'comparison':<12} {'kreg ms/step':>13} {'keras ms/step':>14} {'ratio':>7} {'goal':>6}")
    missed = []
    for name, models in build_models(args).items():
        kreg_time, keras_time = time_per_step(models, x, y, args)
        ratio = kreg_time / keras_time
        verdict = "ok" if ratio <= GOALS[name] else "MISSED"
        if verdict != "ok":
            missed.append(name)
        print(
            f"{name:<12} {kreg_time * 1e3:>13.3f} {keras_time * 1e3:>14.3f} "
            f"{ratio:>7.3f} {GOALS[name]:>6.2f} {verdict}",
            flush=True,
        )
    return 1 if args.check and missed else 0


def forwarded_flags(args):
    """The options of this run, for a per-backend subprocess."""
    names = ("width", "depth", "features", "batch", "steps", "repeats", "rate")
    return [f"--{name}={getattr(args, name)}" for name in names] + (["--check"] if args.check else [])


def main(argv=None):
    args = parse_args(argv)
    if not args.backends:
        return run_current_backend(args)
    status = 0
    for backend in args.backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        command = [sys.executable, __file__, *forwarded_flags(args)]
        status |= subprocess.run(command, env=env, check=False).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
