"""Inference time of a Conv2DBlock net with batch norm folded vs unfolded.

Prints the median time per batch of each and the median ratio folded /
unfolded over alternating pairs of runs, for the compiled path
(`predict_on_batch`, what `predict` runs) and the eager call
`model(x, training=False)`, on the current Keras backend:

    KERAS_BACKEND=jax python benchmarks/inference.py --batch 64 --repeats 50
"""

import argparse
import statistics
import time

import keras
import numpy as np

from kreg.inference import fold_batchnorm
from kreg.layers import Conv2DBlock
from kreg.layers import DenseBlock


def conv_block_net(width, depth, seed=0):
    """Conv2DBlocks (conv -> BN -> ReLU -> dropout) on 32x32x3 images."""
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for level in range(depth):
        x = Conv2DBlock(width * 2**level, 3, padding="same", rate=0.1, seed=seed)(x)
        x = Conv2DBlock(width * 2**level, 3, padding="same", rate=0.1, seed=seed)(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = DenseBlock(64, rate=0.1, seed=seed)(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def give_batchnorms_statistics(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(size=n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, size=n).astype("float32"))


def paired_timings(unfolded, folded, warmup, repeats):
    """Median seconds of each and the median of the per-pair ratios.

    The two runs alternate, so a load that comes and goes on a shared
    machine hits both alike.
    """
    for _ in range(warmup):
        unfolded()
        folded()
    pairs = []
    for _ in range(repeats):
        pair = []
        for run in (unfolded, folded):
            start = time.perf_counter()
            run()
            pair.append(time.perf_counter() - start)
        pairs.append(pair)
    return (
        statistics.median(a for a, _ in pairs),
        statistics.median(b for _, b in pairs),
        statistics.median(b / a for a, b in pairs),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    model = conv_block_net(args.width, args.depth)
    give_batchnorms_statistics(model)
    folded, report = fold_batchnorm(model, return_report=True)
    x = np.random.default_rng(1).normal(size=(args.batch, 32, 32, 3)).astype("float32")
    difference = np.abs(folded.predict_on_batch(x) - model.predict_on_batch(x)).max()

    print(f"backend {keras.backend.backend()}, batch {args.batch}, "
          f"{sum(d.folded for d in report)}/{len(report)} batch norms folded, "
          f"parameters {model.count_params()} -> {folded.count_params()}, "
          f"max |difference| {difference:.2e}")
    for path, run_of in [
        ("predict_on_batch", lambda m: lambda: m.predict_on_batch(x)),
        ("eager call", lambda m: lambda: keras.ops.convert_to_numpy(m(x, training=False))),
    ]:
        unfolded_s, folded_s, ratio = paired_timings(
            run_of(model), run_of(folded), args.warmup, args.repeats
        )
        print(f"{path:>16}: unfolded {unfolded_s * 1e3:8.3f} ms, folded {folded_s * 1e3:8.3f} ms, "
              f"ratio folded/unfolded {ratio:.3f} (median of {args.repeats} pairs)")

if __name__ == "__main__":
    main()
