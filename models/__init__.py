"""kreg.models: the zoo of named reference models.

    from kreg import models
    models.list_models("*mlp")                    # ['dropconnect_mlp', 'mlp']
    model = models.create("mlp", input_shape=(13,), num_classes=3, rate=0.3, seed=0)
    model = models.load("mlp", weights="digits")  # shipped weights, sha256-checked
    models.info("mlp")                            # paper, defaults, weights' metrics

Every model is an uncompiled Functional `keras.Model` built from kreg blocks,
ending in a softmax; every model takes the overrides `rate` and `seed`.
"""

from kreg.models.pretrained import WeightsIntegrityError
from kreg.models.pretrained import load
from kreg.models.registry import ModelInfo
from kreg.models.registry import create
from kreg.models.registry import info
from kreg.models.registry import list_models
from kreg.models.registry import register

# Importing a model module registers its models.
from kreg.models import cnn1d  # noqa: E402,F401  isort: skip
from kreg.models import convnet  # noqa: E402,F401  isort: skip
from kreg.models import dropconnect_mlp  # noqa: E402,F401  isort: skip
from kreg.models import mlp  # noqa: E402,F401  isort: skip
from kreg.models import snn  # noqa: E402,F401  isort: skip
from kreg.models import wide_resnet  # noqa: E402,F401  isort: skip
