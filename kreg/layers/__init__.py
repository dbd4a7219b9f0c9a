"""kreg's Keras layers: dropout kinds, DropConnect and ordered norm/act/drop blocks."""
from kreg.layers.standard_dropout import StandardDropout
from kreg.layers.gaussian_dropout import GaussianDropout
from kreg.layers.spatial_dropout import SpatialDropout
from kreg.layers.alpha_dropout import AlphaDropout
from kreg.layers.uniform_dropout import UniformDropout
from kreg.layers.dropconnect_dense import DropConnectDense
from kreg.layers.norm_dropout import NormDropout
from kreg.layers.dense_block import DenseBlock
from kreg.layers.conv2d_block import Conv2DBlock
