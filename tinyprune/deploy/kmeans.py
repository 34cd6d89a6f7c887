"""One-dimensional k-means, as Deep Compression clusters a layer's weights into shared values.

The centroids start evenly spaced between the smallest and the largest value ("linear"
initialisation, which Han, Mao & Dally found best: it keeps a few centroids out among the rare
large weights, which matter most). Then Lloyd's two steps alternate until no value changes
cluster: give each value its nearest centroid, move each centroid to its members' mean.

In one dimension the nearest centroid is found by binary search among the midpoints of the
sorted centroids, and a centroid that loses all its members is dropped, so the result may have
fewer than k values, never more.
"""

from __future__ import annotations

import numpy as np


def nearest(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """values (n,), centroids (k,) sorted ascending -> labels (n,) int64: each value's nearest
    centroid (the lower one on a tie)."""
    midpoints = (centroids[1:] + centroids[:-1]) / 2
    return np.searchsorted(midpoints, values, side="left")


def kmeans_1d(
    values: np.ndarray, k: int, max_iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """values (n,) float -> (centroids (m,) float32 sorted ascending, m <= k; labels (n,) int64
    in 0..m-1). Values are clustered in float64; no values gives no centroids."""
    if k < 1:
        raise ValueError(f"k-means needs k >= 1 clusters, got {k}")
    x = np.asarray(values, np.float64).ravel()
    if x.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    centroids = np.linspace(x.min(), x.max(), k)
    labels = nearest(x, centroids)
    for _ in range(max_iterations):
        members = np.bincount(labels, minlength=len(centroids))
        sums = np.bincount(labels, weights=x, minlength=len(centroids))
        used = members > 0
        centroids = sums[used] / members[used]  # means of contiguous ranges: still sorted
        new_labels = nearest(x, centroids)
        if np.array_equal(new_labels, np.cumsum(used)[labels] - 1):  # relabelled old labels
            labels = new_labels
            break
        labels = new_labels
    # The float32 codebook is what the network uses; give each value its nearest entry in it.
    codebook = np.unique(centroids.astype(np.float32))
    return codebook, nearest(x, codebook.astype(np.float64))
