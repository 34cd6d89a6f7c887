"""tinyprune: LeNet-5 trained, pruned and fine-tuned with hand-written NumPy and numba."""
__version__ = "0.1.0"
