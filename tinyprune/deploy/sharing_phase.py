"""The weight-sharing phase of a run: share, fine-tune the shared values, write the file and
measure the model decoded from it (so every accuracy reported for a file is the file's own)."""

from __future__ import annotations

from pathlib import Path

from tinyprune.config import ShareConfig, TrainConfig
from tinyprune.data.mnist import Mnist
from tinyprune.deploy import tpz, weight_sharing
from tinyprune.deploy.size_report import size_rows
from tinyprune.deploy.weight_sharing import SharedSGD, SharedWeight, parse_bits, share_weights
from tinyprune.nn.model import Sequential
from tinyprune.train.loop import evaluate, fit


def share_and_finetune(
    model: Sequential, data: Mnist, share: ShareConfig, train: TrainConfig
) -> tuple[dict[str, SharedWeight], dict]:
    """Share the model's weights in place, fine-tune the shared values (batches, shifts and
    momentum as in training) and round them and the biases to float16; -> (the shared
    weights, {"bits", "clustered_accuracy": test accuracy right after k-means, "history"})."""
    shared = share_weights(model, parse_bits(share.bits, model), share.bias_bits)
    _, clustered = evaluate(model, data.test_images, data.test_labels, dataset=data.dataset)
    biases = f", biases {share.bias_bits}" if share.bias_bits else ""
    print(
        f"weights shared ({share.bits}{biases} bits): test accuracy {clustered:.2%} before "
        f"fine-tuning the shared values",
        flush=True,
    )
    optimizer = SharedSGD(model.params(), shared, share.lr, train.momentum)
    # seed + 1000: its own batches, not a replay of training's or fine-tuning's
    history = fit(
        model,
        data,
        optimizer,
        share.epochs,
        train.batch_size,
        train.seed + 1000,
        max_shift=train.shift,
        phase="share",
    )
    weight_sharing.round_to_half(model, shared)  # so the file stores them in 16 bits
    return shared, {
        "bits": share.bits,
        "bias_bits": share.bias_bits,
        "clustered_accuracy": clustered,
        "history": history,
    }


def write_and_measure(
    model: Sequential, shared: dict[str, SharedWeight], data: Mnist, path: str | Path
) -> dict:
    """Write the shared model to path and measure the model decoded from
    it; -> {"file" (its name: results must not depend on where the run is), "file_bytes",
    "file_accuracy", "file_loss", "layers": size_rows}."""
    path = Path(path)
    report = tpz.save(model, path, "shared", shared)
    loss, accuracy = evaluate(
        tpz.decoded_model(model, path),
        data.test_images,
        data.test_labels,
        dataset=data.dataset,
    )
    return {
        "file": path.name,
        "file_bytes": path.stat().st_size,
        "file_accuracy": accuracy,
        "file_loss": loss,
        "layers": size_rows(report, model),
    }
