import keras
import keras_tuner
import pytest

from kreg import tuning


def test_rates_are_exact_rounded_choices():
    hm = tuning.RegularizationHyperModel("mlp", input_shape=(64,), num_classes=10, rates=[0.1 * i for i in range(9)])
    hp = keras_tuner.HyperParameters()
    hm.declare_hyperparameters(hp)
    rate = hp.get_config()["space"]
    values = {entry["config"]["name"]: entry["config"]["values"] for entry in rate}
    assert 0.3 in values["rate"] and 0.30000000000000004 not in values["rate"]
    assert values["norm"] == ["none", "batch"]
    assert values["seed"] == [0, 1, 2, 3, 4]


def test_order_is_only_active_with_a_norm():
    hm = tuning.RegularizationHyperModel(
        "mlp", input_shape=(64,), num_classes=10, rates=[0.1 * i for i in range(9)], orders=("norm-act-drop", "act-norm-drop")
    )
    hp = keras_tuner.HyperParameters()
    hm.declare_hyperparameters(hp)
    hp.values["norm"] = "none"
    assert not hp.is_active("order")
    hp.values["norm"] = "batch"
    assert hp.is_active("order")
    # No BN: rates x seeds; BN: orders x rates x seeds.
    assert len(hm.space) == 9 * 5 + 2 * 9 * 5


def test_build_compiles_the_configured_model():
    hm = tuning.RegularizationHyperModel("mlp", input_shape=(64,), num_classes=10, model_kwargs={"width": 8, "depth": 1})
    hp = keras_tuner.HyperParameters()
    hp.Fixed("norm", "batch")
    hm.declare_hyperparameters(hp)
    model = hm.build(hp)
    block = model.get_layer("block_1").block
    assert block.order == ("norm", "act", "drop")
    assert type(block.norm_layer).__name__ == "BatchNormalization"
    assert model.loss == "sparse_categorical_crossentropy"
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-3)


def test_seeds_may_be_an_explicit_list():
    hm = tuning.RegularizationHyperModel("mlp", input_shape=(64,), num_classes=10, seeds=[3, 7])
    assert hm.space.seeds == (3, 7)
    with pytest.raises(ValueError, match=r"seeds must be distinct values, got \[3, 3\]"):
        tuning.RegularizationHyperModel("mlp", input_shape=(64,), num_classes=10, seeds=[3, 3])
    with pytest.raises(ValueError, match=r"model must be a zoo model name, a builder function, a keras.Model or a .keras path, got 42"):
        tuning.RegularizationHyperModel(42, input_shape=(64,), num_classes=10)
