"""The weight-sharing phase of a run: share, fine-tune the shared values, write the file and
measure the model decoded from it (so every accuracy reported for a file is the file's own)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinyprune.data.mnist import Mnist
from tinyprune.deploy import compress_v2
from tinyprune.deploy.size_report import size_rows
from tinyprune.deploy.weight_sharing import SharedSGD, SharedWeight, parse_bits, share_weights
from tinyprune.nn.model import Sequential
from tinyprune.train.loop import evaluate, fit


@dataclass
class SharingConfig:
    """bits: as parse_bits takes it ('5', 'conv=8,fc=5', ...); bias_bits: share biases too
    (None: they stay float32); epochs and lr: fine-tuning of the shared values."""
    bits: str = "conv=8,fc=5"
    bias_bits: int | None = None
    epochs: int = 1
    lr: float = 1e-4
    momentum: float = 0.9
    batch_size: int = 128
    max_shift: int = 0
    seed: int = 0


def share_and_finetune(model: Sequential, data: Mnist, config: SharingConfig
                       ) -> tuple[dict[str, SharedWeight], dict]:
    """Share the model's weights in place and fine-tune the shared values; -> (the shared
    weights, {"clustered_accuracy": test accuracy right after k-means, "history"})."""
    shared = share_weights(model, parse_bits(config.bits, model), config.bias_bits)
    _, clustered = evaluate(model, data.test_images, data.test_labels)
    biases = f", biases {config.bias_bits}" if config.bias_bits else ""
    print(f"weights shared ({config.bits}{biases} bits): test accuracy {clustered:.2%} before "
          f"fine-tuning the shared values", flush=True)
    optimizer = SharedSGD(model.params(), shared, config.lr, config.momentum)
    # seed + 1000: its own batches, not a replay of training's or fine-tuning's
    history = fit(model, data, optimizer, config.epochs, config.batch_size, config.seed + 1000,
                  max_shift=config.max_shift, phase="share")
    return shared, {"clustered_accuracy": clustered, "history": history}


def write_and_measure(model: Sequential, shared: dict[str, SharedWeight], data: Mnist,
                      path: str | Path) -> dict:
    """Write the shared model to path (format version 2) and measure the model decoded from
    it; -> {"file_bytes", "file_accuracy", "file_loss", "layers": size_rows}."""
    path = Path(path)
    report = compress_v2.save(model, path, "shared", shared)
    loss, accuracy = evaluate(compress_v2.decoded_model(model, path), data.test_images,
                              data.test_labels)
    return {"file_bytes": path.stat().st_size, "file_accuracy": accuracy, "file_loss": loss,
            "layers": size_rows(report, model)}
