"""kreg.models.common: per-layer seeds and shape checks."""

import re

import keras
import numpy as np
import pytest

from kreg.models.common import Seeds
from kreg.models.common import check_image_shape
from kreg.models.common import check_input_shape


def test_seeds_distinct_and_reproducible():
    a, b = Seeds(7), Seeds(7)
    assert [a.next() for _ in range(3)] == [b.next() for _ in range(3)] == [7000, 7001, 7002]
    assert Seeds(None).next() is None


def test_seeded_initializer_is_fresh_and_seeded():
    seeds = Seeds(1)
    first, second = seeds.initializer("he_normal"), seeds.initializer("he_normal")
    assert isinstance(first, keras.initializers.HeNormal)
    assert (first.seed, second.seed) == (1000, 1001)
    assert isinstance(seeds.initializer("zeros"), keras.initializers.Zeros)
    assert seeds.next() == 1002  # zeros drew no seed


def test_unknown_initializer():
    with pytest.raises(ValueError, match=r"initializer must be a Keras initializer name, got 'hee'"):
        Seeds(0).initializer("hee")


def test_input_shape_checks():
    assert check_input_shape([8, 8, 1]) == (8, 8, 1)
    check_image_shape("net", (4, 4, 3), 2)
    with pytest.raises(ValueError, match=r"net needs .* >= 8 \(it halves them 3 times\), got \(4, 4, 3\)"):
        check_image_shape("net", (4, 4, 3), 3)


@pytest.mark.parametrize("seed, shown", [(-1, "-1"), (1.5, "1.5"), (True, "True"), ("0", "'0'")])
def test_seeds_refuse_a_bad_seed(seed, shown):
    with pytest.raises(ValueError, match="^" + re.escape(f"seed must be None or an int >= 0, got {shown}") + "$"):
        Seeds(seed)


def test_seeds_take_numpy_ints():
    assert Seeds(np.int64(2)).next() == 2000


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_building_a_zoo_model_on_another_backend_does_not_import_tensorflow(tmp_path, backend):
    import os
    import subprocess
    import sys

    code = "import sys; from kreg import layers, models; models.create('mlp', seed=0); print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, KERAS_BACKEND=backend), timeout=300)
    assert done.stdout.split()[-1:] == ["False"], done.stderr[-2000:]
