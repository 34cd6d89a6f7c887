"""Shared by the benchmark scripts: timing, the machine's matrix-product speed, JSON output."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

# PyTorch, the peer, is imported before tinyprune so that it keeps its default OpenMP wait
# policy: its own copy of OpenMP reads OMP_WAIT_POLICY when torch is imported, and tinyprune
# sets that to passive for numba's copy (see tinyprune/__init__.py).
try:
    import torch  # noqa: F401
except ImportError:
    pass
from tinyprune.files import write_json  # noqa: E402,F401  (the benchmarks write their JSON with it)


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time of fn() over `repeats` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(threads: int, n: int = 1024, repeats: int = 5) -> float:
    """GFLOP/s of a float32 (n, n) @ (n, n) product, BLAS on `threads` threads: what a
    well-tuned library reaches on this machine, the yardstick for the kernels' GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    with threadpool_limits(limits=threads, user_api="blas"):
        seconds = median_seconds(lambda: a @ b, repeats)
    return 2 * n**3 / seconds / 1e9


def machine_info(threads: int) -> dict:
    import numba

    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }
    try:
        with open("/proc/loadavg") as f:
            info["load_average_1min_at_start"] = float(f.read().split()[0])
    except OSError:
        pass
    return info


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}x"
