"""Stage 4, training: the training and evaluation loops, checkpoints, and the cached dense model."""
