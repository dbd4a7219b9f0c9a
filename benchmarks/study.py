"""What the study machinery costs: `Study.run()` against a plain `model.fit` loop.

Both train the same grid (the default study unless told otherwise: the zoo
mlp on digits) with the same work per configuration: build, compile, fit with
validation data, evaluate on the test split. The study adds Keras Tuner's
oracle, the per-run ledger files, progress and replay bookkeeping. Goal: at
most 10% more wall time.

    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/study.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/study.py --seeds 2 --epochs 5
"""

import argparse
import itertools
import tempfile
import time

import keras

from kreg import datasets
from kreg import models
from kreg import tuning
from kreg.tuning import hypermodel
from kreg.tuning import study as study_module


def grid(rates, orders, seeds):
    """The study's grid: no norm x rates x seeds, then batch x orders x rates x seeds."""
    points = [dict(norm=None, rate=r, seed=s) for r, s in itertools.product(rates, seeds)]
    points += [dict(norm="batch", order=o, rate=r, seed=s) for o, r, s in itertools.product(orders, rates, seeds)]
    return points


def plain_loop(data, points, epochs, batch_size):
    """The same runs as a plain Python loop of model.fit calls."""
    for point in points:
        keras.backend.clear_session()
        keras.utils.set_random_seed(point["seed"])
        model = models.create("mlp", input_shape=data.input_shape, num_classes=data.num_classes, **point)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            epochs=epochs,
            batch_size=batch_size,
            verbose=0,
        )
        model.evaluate(data.x_test, data.y_test, batch_size=1024, verbose=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=list(study_module.DEFAULT_RATES))
    parser.add_argument("--orders", nargs="+", default=list(hypermodel.DEFAULT_ORDERS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=study_module.DEFAULT_EPOCHS)
    parser.add_argument("--batch-size", type=int, default=study_module.DEFAULT_BATCH_SIZE)
    args = parser.parse_args()

    data = datasets.load("digits")
    # Warm-up: the process's first model pays one-time backend start-up costs.
    plain_loop(data, grid(args.rates, args.orders, [0])[:1], 1, args.batch_size)

    # One round per seed, plain loop then study, so that a change of machine
    # load during the benchmark hits both sides alike. Each round's study is a
    # Study of its own (one seed), so its fixed costs are paid once per round:
    # this overstates the machinery's share, never understates it.
    plain = study = 0.0
    runs = 0
    with tempfile.TemporaryDirectory() as root:
        for seed in range(args.seeds):
            points = grid(args.rates, args.orders, [seed])
            start = time.perf_counter()
            plain_loop(data, points, args.epochs, args.batch_size)
            plain += time.perf_counter() - start

            start = time.perf_counter()
            rows = tuning.Study(
                "mlp",
                data,
                f"{root}/seed{seed}",
                rates=args.rates,
                orders=args.orders,
                seeds=[seed],
                epochs=args.epochs,
                batch_size=args.batch_size,
                quiet=True,
            ).run()
            study += time.perf_counter() - start
            assert len(rows) == len(points), (len(rows), len(points))
            runs += len(points)

    print(f"backend {keras.backend.backend()}: {runs} runs of {args.epochs} epochs (mlp on digits), {args.seeds} rounds")
    print(f"plain model.fit loop: {plain:8.1f} s  ({plain / runs:.2f} s/run)")
    print(f"Study.run():          {study:8.1f} s  ({study / runs:.2f} s/run)")
    print(f"ratio study / plain:  {study / plain:8.3f}  (goal: <= 1.10)")


if __name__ == "__main__":
    main()
