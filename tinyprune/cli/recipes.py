"""Recipes with names: `python -m tinyprune.run --recipe NAME` runs the options of a headline
number of the docs, so that each is one word away; `--recipe list` prints them.

A recipe is the options it stands for, as they would be typed: the run reads them before the
command line's own, so an option given on the command line overrides the recipe's (argparse
keeps the last value of an option). Each was chosen on the validation split (`--validation`:
trained on the first 50,000 training images, measured on the other 10,000), never on the test
set; its docs page says how, and gives its numbers with the command and date.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    summary: str  # one line: what it makes (its docs page has the numbers)
    options: str  # as typed after `python -m tinyprune.run`

    def argv(self) -> list[str]:
        return shlex.split(self.options)


DEEP_COMPRESSION = "--method global --schedule iterative --cache-dir runs/dense-cache --shift 1"

# lenet5-caffe's widths learned by group lasso in 15 epochs, then pruned gradually by one
# global threshold and shared in 4 bits
STRUCTURE = (
    "--model lenet5-caffe --structure group-lasso --epochs 15 --shift 1 --warmup-steps 200 "
    "--method global --schedule agp --bits 4"
)

RECIPES = {
    "default": Recipe("LeNet-5, half its weights pruned layer by layer, fine-tuned, shared", ""),
    "lenet5-90": Recipe(
        "LeNet-5, 90% of its weights pruned by one global threshold, gradually (agp)",
        "--sparsity 0.9 --method global --schedule agp --finetune-epochs 10",
    ),
    "han-12x": Recipe(
        "Han et al.'s LeNet-5 (Caffe), 92% of its weights pruned in four rounds",
        "--model lenet5-caffe --shift 1 --method global --schedule iterative --rounds 4 "
        "--finetune-epochs 12 --sparsity 0.92",
    ),
    "deep-compression-caffe": Recipe(
        "LeNet-5 (Caffe) pruned, shared and entropy-coded past Deep Compression's 44 KB",
        f"{DEEP_COMPRESSION} --model lenet5-caffe --seed 2 --sparsity 0.967 --rounds 7 "
        "--finetune-epochs 10 --bits conv=5,fc=4 --bias-bits 6 --share-epochs 1 --share-lr 1e-4",
    ),
    "deep-compression-300-100": Recipe(
        "LeNet-300-100 pruned, shared and entropy-coded past Deep Compression's 27 KB",
        f"{DEEP_COMPRESSION} --model lenet-300-100 --seed 2 --sparsity 0.9366 --rounds 6 "
        "--finetune-epochs 24 --bits 3 --bias-bits 5 --share-epochs 2 --share-lr 1e-3",
    ),
    "caffe-99.2": Recipe(
        "LeNet-5 (Caffe): the smallest file found at 99.2% (validation): learned widths, 80% "
        "pruned gradually by one global threshold, shared in 4 bits",
        f"{STRUCTURE} --lam 7e-3,1.5e-3,1.5e-3 --sparsity 0.8 --finetune-epochs 12",
    ),
    "caffe-99.0": Recipe(
        "LeNet-5 (Caffe): the smallest file found at 99.0% (validation): learned widths, 75% "
        "pruned gradually by one global threshold, shared in 4 bits",
        f"{STRUCTURE} --lam 1.5e-2,3e-3,3e-3 --sparsity 0.75 --finetune-epochs 10",
    ),
    "lenet-300-100-98.4": Recipe(
        "LeNet-300-100: the smallest file found at 98.4% (validation): learned widths, 93% "
        "pruned gradually, shared in 4 bits",
        "--model lenet-300-100 --structure group-lasso --lam 5e-4 --epochs 20 --shift 1 "
        "--method global --schedule agp --sparsity 0.93 --finetune-epochs 16 --bits 4",
    ),
    "lenet5-mcu": Recipe(
        "LeNet-5 for a Cortex-M4: the smallest int8 export found at 99.0% (validation), "
        "learned widths, 75% pruned",
        "--structure group-lasso --lam 2e-3 --epochs 15 --shift 1 --method global "
        "--schedule agp --sparsity 0.75 --finetune-epochs 10 --bits 4",
    ),
    "fashion-90": Recipe(
        "LeNet-5 on Fashion-MNIST, 90% of its weights pruned by one global threshold",
        "--dataset fashion-mnist --epochs 20 --shift 1 --sparsity 0.9 --method global "
        "--finetune-epochs 15",
    ),
}


def recipe_list() -> str:
    """What `--recipe list` prints: each recipe's name, what it makes, and its options."""
    return "\n".join(
        f"{name:25} {recipe.summary}\n{'':25} {recipe.options or '(the defaults)'}"
        for name, recipe in RECIPES.items()
    )
