"""Both cores for the kernels: a batch's images split between threads.

The conv and pool kernels are serial numba functions compiled with `nogil=True` that work on
images lo..hi-1 of a batch and write only those images' slices of their outputs.
`over_images(kernel, N, *args)` splits 0..N-1 into one contiguous chunk per thread and runs
`kernel(*args, lo, hi)` on each: the first chunk on the calling thread, the others on worker
threads, which run at the same time because the compiled kernel releases the GIL.

Why not numba's `parallel=True` and `prange`: a parallel kernel took about 3x as long to compile
as the same loop serial (14.6 s of a first run's start was compiling), and its OpenMP threads
spin while they wait unless told otherwise. Python threads cost some 20-50 us per call, small
beside a kernel's 0.1-1 ms at batch 128. With NUMBA_DISABLE_JIT=1 the kernels are plain Python
that holds the GIL: still correct, just serial in effect.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba

# numba's own thread count: NUMBA_NUM_THREADS if set, else the number of cores.
_threads: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
_pool: ThreadPoolExecutor | None = None


def get_threads() -> int:
    """How many threads the kernels use."""
    return _threads


def set_threads(n: int) -> None:
    """Use n >= 1 threads for the kernels from now on."""
    global _threads, _pool
    if n < 1:
        raise ValueError(f"set_threads: n must be at least 1, got {n}")
    if n != _threads and _pool is not None:
        _pool.shutdown()
        _pool = None
    _threads = n


def chunks(N: int, threads: int) -> list[tuple[int, int]]:
    """0..N-1 as min(threads, N) contiguous (lo, hi) ranges of near-equal length."""
    t = max(1, min(threads, N))
    return [(N * i // t, N * (i + 1) // t) for i in range(t)]


def over_images(kernel: Callable, N: int, *args) -> None:
    """kernel(*args, lo, hi) for each of chunks(N, get_threads()), at the same time; returns
    when all are done. The kernel must write disjoint slices for disjoint ranges."""
    global _pool
    parts = chunks(N, _threads)
    if len(parts) == 1:
        kernel(*args, 0, N)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_threads - 1, thread_name_prefix="tinyprune")
    futures = [_pool.submit(kernel, *args, lo, hi) for lo, hi in parts[1:]]
    kernel(*args, *parts[0])
    for future in futures:
        future.result()
