"""kreg: dropout, normalization and their order in Keras 3."""

__version__ = "0.1.0"
