"""kreg.tuning: Keras Tuner studies of dropout rate x batch norm x block order."""
