"""kreg.models: the zoo of named reference models."""
