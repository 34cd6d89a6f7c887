"""From stored uint8 images to the network's input: normalisation and random shifts."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinyprune.data.datasets import MNIST, Dataset


def to_input(images: np.ndarray, dataset: Dataset = MNIST) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28), normalised by the data set's mean and std
    so that the training pixels have mean 0 and standard deviation 1."""
    x = images.astype(np.float32)[:, None] / 255.0
    return (x - np.float32(dataset.mean)) / np.float32(dataset.std)


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Move each image (N, H, W) by up to max_shift pixels in each direction, filling with 0.

    A digit moved by a pixel or two is the same digit: training on such copies teaches the
    network that, and it then generalises better than from the 60,000 originals alone.
    """
    if max_shift == 0:
        return images
    n, h, w = images.shape
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    windows = sliding_window_view(padded, (h, w), axis=(1, 2))  # (N, 2m+1, 2m+1, H, W)
    dy, dx = rng.integers(0, 2 * max_shift + 1, size=(2, n))
    return windows[np.arange(n), dy, dx]
