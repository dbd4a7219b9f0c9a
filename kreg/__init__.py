"""kreg: dropout, normalization and their order in Keras 3.

    from kreg import layers              # AlphaDropout, UniformDropout, DropConnectDense,
                                         # NormDropout, DenseBlock, Conv2DBlock
    kreg.fold_batchnorm(model)           # BN folded into the preceding Dense/Conv
    kreg.recalibrate_batchnorm(model, x) # exact BN statistics, dropout off
    kreg.mc_predict(model, x)            # MC dropout with BN kept in inference mode
    kreg.datasets.load("digits")         # offline-first datasets
    from kreg import models, tuning      # the zoo and the studies (imported on demand)

`import kreg` costs little more than `import keras`: the zoo and the tuning
machinery (Keras Tuner, matplotlib) load only when imported.
"""

from kreg import datasets
from kreg import layers
from kreg import ops
from kreg.inference import FoldDecision
from kreg.inference import fold_batchnorm
from kreg.inference import mc_predict
from kreg.inference import recalibrate_batchnorm

__version__ = "0.1.0"
