"""Training and fine-tuning curves: loss and accuracy per epoch, the pruning rounds marked.

Drawn from what a run saves (result.json's and results.json's `history` and `rounds`), so
they can be drawn again later from the run's folder alone.
"""

from __future__ import annotations

from pathlib import Path

from tinyprune.report.plots import pyplot, save_figure


def epoch_axis(train_history: list[dict], finetune_history: list[dict]) -> tuple[list, list]:
    """x positions of the entries: training epochs 1..E, then fine-tuning epochs E+1, ..."""
    trained = len(train_history)
    return (
        list(range(1, trained + 1)),
        list(range(trained + 1, trained + len(finetune_history) + 1)),
    )


def round_starts(train_epochs: int, finetune_history: list[dict]) -> dict[int, float]:
    """round number -> x where its pruning happens (just before its first fine-tuning epoch)."""
    starts: dict[int, float] = {}
    for i, entry in enumerate(finetune_history):
        starts.setdefault(entry.get("round", 1), train_epochs + i + 0.5)
    return starts


def plot_histories(
    ax,
    key: str,
    scale: float,
    train_history: list[dict],
    finetune_history: list[dict],
    test_label: str,
) -> None:
    """On ax, the train and test `key` ("loss" or "accuracy"), times scale, per epoch: solid
    lines while training, dashed while fine-tuning."""
    x_train, x_tune = epoch_axis(train_history, finetune_history)
    for split, color, label in (("train", "C0", "train"), ("test", "C1", test_label)):
        for xs, history, style, phase in (
            (x_train, train_history, "-", "training"),
            (x_tune, finetune_history, "--", "fine-tuning"),
        ):
            if history:
                ys = [scale * e[f"{split}_{key}"] for e in history]
                line = dict(color=color, marker="o", markersize=3, label=f"{label}, {phase}")
                ax.plot(xs, ys, style, **line)


def mark_rounds(ax, rounds: list[dict], starts: dict[int, float], accuracy: bool) -> None:
    """On ax, a dotted line where each round prunes; on the accuracy panel also its sparsity
    and a triangle at the test accuracy just after pruning (agp has none)."""
    for r in rounds:
        x = starts.get(r["round"])
        if x is None:
            continue
        ax.axvline(x, color="0.4", linestyle=":", linewidth=1)
        after = r.get("after_prune")
        if not accuracy:
            continue
        how = "" if after else "gradually "  # agp prunes a little at every step
        words = f"prune {how}to {r['sparsity']:.0%}"
        style = dict(rotation=90, va="bottom", ha="right", fontsize=8, color="0.3")
        ax.annotate(words, (x, 0.02), xycoords=("data", "axes fraction"), **style)
        if after:
            label = "just pruned" if r is rounds[0] else None
            ax.plot([x], [100 * after["test_accuracy"]], "v", color="C3", markersize=7, label=label)


def training_curves(
    train_history: list[dict],
    finetune_history: list[dict],
    rounds: list[dict],
    path: Path,
    title: str = "",
    test_label: str = "test",
) -> Path | None:
    """Two panels, loss and accuracy (%), against the epoch; train and test lines, training
    solid and fine-tuning after it; a dashed line where each round prunes, labelled with its
    sparsity, and a dot for the test accuracy just after pruning (not for agp)."""
    plt = pyplot()
    if plt is None:
        return None
    starts = round_starts(len(train_history), finetune_history)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, scale in ((ax_loss, "loss", 1), (ax_acc, "accuracy", 100)):
        plot_histories(ax, key, scale, train_history, finetune_history, test_label)
        mark_rounds(ax, rounds, starts, accuracy=key == "accuracy")
        ax.set_xlabel("epoch (training, then fine-tuning)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    ax_loss.set_ylabel("cross-entropy loss (mean per image)")
    ax_loss.set_title("loss")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("accuracy")
    handles, labels = ax_acc.get_legend_handles_labels()
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    return save_figure(fig, path)
