"""`kreg models list|info|train`: output and exit codes."""

import pytest

from kreg.cli import main


def test_list_and_pattern(capsys):
    assert main(["models", "list"]) == 0
    assert capsys.readouterr().out.split() == [
        "cnn1d", "convnet", "dropconnect_mlp", "mlp", "snn", "wide_resnet"]
    assert main(["models", "list", "*mlp"]) == 0
    assert capsys.readouterr().out.split() == ["dropconnect_mlp", "mlp"]
    assert main(["models", "list", "zz*"]) == 1
    assert "no model matches 'zz*'" in capsys.readouterr().err


def test_info_prints_paper_defaults_params_and_metrics(capsys):
    assert main(["models", "info", "snn"]) == 0
    out = capsys.readouterr().out
    assert "Klambauer et al. 2017" in out
    assert "rate=0.05" in out and "seed=None" in out
    assert "parameters:" in out and "weights[digits]: test accuracy 0.9" in out


def test_unknown_name_exit_code_and_message(capsys):
    assert main(["models", "info", "mpl"]) == 1
    assert "Unknown model 'mpl'. Did you mean 'mlp'" in capsys.readouterr().err
    assert main(["models", "train", "mlp", "digitz", "--epochs", "1"]) == 1
    assert "Unknown dataset 'digitz'" in capsys.readouterr().err


def test_train_into_a_folder(tmp_path, capsys):
    code = main(["models", "train", "mlp", "wine", "--epochs", "1", "--seed", "3",
                 "--out", str(tmp_path)])
    assert code == 0
    assert "mlp on wine: test accuracy" in capsys.readouterr().out
    assert (tmp_path / "mlp-wine.weights.h5").exists() and (tmp_path / "manifest.json").exists()


def test_models_without_action_prints_help(capsys):
    assert main(["models"]) == 2
    assert "list" in capsys.readouterr().out


def test_bad_option_is_an_argparse_error():
    with pytest.raises(SystemExit) as info:
        main(["models", "train", "mlp", "digits", "--epochs", "many"])
    assert info.value.code == 2
