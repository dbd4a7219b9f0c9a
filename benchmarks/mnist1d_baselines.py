"""MNIST-1D baseline table (Greydanus 2020): logistic regression, MLP, CNN.

Recipe of the paper's notebook: all 4000 training examples, Adam(1e-2),
batch 100, 6000 steps (150 epochs), test accuracy on the 1000 test examples.
"""
import sys
import time

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression

from kreg import datasets, models
from kreg.models.train import accuracy

vectors = datasets.load("mnist1d", seed=0, val_fraction=0.0)
sequences = datasets.load("mnist1d", seed=0, val_fraction=0.0, as_images=True)
print("train/test", len(vectors.y_train), len(vectors.y_test), flush=True)

logistic = LogisticRegression(max_iter=5000).fit(vectors.x_train, vectors.y_train)
print(f"logistic regression: test {logistic.score(vectors.x_test, vectors.y_test):.4f}", flush=True)

for seed in [int(s) for s in sys.argv[1:]] or [0]:
    for name, data, overrides in (
        ("mlp", vectors, {"width": 100, "depth": 2, "norm": None, "rate": 0.0}),
        ("cnn1d", sequences, {"norm": None, "rate": 0.0}),
    ):
        keras.utils.set_random_seed(seed)
        model = models.create(name, data.input_shape, data.num_classes, seed=seed, **overrides)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
        start = time.time()
        model.fit(data.x_train, data.y_train, batch_size=100, epochs=150, verbose=0)
        print(f"{name} seed {seed} ({model.count_params()} params): "
              f"train {accuracy(model, data.x_train, data.y_train):.4f} "
              f"test {accuracy(model, data.x_test, data.y_test):.4f} "
              f"({time.time() - start:.0f} s)", flush=True)
