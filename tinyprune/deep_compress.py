"""Prune, share weights, Huffman-code: a model as small as Deep Compression makes it, or smaller.

    python -m tinyprune.deep_compress --model lenet5-caffe --sparsity 0.97 --rounds 6 \
        --bits conv=5,fc=4 [--validation] ...

Trains the dense model (or loads it from --cache-dir, see train/dense_cache.py), prunes it in
--rounds rounds with fine-tuning, clusters each layer's kept weights into at most 2^bits shared
values and fine-tunes them (deploy/weight_sharing.py), and writes --out/shared.tpz
(deploy/compress_v2.py). The accuracy it reports for the file is measured on the model decoded
from the file. --validation trains on the first 50,000 training images and measures on the
other 10,000, to choose a recipe without looking at the test set.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyprune.cli.types import fraction, non_negative_int, positive_float, positive_int
from tinyprune.data.mnist import Mnist
from tinyprune.deploy import compress_v2
from tinyprune.deploy.size_report import format_size_table, size_rows
from tinyprune.deploy.weight_sharing import SharedSGD, parse_bits, share_weights
from tinyprune.files import write_json
from tinyprune.nn.model import MODELS
from tinyprune.prune.criteria import METHODS
from tinyprune.prune.schedules import prune_and_finetune
from tinyprune.train.dense_cache import add_dense_options, check_dense_options, load_data, \
    trained_dense
from tinyprune.train.loop import evaluate, fit

VALIDATION_IMAGES = 50_000  # train on these; the rest of the training set is the validation set


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tinyprune.deep_compress",
                                     description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_dense_options(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/deep-compress"))
    parser.add_argument("--sparsity", type=fraction, default=0.9)
    parser.add_argument("--method", choices=[m for m in METHODS if m != "filter"],
                        default="global")
    parser.add_argument("--rounds", type=positive_int, default=4,
                        help="rounds of iterative pruning, each followed by fine-tuning")
    parser.add_argument("--finetune-epochs", type=non_negative_int, default=8,
                        help="fine-tuning epochs after pruning, shared among the rounds")
    parser.add_argument("--finetune-lr", type=positive_float, default=0.01)
    parser.add_argument("--bits", default="conv=8,fc=5",
                        help="bits per shared-value index: N for all layers, or conv=N,fc=M, "
                             "or per layer (conv1=6,fc1=4,...); conv=8,fc=5 is the paper's")
    parser.add_argument("--share-epochs", type=non_negative_int, default=1,
                        help="epochs fine-tuning the shared values")
    parser.add_argument("--share-lr", type=positive_float, default=1e-4,
                        help="learning rate of the shared values (their gradient is a sum "
                             "over all their weights, hence smaller than --finetune-lr)")
    parser.add_argument("--validation", action="store_true",
                        help=f"train on the first {VALIDATION_IMAGES:,} training images and "
                             f"measure on the other {60_000 - VALIDATION_IMAGES:,}")
    args = parser.parse_args(argv)
    check_dense_options(parser, args)
    try:
        parse_bits(args.bits, MODELS[args.model]())
    except ValueError as error:
        parser.error(f"--bits: {error}")
    return args


def validation_split(data: Mnist) -> Mnist:
    """Train on the first VALIDATION_IMAGES training images, measure on the rest."""
    n = VALIDATION_IMAGES
    return Mnist(data.train_images[:n], data.train_labels[:n], data.train_images[n:],
                 data.train_labels[n:])


def compress(args: argparse.Namespace, data: Mnist) -> dict:
    """Prune, share, fine-tune and write args.out/shared.tpz; -> the results to save."""
    model, dense_accuracy = trained_dense(args, data)
    train = dict(batch_size=args.batch_size, max_shift=args.shift, seed=args.seed)
    pruning = prune_and_finetune(model, data, args.sparsity, args.finetune_epochs,
                                 method=args.method, schedule="iterative", rounds=args.rounds,
                                 lr=args.finetune_lr, **train)
    _, pruned_accuracy = evaluate(model, data.test_images, data.test_labels)
    shared = share_weights(model, parse_bits(args.bits, model))
    _, clustered_accuracy = evaluate(model, data.test_images, data.test_labels)
    print(f"weights shared ({args.bits}): accuracy {pruned_accuracy:.2%} -> "
          f"{clustered_accuracy:.2%} before fine-tuning the shared values", flush=True)
    optimizer = SharedSGD(model.params(), shared, args.share_lr, momentum=0.9)
    fit(model, data, optimizer, args.share_epochs, args.batch_size, args.seed + 1000,
        max_shift=args.shift, phase="share")
    path = args.out / "shared.tpz"
    report = compress_v2.save(model, path, "shared", shared)
    _, file_accuracy = evaluate(compress_v2.decoded_model(model, path), data.test_images,
                                data.test_labels)
    rows = size_rows(report, model)
    print(f"\n{path}: {path.stat().st_size:,} bytes\n{format_size_table(rows)}")
    print(f"\naccuracy: dense {dense_accuracy:.2%}, pruned {pruned_accuracy:.2%}, shared "
          f"{clustered_accuracy:.2%}, file (decoded, shared values fine-tuned) "
          f"{file_accuracy:.2%}")
    return {"dense_accuracy": dense_accuracy, "pruned_accuracy": pruned_accuracy,
            "clustered_accuracy": clustered_accuracy, "file_accuracy": file_accuracy,
            "file_bytes": path.stat().st_size, "dense_float32_bytes": 4 * model.num_params(),
            "rounds": pruning["rounds"], "layers": rows}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = load_data(args)
    if args.validation:
        data = validation_split(data)
    print(f"{args.model}: {len(data.train_images):,} training images, "
          f"{'validation' if args.validation else 'test'} set of {len(data.test_images):,}")
    results = compress(args, data)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_json(args.out / "results.json", {"options": options, **results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
