"""Packed trials: many runs of a study trained as one model.

On a small CPU a study is dominated by what every run pays once: building,
tracing and compiling the train step, and per-batch Python and per-op
overhead. A pack removes most of it: K runs (configurations and seeds) become
K branches of ONE Keras model (`kreg.tuning.stacking`), trained by one `fit`
on the sum of their losses. Branches of one architecture are stacked layer by
layer, so one batched op does the work of K.

Why a branch trains exactly as its run alone:

- Nothing is shared, so the gradient of the summed loss with respect to a
  branch's parameters is the gradient of that branch's own loss, and Adam
  (like SGD) updates every parameter from its own gradient and its own slots.
  A branch whose loss becomes NaN only poisons its own parameters: the others
  train on (the summed loss is NaN then, so nothing may stop on it; the
  failed branch is told apart afterwards).
- Initial weights and dropout masks: each branch is built by the study's own
  builder with its configuration's `seed` (the zoo derives every initializer
  seed and every dropout seed from it). kreg's dropouts draw keyed masks, a
  pure function of the layer's seed state and position, so one op draws
  every branch's masks (`kreg.tuning.stacked_noise`); other dropout layers run
  per branch (`stacking.PerBranch`).
- Batch order: the input of a pack holds one batch per seed, each seed's
  examples in `training.epoch_order(seed, epoch)`, the order of a run alone
  (`training.seeded_fit`). So runs of different seeds share a pack.

Reported per branch, through `training.measurements` like a run alone:
final and best-epoch validation loss and accuracy, final training loss and
accuracy, test loss and accuracy, all averages over examples (`BranchMean`).
Wall time of a branch: the pack's fit + evaluation time divided by K.

Pack size: the largest K whose estimated memory fits a budget (default
`DEFAULT_MEMORY_BUDGET`, 4 GiB), capped at `DEFAULT_MAX_PACK` = 128 (the
105 runs of the default study are one pack). Where every layer stacks
(kreg's dropouts included, `kreg.tuning.stacked_noise`), the traced step has
one op per layer whatever K; a layer that runs per branch adds K ops. On
JAX, where XLA's compile grows with those ops, a model with convolutions
trains in the smallest packs that repeat one layout, which compile once
(`compiles_per_branch`). An interrupted pack resumes from its checkpoint;
see `pack_size` and `plan_packs`.
"""

import dataclasses
import json
import math
import os
import time

import keras
import numpy as np

from kreg import checks
from kreg import interrupts
from kreg import keras_compat
from kreg.tuning import checkpoints
from kreg.tuning import schema
from kreg.tuning import stacked_layers
from kreg.tuning import stacking
from kreg.tuning import training

DEFAULT_MEMORY_BUDGET = 4 * 2**30
DEFAULT_MAX_PACK = 128
# Activation copies kept per layer output and training example: a block
# holds its linear output, normalized and activated values and a dropout
# mask; backpropagation holds one gradient of each.
ACTIVATION_COPIES = 8
# Model weights + gradients + Adam's two slots.
PARAMETER_COPIES = 4


class NotPackableError(ValueError):
    """A configuration's model cannot be trained as a branch of a pack."""


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
    memory_budget = checks.check_positive("memory_budget", memory_budget)
    bytes_per_branch = checks.check_positive("bytes_per_branch", bytes_per_branch)
    max_pack = checks.check_positive_int("max_pack", max_pack)
    return max(1, min(configurations, max_pack, int(memory_budget // bytes_per_branch)))


def plan_packs(configs, size, smallest=False):
    """Cuts configurations into packs of at most `size`, in their order.

    Packs of one layout share one compiled pack model (`PackTrainer`), and
    rates and seeds are values of a pack's variables, not of its layout. So,
    when every seed has the same number of configurations:

    - if a pack can hold all of one seed's, packs hold whole seeds, a
      near-equal number each;
    - else packs hold the runs of one seed at one rate (one run of each
      architecture: normalization and order), as many rates a pack as fit.

    Otherwise the packs are near-equal slices (45 runs with `size` 16: 15,
    15, 15). With `smallest`, a pack holds one seed at one rate whatever is
    left to do, so that a resumed study's plan holds its unfinished pack as
    it was (and finds its checkpoint).

    Args:
        configs: configuration dicts (each with a "seed" and a "rate"), seed
            by seed as `SearchSpace.configs()` lists them.
        size: the most configurations of one pack.
        smallest: the smallest packs that repeat one layout, where a pack's
            compile grows with its branches and its step does not gain from
            them (`compiles_per_branch`).

    Returns:
        A list of lists of configuration dicts.

    Example:

    >>> runs = [{"rate": r, "seed": s} for s in range(4) for r in (0.0, 0.5)]
    >>> [len(pack) for pack in plan_packs(runs, 5)]
    [4, 4]
    >>> [[(c["seed"], c["rate"]) for c in pack] for pack in plan_packs(runs[:4], 5, smallest=True)]
    [[(0, 0.0)], [(0, 0.5)], [(1, 0.0)], [(1, 0.5)]]
    """
    if smallest:  # whatever is left to do: a resumed study finds its unfinished pack again
        return [part for group in _groups(configs, "seed", "rate") for part in _near_equal(group, size)]
    seeds = _groups(configs, "seed")
    contiguous = [config for group in seeds for config in group] == list(configs)
    if not contiguous or len({len(group) for group in seeds}) != 1:
        return _near_equal(list(configs), size)
    if len(seeds[0]) <= size:
        return [[config for group in part for config in group] for part in _near_equal(seeds, size // len(seeds[0]))]
    by_rate = [_groups(group, "rate") for group in seeds]
    lengths = {len(rate) for groups in by_rate for rate in groups}
    if len(lengths) != 1 or lengths.pop() > size:
        return _near_equal(list(configs), size)
    per_pack = size // len(by_rate[0][0])
    return [[config for rate in part for config in rate] for groups in by_rate for part in _near_equal(groups, per_pack)]


def _groups(configs, *names):
    """`configs` grouped by their values of `names`, in order of first appearance."""
    groups = {}
    for config in configs:
        groups.setdefault(tuple(config[name] for name in names), []).append(config)
    return list(groups.values())


def _near_equal(items, size):
    """`items` cut in order into the fewest slices of at most `size`, of near-equal lengths."""
    count = math.ceil(len(items) / size)
    bounds = [round(i * len(items) / count) for i in range(count + 1)]
    return [items[a:b] for a, b in zip(bounds, bounds[1:])]


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


def per_example_loss(loss):
    """The per-example form of a study's loss, for the branches of a pack.

    A Keras loss name or function is already per example; a
    `keras.losses.Loss` gives its unreduced `call`. A custom function may
    reduce over examples itself, so it cannot be summed per branch.

    Raises:
        NotPackableError: a loss that is not one of Keras'.
    """
    if isinstance(loss, keras.losses.Loss):
        if not hasattr(loss, "fn"):
            raise NotPackableError(f"the loss {type(loss).__name__} is a Loss subclass of its own (packing needs a Keras loss)")
        return loss.call
    function = keras.losses.get(loss) if isinstance(loss, str) else loss
    if not callable(function) or not getattr(function, "__module__", "").startswith("keras."):
        raise NotPackableError(f"the loss {loss!r} is a function of your own (packing needs a Keras loss)")
    return function


def check_optimizer(optimizer):
    """Refuses an optimizer that would couple the branches of a pack: a
    gradient-norm clip measures the norm over every branch at once."""
    for name in ("clipnorm", "global_clipnorm"):
        if getattr(optimizer, name, None) is not None:
            raise NotPackableError(f"the optimizer clips gradients by {name} (over every branch of a pack at once)")
    return optimizer


def binary_accuracy(y_true, y_pred):
    """Per example and branch, Keras' binary accuracy (threshold 0.5):
    `(B, K, 1)` targets and predictions to `(B, K)`."""
    y_true = keras.ops.reshape(keras.ops.cast(y_true, y_pred.dtype), keras.ops.shape(y_pred))
    hits = keras.ops.equal(y_true, keras.ops.cast(keras.ops.greater(y_pred, 0.5), y_pred.dtype))
    return keras.ops.mean(keras.ops.cast(hits, "float32"), axis=-1)


class SummedLoss:
    """Per example, the sum over branches of the branches' loss.

    `y_true` is `(B, K, ...)`, `y_pred` is `(B, K, outputs)`. Keras averages
    it over the batch: the sum over branches of each branch's mean loss, the
    loss each branch would minimize alone.

    Args:
        loss: a per-example loss function (`per_example_loss`).
    """

    def __init__(self, loss):
        self.loss = loss
        self.__name__ = "summed_loss"

    def __call__(self, y_true, y_pred):
        return keras.ops.sum(self.loss(y_true, y_pred), axis=1)


class BranchMean(keras.metrics.Metric):
    """A per-branch average over examples: a vector of K values.

    Args:
        fn: `fn(y_true, y_pred)` giving per example and branch values `(B, K)`
            (e.g. `keras.losses.sparse_categorical_crossentropy`).
        branches: K.
        name: the metric's name.
    """

    def __init__(self, fn, branches, name):
        super().__init__(name=name)
        self.fn = fn
        self.total = self.add_variable((branches,), initializer="zeros", name="total")
        self.count = self.add_variable((), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = keras.ops.cast(self.fn(y_true, y_pred), self.dtype)
        self.total.assign_add(keras.ops.sum(values, axis=0))
        self.count.assign_add(keras.ops.cast(keras.ops.shape(values)[0], self.dtype))

    def result(self):
        return keras.ops.divide_no_nan(self.total, self.count)


class PackTrainer:
    """Trains packs of configurations, any seeds, each pack as one model.

    Args:
        hypermodel: a `RegularizationHyperModel` (its builder, fixed
            overrides, input shape, classes and learning rate).
        data: a `kreg.datasets.Dataset`.
        epochs: epochs per run.
        batch_size: training batch size.
        checkpoint_dir: where packs save their state after their epochs and
            resume from it (`kreg.tuning.checkpoints`); None saves nothing.
        on_save: called with the epochs done after each save.

    Attributes:
        compiled: how many pack models were made and compiled (a pack of the
            previous pack's layout reuses its model, see `run`).

    Example:

    ```python
    trainer = PackTrainer(hypermodel, data, epochs=20, batch_size=32)
    configs = [dict(norm="none", order=None, rate=r, seed=s) for r in (0.0, 0.2) for s in (0, 1)]
    for outcome in trainer.run(configs):
        print(outcome.config, outcome.status, outcome.metrics.get("final_val_loss"))
    ```
    """

    def __init__(self, hypermodel, data, epochs, batch_size, checkpoint_dir=None, on_save=None):
        self.hypermodel = hypermodel
        self.data = data
        self.epochs = epochs
        self.batch_size = batch_size
        self.checkpoint_dir = checkpoint_dir
        self.on_save = on_save or (lambda epochs_done: None)
        self.compiled = 0
        self._last = None  # (layout and settings, pack, initial optimizer state)
        self._built = None  # (config, model) built by `plan`

    def build_branch(self, config):
        """The uncompiled model of one configuration, checked packable."""
        model = self.hypermodel.build_model(config)
        check_branch(model, config, self.hypermodel.input_shape)
        return model

    def _compile_settings(self, settings):
        """(optimizer, per-example loss, accuracy function or None) of a
        pack, from the study's compile settings of a branch."""
        loss = per_example_loss(settings["loss"])
        optimizer = check_optimizer(settings["optimizer"])
        accuracy = None
        if "accuracy" in settings["metrics"] or "acc" in settings["metrics"]:
            accuracy = binary_accuracy if self.hypermodel.task == "binary" else keras.metrics.sparse_categorical_accuracy
            if self.hypermodel.task == "regression":
                raise NotPackableError("accuracy is no metric of a regression")
        return optimizer, loss, accuracy

    def plan(self, todo, memory_budget=DEFAULT_MEMORY_BUDGET, max_pack=DEFAULT_MAX_PACK):
        """`todo` cut into packs (`plan_packs`) of the size `pack_size` gives;
        the smallest that repeat one layout where `compiles_per_branch`.

        The model of `todo[0]` is built to measure a branch, and kept: the
        first pack takes it rather than build it again.

        Args:
            todo: configuration dicts, as `plan_packs` takes them.
            memory_budget: bytes a pack may use.
            max_pack: the most branches of one pack.

        Returns:
            A list of lists of configuration dicts.

        Raises:
            NotPackableError: the builder's models cannot be packed.
        """
        model = self.build_branch(todo[0])
        self._built = (todo[0], model)
        size = pack_size(branch_memory(model, self.batch_size), len(todo), memory_budget, max_pack)
        return plan_packs(todo, size, smallest=compiles_per_branch(model))

    def _branch(self, config):
        """The model of `config`: the one `plan` built, or a new one."""
        built, self._built = self._built, None
        if built is not None and built[0] == config:
            return built[1]
        return self.build_branch(config)

    def _pack(self, configs, columns, num_seeds):
        """The compiled `stacking.Pack` of `configs`, in their initial state.

        When the previous pack had the same layout and compile settings its
        model serves again: it takes the new branches' variables, its
        optimizer state goes back to its initial values, and its compiled
        train step is reused (nothing is traced or compiled anew).
        """
        branches = [self._branch(config) for config in configs]
        settings = self.hypermodel.compile_kwargs(branches[0])
        layout = stacking.layout(branches, columns, num_seeds)
        key = None if layout is None else (layout, _settings_key(settings))
        if self._last is not None and key is not None and self._last[0] == key:
            _, pack, initial = self._last
            pack.load(branches)
            for variable, value in zip(pack.model.optimizer.variables, initial):
                variable.assign(value)
            return pack
        self._last = None
        optimizer, loss, accuracy = self._compile_settings(settings)
        pack = stacking.pack_model(branches, columns, num_seeds)
        k = len(configs)
        metrics = [BranchMean(loss, k, name="branch_loss")]
        if accuracy is not None:
            metrics.append(BranchMean(accuracy, k, name="branch_accuracy"))
        pack.model.compile(optimizer=optimizer, loss=SummedLoss(loss), metrics=metrics, jit_compile=jit_compile(pack.model))
        pack.model.optimizer.build(pack.model.trainable_variables)
        self.compiled += 1
        if key is not None:
            self._last = (key, pack, [keras.ops.convert_to_numpy(v) for v in pack.model.optimizer.variables])
        return pack

    def run(self, configs, return_models=False, callbacks=()):
        """Trains the configurations as one pack.

        A pack of the previous pack's layout (the same architectures and
        per-branch layers in the same places, the same seed columns and
        compile settings; the rates of stacked dropout, the weights and the
        seeds may differ) trains on the previous pack's compiled model, with
        the new branches' initial variables and a fresh optimizer state.

        Args:
            configs: configuration dicts (norm, order, rate, seed).
            return_models: also return each configuration's model, holding
                the weights its branch trained.
            callbacks: Keras callbacks of the pack's `fit` (e.g. progress).

        Returns:
            A list of `(config, schema.Outcome)`, in the order of `configs`;
            with `return_models`, `(outcomes, models)`.

        Raises:
            NotPackableError: the builder's models cannot be packed.
        """
        seeds = list(dict.fromkeys(config["seed"] for config in configs))
        columns = [seeds.index(config["seed"]) for config in configs]
        pack = self._pack(configs, columns, len(seeds))
        data, k = self.data, len(configs)
        start = time.perf_counter()
        path = self.checkpoint(configs)
        done, history = checkpoints.restore(path, pack.model) if path else (0, {})
        callbacks = list(callbacks)
        saver = None
        if path:
            saver = checkpoints.Saver(path, done, history, self.on_save)
            callbacks.append(saver)
        # A pack saved after its last epoch (stopped before its rows were
        # recorded) has nothing left to train: its history is restored.
        if done < self.epochs:
            batches = training.training_batches(data.x_train, data.y_train, seeds, self.batch_size, self.epochs, start_epoch=done)
            with interrupts.deferred():  # Ctrl-C stops the pack between batches
                fitted = pack.model.fit(
                    ((x, y[:, columns]) for x, y in batches),
                    steps_per_epoch=training.steps_per_epoch(len(data.x_train), self.batch_size),
                    shuffle=False,  # the batches come in their order
                    validation_data=EvaluationBatches(data.x_val, data.y_val, len(seeds), k),
                    initial_epoch=done,
                    epochs=self.epochs,
                    verbose=0,
                    callbacks=[*callbacks, StopOnSignal()],
                ).history
            history = saver.history if saver else fitted
        test = pack.model.evaluate(EvaluationBatches(data.x_test, data.y_test, len(seeds), k), verbose=0, return_dict=True)
        wall_time = (time.perf_counter() - start) / k
        outcomes = [(config, self._outcome(branch_history(history, b), test, b, wall_time)) for b, config in enumerate(configs)]
        return (outcomes, pack.trained_branches()) if return_models else outcomes

    def checkpoint(self, configs):
        """The checkpoint file of a pack of `configs` (None without a checkpoint folder)."""
        if self.checkpoint_dir is None:
            return None
        keys = [self.hypermodel.space.key(config) for config in configs]
        return os.path.join(self.checkpoint_dir, checkpoints.pack_key(keys, self.epochs) + ".npz")

    def _outcome(self, history, test, branch, wall_time):
        failure = training.failure(history, self.epochs)
        if failure:
            return schema.Outcome.failed(failure)
        test_loss = test["branch_loss"][branch]
        test_accuracy = test["branch_accuracy"][branch] if "branch_accuracy" in test else None
        return schema.Outcome("completed", training.measurements(history, test_loss, test_accuracy, wall_time))


# Layers that XLA runs slower than TensorFlow does on CPU (oneDNN convolutions).
CONVOLUTIONS = (
    stacked_layers.StackedConv,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)


def compiles_per_branch(model):
    """Whether packs of `model` train fastest small: on JAX, with convolutions.

    A pack's convolutions are one backend convolution per branch
    (`stacked_layers.StackedConv`), so XLA's compile of a pack's train step
    grows with its branches while its step computes what the runs alone
    would. The smallest packs of one layout compile once, small, and the
    next packs reuse it (`benchmarks/study.py --ways convnet-packed`: the
    convnet study of 18 runs in 6 packs of 3 took 10.1 s, in one pack of 18
    17.9 s). On TensorFlow and PyTorch, which compile no conv pack, more
    packs only cost more steps.
    """
    return keras.backend.backend() == "jax" and _convolves(keras_compat.flatten_layers(model))


def _convolves(layers):
    return any(isinstance(layer, CONVOLUTIONS) for layer in layers)


def jit_compile(model):
    """`compile`'s `jit_compile` for a pack model: XLA on TensorFlow too,
    where it is faster and changes nothing.

    On TensorFlow, Keras' "auto" leaves XLA off on a CPU-only machine; yet a
    pack of dense branches (many small ops over K branches) trains faster
    under XLA on CPU (the default study 1.2-1.3x), with the same results. A
    pack with convolutions trains slower under XLA (the convnet benchmark
    2.5x), so it stays off there (`benchmarks/study.py`). It also stays off
    where a run alone would differ: a layer that draws from `keras.random`
    per branch (its seed state is a variable but no weight; TensorFlow's
    random ops draw other numbers under XLA), or a layer that says it cannot
    be compiled (`supports_jit`). "auto" (Keras' choice) elsewhere.
    """
    if keras.backend.backend() != "tensorflow":
        return "auto"
    weights = {id(weight) for weight in model.weights}
    draws_keras_random = any(id(variable) not in weights for variable in model.variables)
    layers = keras_compat.flatten_layers(model)
    compilable = all(layer.supports_jit for layer in layers)
    return compilable and not _convolves(layers) and not draws_keras_random


def _settings_key(settings):
    """The compile settings of a pack (loss, optimizer, metrics) as a string,
    the optimizer's name aside (Keras numbers the names of new optimizers)."""
    optimizer = settings["optimizer"]
    config = {key: value for key, value in optimizer.get_config().items() if key != "name"}
    other = {name: value for name, value in settings.items() if name != "optimizer"}
    described = [type(optimizer).__name__, config, keras.saving.serialize_keras_object(other)]
    return json.dumps(described, sort_keys=True, default=str)


class StopOnSignal(keras.callbacks.Callback):
    """Raises a signal noted while training (`kreg.interrupts.deferred`)
    before the next batch, training or validation."""

    def on_train_batch_begin(self, batch, logs=None):
        interrupts.check()

    def on_test_batch_begin(self, batch, logs=None):
        interrupts.check()


class EpochProgress(keras.callbacks.Callback):
    """Tells the study's progress display that an epoch of a pack ended."""

    def __init__(self, progress):
        super().__init__()
        self.progress = progress

    def on_epoch_end(self, epoch, logs=None):
        self.progress.epoch(epoch + 1)


@dataclasses.dataclass
class PackedExecutor:
    """Trains a study's runs in packs; run by run where packing does not apply.

    The packs follow the memory budget (`PackTrainer.plan`). A process stopped
    during a pack loses that pack only: the rows of every finished pack have
    been recorded, and the unfinished one trains again.

    Attributes:
        trainer: a `PackTrainer`.
        memory_budget: bytes a pack may use.
        max_pack: the most branches of one pack.
        fallback: the executor of the runs when the builder's models cannot
            be packed (a `kreg.tuning.trials.TrialExecutor`).
        progress: the study's `kreg.tuning.progress.Progress`.
    """

    trainer: object
    memory_budget: float
    max_pack: int
    fallback: object
    progress: object

    def run(self, todo, record):
        if not todo:
            return
        trained = 0
        try:
            packs = self.trainer.plan(todo, self.memory_budget, self.max_pack)
            for index, pack in enumerate(packs, start=1):
                self.progress.start_pack(index, len(packs), len(pack), self.trainer.epochs)
                for config, outcome in self.trainer.run(pack, callbacks=[EpochProgress(self.progress)]):
                    record(config, outcome, "packed")
                path = self.trainer.checkpoint(pack)
                if path:  # recorded: its checkpoint has served
                    checkpoints.remove(path)
                trained += len(pack)
        except NotPackableError as e:  # raised before its pack trains
            self.progress.say(f"kreg: training run by run: packing does not apply: {e}")
            self.fallback.run(todo[trained:], record)


class EvaluationBatches(keras.utils.PyDataset):
    """Evaluation data for a pack: every example for every seed and branch.

    Batches of `training.EVAL_BATCH_SIZE`: `x` repeated over the `seeds`
    columns of the pack's input, `y` over its `branches`.
    """

    def __init__(self, x, y, seeds, branches):
        super().__init__()
        self.x, self.y = x, y
        self.seeds, self.branches = seeds, branches

    def __len__(self):
        return training.steps_per_epoch(len(self.x), training.EVAL_BATCH_SIZE)

    def __getitem__(self, index):
        batch = slice(index * training.EVAL_BATCH_SIZE, (index + 1) * training.EVAL_BATCH_SIZE)
        x, y = self.x[batch, None], self.y[batch, None]
        return np.repeat(x, self.seeds, axis=1), np.repeat(y, self.branches, axis=1)


def branch_history(history, branch):
    """One branch's history in the keys of a run alone: loss, accuracy,
    val_loss, val_accuracy (lists of floats, one per epoch)."""
    keys = {"loss": "branch_loss", "accuracy": "branch_accuracy", "val_loss": "val_branch_loss", "val_accuracy": "val_branch_accuracy"}
    return {key: [float(epoch[branch]) for epoch in history[name]] for key, name in keys.items() if name in history}
