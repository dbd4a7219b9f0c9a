"""Study benchmarks: the default `kreg study` grid run several ways, each in its own process.

The grid (`--rates --orders --seeds --epochs --batch-size`; default: the
default `kreg study`, the zoo mlp on digits, 7 rates x (no norm + batch norm
x 2 orders) x 5 seeds = 105 runs of 20 epochs) is trained with the same work
per run in every way: build, fit with validation every epoch, evaluate on
the test split. The ways (`--ways`, default all):

- `sequential`: `Study(executor="sequential")`, one Keras Tuner trial per run
  (oracle, ledger files, progress);
- `plain`: the same runs as a Python loop of `model.fit` calls, no study
  machinery (what the machinery costs: goal sequential / plain <= 1.10);
- `packed`: `Study(executor="packed")`, the runs as branches of one compiled
  model (goal: >= 20x faster than sequential, on TensorFlow and JAX);
- `packed-process` and `jax`: whole processes, timed from outside, start to
  exit: `benchmarks/study_process.py --mode packed` (imports kreg, runs the
  packed study, exits) against `benchmarks/jax_reference.py` (a pure-JAX
  program of the same grid: one jitted train step, `jax.vmap` over the
  stacked runs; no Keras), run in turn for `--repeats` rounds and compared
  by their medians. Goal: the packed process within 1.5x of the JAX one,
  whatever the Keras backend;
- `convnet-sequential` and `convnet-packed`: a convnet study
  (`kreg.models.create("convnet")` on digits as 8x8x1 images, a smaller
  grid: `--conv-rates --conv-seeds --conv-epochs`, the same `--orders`;
  default 3 rates x 3 settings x 2 seeds = 18 runs of 3 epochs), run by run
  against packed (goal: packed >= 5x faster); `--conv-max-pack` caps the
  packs (on TensorFlow 9 makes one pack per seed, the second reusing the
  first's compiled model; on JAX a conv study's packs already hold one seed
  at one rate, `kreg.tuning.packing.compiles_per_branch`);
- `phases`: the `kreg study` command itself in one process
  (`benchmarks/study_process.py --mode kreg-study`; `kreg tune mlp digits`
  with the grid's options when it is not the default), split into phases:
  imports, build, compile, train, report (and checkpoints, record, refit,
  other), measured with a callback and timing around public calls.

`sequential`, `plain`, `packed` and the convnet ways run in a fresh process
of their own (this script with `--only WAY`) after a warm-up fit that pays
the backend's one-time start-up, and are timed inside it, so that one way's
compiled functions or memory never help or burden another; the peak
resident memory (`resource.getrusage`) of `packed` is the packed run's own.
Also printed: the packed study's useful matmul throughput (Dense-kernel
FLOPs: forward 2*in*out per example, forward + backward ~3x forward for
training examples) against the machine's float32 matmul peak, measured here
with a large numpy matmul.

The Keras backend is `KERAS_BACKEND`'s (TensorFlow by default); the pure-JAX
program ignores it. Timings are wall clock: run on an idle machine. Every
way at the default sizes takes a while on 2 CPU cores (the sequential ones
most); `--ways` picks some, `--seeds 1 --epochs 2 --conv-seeds 1
--conv-epochs 2` is a smoke run of all.

    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/study.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/study.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/study.py --ways packed-process jax phases --repeats 5
    KERAS_BACKEND=jax .venv/bin/python benchmarks/study.py --ways convnet-sequential convnet-packed
    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/study.py --seeds 1 --epochs 2 --conv-seeds 1 --conv-epochs 2
"""

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PROCESS_WAYS = ("packed-process", "jax")  # timed from outside: interleaved over --repeats rounds
IN_PROCESS_WAYS = ("sequential", "plain", "packed", "convnet-sequential", "convnet-packed")
WAYS = ("sequential", "plain", "packed", "packed-process", "jax", "convnet-sequential", "convnet-packed", "phases")
GOALS = {
    "machinery": 1.10,  # sequential / plain, at most
    "packed": 20.0,  # sequential / packed, at least
    "jax": 1.5,  # packed process / JAX process, at most
    "convnet": 5.0,  # convnet sequential / packed, at least
}
# The convnet study: 3 rates x 3 settings x 2 seeds = 18 runs, sized for 2 CPU cores.
CONV_RATES, CONV_SEEDS, CONV_EPOCHS = (0.0, 0.2, 0.4), 2, 3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="The default kreg study grid trained several ways, each way in its own process; "
        "prints each way's time and the ratios against their goals.",
        epilog="ways: sequential (Keras Tuner trials), plain (a model.fit loop), packed (Study packed), "
        "packed-process and jax (whole processes: kreg's packed study against benchmarks/jax_reference.py), "
        "convnet-sequential and convnet-packed (a convnet study on digits images), "
        "phases (the kreg study command, phase by phase). See the module docstring.",
    )
    grid = parser.add_argument_group("the mlp grid (every way but the convnet ones; default: the default kreg study)")
    grid.add_argument("--rates", type=float, nargs="+", help="dropout rates (default: 0 0.1 ... 0.6)")
    grid.add_argument("--orders", nargs="+", help="batch-norm block orders, also the convnet's (default: norm-act-drop act-norm-drop)")
    grid.add_argument("--seeds", type=int, help="seeds per configuration (default: 5)")
    grid.add_argument("--epochs", type=int, help="epochs per run (default: 20)")
    grid.add_argument("--batch-size", type=int, help="training batch size, also the convnet's (default: 32)")
    conv = parser.add_argument_group("the convnet grid (convnet-sequential, convnet-packed)")
    conv.add_argument("--conv-rates", type=float, nargs="+", default=list(CONV_RATES), help="dropout rates (default: 0 0.2 0.4)")
    conv.add_argument("--conv-seeds", type=int, default=CONV_SEEDS, help="seeds per configuration (default: 2)")
    conv.add_argument("--conv-epochs", type=int, default=CONV_EPOCHS, help="epochs per run (default: 3)")
    conv.add_argument("--conv-max-pack", type=int, help="convnet-packed: the most runs of one pack (default: kreg's)")
    parser.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS), metavar="WAY", help=f"the ways to run, in this order: {' '.join(WAYS)} (default: all)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the whole-process ways packed-process and jax, run in turn; their medians are compared (default: 1)")
    parser.add_argument("--only", choices=IN_PROCESS_WAYS, help="internal: run one way in this process and print its figures as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.conv_max_pack is not None and args.conv_max_pack < 1:
        parser.error(f"--conv-max-pack must be at least 1, got {args.conv_max_pack}")
    # The defaults are the default `kreg study`'s, asked of kreg (after
    # parsing, so that `--help` loads no Keras).
    from kreg.tuning import space
    from kreg.tuning import study

    defaults = {
        "rates": list(space.DEFAULT_RATES),
        "orders": list(space.DEFAULT_ORDERS),
        "seeds": space.DEFAULT_SEEDS,
        "epochs": study.DEFAULT_EPOCHS,
        "batch_size": study.DEFAULT_BATCH_SIZE,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def grid_argv(args):
    """The mlp grid's options as command-line arguments."""
    return [
        "--rates", *(f"{r:g}" for r in args.rates),
        "--orders", *args.orders,
        "--seeds", str(args.seeds),
        "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size),
    ]  # fmt: skip


def conv_argv(args):
    argv = ["--conv-rates", *(f"{r:g}" for r in args.conv_rates), "--conv-seeds", str(args.conv_seeds), "--conv-epochs", str(args.conv_epochs)]
    return argv + (["--conv-max-pack", str(args.conv_max_pack)] if args.conv_max_pack else [])


# ----------------------------------------------------------------- in process


def grid_points(rates, orders, seeds):
    """The study's grid as model overrides, from the study's own `SearchSpace`."""
    from kreg import tuning

    space = tuning.SearchSpace(rates=rates, norms=(None, "batch"), orders=orders, seeds=seeds)
    return [space.builder_kwargs(config) for config in space.configs()]


def plain_loop(model_name, data, points, epochs, batch_size):
    """The runs as a plain Python loop of model.fit calls."""
    import keras

    from kreg import models
    from kreg.tuning import training

    for point in points:
        keras.backend.clear_session()
        keras.utils.set_random_seed(point["seed"])
        model = models.create(model_name, input_shape=data.input_shape, num_classes=data.num_classes, **point)
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
    """Useful matmul FLOPs of the mlp grid: Dense kernels, 3x forward when training."""
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
    """Runs one way in this process (after a warm-up fit); returns its figures as a dict."""
    import keras

    from kreg import datasets
    from kreg import tuning

    convnet = way.startswith("convnet-")
    model_name = "convnet" if convnet else "mlp"
    data = datasets.load("digits", as_images=True) if convnet else datasets.load("digits")
    if convnet:
        assert data.input_shape == (8, 8, 1), data.input_shape
        settings = {"rates": args.conv_rates, "orders": args.orders, "seeds": args.conv_seeds, "epochs": args.conv_epochs, "batch_size": args.batch_size}
        if args.conv_max_pack and way == "convnet-packed":
            settings["max_pack"] = args.conv_max_pack
    else:
        settings = {"rates": args.rates, "orders": args.orders, "seeds": args.seeds, "epochs": args.epochs, "batch_size": args.batch_size}
    points = grid_points(settings["rates"], settings["orders"], range(settings["seeds"]))
    # Warm-up: the process's first model pays one-time backend start-up costs.
    plain_loop(model_name, data, points[:1], 1, args.batch_size)
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    if way == "plain":
        plain_loop(model_name, data, points, settings["epochs"], args.batch_size)
    else:
        executor = way.removeprefix("convnet-")
        with tempfile.TemporaryDirectory() as directory:
            rows = tuning.Study(model_name, data, directory, executor=executor, quiet=True, **settings).run()
        assert len(rows) == len(points) and all(r["status"] == "completed" for r in rows), [r["status"] for r in rows]
        if executor == "packed":
            assert {r["worker"] for r in rows} == {"packed"}, "the study did not train packed"
    seconds = time.perf_counter() - start
    figures = {
        "backend": keras.backend.backend(),
        "model": model_name,
        "runs": len(points),
        "epochs": settings["epochs"],
        "seconds": seconds,
        "rss_before_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
    }
    if not convnet:
        figures["flops"] = matmul_flops(data, points, settings["epochs"])
    return figures


# -------------------------------------------------------------- the processes


def command(way, args):
    """The command line of a way's own process."""
    if way in IN_PROCESS_WAYS:
        return [sys.executable, os.path.abspath(__file__), "--only", way, *grid_argv(args), *conv_argv(args)]
    if way == "jax":
        return [sys.executable, os.path.join(HERE, "jax_reference.py"), "--json", *grid_argv(args)]
    mode = "packed" if way == "packed-process" else "kreg-study"
    return [sys.executable, os.path.join(HERE, "study_process.py"), "--mode", mode, *grid_argv(args)]


def run_way(way, args):
    """Runs a way in a process of its own; its JSON figures plus `process_seconds`
    (the process's wall time, start to exit, on this process's clock)."""
    start = time.perf_counter()
    done = subprocess.run(command(way, args), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"way {way!r} failed (exit status {done.returncode}): {' '.join(command(way, args))}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["process_seconds"] = seconds
    if way == "jax":
        figures["text"] = done.stdout.strip().splitlines()[:-1]
    return figures


def run_interleaved(ways, args):
    """Runs the whole-process `ways` in turn, `args.repeats` rounds; for each
    way, the figures of its median round (the lower median), with every
    round's `process_seconds` as `rounds`."""
    rounds = {way: [] for way in ways}
    for index in range(args.repeats):
        for way in ways:
            print(f"[{way}] round {index + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
            rounds[way].append(run_way(way, args))
    results = {}
    for way, runs in rounds.items():
        seconds = [run["process_seconds"] for run in runs]
        median = statistics.median_low(seconds)
        results[way] = dict(next(run for run in runs if run["process_seconds"] == median), rounds=seconds)
    return results


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


def verdict(ok):
    return "met" if ok else "MISSED"


# ------------------------------------------------------------------- printing


def print_mlp(results, args):
    ways = [w for w in ("sequential", "plain", "packed") if w in results]
    if not ways:
        return
    first = results[ways[0]]
    print(f"mlp on digits: {first['runs']} runs of {args.epochs} epochs, each way in its own process, timed after a warm-up")
    labels = {"sequential": "sequential Keras Tuner trials", "plain": "plain model.fit loop", "packed": "packed study"}
    for way in ways:
        r = results[way]
        print(f"  {labels[way]:30s} {r['seconds']:8.1f} s  ({r['seconds'] / r['runs']:.3f} s/run, {r['flops'] / r['seconds'] / 1e9:.2f} GFLOP/s)")
    seconds = {w: results[w]["seconds"] for w in ways}
    if "sequential" in seconds and "plain" in seconds:
        ratio = seconds["sequential"] / seconds["plain"]
        print(f"  study machinery: sequential / plain        {ratio:7.3f}   (goal: <= {GOALS['machinery']:.2f}: {verdict(ratio <= GOALS['machinery'])})")
    if "sequential" in seconds and "packed" in seconds:
        speedup = seconds["sequential"] / seconds["packed"]
        print(f"  speedup: packed vs sequential Keras Tuner  {speedup:7.2f}x  (goal: >= {GOALS['packed']:.0f}x: {verdict(speedup >= GOALS['packed'])})")
    if "plain" in seconds and "packed" in seconds:
        print(f"  speedup: packed vs plain model.fit loop    {seconds['plain'] / seconds['packed']:7.2f}x")
    if "packed" in results:
        packed = results["packed"]
        peak = matmul_peak()
        gflops = packed["flops"] / packed["seconds"] / 1e9
        print(
            f"  packed throughput: {gflops:.2f} GFLOP/s of Dense matmuls (forward + backward) = "
            f"{100 * gflops / (peak / 1e9):.2f}% of this machine's numpy float32 matmul peak {peak / 1e9:.1f} GFLOP/s"
        )
        print(
            f"  packed run peak resident memory: {packed['peak_rss_mib']:.0f} MiB "
            f"(the process after imports and warm-up: {packed['rss_before_mib']:.0f} MiB)"
        )


def print_jax(results, args):
    if "jax" in results:
        r = results["jax"]
        p = r["phases"]
        print(f"pure JAX program (benchmarks/jax_reference.py): {r['runs']} runs, {r['steps']} train steps of all runs at once")
        print(
            f"  whole process {r['process_seconds']:.2f} s: imports {p['imports']:.2f}, data {p['data']:.2f}, init {p['init']:.2f}, "
            f"compile {p['compile']:.2f}, train {p['train']:.2f} s; mean final validation accuracy {r['mean_val_accuracy']:.4f}"
        )
    if "packed-process" in results:
        r = results["packed-process"]
        print(
            f"kreg packed study (benchmarks/study_process.py --mode packed, {r['backend']}): whole process "
            f"{r['process_seconds']:.2f} s: imports {r['imports']:.2f} s, Study(...).run() {r['study']:.2f} s"
        )
    if "jax" in results and "packed-process" in results:
        ratio = results["packed-process"]["process_seconds"] / results["jax"]["process_seconds"]
        rounds = len(results["jax"]["rounds"])
        print(f"  whole processes: kreg packed / pure JAX vmap {ratio:7.2f}   (goal: <= {GOALS['jax']:.1f}: {verdict(ratio <= GOALS['jax'])})")
        if rounds > 1:
            pairs = zip(results["packed-process"]["rounds"], results["jax"]["rounds"])
            print(f"  medians of {rounds} interleaved rounds; round by round: " + ", ".join(f"{a:.2f}/{b:.2f} s = {a / b:.2f}" for a, b in pairs))


def print_convnet(results, args):
    ways = [w for w in ("convnet-sequential", "convnet-packed") if w in results]
    if not ways:
        return
    first = results[ways[0]]
    print(
        f"convnet on digits images (8x8x1): {first['runs']} runs of {args.conv_epochs} epochs "
        f"(rates {' '.join(f'{r:g}' for r in args.conv_rates)}, {args.conv_seeds} seeds), each way in its own process, timed after a warm-up"
    )
    packed = "packed study" if not args.conv_max_pack else f"packed study, packs of at most {args.conv_max_pack}"
    for way, label in (("convnet-sequential", "sequential Keras Tuner trials"), ("convnet-packed", packed)):
        if way in results:
            r = results[way]
            print(f"  {label:34s} {r['seconds']:8.1f} s  ({r['seconds'] / r['runs']:.3f} s/run, peak resident memory {r['peak_rss_mib']:.0f} MiB)")
    if len(ways) == 2:
        speedup = results["convnet-sequential"]["seconds"] / results["convnet-packed"]["seconds"]
        print(f"  speedup: packed vs sequential Keras Tuner  {speedup:7.2f}x  (goal: >= {GOALS['convnet']:.0f}x: {verdict(speedup >= GOALS['convnet'])})")


def print_phases(results, args):
    if "phases" not in results:
        return
    r = results["phases"]
    p, d = r["phases"], r["details"]
    wall = r["process_seconds"]
    outside = wall - r["seconds"]  # interpreter start-up before the first line, and exit
    packs = "+".join(str(n) for n in r["packs"])
    print(f"`{r['command']}` ({r['backend']}): {r['runs']} runs in packs of {packs}, one process of {wall:.2f} s:")
    notes = {
        "imports": f"Keras + backend (and TensorFlow) {d['imports_keras_backend']:.2f} s, kreg.tuning {d['imports_kreg_tuning']:.2f} s",
        "build": f"Study() {d['study_init']:.2f} s; branch models, pack model, compile() per pack",
        "compile": "first epoch's excess over a later one; first train step "
        + ", ".join(f"{s:.2f}" for s in d["first_train_steps"])
        + " s, its last (smaller batch) "
        + ", ".join(f"{s:.2f}" for s in d.get("first_epoch_last_steps", ()))
        + " s, first validation "
        + ", ".join(f"{s:.2f}" for s in d["first_evaluations"])
        + " s",
        "train": "epochs with validation, test evaluation",
        "checkpoints": "pack state saved after epochs",
        "record": "rows written to the ledger",
        "report": "report.md, csv, json, plots",
        "refit": "best.keras: the recommended configuration on train + validation",
        "other": "parsing, saving best.keras, printing",
    }
    rows = [("start-up + exit", outside, "the interpreter before the first line, and exit")]
    rows += [(name, p[name], notes[name]) for name in ("imports", "build", "compile", "train", "checkpoints", "record", "report", "refit", "other")]
    for name, seconds, note in rows:
        print(f"  {name:16s} {seconds:7.2f} s  {100 * seconds / wall:5.1f}%  {note}")


def main():
    args = parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args)))
        return
    results = {}
    for way in [w for w in WAYS if w in args.ways]:
        if way in results:
            continue
        if way in PROCESS_WAYS:
            results.update(run_interleaved([w for w in PROCESS_WAYS if w in args.ways], args))
            continue
        print(f"[{way}] ...", file=sys.stderr, flush=True)
        results[way] = run_way(way, args)
    backend = next((r["backend"] for r in results.values() if "backend" in r), os.environ.get("KERAS_BACKEND", "tensorflow"))
    print(f"Keras backend {backend}; each way in its own process (machine: {os.cpu_count()} CPUs)")
    for section in (print_mlp, print_jax, print_convnet, print_phases):
        section(results, args)


if __name__ == "__main__":
    main()
