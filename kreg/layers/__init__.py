"""kreg's Keras layers: dropout kinds, DropConnect and ordered norm/act/drop blocks."""
from kreg.layers.alpha_dropout import AlphaDropout
from kreg.layers.uniform_dropout import UniformDropout
