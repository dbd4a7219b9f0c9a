"""Packed trials train every branch exactly as the sequential study would.

The sequential reference is what `StudyTuner.run_trial` does for one run:
`clear_session`, `set_random_seed(seed)`, `hypermodel.build(hp)` and
`training.fit_and_measure`.
"""

import dataclasses
import math

import keras
import keras_tuner
import numpy as np
import pytest

from kreg import datasets
from kreg.tuning import hypermodel as hypermodel_module
from kreg.tuning import packing
from kreg.tuning import schema
from kreg.tuning import training

EPOCHS = 2
BATCH_SIZE = 32
# Weights after 2 epochs of 7 steps. Both paths run the same float32 ops on the
# same values; only a different fusion of the compiled graph could reorder
# sums, which moves results by a few ulps per step, far below 1e-5.
ATOL = 1e-5


@pytest.fixture(scope="module")
def data():
    return trimmed(datasets.load("digits"))


@pytest.fixture(scope="module")
def images():
    return trimmed(datasets.load("digits", as_images=True))


def trimmed(full):
    # 200 = 6 * 32 + 8 training examples: the last batch is partial, where a
    # per-batch average and a per-example average of the loss differ.
    return dataclasses.replace(
        full,
        x_train=full.x_train[:200],
        y_train=full.y_train[:200],
        x_val=full.x_val[:100],
        y_val=full.y_val[:100],
        x_test=full.x_test[:100],
        y_test=full.y_test[:100],
    )


def make_hypermodel(data, model="mlp", **kwargs):
    kwargs.setdefault("model_kwargs", {"width": 16, "depth": 2})
    return hypermodel_module.RegularizationHyperModel(
        model,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        rates=(0.0, 0.3, 0.5),
        orders=("norm-act-drop", "act-drop-norm"),
        seeds=(0, 1),
        **kwargs,
    )


def train_alone(hypermodel, data, config):
    """One run exactly as `StudyTuner.run_trial` trains it."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(config["seed"])
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    hp.values.update({k: v for k, v in config.items() if v is not None})
    model = hypermodel.build(hp)
    outcome = training.fit_and_measure(model, data, EPOCHS, BATCH_SIZE, config["seed"])
    return outcome.metrics, weights_of(model)


def assert_same_run(packed_metrics, packed_weights, alone_metrics, alone_weights):
    for name in schema.MEASURED_COLUMNS:
        if name == "wall_time":
            continue
        assert packed_metrics[name] == pytest.approx(alone_metrics[name], abs=ATOL), (name, packed_metrics, alone_metrics)
    assert len(packed_weights) == len(alone_weights)
    for packed, alone in zip(packed_weights, alone_weights):
        np.testing.assert_allclose(packed, alone, atol=ATOL, rtol=0)


CONFIGS = [
    dict(norm="none", order=None, rate=0.5),
    dict(norm="batch", order="norm-act-drop", rate=0.3),
    dict(norm="batch", order="act-drop-norm", rate=0.5),
]


def weights_of(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def test_a_pack_trains_each_branch_as_it_trains_alone(data):
    hypermodel = make_hypermodel(data)
    trainer = packing.PackTrainer(hypermodel, data, EPOCHS, BATCH_SIZE)
    # Two seeds in one pack: each branch sees its own seed's batch order.
    configs = [dict(c, seed=seed) for seed in (1, 0) for c in CONFIGS]
    outcomes, models = trainer.run(configs, return_models=True)
    for (config, outcome), packed_config, model in zip(outcomes, configs, models):
        assert config == packed_config and outcome.status == "completed"
        assert set(outcome.metrics) == set(schema.MEASURED_COLUMNS)
        assert_same_run(outcome.metrics, weights_of(model), *train_alone(hypermodel, data, config))
    # Different dropout rates, norms and seeds really make different branches.
    assert len({round(o.metrics["final_train_loss"], 6) for _, o in outcomes}) == len(outcomes)


def test_a_pack_of_the_last_layout_reuses_its_model_and_trains_as_a_new_one(data):
    hypermodel = make_hypermodel(data)
    trainer = packing.PackTrainer(hypermodel, data, EPOCHS, BATCH_SIZE)
    trainer.run([dict(c, seed=0) for c in CONFIGS])
    # The same architectures with another seed and other dropout rates.
    second = [dict(c, seed=1, rate=rate) for c, rate in zip(CONFIGS, (0.3, 0.0, 0.3))]
    outcomes, models = trainer.run(second, return_models=True)
    assert trainer.compiled == 1
    for (config, outcome), model in zip(outcomes, models):
        assert_same_run(outcome.metrics, weights_of(model), *train_alone(hypermodel, data, config))
    # Another layout (two seed columns) makes a new pack model.
    trainer.run([dict(c, seed=s) for s in (0, 1) for c in CONFIGS[:1]])
    assert trainer.compiled == 2


def test_a_pack_of_one_reports_like_a_run_alone(data):
    config = dict(norm="batch", order="norm-act-drop", rate=0.3, seed=0)
    trainer = packing.PackTrainer(make_hypermodel(data), data, EPOCHS, BATCH_SIZE)
    [(_, outcome)], [model] = trainer.run([config], return_models=True)
    assert_same_run(outcome.metrics, weights_of(model), *train_alone(trainer.hypermodel, data, config))


def nan_builder(input_shape, num_classes, rate, seed, norm=None, order=None):
    """A small seeded model; rate 0.5 gets a NaN output kernel (NaN loss at once)."""
    head = keras.initializers.Constant(math.nan) if rate == 0.5 else keras.initializers.GlorotUniform(seed + 1)
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(8, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed))(inputs)
    x = keras.layers.Dropout(rate, seed=seed)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=head)(x)
    return keras.Model(inputs, outputs)


def test_a_nan_branch_fails_alone_and_the_others_train_on(data):
    hypermodel = make_hypermodel(data, model=nan_builder, model_kwargs={})
    configs = [dict(norm="none", order=None, rate=r, seed=0) for r in (0.0, 0.5, 0.3)]
    trainer = packing.PackTrainer(hypermodel, data, EPOCHS, BATCH_SIZE)
    outcomes, models = trainer.run(configs, return_models=True)
    broken = outcomes[1][1]
    assert broken.status == "failed" and broken.metrics == {}
    assert broken.message == "the loss became NaN or infinite in epoch 1"
    # The summed loss was NaN from the first step on: the other branches
    # still match their runs alone, bit for bit up to float tolerance.
    for k in (0, 2):
        config, outcome = outcomes[k]
        assert outcome.status == "completed"
        assert_same_run(outcome.metrics, weights_of(models[k]), *train_alone(hypermodel, data, config))


def residual_builder(input_shape, num_classes, rate, seed, norm=None, order=None):
    """No plain chain (a skip connection): each branch runs whole."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(input_shape[-1], activation="relu", kernel_initializer=keras.initializers.HeNormal(seed))(inputs)
    x = keras.layers.Dropout(rate, seed=seed)(x)
    x = keras.layers.Add()([inputs, x])
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(seed))(x))


def test_branches_that_are_no_chain_train_whole_and_still_as_alone(data):
    hypermodel = make_hypermodel(data, model=residual_builder, model_kwargs={})
    configs = [dict(norm="none", order=None, rate=r, seed=s) for s in (0, 1) for r in (0.0, 0.5)]
    trainer = packing.PackTrainer(hypermodel, data, EPOCHS, BATCH_SIZE)
    outcomes, models = trainer.run(configs, return_models=True)
    # Each branch is its whole model: the pack's structure is the branches'.
    for (config, outcome), model in zip(outcomes, models):
        assert_same_run(outcome.metrics, weights_of(model), *train_alone(hypermodel, data, config))


def test_branch_memory_counts_parameters_and_activations():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    # 23 parameters (4*3+3 + 3*2+2), each as weight, gradient and 2 Adam slots;
    # 5 activations per example (3 + 2), 8 copies per training example of a
    # batch of 32 (256) or 2 per example of an evaluation batch of 1024
    # (2048): the larger, 2048. float32: 4 bytes.
    assert packing.branch_memory(model, batch_size=32) == 4 * (4 * 23 + 5 * 2048)
    # A training batch of 512 holds more: 8 * 512 = 4096 > 2048.
    assert packing.branch_memory(model, batch_size=512) == 4 * (4 * 23 + 5 * 4096)


def test_pack_size_respects_the_memory_budget():
    branch = packing.branch_memory(keras.Model(*_tiny()), batch_size=32)
    # Budget for 3.5 branches: 3 fit, a 4th would exceed it.
    assert packing.pack_size(branch, 9, memory_budget=3.5 * branch) == 3
    assert packing.pack_size(branch, 9, memory_budget=3.5 * branch) * branch <= 3.5 * branch
    # Not enough for one: the configuration trains alone.
    assert packing.pack_size(branch, 9, memory_budget=branch / 2) == 1
    # Never more than there are configurations, nor more than max_pack.
    assert packing.pack_size(branch, 5, memory_budget=100 * branch) == 5
    assert packing.pack_size(branch, 500, memory_budget=1000 * branch) == packing.DEFAULT_MAX_PACK
    assert packing.pack_size(branch, 50, memory_budget=100 * branch, max_pack=7) == 7
    # The default budget is 4 GiB.
    assert packing.pack_size(2**30, 9) == 4
    with pytest.raises(ValueError, match=r"memory_budget must be a finite number > 0, got -1"):
        packing.pack_size(branch, 9, memory_budget=-1)
    with pytest.raises(ValueError, match=r"max_pack must be an int >= 1, got 0"):
        packing.pack_size(branch, 9, max_pack=0)


def _tiny():
    inputs = keras.Input((4,))
    return inputs, keras.layers.Dense(2)(inputs)


def runs(seeds, per_seed):
    return [{"rate": 0.1 * r, "seed": s} for s in range(seeds) for r in range(per_seed)]


def test_packs_hold_whole_seeds_when_one_seed_fits():
    # 5 seeds x 21 configurations, at most 64 a pack: 3 whole seeds fit,
    # so 2 packs of 2 and 3 seeds (not 53 + 52 runs that split a seed).
    packs = packing.plan_packs(runs(5, 21), 64)
    assert [sorted({c["seed"] for c in pack}) for pack in packs] == [[0, 1], [2, 3, 4]]
    # 10 seeds: 2 packs of 5 seeds, one layout.
    assert [len(pack) for pack in packing.plan_packs(runs(10, 21), 128)] == [105, 105]
    assert packing.plan_packs(runs(5, 21), 105) == [runs(5, 21)]


def test_packs_are_near_equal_slices_when_a_seed_does_not_fit():
    assert [[c["rate"] for c in pack] for pack in packing.plan_packs(runs(1, 7), 3)] == [
        [0.0, 0.1],
        [0.1 * 2, 0.1 * 3, 0.1 * 4],
        [0.1 * 5, 0.1 * 6],
    ]
    assert [len(p) for p in packing.plan_packs(runs(1, 45), 16)] == [15, 15, 15]
    # A resumed study's todo: seeds of unequal counts.
    todo = runs(3, 4)[1:]
    assert [len(p) for p in packing.plan_packs(todo, 6)] == [6, 5]


def study_runs(seeds, rates):
    """Configurations as `SearchSpace.configs()` lists them: three architectures."""
    architectures = [("none", None), ("batch", "norm-act-drop"), ("batch", "act-drop-norm")]
    return [dict(norm=n, order=o, rate=r, seed=s) for s in range(seeds) for n, o in architectures for r in rates]


def test_packs_cut_within_a_seed_hold_one_rate_of_every_architecture():
    runs = study_runs(2, (0.0, 0.3, 0.5))
    # A seed's 9 runs fit a pack of 9; with `smallest`, one seed at one rate a
    # pack: all 6 packs list the 3 architectures in one order (one layout).
    assert packing.plan_packs(runs, 9) == [runs[:9], runs[9:]]
    packs = packing.plan_packs(runs, 64, smallest=True)
    assert [[(c["seed"], c["rate"]) for c in pack] for pack in packs] == [[(s, r)] * 3 for s in (0, 1) for r in (0.0, 0.3, 0.5)]
    assert {tuple((c["norm"], c["order"]) for c in pack) for pack in packs} == {(("none", None), ("batch", "norm-act-drop"), ("batch", "act-drop-norm"))}
    # A seed does not fit 4 or 7: as many of its rates as fit (not 4 + 4 + 1
    # runs of three layouts).
    assert packing.plan_packs(runs, 4) == packs
    assert [[(c["seed"], c["rate"]) for c in pack] for pack in packing.plan_packs(runs, 7)] == [
        [(0, 0.0)] * 3 + [(0, 0.3)] * 3,
        [(0, 0.5)] * 3,
        [(1, 0.0)] * 3 + [(1, 0.3)] * 3,
        [(1, 0.5)] * 3,
    ]
    # Not even one rate's runs fit: near-equal slices.
    assert [len(pack) for pack in packing.plan_packs(runs, 2)] == [2] * 9
    # Resumed after 2 packs were recorded: the smallest packs are those left
    # of the first plan, so the third finds its checkpoint.
    left = [c for pack in packs[2:] for c in pack]
    assert packing.plan_packs(left, 64, smallest=True) == packs[2:]
    assert packing.plan_packs(left, 2, smallest=True) == [p for pack in packs[2:] for p in (pack[:2], pack[2:])]


def test_conv_models_train_in_the_smallest_packs_on_jax_and_compile_once(data, images):
    dense = make_hypermodel(data)
    todo = dense.space.configs()
    assert packing.PackTrainer(dense, data, EPOCHS, BATCH_SIZE).plan(todo) == [todo]
    conv = make_hypermodel(images, "convnet", model_kwargs={"width": 4, "depth": 1})
    trainer = packing.PackTrainer(conv, images, EPOCHS, BATCH_SIZE)
    todo = conv.space.configs()
    packs = trainer.plan(todo)
    if keras.backend.backend() == "jax":  # a pack's compile grows with its convolutions
        assert packs == [[c for c in todo if (c["seed"], c["rate"]) == (s, r)] for s in (0, 1) for r in (0.0, 0.3, 0.5)]
    else:
        assert packs == [todo]
    for pack in packs:
        outcomes, models = trainer.run(pack, return_models=True)
    assert trainer.compiled == 1
    # The last pack trained on the first pack's compiled model, as a new one.
    (config, outcome), model = outcomes[-1], models[-1]
    assert config == dict(norm="batch", order="act-drop-norm", rate=0.5, seed=1)
    assert_same_run(outcome.metrics, weights_of(model), *train_alone(conv, images, config))


def test_a_pack_refuses_unpackable_models(data):
    def regularized(input_shape, num_classes, **overrides):
        inputs = keras.Input(input_shape)
        dense = keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer="l2")
        return keras.Model(inputs, dense(inputs))

    trainer = packing.PackTrainer(make_hypermodel(data, model=regularized, model_kwargs={}), data, EPOCHS, BATCH_SIZE)
    with pytest.raises(packing.NotPackableError, match=r"adds losses of its own"):
        trainer.run([dict(norm="none", order=None, rate=0.0, seed=0)])


def test_packs_compile_with_xla_on_tensorflow_unless_a_branch_draws_keras_random(data):
    from kreg.tuning import stacking

    def pack_of(hypermodel):
        configs = [dict(norm="none", order=None, rate=r, seed=0) for r in (0.0, 0.5)]
        return stacking.pack_model([hypermodel.build_model(c) for c in configs], [0, 0], num_seeds=1).model

    zoo = pack_of(make_hypermodel(data, model_kwargs={"width": 8, "depth": 1}))
    residual = pack_of(make_hypermodel(data, model=residual_builder, model_kwargs={}))
    # XLA is "auto" (Keras' choice) on JAX and PyTorch; on TensorFlow it is on
    # when every branch layer is stacked (kreg's keyed dropout), off when
    # Keras' own Dropout draws per branch, whose draws XLA would change.
    expected = {"tensorflow": (True, False)}.get(keras.backend.backend(), ("auto", "auto"))
    assert (packing.jit_compile(zoo), packing.jit_compile(residual)) == expected
