"""kreg's Keras layers: dropout kinds, DropConnect and ordered norm/act/drop blocks."""
