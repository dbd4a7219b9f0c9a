"""Packed trials: several configurations of one seed trained as one model.

On a small CPU a study is dominated by what every run pays once: building,
tracing and compiling the train step, and per-batch Python overhead. A pack
removes most of it: K configurations become K independent branches of ONE
Keras model on the same input batches, trained by one `fit` on the sum of
their losses.

Why a branch trains exactly as it would alone:

- No parameter is shared, so the gradient of the summed loss with respect to
  a branch's parameters is the gradient of that branch's own loss, and Adam
  (like SGD) updates every parameter from its own gradient and its own slots.
  A branch whose loss becomes NaN only poisons its own parameters: the others
  train on (the summed loss is NaN then, so nothing may stop on it: no
  `TerminateOnNaN` in a pack; the failed branch is told apart afterwards).
- Initial weights and dropout masks: each branch is built by the study's own
  builder with its configuration's `seed` (the zoo derives every initializer
  seed and every dropout seed from it).
- Batch order: a pack holds configurations of ONE seed only. Keras shuffles
  with the global random state, and both paths call
  `keras.utils.set_random_seed(seed)` right before `fit`, once the metrics
  are built (see `training.seeded_fit`), so a pack sees the batches its
  configurations would see alone. Different seeds never share a pack.

Reuse: a study trains the same configurations for every seed. `PackTrainer`
keeps the compiled model of a pack layout (its configurations less the seed)
and, for the next seed, loads that seed's freshly built initial state into it
(weights, batch norm statistics, dropout seed states) and resets the
optimizer to its initial state: no new trace or compilation.

Reported per branch, through `training.measurements` like a run alone:
final and best-epoch validation loss and accuracy, final training loss and
accuracy, test loss and accuracy. Losses come from a per-branch
`sparse_categorical_crossentropy` metric: it averages over examples, like the
`loss` of a run alone (Keras' per-output loss trackers average over batches
on TensorFlow, which differs when the last batch is partial). Wall time of a
branch: the pack's fit + evaluation time divided by the pack size.

Pack size: the largest K whose estimated memory fits a budget (default
`DEFAULT_MEMORY_BUDGET`, 4 GiB), capped at `DEFAULT_MAX_PACK` = 16: the
one-time trace and compilation of a pack grows about linearly with K (on 2
CPU cores, a digits mlp: ~5 s for K=1, ~15 s for K=9), an interrupted pack
loses all its runs, and the default grid has 9 configurations per seed
anyway; see `pack_size`.
"""

import dataclasses
import json
import math
import time

import keras
import numpy as np

from kreg.tuning import training
from kreg.tuning.hypermodel import LOSS

DEFAULT_MEMORY_BUDGET = 4 * 2**30
DEFAULT_MAX_PACK = 16
# Activation copies kept per layer output and training example: a block
# holds its linear output, normalized and activated values and a dropout
# mask; backpropagation holds one gradient of each.
ACTIVATION_COPIES = 8
# Model weights + gradients + Adam's two slots.
PARAMETER_COPIES = 4


class NotPackableError(ValueError):
    """A configuration's model cannot be trained as a branch of a pack."""


@dataclasses.dataclass
class Outcome:
    """What one configuration of a pack gave.

    Attributes:
        config: the configuration dict (norm, order, rate, seed).
        status: "completed" or "failed".
        metrics: the dict of `training.measurements` (empty when failed).
        message: why it failed ("" when completed).
    """

    config: dict
    status: str
    metrics: dict
    message: str = ""


def branch_memory(model, batch_size, eval_batch_size=training.EVAL_BATCH_SIZE):
    """Estimated bytes one branch needs while a pack trains and evaluates.

    Parameters count `PARAMETER_COPIES` times (weights, gradients, Adam's
    slots); activations count `ACTIVATION_COPIES` times per training example
    of a batch, or twice per example of an evaluation batch (a layer's input
    and output, no backward pass), whichever is larger.

    Args:
        model: a built `keras.Model` (one branch).
        batch_size: training batch size.
        eval_batch_size: evaluation batch size.

    Returns:
        An int number of bytes.

    Example:

    ```python
    bytes_per_branch = branch_memory(kreg.models.create("mlp"), batch_size=32)
    ```
    """
    itemsize = np.dtype(keras.config.floatx()).itemsize
    parameters = sum(math.prod(w.shape) for w in model.weights)
    per_example = sum(math.prod(tensor.shape[1:]) for tensor in _layer_outputs(model))
    activations = per_example * max(ACTIVATION_COPIES * batch_size, 2 * eval_batch_size)
    return int(itemsize * (PARAMETER_COPIES * parameters + activations))


def _layer_outputs(model):
    """The symbolic outputs of the model's layers (inputs aside), where defined."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            outputs = layer.output
        except (AttributeError, ValueError):  # a layer never called, or called twice
            continue
        yield from keras.tree.flatten(outputs)


def pack_size(bytes_per_branch, configurations, memory_budget=DEFAULT_MEMORY_BUDGET, max_pack=DEFAULT_MAX_PACK):
    """The number of branches of a pack: as many as fit the memory budget.

    Args:
        bytes_per_branch: `branch_memory` of one branch.
        configurations: how many configurations there are to pack.
        memory_budget: bytes a pack may use.
        max_pack: the most branches of one pack.

    Returns:
        An int in [1, min(configurations, max_pack)] (1 when even one branch
        exceeds the budget: it then trains alone).

    Example:

    >>> pack_size(2**30, 9, memory_budget=4 * 2**30)
    4
    """
    for name, value in (("memory_budget", memory_budget), ("bytes_per_branch", bytes_per_branch)):
        if not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{name} must be a positive number of bytes, got {value!r}")
    if not isinstance(max_pack, int) or isinstance(max_pack, bool) or max_pack < 1:
        raise ValueError(f"max_pack must be an int >= 1, got {max_pack!r}")
    return max(1, min(configurations, max_pack, int(memory_budget // bytes_per_branch)))


def plan_packs(configs, size):
    """Splits configurations into packs of one seed each, at most `size` long.

    The configurations of a seed are cut into packs of near-equal length in
    their given order, so every seed of a grid gets the same pack layouts
    (which `PackTrainer` compiles once).

    Args:
        configs: configuration dicts with a "seed".
        size: the most configurations of one pack.

    Returns:
        A list of lists of configuration dicts.

    Example:

    >>> plan_packs([{"rate": r, "seed": s} for s in (0, 1) for r in (0.1, 0.2, 0.3)], 2)
    ... # [[r0.1 s0, r0.2 s0], [r0.3 s0], [r0.1 s1, r0.2 s1], [r0.3 s1]]
    """
    by_seed = {}
    for config in configs:
        by_seed.setdefault(config["seed"], []).append(config)
    packs = []
    for group in by_seed.values():
        count = math.ceil(len(group) / size)
        bounds = [round(i * len(group) / count) for i in range(count + 1)]
        packs.extend(group[a:b] for a, b in zip(bounds, bounds[1:]))
    return packs


def grid_configs(hypermodel):
    """Every configuration of a hypermodel's grid, seed after seed.

    Args:
        hypermodel: a `RegularizationHyperModel`.

    Returns:
        Configuration dicts as the ledger keys them (`norm` "none" or a
        name, `order` None without normalization, `rate`, `seed`).
    """
    return [
        {"norm": norm, "order": order, "rate": rate, "seed": seed}
        for seed in hypermodel.seeds
        for norm in hypermodel.norms
        for order in ((None,) if norm == "none" else hypermodel.orders)
        for rate in hypermodel.rates
    ]


def train_in_packs(trainer, configs, record, memory_budget=DEFAULT_MEMORY_BUDGET, max_pack=DEFAULT_MAX_PACK):
    """Trains configurations pack by pack, recording each pack once it is done.

    A process stopped during a pack loses that pack only: the rows of every
    finished pack have been recorded, and the unfinished one trains again.

    Args:
        trainer: a `PackTrainer`.
        configs: the configurations to train.
        record: called with each `Outcome` once its pack has finished.
        memory_budget: bytes a pack may use (see `pack_size`).
        max_pack: the most branches of one pack.

    Raises:
        NotPackableError: the builder's models cannot be packed (raised by
            the first pack, before anything is trained).
    """
    if not configs:
        return
    per_seed = max(sum(c["seed"] == seed for c in configs) for seed in {c["seed"] for c in configs})
    size = pack_size(trainer.branch_memory(configs[0]), per_seed, memory_budget, max_pack)
    for pack in plan_packs(configs, size):
        for outcome in trainer.run(pack):
            record(outcome)


def layout_key(configs):
    """What a pack's compiled model depends on: its configurations less the seed."""
    return json.dumps([{k: v for k, v in sorted(c.items()) if k != "seed"} for c in configs])


def check_branch(model, config, input_shape):
    """Builds `model` on a symbolic input and checks it can be a pack's branch.

    Raises:
        NotPackableError: not a `keras.Model`, not one output for one input,
            or losses of its own (regularizers: they would be trained but
            missing from the branch's reported loss).
    """
    if not isinstance(model, keras.Model):
        raise NotPackableError(f"the builder returned {type(model).__name__}, not a keras.Model, for {config}")
    try:
        output = model(keras.Input(input_shape))
    except Exception as e:
        raise NotPackableError(f"the model of {config} does not take one input of shape {input_shape}: {e}") from e
    if keras.tree.is_nested(output):
        raise NotPackableError(f"the model of {config} has several outputs")
    if model.losses:
        raise NotPackableError(f"the model of {config} adds losses of its own (regularizers)")


class PackTrainer:
    """Trains packs of configurations of one seed; one compiled model per layout.

    Args:
        hypermodel: a `RegularizationHyperModel` (its builder, fixed
            overrides, input shape, classes and learning rate).
        data: a `kreg.datasets.Dataset`.
        epochs: epochs per run.
        batch_size: training batch size.

    Example:

    ```python
    trainer = PackTrainer(hypermodel, data, epochs=20, batch_size=32)
    configs = [dict(norm="none", order=None, rate=r, seed=0) for r in (0.0, 0.2)]
    for outcome in trainer.run(configs):
        print(outcome.config, outcome.status, outcome.metrics.get("final_val_loss"))
    ```
    """

    def __init__(self, hypermodel, data, epochs, batch_size):
        self.hypermodel = hypermodel
        self.data = data
        self.epochs = epochs
        self.batch_size = batch_size
        self._layout = None
        self._model = None
        self._optimizer_state = None

    @property
    def model(self):
        """The compiled pack model of the last `run` (branches "branch_0", ...)."""
        return self._model

    def build_branch(self, config):
        """The uncompiled model of one configuration, checked packable."""
        model = self.hypermodel.build_model(config)
        check_branch(model, config, self.hypermodel.input_shape)
        return model

    def branch_memory(self, config):
        """`branch_memory` of the model of `config`."""
        return branch_memory(self.build_branch(config), self.batch_size)

    def _compile(self, branches):
        """One model whose outputs are the branches, compiled on their summed loss."""
        inputs = keras.Input(self.hypermodel.input_shape, name="inputs")
        outputs = {}
        for k, branch in enumerate(branches):
            branch.name = f"branch_{k}"  # the builder's models all share its name
            outputs[branch.name] = branch(inputs)
        model = keras.Model(inputs, outputs, name="pack")
        model.compile(
            optimizer=self.hypermodel.optimizer(),
            loss={name: LOSS for name in outputs},
            metrics={name: ["accuracy", LOSS] for name in outputs},
        )
        model.optimizer.build(model.trainable_variables)
        self._optimizer_state = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]
        return model

    def _load_initial_state(self, branches):
        """Puts freshly built branches' state into the compiled pack."""
        for k, fresh in enumerate(branches):
            target = self._model.get_layer(f"branch_{k}").variables
            source = fresh.variables
            if [tuple(v.shape) for v in target] != [tuple(v.shape) for v in source]:
                raise NotPackableError(f"the builder gave branch {k} different variables for another seed")
            for variable, value in zip(target, source):
                variable.assign(value)
        for variable, value in zip(self._model.optimizer.variables, self._optimizer_state):
            variable.assign(value)

    def _prepare(self, configs):
        """The compiled pack of `configs`, in their initial state."""
        key = layout_key(configs)
        if key == self._layout:
            self._load_initial_state([self.build_branch(config) for config in configs])
            return self._model
        self._model = self._layout = None  # free the old pack first
        keras.backend.clear_session()
        self._model = self._compile([self.build_branch(config) for config in configs])
        self._layout = key
        return self._model

    def run(self, configs):
        """Trains the configurations (all of one seed) as one pack.

        Args:
            configs: configuration dicts (norm, order, rate, seed), one seed.

        Returns:
            A list of `Outcome`, in the order of `configs`.

        Raises:
            NotPackableError: the builder's models cannot be packed.
            ValueError: the configurations hold several seeds.
        """
        seeds = sorted({c["seed"] for c in configs})
        if len(seeds) != 1:
            raise ValueError(f"configs must share one seed (it fixes the batch order), got seeds {seeds}")
        model = self._prepare(configs)
        names = [f"branch_{k}" for k in range(len(configs))]
        data = self.data
        start = time.perf_counter()
        history = training.seeded_fit(
            model,
            seeds[0],
            data.x_train,
            {name: data.y_train for name in names},
            validation_data=(data.x_val, {name: data.y_val for name in names}),
            epochs=self.epochs,
            batch_size=self.batch_size,
        )
        test = model.evaluate(
            data.x_test,
            {name: data.y_test for name in names},
            batch_size=training.EVAL_BATCH_SIZE,
            verbose=0,
            return_dict=True,
        )
        wall_time = (time.perf_counter() - start) / len(configs)
        # Keras names the metrics of a single output without its name.
        prefixes = [f"{name}_" for name in names] if len(names) > 1 else [""]
        return [
            self._outcome(config, branch_history(history, prefix), test, prefix, wall_time)
            for config, prefix in zip(configs, prefixes)
        ]

    def _outcome(self, config, history, test, prefix, wall_time):
        failure = training.failure(history, self.epochs)
        if failure:
            return Outcome(config, "failed", {}, failure)
        metrics = training.measurements(history, test[f"{prefix}{LOSS}"], test[f"{prefix}accuracy"], wall_time)
        return Outcome(config, "completed", metrics)


def branch_history(history, prefix):
    """One branch's history (metrics named `prefix + name`) in the keys of a
    run alone: loss, accuracy, val_loss, val_accuracy."""
    return {
        "loss": history[f"{prefix}{LOSS}"],
        "accuracy": history[f"{prefix}accuracy"],
        "val_loss": history[f"val_{prefix}{LOSS}"],
        "val_accuracy": history[f"val_{prefix}accuracy"],
    }
