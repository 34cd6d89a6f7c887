"""Sharing the cores: training steps timed alone and with a second run at once, for each
OpenMP wait policy numba's parallel kernels can run under.

    python benchmarks/contention.py [--steps 300] [--json PATH]

Each measurement is a fresh Python process (the policy is read when OpenMP loads) timing
--steps batch-128 training steps of lenet5 on all the machine's cores; "two at once" starts
two such processes together and reports the mean of their times. ACTIVE makes idle OpenMP
threads spin, PASSIVE makes them sleep; tinyprune sets PASSIVE unless OMP_WAIT_POLICY is set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, write_json  # noqa: E402

# Run in each child: a few untimed steps (numba's cache loads, threads start), then timed ones.
CHILD = """
import sys, time
import numpy as np
from threadpoolctl import threadpool_limits
from tinyprune.nn.loss import SoftmaxCrossEntropy
from tinyprune.nn.model import lenet5
from tinyprune.nn.optim import MaskedSGD
from tinyprune.train.loop import ONE_BLAS_THREAD
model, loss_fn = lenet5(0), SoftmaxCrossEntropy()
optimizer = MaskedSGD(model.params(), 0.05, 0.9, 5e-4)
rng = np.random.default_rng(0)
x = rng.standard_normal((128, 1, 28, 28)).astype(np.float32)
y = rng.integers(0, 10, 128)
def step():
    loss_fn.forward(model.forward(x), y)
    model.backward(loss_fn.backward())
    optimizer.step()
with threadpool_limits(**ONE_BLAS_THREAD):
    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(int(sys.argv[1])):
        step()
print(time.perf_counter() - start)
"""


def run_at_once(copies: int, policy: str, steps: int) -> float:
    """Mean seconds of `copies` child processes started together under `policy`."""
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(steps)], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(copies)
    ]
    seconds = [float(child.communicate()[0]) for child in children]
    if any(child.returncode for child in children):
        raise SystemExit("a child process failed")
    return sum(seconds) / copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="timed training steps per run")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    machine, rows = machine_info(os.cpu_count()), []
    print(f"{args.steps} training steps (lenet5, batch 128) on {os.cpu_count()} cores, seconds")
    print(f"{'OMP_WAIT_POLICY':16} {'alone':>8} {'two at once':>12} {'slowdown':>9}")
    for policy in ("ACTIVE", "PASSIVE"):
        alone = run_at_once(1, policy, args.steps)
        shared = run_at_once(2, policy, args.steps)
        rows.append(
            {
                "policy": policy,
                "alone_seconds": alone,
                "two_at_once_seconds": shared,
                "slowdown": shared / alone,
            }
        )
        print(f"{policy:16} {alone:8.2f} {shared:12.2f} {shared / alone:8.2f}x", flush=True)
    if args.json:
        write_json(args.json, {"machine": machine, "steps": args.steps, "rows": rows})
        print(f"written: {args.json}")


if __name__ == "__main__":
    main()
