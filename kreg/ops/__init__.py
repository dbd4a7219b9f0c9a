"""Pure functions over `keras.ops`: the math behind kreg's layers and tools."""
from kreg.ops.alpha_dropout import ALPHA_PRIME
from kreg.ops.alpha_dropout import alpha_dropout
from kreg.ops.alpha_dropout import alpha_dropout_affine
from kreg.ops.uniform_noise import uniform_noise
from kreg.ops.dropconnect import dropconnect_matmul
from kreg.ops.batchnorm_folding import fold_batchnorm_weights
