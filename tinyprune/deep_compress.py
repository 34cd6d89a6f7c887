"""Prune, share weights, Huffman-code: a model as small as Deep Compression makes it, or smaller.

    python -m tinyprune.deep_compress --model lenet5-caffe --sparsity 0.97 --rounds 7 \
        --finetune-epochs 7 --bits conv=5,fc=4 [--validation] ...

What `python -m tinyprune.run` does with --method global --schedule iterative, but starting
from the trained dense model cached in --cache-dir (trained there first if missing, see
train/dense_cache.py), so that recipes can be compared without training it again. Writes
--out/shared.tpz (format version 2) and results.json; the accuracy reported for the file is
that of the model decoded from it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from tinyprune.cli.options import (
    add_dense_cache_options,
    add_share_options,
    check_bits,
    check_folders,
    data_config,
    load_data_or_say_why,
    share_config,
    train_config,
)
from tinyprune.cli.types import fraction, non_negative_int, positive_float, positive_int
from tinyprune.deploy.sharing_phase import share_and_finetune, write_and_measure
from tinyprune.deploy.size_report import format_size_table
from tinyprune.files import write_json
from tinyprune.prune.schedules import prune_and_finetune
from tinyprune.train.dense_cache import trained_dense
from tinyprune.train.loop import evaluate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tinyprune.deep_compress",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_dense_cache_options(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/deep-compress"))
    parser.add_argument(
        "--sparsity",
        type=fraction,
        default=0.9,
        help="fraction of all weights pruned, by one global magnitude threshold",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=4,
        help="rounds of iterative pruning, each followed by fine-tuning",
    )
    parser.add_argument(
        "--finetune-epochs",
        type=non_negative_int,
        default=8,
        help="fine-tuning epochs after pruning, shared among the rounds",
    )
    parser.add_argument("--finetune-lr", type=positive_float, default=0.01)
    add_share_options(parser)
    args = parser.parse_args(argv)
    check_folders(parser, args, args.out, args.cache_dir)
    check_bits(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = load_data_or_say_why(data_config(args))
    if data is None:
        return 1
    train, share = train_config(args), share_config(args)
    print(
        f"{args.model}: {len(data.train_images):,} training images; measured on the "
        f"{'validation' if args.validation else 'test'} set of {len(data.test_images):,}"
    )
    model, dense_accuracy = trained_dense(train, data, args.cache_dir)
    pruning = prune_and_finetune(
        model,
        data,
        args.sparsity,
        args.finetune_epochs,
        method="global",
        schedule="iterative",
        rounds=args.rounds,
        lr=args.finetune_lr,
        momentum=train.momentum,
        weight_decay=train.weight_decay,
        batch_size=train.batch_size,
        max_shift=train.shift,
        seed=train.seed,
    )
    _, pruned_accuracy = evaluate(model, data.test_images, data.test_labels, dataset=data.dataset)
    shared, sharing = share_and_finetune(model, data, share, train)
    written = write_and_measure(model, shared, data, args.out / "shared.tpz")
    print(
        f"\n{args.out / written['file']}: {written['file_bytes']:,} bytes, "
        f"{4 * model.num_params() / written['file_bytes']:.1f}x smaller than dense float32\n"
        f"{format_size_table(written['layers'])}"
    )
    print(
        f"\naccuracy: dense {dense_accuracy:.2%}, pruned {pruned_accuracy:.2%}, shared "
        f"{sharing['clustered_accuracy']:.2%}, the file (decoded; shared values fine-tuned) "
        f"{written['file_accuracy']:.2%}"
    )
    write_json(
        args.out / "results.json",
        {
            "options": {
                **asdict(train),
                **asdict(share),
                "sparsity": args.sparsity,
                "rounds": args.rounds,
                "finetune_epochs": args.finetune_epochs,
                "finetune_lr": args.finetune_lr,
                "validation": args.validation,
                "limit": args.limit,
            },
            "dense_accuracy": dense_accuracy,
            "pruned_accuracy": pruned_accuracy,
            "rounds": pruning["rounds"],
            **sharing,
            **written,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
