"""kreg: dropout, normalization and their order in Keras 3.

    from kreg import layers              # StandardDropout, GaussianDropout, SpatialDropout,
                                         # AlphaDropout, UniformDropout, DropConnectDense,
                                         # NormDropout, DenseBlock, Conv2DBlock
    kreg.fold_batchnorm(model)           # BN folded into the preceding Dense/Conv
    kreg.recalibrate_batchnorm(model, x) # exact BN statistics, dropout off
    kreg.mc_predict(model, x)            # MC dropout with BN kept in inference mode
    kreg.retrofit(model, norm="batch")   # your model rewritten with ordered norm/act/drop blocks
    kreg.datasets.load("digits")         # offline-first datasets
    from kreg import models, tuning      # the zoo and the studies

`import kreg` imports nothing heavy: every name below loads its module (and
Keras) when it is first used, so that `kreg --help` answers at once.
"""

import importlib

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_LAZY = {
    "checks": ("kreg.checks", None),
    "datasets": ("kreg.datasets", None),
    "inference": ("kreg.inference", None),
    "layers": ("kreg.layers", None),
    "ops": ("kreg.ops", None),
    "models": ("kreg.models", None),
    "tuning": ("kreg.tuning", None),
    "FoldDecision": ("kreg.inference", "FoldDecision"),
    "fold_batchnorm": ("kreg.inference", "fold_batchnorm"),
    "mc_predict": ("kreg.inference", "mc_predict"),
    "recalibrate_batchnorm": ("kreg.inference", "recalibrate_batchnorm"),
    "retrofit": ("kreg.retrofitting", "retrofit"),
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'kreg' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
