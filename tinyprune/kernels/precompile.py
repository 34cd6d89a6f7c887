"""A first run's kernels compiled on both cores.

numba compiles one function at a time (it holds a global lock), and a first run on a new
machine spent about 5 s compiling LeNet-5's kernels before its first step. So `start` launches
a second Python process that compiles the convolution's backward to the weights (and, for plain
layers, pooling's backward) into numba's on-disk cache (the kernels have cache=True) while this
process compiles the forward kernels and then, in `finish`, the backward to the input; `finish`
then waits for the second process, and the backward pass loads its kernels from the cache in
milliseconds. Each path has its own kernels: a plain model's (kernels/conv.py, pool.py) or a
fused one's (kernels/conv_pool.py). Nothing is started when the cache already holds them, or
with NUMBA_DISABLE_JIT=1. If the second process fails, nothing is lost: the kernels then compile
here, as they would without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np

from tinyprune.kernels import conv, conv_pool, pool

# In the second process: each of its kernels once, on tiny arrays of the given dtype (numba
# compiles a kernel per dtype and array layout, whatever the sizes). argv: dtype, "fused" or not.
CHILD = """
import sys
import numpy as np
from tinyprune.kernels import conv, conv_pool, pool
x = np.zeros((2, 2, 4, 4), sys.argv[1])
places = np.zeros((2, 2, 2, 2), np.uint8)  # a pooling's argmax for x pooled
if sys.argv[2] == "fused":
    lanes = np.zeros((1, 2, 2, 2, conv.LANES), np.uint8)  # the same in the lanes layout
    conv_pool.conv2d_pool_backward_weight(x, x[:, :, :2, :2], lanes, 0, 1)
else:
    conv.conv2d_backward_weight(x, x, 1)
    pool.maxpool2x2_backward(x[:, :, :2, :2], places, 4, 4)
"""
BACKWARD = {
    False: [conv._backward_weight_blocks, pool._backward_images],
    True: [conv_pool._backward_weight_blocks],
}


def _in_cache(kernel) -> bool:
    """Whether numba's on-disk cache has an index for this kernel (for some signature): a
    cheap sign that this machine compiled it before. Reads numba internals, so when they change
    it answers True, and nothing is started."""
    try:
        return Path(kernel._cache._cache_file._index_path).exists()
    except AttributeError:
        return True


def start(dtype: np.dtype, fused: bool) -> subprocess.Popen | None:
    """A second process compiling the backward kernels of the plain or the fused (ConvPool)
    path for dtype into numba's cache, or None if there is nothing to compile."""
    if numba.config.DISABLE_JIT or all(_in_cache(k) for k in BACKWARD[fused]):  # type: ignore[attr-defined]
        return None
    root = str(Path(__file__).resolve().parents[2])  # the folder that holds tinyprune/
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-c", CHILD, np.dtype(dtype).name, "fused" if fused else "plain"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(process: subprocess.Popen, dtype: np.dtype, fused: bool, input_grad: bool) -> None:
    """While start's process runs, compile the convolution's backward to the input here (if
    the model needs it: input_grad); then wait for the process (killing it after 300 s)."""
    if input_grad:
        x, w = np.zeros((2, 2, 4, 4), dtype), np.zeros((2, 2, 1, 1), dtype)
        if fused:
            lanes = np.zeros((1, 2, 2, 2, conv.LANES), np.uint8)
            conv_pool.conv2d_pool_backward_input(x[:, :, :2, :2], lanes, w, 0, 4, 4)
        else:
            conv.conv2d_backward_input(x, w, 0, 4, 4)
    try:
        process.wait(300)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
