"""Train LeNet-5 on MNIST, prune it by magnitude, fine-tune it, and report.

    python -m tinyprune.run [--epochs 10] [--sparsity 0.5] [--finetune-epochs 5] ...

After every epoch, of training and of fine-tuning, the run is saved to --out/checkpoint.npz;
if it is interrupted (Ctrl-C, a crash, a closed laptop), the same command with --resume goes
on from there and ends with the same numbers. The checkpoint is deleted when the run
completes.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from tinyprune.cli.types import fraction, non_negative_int, positive_float, positive_int
from tinyprune.files import atomic_write
from tinyprune.train.checkpoint import (CHECKPOINT, CheckpointError, checkpoint_phase, load_checkpoint,
                         save_checkpoint)
from tinyprune.deploy.compress import load_copy, write_compressed
from tinyprune.train.dense_cache import DEFAULT_LR, load_data
from tinyprune.prune.filters import shrink
from tinyprune.train.loop import inference_seconds
from tinyprune.data.idx import IdxError
from tinyprune.data.mnist import Mnist, MnistError
from tinyprune.nn.model import MODELS, Sequential
from tinyprune.nn.optim import MaskedSGD
from tinyprune.prune.criteria import METHODS, std_sparsity
from tinyprune.prune.report import sparsity_report, weight_uses
from tinyprune.report.plots import weight_histograms
from tinyprune.prune.schedules import SCHEDULES, prune_and_finetune
from tinyprune.train.loop import Diverged, evaluate, fit
from tinyprune.data.transforms import to_input

PHASE_NAMES = {"train": "training", "fine-tune": "fine-tuning"}  # checkpoint phase -> words


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tinyprune.run",
        description="Train LeNet-5 on MNIST, prune the smallest weights of each layer, "
                    "fine-tune the rest, and report accuracy and sparsity.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the MNIST files (downloaded there if missing); "
                             "default: $TINYPRUNE_DATA_DIR, else data/mnist")
    parser.add_argument("--out", type=Path, default=Path("runs/latest"),
                        help="folder for result.json, results.json, model.npz, pruned.npz")
    parser.add_argument("--epochs", type=non_negative_int, default=10, help="training epochs")
    parser.add_argument("--finetune-epochs", type=non_negative_int, default=5,
                        help="fine-tuning epochs after pruning")
    parser.add_argument("--sparsity", type=fraction, default=0.5,
                        help="fraction of each layer's weights to prune (biases are kept)")
    parser.add_argument("--model", choices=sorted(MODELS), default="lenet5",
                        help="lenet5: 61,706 parameters; lenet5-caffe: 431,080 (Han et al.); "
                             "lenet-300-100: 266,610, fully connected")
    parser.add_argument("--method", choices=METHODS, default="layerwise",
                        help="pruning criterion (see tinyprune/prune/criteria.py); filter removes whole "
                             "filters and neurons, and --sparsity is then their share")
    parser.add_argument("--schedule", choices=SCHEDULES, default="oneshot",
                        help="oneshot: prune, then fine-tune; iterative: --rounds rounds of "
                             "prune and fine-tune; agp: prune gradually while fine-tuning")
    parser.add_argument("--rounds", type=positive_int, default=4,
                        help="rounds of the iterative schedule; --finetune-epochs are shared "
                             "among them")
    parser.add_argument("--quality", type=positive_float, default=None,
                        help="--method std only: prune |w| < quality x std of its layer, "
                             "measured on the trained model (Han et al.); replaces --sparsity")
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--lr", type=positive_float, default=DEFAULT_LR,
                        help="initial learning rate of training (cosine decay to 0)")
    parser.add_argument("--finetune-lr", type=positive_float, default=0.01,
                        help="initial learning rate of fine-tuning (cosine decay to 0)")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--shift", type=non_negative_int, default=0,
                        help="shift each training image at random by up to this many pixels "
                             "(data augmentation; 0 turns it off)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the initial weights and the order of the batches")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="train on the first N training images only (for quick looks); "
                             "the test set is always complete")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --out from its last completed "
                             "epoch (same options), ending exactly as if never interrupted")
    args = parser.parse_args(argv)
    if args.quality is not None and args.method != "std":
        parser.error("--quality sets the threshold of --method std; add --method std or drop it")
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} does not exist; create it (MNIST is "
                     f"downloaded into it) or leave the option out")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        probe = args.out / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        parser.error(f"--out {args.out} cannot be written: {error.strerror}")
    # A checkpoint exists only while a run is unfinished: never overwrite one by accident.
    found = checkpoint_phase(args.out / CHECKPOINT)
    if args.resume and not (args.out / CHECKPOINT).exists() and not (
            args.out / "results.json").exists():
        parser.error(f"--resume: there is no interrupted run in --out {args.out} (no "
                     f"{CHECKPOINT}); leave --resume out to start one")
    if found and not args.resume:
        parser.error(f"--out {args.out} holds an interrupted run ({found[0]} epoch {found[1]} "
                     f"done); continue it by adding --resume, or start over in another --out "
                     f"or after deleting {args.out / CHECKPOINT}")
    return args


def write_json(path: Path, obj: dict) -> None:
    """Write obj as indented JSON, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def warm_up(model: Sequential) -> float:
    """Run one tiny forward and backward so numba compiles (or loads its cache) now, not
    inside the first timed epoch. -> seconds taken."""
    start = time.perf_counter()
    x = to_input(np.zeros((2, 28, 28), np.uint8))
    model.backward(model.forward(x))
    return time.perf_counter() - start


def print_layers(rows: list[dict]) -> None:
    """The sparsity_report rows as a table; mult-adds are per image, of non-zero weights."""
    print(f"{'layer':8} {'weights':>8} {'non-zero':>9} {'sparsity':>9} {'mult-adds kept':>20}")
    for r in rows + [{"name": "total", **{key: sum(r[key] for r in rows) for key in
                                          ("weights", "nonzero", "mult_adds", "mult_adds_kept")}}]:
        print(f"{r['name']:8} {r['weights']:8d} {r['nonzero']:9d} "
              f"{1 - r['nonzero'] / r['weights']:9.2%} {r['mult_adds_kept']:>10,} "
              f"({r['mult_adds_kept'] / r['mult_adds']:6.1%})")


def test_metrics(model: Sequential, data: Mnist, history: list[dict]) -> tuple[float, float]:
    """(test loss, test accuracy) of the model as it is now. fit evaluated it after its last
    epoch and nothing has changed it since, so that entry is reused; with no epoch, measure."""
    if history:
        return history[-1]["test_loss"], history[-1]["test_accuracy"]
    return evaluate(model, data.test_images, data.test_labels)


def filters_removed(model: Sequential, data: Mnist) -> dict:
    """Rebuild the filter-pruned model without its removed filters; print and return its
    parameter count and its inference time over the test set beside the masked model's."""
    small = shrink(model)
    x = to_input(data.test_images)
    masked_s, small_s = inference_seconds(model, x), inference_seconds(small, x)
    print(f"filters removed: {model.num_params():,} -> {small.num_params():,} parameters; "
          f"inference over {len(x):,} test images {masked_s:.3f}s (masked) -> "
          f"{small_s:.3f}s (smaller model), {masked_s / small_s:.1f}x faster")
    return {"params": model.num_params(), "params_after": small.num_params(),
            "inference_seconds_masked": masked_s, "inference_seconds_smaller": small_s,
            "layers": {name: list(layer.weight.value.shape) for name, layer in
                       small.layers.items() if "weight" in layer.params}}


def train_prune_finetune(args: argparse.Namespace) -> int:
    """The run itself (see main)."""
    options = resume_options(args)  # taken before --quality changes args.sparsity
    checkpoint = args.out / CHECKPOINT
    if args.resume and not checkpoint.exists() and (args.out / "results.json").exists():
        print(f"the run in {args.out}/ is complete (see its results.json); nothing to resume")
        return 0
    try:
        data = load_data(args)
    except (MnistError, IdxError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    model = MODELS[args.model](args.seed)
    print(f"{model.name}, {model.num_params():,} parameters; {len(data.train_images):,} training "
          f"and {len(data.test_images):,} test images; results in {args.out}/")
    print(f"numba kernels ready in {warm_up(model):.1f}s (compiled on the first run, "
          f"then loaded from numba's cache)")
    train = dict(batch_size=args.batch_size, max_shift=args.shift)
    optimizer = MaskedSGD(model.params(), args.lr, args.momentum, args.weight_decay)
    history: list[dict] = []  # training's entries so far; save_epoch adds each new one
    state = None
    if args.resume:
        try:
            state = load_checkpoint(checkpoint, model, options)
        except CheckpointError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"resuming from {checkpoint}: {state.epoch} of {phase_epochs(args, state.phase)} "
              f"{PHASE_NAMES[state.phase]} epochs done")
    finetuning = state is not None and state.phase == "fine-tune"
    finetune_done = ({"rounds": state.results["rounds"], "history": state.history}
                     if finetuning else None)

    def save_epoch(entry: dict) -> None:
        history.append(entry)
        save_checkpoint(checkpoint, model, optimizer, "train", entry["epoch"], history, options)

    def save_finetune_epoch(so_far: dict, finetune_optimizer: MaskedSGD) -> None:
        save_checkpoint(checkpoint, model, finetune_optimizer, "fine-tune",
                        len(so_far["history"]), so_far["history"], options,
                        {"train_history": history, "rounds": so_far["rounds"]})

    try:
        if finetuning:  # training is done and saved; the model in hand is being fine-tuned
            history = state.results["train_history"]
            trained = trained_model(args)
            if trained is None:
                return 1
        else:
            if state is not None:
                optimizer.velocity, history = state.velocity, state.history
            fit(model, data, optimizer, args.epochs, seed=args.seed,
                start_epoch=len(history) + 1, after_epoch=save_epoch, **train)
            trained = model
        test_loss, test_accuracy = test_metrics(trained, data, history)
        if not finetuning:
            model.save(args.out / "model.npz")
            write_json(args.out / "result.json", {
                "model": model.name, "epochs": args.epochs, "batch_size": args.batch_size,
                "seed": args.seed, "lr": args.lr, "momentum": args.momentum,
                "weight_decay": args.weight_decay, "shift": args.shift,
                "train_images": len(data.train_images),
                "test_loss": test_loss, "test_accuracy": test_accuracy, "history": history})

        if args.quality is not None:
            args.sparsity = std_sparsity(trained.prunable(), args.quality)
            print(f"--quality {args.quality:g}: |w| < {args.quality:g} x std is "
                  f"{args.sparsity:.2%} of the weights")
        dense_weights = {name: p.value.copy() for name, p in trained.prunable().items()}
        pruning = prune_and_finetune(
            model, data, args.sparsity, args.finetune_epochs, method=args.method,
            schedule=args.schedule, rounds=args.rounds, lr=args.finetune_lr,
            momentum=args.momentum, weight_decay=args.weight_decay, seed=args.seed,
            after_epoch=save_finetune_epoch, done=finetune_done,
            velocity=state.velocity if finetuning else None, **train)
        finetune_history = pruning["history"]
        # agp prunes a little at a time while it trains: there is no moment "just pruned".
        after_prune = pruning["rounds"][0]["after_prune"] or {"test_loss": None,
                                                              "test_accuracy": None}
    except Diverged as error:
        print(f"error: {error}", file=sys.stderr)
        checkpoint.unlink(missing_ok=True)  # resumed, it would diverge at the same step again
        return 1
    final_loss, final_accuracy = test_metrics(model, data, finetune_history)
    layers = sparsity_report(model.params(), weight_uses(model))
    zeros = sum(r["weights"] - r["nonzero"] for r in layers)
    model.save(args.out / "pruned.npz", with_masks=True)
    # The pruned model as it ships: zeros not stored (deploy/compress.py), float32 and int8.
    model_bytes = write_compressed(model, args.out)
    _, int8_accuracy = evaluate(load_copy(model, args.out / "pruned-int8.tpz"),
                                data.test_images, data.test_labels)
    dense, tpz, int8 = (model_bytes[k] for k in ("dense_float32", "compressed", "compressed_int8"))
    print(f"model size: dense float32 {dense:,} bytes; pruned.tpz {tpz:,} ({dense / tpz:.1f}x "
          f"smaller); pruned-int8.tpz {int8:,} ({dense / int8:.1f}x smaller, test accuracy "
          f"{int8_accuracy:.2%})")
    write_json(args.out / "results.json", {
        "bytes": model_bytes, "int8_test_accuracy": int8_accuracy,
        "model": model.name, "method": args.method, "schedule": args.schedule,
        "quality": args.quality, "target_sparsity": args.sparsity,
        "sparsity": zeros / sum(r["weights"] for r in layers),
        "after_prune": after_prune,
        "test_loss": final_loss, "test_accuracy": final_accuracy,
        "finetune_epochs": args.finetune_epochs, "finetune_lr": args.finetune_lr,
        "rounds": pruning["rounds"], "history": finetune_history, "layers": layers,
        **({"filters_removed": filters_removed(model, data)} if args.method == "filter" else {})})
    weight_histograms(dense_weights, {n: p.value for n, p in model.prunable().items()},
                      args.out / "weights.png", f"{model.name}: weights before and after "
                      f"{args.method} pruning ({args.schedule})")

    print()
    print_layers(layers)
    pruned = ("n/a (agp prunes while it trains)" if after_prune["test_accuracy"] is None
              else f"{after_prune['test_accuracy']:.2%}")
    print(f"\ntest accuracy: dense {test_accuracy:.2%}, pruned {pruned}, "
          f"fine-tuned {final_accuracy:.2%}")
    checkpoint.unlink(missing_ok=True)  # the run is complete: nothing is left to resume
    return 0


def trained_model(args: argparse.Namespace) -> Sequential | None:
    """The trained dense model of the run in --out (its model.npz), which a run resumed
    during fine-tuning reports on; None, with the reason on stderr, if it is gone."""
    trained = MODELS[args.model](args.seed)
    try:
        trained.load(args.out / "model.npz")
    except Exception as error:  # missing, truncated, not an .npz, another model's
        print(f"error: the trained model {args.out / 'model.npz'} cannot be read ({error}); "
              f"it is needed to finish fine-tuning: start over in another --out",
              file=sys.stderr)
        return None
    return trained


def resume_options(args: argparse.Namespace) -> dict:
    """The options a resumed run must share with the interrupted one: all that can change
    its numbers (not where the files are, nor --resume itself)."""
    return {k: v for k, v in vars(args).items() if k not in ("out", "data_dir", "resume")}


def phase_epochs(args: argparse.Namespace, phase: str) -> int:
    """The epochs the run has in a checkpoint phase: --epochs or --finetune-epochs."""
    return args.epochs if phase == "train" else args.finetune_epochs


def interrupted(argv: list[str] | None, args: argparse.Namespace) -> str:
    """The one line printed on Ctrl-C: where the run stopped and how to go on."""
    saved = checkpoint_phase(args.out / CHECKPOINT)  # the truth about what can be resumed
    if saved is None:
        return "interrupted before the first epoch was saved; run the same command again"
    phase, done = saved
    total, name = phase_epochs(args, phase), PHASE_NAMES[phase]
    where = f"in {name} epoch {done + 1} of {total}" if done < total else f"after {name}"
    argv = list(sys.argv[1:] if argv is None else argv)
    command = ["python", "-m", "tinyprune.run", *argv] + ([] if args.resume else ["--resume"])
    return f"interrupted {where}; resume with: {shlex.join(command)}"


def ctrl_c(error: BaseException | None) -> bool:
    """Was error caused by Ctrl-C? A KeyboardInterrupt that arrives while a numba kernel runs
    comes out of the call as a SystemError whose cause (at some depth) is the interrupt."""
    while error is not None:
        if isinstance(error, KeyboardInterrupt):
            return True
        error = error.__cause__ or error.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    """-> exit status: 0 done, 1 failed (stderr says why), 2 bad options, 130 Ctrl-C."""
    args = parse_args(argv)
    try:
        return train_prune_finetune(args)
    except (KeyboardInterrupt, SystemError) as error:
        if not ctrl_c(error):
            raise
        print(interrupted(argv, args), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
