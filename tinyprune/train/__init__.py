"""Stage 4, training: the training and evaluation loops, checkpoints and every decision about
resuming from one, and the cached dense model."""
