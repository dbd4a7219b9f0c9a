"""The `kreg` command as a user runs it: fast help, quiet start-up."""

import os
import subprocess
import sys

import pytest

HELP_WITHOUT_KERAS = """
import sys
from kreg import cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules)
print("imported:", heavy)
"""


def run(arguments, tmp_path, env=None):
    """`python ARGUMENTS` in `tmp_path`, without a TF_CPP_MIN_LOG_LEVEL that
    this test process may have set (kreg's own quiet start-up is tested)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, *arguments], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("argv", [["--help"], ["tune", "--help"], ["models", "info", "--help"], []])
def test_help_answers_without_importing_keras(tmp_path, argv):
    done = run(["-c", HELP_WITHOUT_KERAS, *argv], tmp_path)
    assert "usage: kreg" in done.stdout + done.stderr
    assert done.stdout.strip().endswith("imported: []"), done.stdout


def test_import_kreg_loads_nothing_heavy_until_a_name_is_used(tmp_path):
    code = "import sys, kreg; print('keras' in sys.modules); kreg.layers; print('keras' in sys.modules)"
    assert run(["-c", code], tmp_path).stdout.split() == ["False", "True"]


def test_a_command_keeps_tensorflow_start_up_lines_off_stderr(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = "tensorflow"
    done = run(["-m", "kreg.cli", "models", "list"], tmp_path, env)
    assert done.returncode == 0 and "mlp" in done.stdout.split()
    assert done.stderr == ""
    # A user who asks for TensorFlow's logging gets it.
    loud = run(["-m", "kreg.cli", "models", "list"], tmp_path, dict(env, TF_CPP_MIN_LOG_LEVEL="0"))
    assert "cpu_feature_guard" in loud.stderr or "cudart_stub" in loud.stderr or "oneDNN" in loud.stderr


def test_kreg_errors_still_reach_stderr(tmp_path):
    done = run(["-m", "kreg.cli", "tune", "mlp", "digitz"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("kreg: error: Unknown dataset 'digitz'")


STUDY_WITHOUT_TENSORFLOW = """
import sys
import keras
from kreg import cli
code = cli.main(sys.argv[1:])
print("tensorflow imported:", "tensorflow" in sys.modules)
from kreg import layers
model = keras.saving.load_model("study/best.keras", safe_mode=True)
print("best model:", [layer.__class__.__name__ for layer in model.layers][-2:])
sys.exit(code)
"""


def test_a_study_on_jax_or_torch_never_imports_tensorflow(tmp_path):
    import keras

    # The backend under test, or JAX when that is TensorFlow.
    backend = "jax" if keras.backend.backend() == "tensorflow" else keras.backend.backend()
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    argv = ["tune", "mlp", "wine", "--rates", "0", "0.5", "--seeds", "1", "--epochs", "1", "--quiet", "--out", "study"]
    done = run(["-W", "ignore", "-c", STUDY_WITHOUT_TENSORFLOW, *argv], tmp_path, dict(env, KERAS_BACKEND=backend))
    assert done.returncode == 0, done.stderr[-2000:]
    # Serialization and set_random_seed would each import it (seconds).
    assert "tensorflow imported: False" in done.stdout
    # best.keras, saved without it, loads with safe_mode.
    assert "best model: ['DenseBlock', 'Dense']" in done.stdout
    assert done.stderr == ""
