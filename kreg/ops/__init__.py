"""Pure functions over `keras.ops`: the math behind kreg's layers and tools."""
from kreg.ops.keyed_random import keyed_normal
from kreg.ops.keyed_random import keyed_uniform
from kreg.ops.keyed_random import seed_key
from kreg.ops.dropout import dropout
from kreg.ops.gaussian_dropout import gaussian_dropout
from kreg.ops.gaussian_dropout import gaussian_dropout_stddev
from kreg.ops.alpha_dropout import ALPHA_PRIME
from kreg.ops.alpha_dropout import alpha_dropout
from kreg.ops.alpha_dropout import alpha_dropout_affine
from kreg.ops.uniform_noise import uniform_noise
from kreg.ops.dropconnect import dropconnect_keep
from kreg.ops.dropconnect import dropconnect_matmul
from kreg.ops.batchnorm_folding import fold_batchnorm_weights
