"""Start-up cost: importing tinyprune plus its first training step as the run command takes it
(warm_up, then one batch), with an empty numba cache (everything compiled; on such a first run
warm_up compiles the backward to the weights in a second process meanwhile, see
tinyprune/kernels/precompile.py) and with a warm one (`cache=True`: compiled code loaded).

    python benchmarks/startup.py [--fused] [--json PATH]

Each measurement is a fresh Python process; the cold one gets a new, empty NUMBA_CACHE_DIR,
and the warm one runs again on the cache the cold one left. With --fused, the model is
lenet5(fused=True), whose ConvPool layers have kernels of their own (kernels/conv_pool.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_json  # noqa: E402

# Run in the child: time the import, then warm_up and one batch-128 training step, as the run
# command takes them.
CHILD = """
import json, sys, time
start = time.perf_counter()
import numpy as np
from threadpoolctl import threadpool_limits
from tinyprune.nn.loss import SoftmaxCrossEntropy
from tinyprune.nn.model import lenet5
from tinyprune.nn.optim import MaskedSGD
from tinyprune.train.loop import ONE_BLAS_THREAD, warm_up
imported = time.perf_counter()
model = lenet5(0, fused=sys.argv[1] == "fused")
warm_up(model)
loss_fn = SoftmaxCrossEntropy()
optimizer = MaskedSGD(model.params(), 0.05, 0.9, 5e-4)
rng = np.random.default_rng(0)
x = rng.standard_normal((128, 1, 28, 28)).astype(np.float32)
y = rng.integers(0, 10, 128)
with threadpool_limits(**ONE_BLAS_THREAD):
    loss_fn.forward(model.forward(x), y)
    model.backward(loss_fn.backward())
    optimizer.step()
stepped = time.perf_counter()
print(json.dumps({"import_seconds": imported - start, "first_step_seconds": stepped - imported}))
"""


def measure(cache_dir: str, fused: bool) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    command = [sys.executable, "-c", CHILD, "fused" if fused else "plain"]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"the child process failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["import_plus_first_step_seconds"] = (
        result["import_seconds"] + result["first_step_seconds"]
    )
    result["process_wall_seconds"] = wall
    # CPU time (user + system) of the child: compiling is one thread's work, and on a busy
    # machine its CPU time says more than its wall time.
    result["process_cpu_seconds"] = (
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    )
    with open("/proc/loadavg") as f:
        result["loadavg_1min_after"] = float(f.read().split()[0])
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fused", action="store_true", help="time lenet5(fused=True)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tinyprune-numba-cache-") as cache_dir:
        cold = measure(cache_dir, args.fused)
        warm = measure(cache_dir, args.fused)
    print(
        f"{'numba cache':12} {'import s':>9} {'first step s':>13} {'sum s':>7} {'process s':>10}"
        f" {'process CPU s':>14} {'load':>5}"
    )
    for name, r in (("empty", cold), ("warm", warm)):
        print(
            f"{name:12} {r['import_seconds']:9.2f} {r['first_step_seconds']:13.2f} "
            f"{r['import_plus_first_step_seconds']:7.2f} {r['process_wall_seconds']:10.2f} "
            f"{r['process_cpu_seconds']:14.2f} {r['loadavg_1min_after']:5.2f}"
        )
    if args.json:
        write_json(args.json, {"cold": cold, "warm": warm, "fused": args.fused})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
