"""The default `kreg study` grid as a pure-JAX program: one jitted train step, vmap over runs.

What a project would write by hand instead of kreg's packed study: the same
grid (the zoo mlp on digits, dropout rates x (no norm + batch norm in each
order) x seeds), the same work per run, and no Keras, no Keras Tuner, no
kreg. It imports jax, numpy and scikit-learn (the digits data, the source
kreg's `datasets.load("digits")` reads) only; Adam is written out here (optax
is not installed in this project).

The same work as `kreg study`, run for run (the defaults mirror
`kreg.tuning.space` and `kreg.tuning.study`; `benchmarks/study.py` passes its
own grid explicitly):

- data: digits, a stratified 1079 / 359 / 359 split, features standardized
  on the training split (the split differs from kreg's, the sizes do not);
- model (`kreg.models.mlp`): 2 hidden layers of 64 units, then a softmax
  Dense(10). A hidden layer per configuration group:
  no norm: Dense (bias) -> relu -> dropout;
  "norm-act-drop": Dense (no bias) -> batch norm -> relu -> dropout;
  "act-norm-drop": Dense (bias) -> relu -> batch norm -> dropout.
  Batch norm as Keras' (momentum 0.99, epsilon 1e-3, gamma and beta, moving
  statistics at inference); inverted dropout (rate 0 draws an all-ones mask,
  a little more work than Keras, which skips the layer); he_normal
  (truncated) hidden kernels, glorot_uniform classifier, zero biases;
- training (`kreg.tuning.training`): Adam (learning rate 1e-3, Keras'
  betas and epsilon 1e-7), sparse categorical cross-entropy, batches of 32 in
  the order `numpy.random.default_rng([seed, epoch]).permutation(1079)` (a
  smaller last batch: 34 steps an epoch), training loss and accuracy
  measured every step, validation loss and accuracy every epoch, test loss
  and accuracy at the end.

How: every run's parameters, batch-norm statistics and Adam slots are
stacked along a leading run axis, one stack per configuration group (the
three groups differ in structure); initial weights are drawn with numpy. ONE `jax.jit`-compiled train step does a
`jax.vmap` of value-and-grad + Adam over each group's runs; one jitted
evaluation step does the same for validation and test. The Python loop only
feeds each step its batch indices (one `(batch, seeds)` int array) and
dropout key. Initial weights and dropout masks come from other generators
than kreg's, so the numbers are not kreg's; the amount of work is.

Run it as a whole process (its wall time is what `benchmarks/study.py`
compares with a whole `kreg study`-like process):

    .venv/bin/python benchmarks/jax_reference.py
    .venv/bin/python benchmarks/jax_reference.py --seeds 1 --epochs 2 --json

It prints its wall time from its first line to the end of training (the
caller times the whole process from outside), the phases (imports, data,
init, compile = the first epoch's train steps and evaluation, train = the
rest), and the final validation accuracy per configuration (mean over
seeds), with a warning when the grid did not learn (mean below 0.9 after 5
epochs or more; about 0.95 at the default 20 epochs).
"""

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402

# Defaults of the default `kreg study` (kreg.tuning.space, kreg.tuning.study,
# kreg.tuning.training, kreg.models.mlp), written out: no kreg import here.
DEFAULT_RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
DEFAULT_ORDERS = ("norm-act-drop", "act-norm-drop")
DEFAULT_SEEDS = 5
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 32
EVAL_BATCH_SIZE = 1024
WIDTH, DEPTH = 64, 2
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3
ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7
VAL_FRACTION = TEST_FRACTION = 0.2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="The default kreg study grid (mlp on digits) as a pure-JAX program: "
        "one jitted train step with jax.vmap over the stacked runs; prints its wall time "
        "and the final validation accuracy per configuration."
    )
    parser.add_argument("--rates", type=float, nargs="+", default=list(DEFAULT_RATES), help="dropout rates (default: 0 0.1 ... 0.6)")
    parser.add_argument("--orders", nargs="+", default=list(DEFAULT_ORDERS), help="batch-norm block orders (default: norm-act-drop act-norm-drop)")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="seeds 0..N-1 (default: 5)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="epochs per run (default: 20)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="training batch size (default: 32)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's learning rate (default: 0.001)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line, last")
    args = parser.parse_args(argv)
    for order in args.orders:
        if order not in ("norm-act-drop", "act-norm-drop"):
            parser.error(f"--orders: this program writes out norm-act-drop and act-norm-drop, got {order!r}")
    return args


def load_digits(seed=0):
    """Digits as standardized float32 splits: (x_train, y_train, x_val, y_val, x_test, y_test).

    Stratified: the examples are ordered round-robin over the classes (each
    class shuffled), then the first 20% are the test split, the next 20% the
    validation split, the rest the training split (1079 / 359 / 359).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x, y = bunch.data.astype("float64"), bunch.target.astype("int32")
    rng = np.random.default_rng(seed)
    rank = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        rank[rng.permutation(members)] = np.arange(len(members))
    order = np.lexsort((y, rank))  # round-robin over the classes
    n_test, n_val = round(TEST_FRACTION * len(y)), round(VAL_FRACTION * len(y))
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0
    scaled = ((x - mean) / std).astype("float32")
    return scaled[train], y[train], scaled[val], y[val], scaled[test], y[test]


def configurations(rates, orders, seeds):
    """The grid in kreg's order (seed, norm, order, rate): dicts norm / order / rate / seed."""
    return [
        {"norm": norm, "order": order, "rate": float(rate), "seed": seed}
        for seed in range(seeds)
        for norm, order in [("none", None)] + [("batch", o) for o in orders]
        for rate in sorted(rates)
    ]


def main(argv=None):
    args = parse_args(argv)
    t_args = time.perf_counter()

    import jax
    import jax.numpy as jnp

    t_imports = time.perf_counter()

    x_train, y_train, x_val, y_val, x_test, y_test = load_digits()
    configs = configurations(args.rates, args.orders, args.seeds)
    groups = [("none", None)] + [("batch", order) for order in args.orders]
    # Runs of each group, in grid order: (index in configs, config).
    members = {g: [(i, c) for i, c in enumerate(configs) if (c["norm"], c["order"]) == g] for g in groups}
    features, classes = x_train.shape[1], int(y_train.max()) + 1
    t_data = time.perf_counter()

    # ------------------------------------------------------------------ model
    def he_normal(rng, fan_in, fan_out):
        # Keras' he_normal: a normal of stddev sqrt(2 / fan_in) / 0.8796...
        # truncated at 2 of its stddevs (out-of-range draws drawn again).
        std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
        z = rng.standard_normal((fan_in, fan_out))
        while (out := np.abs(z) > 2).any():
            z[out] = rng.standard_normal(out.sum())
        return (std * z).astype(np.float32)

    def glorot_uniform(rng, fan_in, fan_out):
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)

    def init_run(rng, group):
        """(params, state) of one run of `group` (numpy): per layer a kernel,
        a bias where the layer has one, gamma / beta and moving statistics
        where it has batch norm."""
        norm, order = group
        params, state = {}, {}
        fan_in = features
        for layer in range(DEPTH):
            p = {"kernel": he_normal(rng, fan_in, WIDTH)}
            if not (norm == "batch" and order == "norm-act-drop"):  # a bias, unless batch norm directly follows
                p["bias"] = np.zeros((WIDTH,), np.float32)
            if norm == "batch":
                p["gamma"] = np.ones((WIDTH,), np.float32)
                p["beta"] = np.zeros((WIDTH,), np.float32)
                state[f"layer_{layer}"] = {"mean": np.zeros((WIDTH,), np.float32), "var": np.ones((WIDTH,), np.float32)}
            params[f"layer_{layer}"] = p
            fan_in = WIDTH
        params["classifier"] = {"kernel": glorot_uniform(rng, WIDTH, classes), "bias": np.zeros((classes,), np.float32)}
        return params, state

    def batch_norm(x, p, s, training):
        if training:
            mean, var = jnp.mean(x, axis=0), jnp.var(x, axis=0)
            new = {
                "mean": BN_MOMENTUM * s["mean"] + (1 - BN_MOMENTUM) * mean,
                "var": BN_MOMENTUM * s["var"] + (1 - BN_MOMENTUM) * var,
            }
        else:
            mean, var, new = s["mean"], s["var"], s
        return (x - mean) * jax.lax.rsqrt(var + BN_EPSILON) * p["gamma"] + p["beta"], new

    def dropout(x, rate, key):
        keep = 1.0 - rate
        mask = jax.random.bernoulli(key, keep, x.shape)
        return jnp.where(mask, x / keep, 0.0)

    def forward(params, state, x, rate, key, group, training):
        """Logits of one run on a batch `x` (B, features); the new state."""
        norm, order = group
        tokens = ("norm", "act", "drop") if order is None else tuple(order.split("-"))
        new_state = {}
        keys = jax.random.split(key, DEPTH)
        for layer in range(DEPTH):
            name = f"layer_{layer}"
            p = params[name]
            x = x @ p["kernel"]
            if "bias" in p:
                x = x + p["bias"]
            for token in tokens:
                if token == "norm" and norm == "batch":
                    x, new_state[name] = batch_norm(x, p, state[name], training)
                elif token == "act":
                    x = jax.nn.relu(x)
                elif token == "drop" and training:
                    x = dropout(x, rate, keys[layer])
        p = params["classifier"]
        return x @ p["kernel"] + p["bias"], new_state

    def loss_and_hits(logits, y):
        log_probs = jax.nn.log_softmax(logits)
        losses = -jnp.take_along_axis(log_probs, y[:, None], axis=1)[:, 0]
        hits = (jnp.argmax(logits, axis=1) == y).astype(jnp.float32)
        return jnp.mean(losses), jnp.mean(hits)

    # ------------------------------------------------------------------ Adam
    def adam(params, grads, m, v, step):
        """Keras' Adam update (bias correction folded into the step size)."""
        t = step.astype(jnp.float32) + 1.0
        alpha = args.learning_rate * jnp.sqrt(1 - ADAM_BETA_2**t) / (1 - ADAM_BETA_1**t)
        m = jax.tree.map(lambda m_, g: m_ + (g - m_) * (1 - ADAM_BETA_1), m, grads)
        v = jax.tree.map(lambda v_, g: v_ + (g * g - v_) * (1 - ADAM_BETA_2), v, grads)
        params = jax.tree.map(lambda p, m_, v_: p - alpha * m_ / (jnp.sqrt(v_) + ADAM_EPSILON), params, m, v)
        return params, m, v

    # ------------------------------------------------------------- one step
    def run_step(group):
        def one(params, state, m, v, x, y, rate, key, step):
            def objective(p):
                logits, new_state = forward(p, state, x, rate, key, group, training=True)
                loss, accuracy = loss_and_hits(logits, y)
                return loss, (new_state, accuracy)

            (loss, (new_state, accuracy)), grads = jax.value_and_grad(objective, has_aux=True)(params)
            params, m, v = adam(params, grads, m, v, step)
            return params, new_state, m, v, loss, accuracy

        return jax.vmap(one, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None))

    steps = {group: run_step(group) for group in groups}
    columns = {group: jnp.asarray([c["seed"] for _, c in members[group]], jnp.int32) for group in groups}
    rates = {group: jnp.asarray([c["rate"] for _, c in members[group]], jnp.float32) for group in groups}
    x_train_d, y_train_d = jnp.asarray(x_train), jnp.asarray(y_train)

    @jax.jit
    def train_step(carry, x_all, y_all, index, base_key, step):
        """One step of every run: `index` (B, seeds) are the batch's examples
        per seed in the training split `x_all`, `y_all`."""
        key = jax.random.fold_in(base_key, step)
        new = {}
        for g, group in enumerate(groups):
            params, state, m, v, totals = carry[g]
            index_g = index[:, columns[group]].T  # (runs, B): each run reads its seed's batch
            x, y = x_all[index_g], y_all[index_g]
            keys = jax.random.split(jax.random.fold_in(key, g), len(members[group]))
            params, state, m, v, loss, accuracy = steps[group](params, state, m, v, x, y, rates[group], keys, step)
            b = index.shape[0]  # training metrics: averages over examples, as Keras reports them
            totals = totals + jnp.stack([loss * b, accuracy * b, jnp.full_like(loss, b)], axis=1)
            new[g] = (params, state, m, v, totals)
        return tuple(new[g] for g in range(len(groups)))

    def run_eval(group):
        def one(params, state, x, y):
            logits, _ = forward(params, state, x, 0.0, jax.random.key(0), group, training=False)
            return loss_and_hits(logits, y)

        return jax.vmap(one, in_axes=(0, 0, None, None))

    evals = {group: run_eval(group) for group in groups}

    @jax.jit
    def eval_step(carry, x, y):
        """(loss, accuracy) of every run on `x`, `y` (in inference mode), per group."""
        return tuple(evals[group](carry[g][0], carry[g][1], x, y) for g, group in enumerate(groups))

    def evaluate(carry, x, y):
        """Loss and accuracy per run, averaged over examples (batches of EVAL_BATCH_SIZE)."""
        sums = None
        for start in range(0, len(x), EVAL_BATCH_SIZE):
            xb, yb = x[start : start + EVAL_BATCH_SIZE], y[start : start + EVAL_BATCH_SIZE]
            part = [(l * len(xb), a * len(xb)) for l, a in eval_step(carry, xb, yb)]
            sums = part if sums is None else [(s[0] + p[0], s[1] + p[1]) for s, p in zip(sums, part)]
        return [(np.asarray(l) / len(x), np.asarray(a) / len(x)) for l, a in sums]

    # ------------------------------------------------------------------ init
    def init_group(group):
        """A group's parameters, batch-norm statistics, Adam slots (zeros)
        and training-metric totals, stacked over its runs (run i of the grid
        draws its initial weights from numpy's generator keyed (seed, i))."""
        runs = [init_run(np.random.default_rng([c["seed"], i]), group) for i, c in members[group]]
        params, state = jax.tree.map(lambda *leaves: jnp.asarray(np.stack(leaves)), *runs)
        totals = jnp.zeros((len(runs), 3), jnp.float32)
        return params, state, jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params), totals

    carry = tuple(init_group(group) for group in groups)
    jax.block_until_ready(carry)
    t_init = time.perf_counter()

    # ----------------------------------------------------------------- train
    size, batch = len(x_train), args.batch_size
    steps_per_epoch = math.ceil(size / batch)
    base_key = jax.random.key(12345)
    history = {"val_loss": [], "val_accuracy": [], "loss": [], "accuracy": []}
    t_compiled = None
    step = 0
    for epoch in range(args.epochs):
        order = np.stack([np.random.default_rng([seed, epoch]).permutation(size) for seed in range(args.seeds)], axis=1)
        for start in range(0, size, batch):
            carry = train_step(carry, x_train_d, y_train_d, order[start : start + batch], base_key, step)
            step += 1
        val = evaluate(carry, x_val, y_val)
        if t_compiled is None:
            t_compiled = time.perf_counter()  # the first epoch: its train steps (two batch shapes) and evaluation compiled
        train = [np.asarray(c[4]) for c in carry]
        history["loss"].append([t[:, 0] / t[:, 2] for t in train])
        history["accuracy"].append([t[:, 1] / t[:, 2] for t in train])
        history["val_loss"].append([l for l, _ in val])
        history["val_accuracy"].append([a for _, a in val])
        carry = tuple((*c[:4], jnp.zeros_like(c[4])) for c in carry)  # training metrics reset every epoch
    test = evaluate(carry, x_test, y_test)
    t_trained = time.perf_counter()

    # ---------------------------------------------------------------- report
    final_val = {}
    for g, group in enumerate(groups):
        for j, (i, config) in enumerate(members[group]):
            final_val.setdefault((group, config["rate"]), []).append(float(history["val_accuracy"][-1][g][j]))
    mean_val = {key: float(np.mean(values)) for key, values in final_val.items()}
    test_accuracy = float(np.mean(np.concatenate([a for _, a in test])))
    assert step == args.epochs * steps_per_epoch

    label = {("none", None): "no norm"} | {("batch", o): f"batch {o}" for o in args.orders}
    wall = t_trained - START
    print(
        f"pure JAX ({jax.__version__}, {jax.default_backend()}): {len(configs)} runs of {args.epochs} epochs "
        f"(mlp on digits, {steps_per_epoch} steps of {batch} an epoch), one jitted vmapped train step"
    )
    print(
        f"wall time {wall:.2f} s from the script's first line: imports {t_imports - t_args:.2f} s, "
        f"data {t_data - t_imports:.2f} s, init {t_init - t_data:.2f} s, "
        f"compile (the first epoch) {t_compiled - t_init:.2f} s, train {t_trained - t_compiled:.2f} s"
    )
    print("final validation accuracy, mean over seeds:")
    print("  rate   " + "  ".join(f"{label[g]:>22s}" for g in groups))
    for rate in sorted(args.rates):
        print(f"  {rate:4.2f}   " + "  ".join(f"{mean_val[(g, float(rate))]:22.4f}" for g in groups))
    overall = float(np.mean(list(mean_val.values())))
    print(f"mean final validation accuracy {overall:.4f}, mean test accuracy {test_accuracy:.4f}")
    if args.epochs >= 5 and overall < 0.9:
        print("WARNING: the grid did not learn as it should (mean validation accuracy < 0.9)")
    if args.json:
        figures = {
            "runs": len(configs),
            "steps": step,
            "seconds": wall,
            "phases": {
                "imports": t_imports - t_args,
                "data": t_data - t_imports,
                "init": t_init - t_data,
                "compile": t_compiled - t_init,
                "train": t_trained - t_compiled,
            },
            "mean_val_accuracy": overall,
            "test_accuracy": test_accuracy,
            "val_accuracy": {f"{label[g]} rate {r:g}": v for (g, r), v in mean_val.items()},
            "pid": os.getpid(),
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
