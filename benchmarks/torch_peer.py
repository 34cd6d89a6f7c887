"""The PyTorch peer of `python -m tinyprune.run`: the same network trained the way PyTorch users
write it, for benchmarks/whole_run.py. Plain PyTorch only; tinyprune is not imported.

    python benchmarks/torch_peer.py --model lenet5 [--compile] [--epochs 3] [--data-dir DIR]

The training tensors sit in memory, normalised once; each epoch draws its batches of 128 from
torch.randperm; SGD with momentum 0.9 and weight decay 5e-4, learning rate 0.05 along a cosine
(as tinyprune's run). After each epoch it evaluates the 10,000 test images, as the run does,
untimed. Then it times inference over the 10,000 test images (batches of 1000, no_grad)
--infer-repeats times. The last line it prints is JSON: per-epoch training seconds (the steps
alone, as the run's `seconds`), inference seconds, test accuracy.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def read_idx(path: Path) -> np.ndarray:
    """An MNIST IDX file (gzip-compressed) as a uint8 array; its header gives the shape."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(data_dir: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(data_dir / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(data_dir / f"{prefix}-labels-idx1-ubyte.gz")
    x = torch.from_numpy(images.copy()).float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)
    return x.unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def lenet5() -> nn.Module:
    """tinyprune's lenet5 layer for layer (ReLU after each pool: the same function)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(6, 16, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def lenet5_caffe() -> nn.Module:
    """tinyprune's lenet5-caffe: no ReLU after the convolutions, as in Caffe's."""
    return nn.Sequential(
        nn.Conv2d(1, 20, 5),
        nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(800, 500),
        nn.ReLU(),
        nn.Linear(500, 10),
    )


def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            logits = net(x[i : i + 1000])
            F.cross_entropy(logits, y[i : i + 1000])
            correct += int((logits.argmax(1) == y[i : i + 1000]).sum())
    return correct / len(x)


def train_epoch(net, opt, sched, x, y, batch_size: int) -> float:
    """One epoch; -> seconds of the training steps."""
    net.train()
    start = time.perf_counter()
    perm = torch.randperm(len(x))
    total_loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        idx = perm[i : i + batch_size]
        xb, yb = x[idx], y[idx]
        opt.zero_grad()
        logits = net(xb)
        loss = F.cross_entropy(logits, yb)
        loss.backward()
        opt.step()
        sched.step()
        total_loss += loss.item() * len(yb)
        correct += int((logits.argmax(1) == yb).sum())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["lenet5", "lenet5-caffe"], default="lenet5")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--infer-repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("TINYPRUNE_DATA_DIR", "data/mnist"))
    )
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    train_x, train_y = load(args.data_dir, "train")
    train_x, train_y = train_x[: args.limit], train_y[: args.limit]
    test_x, test_y = load(args.data_dir, "t10k")
    net = lenet5() if args.model == "lenet5" else lenet5_caffe()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps = args.epochs * math.ceil(len(train_x) / args.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model = torch.compile(net) if args.compile else net
    epochs = []
    for epoch in range(1, args.epochs + 1):
        seconds = train_epoch(model, opt, sched, train_x, train_y, args.batch_size)
        accuracy = evaluate(model, test_x, test_y)
        print(f"epoch {epoch}: {seconds:.2f}s, test acc {accuracy:.2%}", flush=True)
        epochs.append(seconds)
    infer = []
    for _ in range(args.infer_repeats):
        start = time.perf_counter()
        accuracy = evaluate(model, test_x, test_y)
        infer.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "epoch_seconds": epochs,
                "inference_seconds": infer,
                "test_accuracy": accuracy,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
