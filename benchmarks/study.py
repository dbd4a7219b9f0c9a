"""The default study three ways: Keras Tuner trials, a plain `model.fit` loop, packed.

All three train the same grid (the default `kreg study`: the zoo mlp on
digits, 3 rates x (no norm + batch norm x 2 orders) x 5 seeds, 20 epochs) with
the same work per configuration: build, fit with validation data, evaluate on
the test split.

- sequential: `Study(executor="sequential")`, one Keras Tuner trial per run
  (oracle, ledger files, progress);
- plain loop: the same runs as a Python loop of `model.fit` calls, no study
  machinery (what the machinery costs: goal <= 10% over it);
- packed: `Study(executor="packed")`, the runs as branches of one compiled
  model (goal: >= 5x faster than sequential).

Each way runs in a fresh process of its own (this script with `--only`), after
a warm-up fit that pays the backend's one-time start-up, so that one way's
compiled functions or memory never help or burden another, and the peak
resident memory (`resource.getrusage`) is the packed run's own. Also printed:
the useful matmul throughput (Dense-kernel FLOPs: forward 2*in*out per
example, forward + backward ~3x forward for training examples) against the
machine's float32 matmul peak, measured here with a large numpy matmul.

    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/study.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/study.py --seeds 2 --epochs 5
"""

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

WAYS = ("sequential", "plain", "packed")


def grid(rates, orders, seeds):
    """The study's grid as model overrides, from the study's own `SearchSpace`."""
    from kreg import tuning

    space = tuning.SearchSpace(rates=rates, norms=(None, "batch"), orders=orders, seeds=seeds)
    return [space.builder_kwargs(config) for config in space.configs()]


def plain_loop(data, points, epochs, batch_size):
    """The runs as a plain Python loop of model.fit calls."""
    import keras

    from kreg import models
    from kreg.tuning import training

    for point in points:
        keras.backend.clear_session()
        keras.utils.set_random_seed(point["seed"])
        model = models.create("mlp", input_shape=data.input_shape, num_classes=data.num_classes, **point)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        # Validation in large batches, as the study validates (metrics are
        # averages over examples, whatever the batch).
        model.fit(
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            validation_batch_size=training.EVAL_BATCH_SIZE,
            epochs=epochs,
            batch_size=batch_size,
            verbose=0,
        )
        model.evaluate(data.x_test, data.y_test, batch_size=training.EVAL_BATCH_SIZE, verbose=0)


def matmul_flops(data, points, epochs):
    """Useful matmul FLOPs of the grid: Dense kernels, 3x forward when training."""
    from kreg import models

    total = 0
    for point in points:
        model = models.create("mlp", input_shape=data.input_shape, num_classes=data.num_classes, **point)
        forward = sum(2 * math.prod(w.shape) for w in model.trainable_weights if len(w.shape) == 2)
        examples = 3 * epochs * len(data.x_train) + epochs * len(data.x_val) + len(data.x_test)
        total += forward * examples
    return total


def peak_rss_mib():
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(way, args):
    """Runs one way in this process; returns its figures as a dict."""
    import keras

    from kreg import datasets
    from kreg import tuning

    data = datasets.load("digits")
    points = grid(args.rates, args.orders, range(args.seeds))
    # Warm-up: the process's first model pays one-time backend start-up costs.
    plain_loop(data, points[:1], 1, args.batch_size)
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    if way == "plain":
        plain_loop(data, points, args.epochs, args.batch_size)
    else:
        with tempfile.TemporaryDirectory() as directory:
            grid = {name: getattr(args, name) for name in ("rates", "orders", "seeds", "epochs", "batch_size")}
            rows = tuning.Study("mlp", data, directory, executor=way, quiet=True, **grid).run()
            assert len(rows) == len(points) and all(r["status"] == "completed" for r in rows)
            assert way != "packed" or {r["worker"] for r in rows} == {"packed"}
    seconds = time.perf_counter() - start
    return {
        "backend": keras.backend.backend(),
        "runs": len(points),
        "seconds": seconds,
        "flops": matmul_flops(data, points, args.epochs),
        "rss_before_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
    }


def matmul_peak(n=2048, repeats=5):
    """The machine's float32 matmul rate (FLOP/s): best of `repeats` numpy n x n matmuls."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main():
    from kreg.tuning import space
    from kreg.tuning import study as study_module

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=list(space.DEFAULT_RATES))
    parser.add_argument("--orders", nargs="+", default=list(space.DEFAULT_ORDERS))
    parser.add_argument("--seeds", type=int, default=space.DEFAULT_SEEDS)
    parser.add_argument("--epochs", type=int, default=study_module.DEFAULT_EPOCHS)
    parser.add_argument("--batch-size", type=int, default=study_module.DEFAULT_BATCH_SIZE)
    parser.add_argument("--only", choices=WAYS, help="run one way in this process and print its figures as JSON")
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args)))
        return

    results = {}
    for way in WAYS:
        command = [sys.executable, __file__, "--only", way] + sys.argv[1:]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[way] = json.loads(output.strip().splitlines()[-1])
    peak = matmul_peak()

    first = results["packed"]
    print(f"backend {first['backend']}: {first['runs']} runs of {args.epochs} epochs (mlp on digits), each way in its own process")
    for way, label in (("sequential", "sequential Keras Tuner trials"), ("plain", "plain model.fit loop"), ("packed", "packed study")):
        r = results[way]
        print(f"{label:30s} {r['seconds']:8.1f} s  ({r['seconds'] / r['runs']:.2f} s/run, {r['flops'] / r['seconds'] / 1e9:.2f} GFLOP/s)")
    seq, plain, packed = (results[w]["seconds"] for w in WAYS)
    print(f"study machinery: sequential / plain      {seq / plain:6.3f}  (goal: <= 1.10)")
    print(f"speedup: packed vs sequential Keras Tuner {seq / packed:6.2f}x (goal: >= 5x)")
    print(f"speedup: packed vs plain model.fit loop   {plain / packed:6.2f}x")
    gflops = first["flops"] / packed / 1e9
    print(
        f"packed throughput: {gflops:.2f} GFLOP/s of Dense matmuls (forward + backward) = "
        f"{100 * gflops / (peak / 1e9):.2f}% of this machine's numpy float32 matmul peak {peak / 1e9:.1f} GFLOP/s"
    )
    print(
        f"packed run peak resident memory: {first['peak_rss_mib']:.0f} MiB "
        f"(the process after imports and warm-up: {first['rss_before_mib']:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
