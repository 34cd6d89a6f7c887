"""Inference of a pruned LeNet-5: tinyprune's dense kernels, its sparse kernels (only non-zero
weights stored and multiplied) and, when torch is installed, PyTorch dense, at several
sparsities: latency at batch 1 and throughput at larger batches.

    python benchmarks/sparse_inference.py [--model runs/latest/model.npz] [--json PATH]
        [--sparsity 0.5 0.75 0.9 0.95] [--batch 1 128 512] [--repeats 200] [--threads 2]

Each sparsity prunes the model (trained weights from --model, else a fresh init) by magnitude,
layer by layer; no fine-tuning, since the time does not depend on the weights' values, only on
how many are non-zero. The input is random: no kernel skips work by the input's values.
Each time is the median of --repeats calls (fewer for big batches) after two warm-up calls, the
contenders timed one after another for each row; the JSON also has each one's fastest call and
its median CPU time (process_time, all threads).
tinyprune runs as in evaluation: numba on --threads threads (the sparse model on one thread at
batch 1), BLAS (dense fc layers) on one; PyTorch has torch.set_num_threads(--threads) and runs
under inference_mode. On a machine shared with other jobs, compare with --threads 1: parallel
loops then wait for descheduled threads, and times at 2 threads swing by 100x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, ms, ratio, write_json  # noqa: E402

from tinyprune.deploy.sparse_model import SparseModel  # noqa: E402
from tinyprune.nn.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU  # noqa: E402
from tinyprune.nn.model import Sequential, lenet5  # noqa: E402
from tinyprune.prune.criteria import prune  # noqa: E402

try:
    import torch
except ImportError:
    torch = None


def seconds(fn, repeats: int, warmup: int = 2) -> tuple[float, float, float]:
    """(median wall time, fastest wall time, median CPU time of all threads) of fn() over
    `repeats` calls after `warmup` untimed ones. On a machine shared with other jobs the fastest
    call is the least disturbed, and at --threads 1 the CPU time is not disturbed at all."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def torch_copy(model: Sequential):
    """The same network as a torch.nn.Sequential with the same (dense) weights."""
    nn = torch.nn
    modules = []
    for layer in model.layers.values():
        if isinstance(layer, Conv2d):
            F, C, K, _ = layer.weight.value.shape
            m = nn.Conv2d(C, F, K, padding=layer.padding)
        elif isinstance(layer, Linear):
            m = nn.Linear(layer.weight.value.shape[1], layer.weight.value.shape[0])
        else:
            m = {MaxPool2d: lambda: nn.MaxPool2d(2), ReLU: nn.ReLU, Flatten: nn.Flatten}[
                type(layer)
            ]()
        if isinstance(layer, (Conv2d, Linear)):
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(layer.weight.value))
                m.bias.copy_(torch.from_numpy(layer.bias.value))
        modules.append(m)
    return nn.Sequential(*modules).eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="a trained model.npz (default: LeNet-5 at its initial weights)",
    )
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.5, 0.75, 0.9, 0.95])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 128, 512])
    parser.add_argument("--repeats", type=int, default=200, help="timed calls at batch 1")
    parser.add_argument("--threads", type=int, default=numba.get_num_threads())
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    numba.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    inputs = {n: rng.standard_normal((n, 1, 28, 28)).astype(np.float32) for n in args.batch}

    print(
        f"LeNet-5 inference, {args.threads} threads; torch "
        f"{torch.__version__ if torch is not None else 'not installed'}; times in ms"
    )
    print(
        f"{'sparsity':>8} {'batch':>6} {'dense':>9} {'sparse':>9} {'torch':>9} "
        f"{'sparse vs dense':>16} {'sparse vs torch':>16}"
    )
    rows = []
    for sparsity in args.sparsity:
        model = lenet5()
        if args.model is not None:
            model.load(args.model)
        prune(model, sparsity)
        sparse = SparseModel(model)
        net = torch_copy(model) if torch is not None else None
        for n, x in inputs.items():
            # about the same total time per row: fewer calls for big batches
            repeats = max(5, args.repeats // n)
            expected = model.forward(x)
            np.testing.assert_allclose(sparse.forward(x), expected, rtol=1e-4, atol=1e-4)
            with threadpool_limits(limits=1, user_api="blas"):
                dense_s, dense_best, dense_cpu = seconds(lambda m=model, x=x: m.forward(x), repeats)
            sparse_s, sparse_best, sparse_cpu = seconds(lambda s=sparse, x=x: s.forward(x), repeats)
            torch_s = torch_best = torch_cpu = None
            if net is not None:
                tx = torch.from_numpy(x)
                with torch.inference_mode():
                    np.testing.assert_allclose(net(tx).numpy(), expected, rtol=1e-4, atol=1e-4)
                    torch_s, torch_best, torch_cpu = seconds(lambda f=net, t=tx: f(t), repeats)
            rows.append(
                {
                    "sparsity": sparsity,
                    "batch_size": n,
                    "dense_s": dense_s,
                    "sparse_s": sparse_s,
                    "torch_s": torch_s,
                    "fastest_s": {"dense": dense_best, "sparse": sparse_best, "torch": torch_best},
                    "cpu_s": {"dense": dense_cpu, "sparse": sparse_cpu, "torch": torch_cpu},
                    "nonzero_weights": sparse.nonzero,
                    "images_per_s": {
                        "dense": n / dense_s,
                        "sparse": n / sparse_s,
                        "torch": n / torch_s if torch_s else None,
                    },
                }
            )
            print(
                f"{sparsity:8.0%} {n:6d} {ms(dense_s):>9} {ms(sparse_s):>9} {ms(torch_s):>9} "
                f"{ratio(dense_s, sparse_s):>16} {ratio(torch_s, sparse_s):>16}",
                flush=True,
            )
    print("'sparse vs X': X's time / sparse's time (higher is better for sparse)")
    if args.json is not None:
        write_json(
            args.json,
            {
                "benchmark": "sparse_inference",
                "model": str(args.model),
                "machine": machine_info(args.threads),
                "repeats": args.repeats,
                "rows": rows,
            },
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
