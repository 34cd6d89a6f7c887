"""Inference over the 10,000 MNIST test images with tinyprune, as its run evaluates after each
epoch (`tinyprune.train.loop.evaluate`: batches of 1000, loss and accuracy), for
benchmarks/whole_run.py.

    python benchmarks/tinyprune_infer.py --model lenet5 --weights runs/latest/model.npz [--fused]

One untimed call first (numba loads its compiled kernels), then --repeats timed ones. The last
line it prints is JSON: the seconds of each timed call and the test accuracy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tinyprune.data.mnist import load_mnist
from tinyprune.nn.model import MODELS
from tinyprune.train.loop import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="lenet5")
    parser.add_argument("--weights", type=Path, required=True, help="a model.npz of that model")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fused", action="store_true", help="the model with ConvPool layers")
    args = parser.parse_args()
    data = load_mnist(download_missing=False, progress=False)
    model = MODELS[args.model](0, fused=True) if args.fused else MODELS[args.model](0)
    model.load(args.weights)
    evaluate(model, data.test_images, data.test_labels)
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        _, accuracy = evaluate(model, data.test_images, data.test_labels)
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"inference_seconds": seconds, "test_accuracy": accuracy}))


if __name__ == "__main__":
    main()
