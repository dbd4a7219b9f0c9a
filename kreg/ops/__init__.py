"""Pure functions over `keras.ops`: the math behind kreg's layers and tools."""
