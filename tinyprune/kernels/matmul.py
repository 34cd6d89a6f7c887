"""Large matrix products on both cores: the rows of the result in fixed blocks, the blocks split
between threads (threads.over_images), each block one BLAS call on its thread.

Training runs BLAS on one thread (see train/loop.py), which leaves the second core idle during
the fully connected layers' products. Splitting pays only for large products: at batch 128 the
hand-over to the second thread (some 40 us) cost more than it saved for lenet5's layers, while
lenet5-caffe's fc1 (800 -> 500) took about half the time. Blocks have a fixed size, not one per
thread, and whether a product is split depends only on its shape: each row of the result then
comes from the same BLAS call whatever the number of threads, and so has the same bits.
"""

from __future__ import annotations

import numpy as np

from tinyprune.kernels.threads import over_images

ROWS = 64  # rows of the result per block, and per BLAS call
SPLIT_MACS = 2**24  # products with fewer multiply-adds run as one BLAS call


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (M, K) @ b (K, N) -> (M, N), of NumPy's result dtype."""
    (M, K), N = a.shape, b.shape[1]
    if M * K * N < SPLIT_MACS:
        return a @ b
    out = np.empty((M, N), dtype=np.result_type(a, b))
    # The other threads get this thread's floating-point error handling (np.errstate is per
    # thread): a caller that silences overflow silences it in the whole product.
    over_images(_row_blocks, (M + ROWS - 1) // ROWS, a, b, out, np.geterr())
    return out


def _row_blocks(a, b, out, errors, lo, hi):
    """Blocks lo..hi-1 of rows of out = a @ b. NumPy releases the GIL inside BLAS."""
    with np.errstate(**errors):
        for block in range(lo, hi):
            rows = slice(block * ROWS, (block + 1) * ROWS)
            np.matmul(a[rows], b, out=out[rows])
