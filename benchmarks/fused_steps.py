"""LeNet-5's convolutions fused with their pooling and ReLU, against its layers one by one.

A training step and an evaluation on the 10,000 test images of the fused model, lenet5(fused=True)
(conv, pool and ReLU as one ConvPool layer, tinyprune/nn/conv_pool.py), against the plain model,
lenet5(), which runs them as three layers; both from the same seed, in one process.

    python benchmarks/fused_steps.py [--rounds 60] [--steps 20] [--json PATH]

The two alternate round by round, each round `--steps` training steps on the same MNIST
batches (from $TINYPRUNE_DATA_DIR), so that the machine's noisy minutes fall on both alike;
every fifth round also evaluates. The numbers are the same either way (tests/test_conv_pool.py),
only the time differs. Prints the medians and the best, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, write_json  # noqa: E402

from tinyprune.data.mnist import load_mnist  # noqa: E402
from tinyprune.data.transforms import to_input  # noqa: E402
from tinyprune.kernels.threads import get_threads  # noqa: E402
from tinyprune.nn.loss import SoftmaxCrossEntropy  # noqa: E402
from tinyprune.nn.model import lenet5  # noqa: E402
from tinyprune.nn.optim import MaskedSGD  # noqa: E402
from tinyprune.train.loop import ONE_BLAS_THREAD, evaluate, train_step, warm_up  # noqa: E402

WAYS = {"fused": True, "layer by layer": False}  # way -> lenet5's fused=


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--steps", type=int, default=20, help="training steps per round")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be at least 1")
    data = load_mnist(download_missing=False, progress=False)
    models = {way: lenet5(0, fused=fused) for way, fused in WAYS.items()}
    optimizers = {way: MaskedSGD(m.params(), 0.05, 0.9, 5e-4) for way, m in models.items()}
    loss_fn = SoftmaxCrossEntropy()
    order = np.random.default_rng(0).permutation(len(data.train_images))
    batches = [order[i * 128 : (i + 1) * 128] for i in range(args.steps)]
    step_ms: dict[str, list[float]] = {way: [] for way in WAYS}
    eval_s: dict[str, list[float]] = {way: [] for way in WAYS}
    for model in models.values():  # each way's kernels compile here, untimed
        warm_up(model)
    with threadpool_limits(**ONE_BLAS_THREAD):  # as in training
        for r in range(args.rounds):
            for way, model in models.items():
                start = time.perf_counter()
                for idx in batches:
                    x = to_input(data.train_images[idx])
                    y = data.train_labels[idx].astype(np.int64)
                    train_step(model, loss_fn, optimizers[way], x, y, "benchmark", "")
                step_ms[way].append((time.perf_counter() - start) / args.steps * 1e3)
                if r % 5 == 0:
                    start = time.perf_counter()
                    evaluate(model, data.test_images, data.test_labels)
                    eval_s[way].append(time.perf_counter() - start)
    result = {"machine": machine_info(get_threads()), "rounds": args.rounds, "steps": args.steps}
    print(f"{args.rounds} rounds of {args.steps} steps, the two ways alternated; medians (best)")
    print(f"{'':16} {'step ms':>16} {'evaluate s':>16}")
    for way in WAYS:
        s, e = step_ms[way], eval_s[way]
        result[way] = {"step_ms": s, "evaluate_seconds": e}
        step = f"{statistics.median(s):.3f} ({min(s):.3f})"
        print(f"{way:16} {step:>16} {f'{statistics.median(e):.3f} ({min(e):.3f})':>16}")
    fused, plain = (statistics.median(step_ms[w]) for w in WAYS)
    fused_e, plain_e = (statistics.median(eval_s[w]) for w in WAYS)
    print(f"{'ratio':16} {f'{fused / plain:.2f}x':>16} {f'{fused_e / plain_e:.2f}x':>16}")
    if args.json is not None:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
